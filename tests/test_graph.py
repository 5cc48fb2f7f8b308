"""analyzers.graph: edges, counts, error classes, percentiles and the reporter policy on tables with known truth."""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzers import table as rt
from analyzers.graph import (
    FLAG_NAMES,
    GRAPH_COLUMNS,
    build_graph,
    flags_of,
    from_dependency_links,
    graph_to_dict,
    group_quantiles,
    split_service,
)

T0 = pd.Timestamp("2026-03-01T10:00:00Z")


def ident(spec: str | None, side: str) -> dict:
    """`ns/app:v2` -> source_* or destination_* columns (workload app-v2, service app.ns.svc...)."""
    if spec is None:
        return {}
    ns, rest = spec.split("/") if "/" in spec else (None, spec)
    app, ver = rest.split(":") if ":" in rest else (rest, None)
    wl = f"{app}-{ver}" if ver else app
    out = {f"{side}_app": app, f"{side}_version": ver, f"{side}_namespace": ns, f"{side}_workload": wl}
    if side == "destination":
        out["destination_service"] = f"{app}.{ns}.svc.cluster.local" if ns else app
    return out


def row(src: str | None, dst: str | None, *, direction: str = "outbound", code: int | None = 200,
        flags: str | None = None, grpc: int | None = None, ms: float = 10.0, rid: str | None = None,
        t: float = 0.0, **extra) -> dict:
    r = {"timestamp": T0 + pd.Timedelta(seconds=t), "duration_ms": ms, "response_code": code,
         "response_flags": flags, "grpc_status": grpc, "direction": direction, "request_id": rid,
         "record_kind": "access_log", "protocol": "HTTP/1.1", **ident(src, "source"), **ident(dst, "destination")}
    r["reporter_workload"] = r.get("source_workload") if direction != "inbound" else r.get("destination_workload")
    r.update(extra)
    return r


def frame(rows: list[dict]) -> pd.DataFrame:
    return rt.conform_frame(pd.DataFrame(rows))


def is_error(code, flags, grpc) -> bool:
    """The documented error rule, written independently of the implementation."""
    fl = [f for f in (flags or "").split(",") if f and f != "-"]
    return (code is not None and (500 <= code <= 599 or code == 0)) or (grpc not in (None, 0)) or \
        any(f != "DI" for f in fl)


# ---- a random mesh with known truth ---------------------------------------------------------
APPS = ["shop/front:v1", "shop/cart:v1", "shop/cart:v2", "pay/bill:v1", "pay/ledger:v1", "pay/ledger:v2"]
CALLS = [("shop/front:v1", "shop/cart:v1"), ("shop/front:v1", "shop/cart:v2"), ("shop/cart:v1", "pay/bill:v1"),
         ("shop/cart:v2", "pay/bill:v1"), ("pay/bill:v1", "pay/ledger:v1"), ("pay/bill:v1", "pay/ledger:v2"),
         ("shop/front:v1", "pay/bill:v1")]


def random_mesh(seed: int = 3, n: int = 3000):
    """Rows for n calls with a random outcome and random logging coverage, plus the truth per call."""
    rng = np.random.default_rng(seed)
    rows, truth = [], []
    outcomes = [(200, None, None), (503, None, None), (0, "UF,URX", None), (503, "UH", None), (404, "NR", None),
                (429, "RL", None), (200, None, 14), (200, "DI", None), (0, "DC", None), (504, "UT", None)]
    weights = np.array([70, 6, 3, 2, 3, 2, 3, 4, 2, 5], dtype=float)
    for i in range(n):
        src, dst = CALLS[rng.integers(len(CALLS))]
        code, flags, grpc = outcomes[rng.choice(len(outcomes), p=weights / weights.sum())]
        ms = float(rng.lognormal(2.5, 0.7))
        cover = rng.choice(["both", "client", "server"], p=[0.7, 0.15, 0.15])
        rid = f"req-{i}"
        t = float(i) * 0.5
        if cover in ("both", "client"):
            rows.append(row(src, dst, code=code, flags=flags, grpc=grpc, ms=ms, rid=rid, t=t))
        if cover in ("both", "server"):
            # The server sees a shorter duration; a request only the server saw comes from a caller
            # whose logs were not collected (identity still known from mTLS peer metadata).
            rows.append(row(src, dst, direction="inbound", code=code, flags=flags, grpc=grpc, ms=ms * 0.8, rid=rid, t=t))
        truth.append({"src": src, "dst": dst, "code": code, "flags": flags, "grpc": grpc,
                      "ms": ms if cover != "server" else ms * 0.8, "reporter": "server" if cover == "server" else "client"})
    return rows, truth


def app_of(spec: str) -> str:
    return spec.split(":")[0]


def test_random_mesh_exact_edges_counts_errors_and_percentiles():
    rows, truth = random_mesh()
    df = frame(rows).sample(frac=1.0, random_state=1)  # order must not matter
    g = build_graph(df, group_by="app")

    expected: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for c in truth:
        expected[(app_of(c["src"]), app_of(c["dst"]))].append(c)
    assert set(g.edges) == set(expected)
    assert g.graph["rows_counted"] == len(truth)  # every call exactly once
    assert g.graph["rows_selected"] == len(rows)
    for key, calls in expected.items():
        a = g.edges[key]
        assert a["requests"] == len(calls), key
        assert a["errors"] == sum(is_error(c["code"], c["flags"], c["grpc"]) for c in calls), key
        assert a["errors_5xx"] == sum(c["code"] is not None and 500 <= c["code"] <= 599 for c in calls)
        assert a["errors_4xx"] == sum(c["code"] is not None and 400 <= c["code"] <= 499 for c in calls)
        assert a["errors_grpc"] == sum(c["grpc"] not in (None, 0) for c in calls)
        assert a["errors_no_response"] == sum(c["code"] == 0 for c in calls)
        assert a["error_rate"] == pytest.approx(a["errors"] / a["requests"], abs=1e-6)
        flags = Counter(f for c in calls for f in (c["flags"] or "").split(",") if f)
        assert a["flags"] == dict(flags)
        ms = np.array([c["ms"] for c in calls])
        for p in (50, 90, 99):
            assert a[f"p{p}_ms"] == pytest.approx(np.percentile(ms, p), abs=1e-3), (key, p)
        assert a["mean_ms"] == pytest.approx(ms.mean(), abs=1e-3)
        reporters = {c["reporter"] for c in calls}
        assert a["reporter"] == ("client+server" if reporters == {"client", "server"} else reporters.pop())
        assert a["client_rows"] == sum(c["reporter"] == "client" for c in calls)
        assert a["protocols"] == ["HTTP/1.1"]
    # rps over the window (first to last request)
    window = (df["timestamp"].max() - df["timestamp"].min()).total_seconds()
    front_cart = g.edges["shop/front", "shop/cart"]
    assert front_cart["rps"] == pytest.approx(front_cart["requests"] / window, rel=1e-3)
    # node figures: in/out totals are sums over the edges
    for n in g.nodes:
        assert g.nodes[n]["in_requests"] == sum(len(v) for (s, d), v in expected.items() if d == n)
        assert g.nodes[n]["out_requests"] == sum(len(v) for (s, d), v in expected.items() if s == n)
    assert g.nodes["shop/front"]["is_root"] and not g.nodes["pay/ledger"]["is_root"]


def test_client_and_server_rows_of_one_request_count_once():
    rows = []
    for i in range(10):
        rows.append(row("ns/a:v1", "ns/b:v1", rid=f"r{i}", ms=20.0, t=i))
        rows.append(row("ns/a:v1", "ns/b:v1", direction="inbound", rid=f"r{i}", ms=15.0, t=i))
    g = build_graph(frame(rows))
    a = g.edges["ns/a", "ns/b"]
    assert a["requests"] == 10
    assert a["reporter"] == "client" and a["paired_server_rows"] == 10
    assert a["p50_ms"] == 20.0  # the client's view of the latency
    assert g.graph["rows_dropped_server"] == 10


def test_retries_inside_one_client_request_are_not_extra_requests():
    # Envoy retried: the server logged a 503 and then a 200 for the one request the client logged.
    rows = [row("ns/a:v1", "ns/b:v1", rid="r1", code=200, flags="URX"),
            row("ns/a:v1", "ns/b:v1", direction="inbound", rid="r1", code=503),
            row("ns/a:v1", "ns/b:v1", direction="inbound", rid="r1", code=200)]
    a = build_graph(frame(rows)).edges["ns/a", "ns/b"]
    assert a["requests"] == 1 and a["paired_server_rows"] == 2


def test_server_rows_whose_caller_is_unknown_pair_with_client_rows_by_request_id():
    # Inbound rows often do not name the caller; pairing is on (request id, callee).
    rows = [row("ns/a:v1", "ns/b:v1", rid="r1"), row(None, "ns/b:v1", direction="inbound", rid="r1"),
            row(None, "ns/b:v1", direction="inbound", rid="r-outside")]  # a caller outside the mesh
    g = build_graph(frame(rows))
    assert g.edges["ns/a", "ns/b"]["requests"] == 1
    assert g.edges["unknown", "ns/b"]["requests"] == 1
    assert g.edges["unknown", "ns/b"]["reporter"] == "server"
    assert g.nodes["unknown"]["kind"] == "unknown"


def test_rows_without_request_id_prefer_the_client_side():
    rows = [row("ns/a:v1", "ns/b:v1") for _ in range(5)] + \
           [row("ns/a:v1", "ns/b:v1", direction="inbound") for _ in range(5)] + \
           [row(None, "ns/b:v1", direction="inbound") for _ in range(3)] + \
           [row(None, "ns/c:v1", direction="inbound") for _ in range(4)]  # no client sidecar reports c
    g = build_graph(frame(rows))
    assert g.edges["ns/a", "ns/b"]["requests"] == 5
    assert g.edges["ns/a", "ns/b"]["paired_server_rows"] == 8  # 5 named + 3 unnamed callers, all of b's inbound
    assert not g.has_edge("unknown", "ns/b")
    assert g.edges["unknown", "ns/c"]["requests"] == 4


def test_access_logs_win_over_trace_rows_on_the_same_edge():
    rows = [row("ns/a:v1", "ns/b:v1", rid=f"r{i}") for i in range(4)]
    rows += [row("ns/a:v1", "ns/b:v1", record_kind="span", trace_id="t1", span_id=f"s{i}") for i in range(2)]
    rows += [row("ns/b:v1", "ns/c:v1", record_kind="span", trace_id="t1", span_id="s9")]
    g = build_graph(frame(rows))
    assert g.edges["ns/a", "ns/b"]["requests"] == 4 and g.edges["ns/a", "ns/b"]["dropped_trace_rows"] == 2
    assert g.edges["ns/b", "ns/c"]["requests"] == 1 and g.edges["ns/b", "ns/c"]["reporter"] == "trace"
    assert g.graph["rows_dropped_trace"] == 2


def test_error_classes_and_span_status():
    rows = [row("ns/a:v1", "ns/b:v1", code=c, flags=f, grpc=gs, span_status=ss) for c, f, gs, ss in [
        (200, None, None, None), (503, "UO", None, None), (0, "DC", None, None), (200, None, 2, None),
        (404, None, None, None), (200, "DI", None, None), (None, None, None, "error"), (200, "-", 0, "ok")]]
    a = build_graph(frame(rows)).edges["ns/a", "ns/b"]
    assert a["errors"] == 4  # 503, code 0, gRPC UNKNOWN, failed span; not 404 nor an injected delay
    assert (a["errors_5xx"], a["errors_no_response"], a["errors_grpc"], a["errors_4xx"], a["errors_span"]) == \
        (1, 1, 1, 1, 1)
    assert a["flags"] == {"UO": 1, "DC": 1, "DI": 1}


def test_group_by_variants():
    rows = [row("shop/front:v1", "shop/cart:v1", rid="1"), row("shop/front:v1", "shop/cart:v2", rid="2"),
            row("shop/cart:v2", "pay/bill:v1", rid="3")]
    df = frame(rows)
    assert set(build_graph(df, group_by="app").edges) == {("shop/front", "shop/cart"), ("shop/cart", "pay/bill")}
    g = build_graph(df, group_by="app-version")
    assert set(g.edges) == {("shop/front:v1", "shop/cart:v1"), ("shop/front:v1", "shop/cart:v2"),
                            ("shop/cart:v2", "pay/bill:v1")}
    assert g.nodes["shop/cart:v2"]["kind"] == "versioned_app" and g.nodes["shop/cart:v2"]["version"] == "v2"
    g = build_graph(df, group_by="workload")
    assert set(g.edges) == {("shop/front-v1", "shop/cart-v1"), ("shop/front-v1", "shop/cart-v2"),
                            ("shop/cart-v2", "pay/bill-v1")}
    assert g.nodes["shop/cart-v1"]["kind"] == "workload"
    g = build_graph(df, group_by="service")
    assert set(g.edges) == {("shop/front", "shop/cart"), ("shop/cart", "pay/bill")}
    assert {g.nodes[n]["kind"] for n in g.nodes} == {"service"}
    g = build_graph(df, group_by="namespace")
    assert set(g.edges) == {("shop", "shop"), ("shop", "pay")}
    assert g.edges["shop", "shop"]["requests"] == 2


def test_service_only_callee_merges_into_its_app_or_stays_a_service_node():
    # A request that never reached a pod (UH) names only the service.
    rows = [row("ns/a:v1", "ns/b:v1", rid="1"),
            row("ns/a:v1", None, code=503, flags="UH", rid="2", destination_service="b.ns.svc.cluster.local",
                destination_namespace="ns"),
            row("ns/a:v1", None, code=503, flags="UH", rid="3", destination_service="c.ns.svc.cluster.local:8080")]
    g = build_graph(frame(rows), group_by="app")
    assert g.edges["ns/a", "ns/b"]["requests"] == 2 and g.edges["ns/a", "ns/b"]["flags"] == {"UH": 1}
    assert g.nodes["svc:ns/c"]["kind"] == "service"
    g = build_graph(frame(rows), group_by="workload")
    assert g.has_edge("ns/a-v1", "svc:ns/b")  # no single workload behind it


def test_gateway_virtual_peers_and_outside_callers():
    rows = [row("istio-system/istio-ingressgateway:v1", "shop/front:v1", direction="gateway", rid="1"),
            # a gateway row that names the downstream client as source: the gateway is still the caller
            row("outside/curl:v1", "shop/front:v1", direction="gateway", rid="2",
                reporter_workload="istio-ingressgateway", reporter_namespace="istio-system"),
            row("shop/front:v1", None, destination_service="postgres", destination_kind="database", rid="3"),
            row("shop/front:v1", None, destination_service="kafka", destination_kind="messaging", rid="4"),
            row("shop/front:v1", None, destination_service="api.stripe.com", destination_kind="external", rid="5"),
            row("shop/front:v1", None, destination_service="api.github.com", rid="6"),  # outside host, no kind
            row(None, "shop/front:v1", direction="inbound", source_kind="user", record_kind="span", rid="7")]
    g = build_graph(frame(rows))
    assert g.nodes["istio-system/istio-ingressgateway"]["kind"] == "gateway"
    assert g.edges["istio-system/istio-ingressgateway", "shop/front"]["requests"] == 2
    assert not any(n.startswith("outside") for n in g.nodes)
    gw = build_graph(frame(rows), group_by="workload")
    assert gw.edges["istio-system/istio-ingressgateway-v1", "shop/front-v1"]["requests"] == 1
    assert gw.edges["istio-system/istio-ingressgateway", "shop/front-v1"]["requests"] == 1  # the reporter
    assert gw.nodes["istio-system/istio-ingressgateway"]["kind"] == "gateway"
    assert g.nodes["database:postgres"]["kind"] == "database"
    assert g.nodes["messaging:kafka"]["kind"] == "messaging"
    assert g.nodes["external:api.stripe.com"]["kind"] == "external"
    assert g.nodes["external:api.github.com"]["kind"] == "external"
    assert g.nodes["user"]["kind"] == "user" and g.has_edge("user", "shop/front")


def test_filters_namespace_window_and_clusters():
    rows = [row("shop/front:v1", "shop/cart:v1", t=0, source_cluster="east", destination_cluster="east"),
            row("shop/front:v1", "shop/cart:v1", t=30, source_cluster="west", destination_cluster="west"),
            row("shop/front:v1", "pay/bill:v1", t=60, source_cluster="east", destination_cluster="west"),
            row("ops/cron:v1", "ops/db:v1", t=90, source_cluster="east", destination_cluster="east")]
    df = frame(rows)
    g = build_graph(df)
    # two clusters in the selection: a cluster dimension in node ids
    assert set(g.edges) == {("shop/front@east", "shop/cart@east"), ("shop/front@west", "shop/cart@west"),
                            ("shop/front@east", "pay/bill@west"), ("ops/cron@east", "ops/db@east")}
    assert g.nodes["pay/bill@west"]["cluster"] == "west"
    assert set(build_graph(df, namespace="pay").edges) == {("shop/front@east", "pay/bill@west")}
    g = build_graph(df, cluster="west")
    assert g.number_of_edges() == 2
    g = build_graph(df, since=T0 + pd.Timedelta(seconds=20), until=T0 + pd.Timedelta(seconds=80))
    assert g.graph["rows_counted"] == 2 and g.graph["window_seconds"] == 60.0
    # one cluster only: no @cluster suffix
    assert set(build_graph(df, namespace="ops").edges) == {("ops/cron", "ops/db")}
    assert build_graph(df, namespace="nope").number_of_edges() == 0


def test_empty_and_minimal_frames():
    g = build_graph(rt.empty_frame())
    assert g.number_of_nodes() == 0 and g.graph["rows_counted"] == 0
    # only the columns the graph reads, some missing entirely
    g = build_graph(pd.DataFrame({"source_app": ["a"], "destination_app": ["b"], "response_code": [500]}))
    assert g.edges["a", "b"]["errors"] == 1 and g.edges["a", "b"]["rps"] is None
    with pytest.raises(ValueError, match="group_by"):
        build_graph(rt.empty_frame(), group_by="pod")


def test_json_shape_has_the_documented_keys():
    rows, _ = random_mesh(n=200)
    d = graph_to_dict(build_graph(frame(rows)))
    assert {"id", "kind", "in_requests", "out_requests", "error_rate"} <= set(d["nodes"][0])
    assert {"source", "target", "requests", "errors", "error_rate", "rps", "p50_ms", "p90_ms", "p99_ms",
            "reporter"} <= set(d["edges"][0])
    assert "dedup_policy" in d["graph"]
    import json

    json.dumps(d)  # plain data


def test_graph_columns_are_table_columns():
    assert set(GRAPH_COLUMNS) <= set(rt.COLUMN_NAMES)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.one_of(st.none(), st.floats(0, 1e4, allow_nan=False))),
                min_size=1, max_size=80))
def test_group_quantiles_match_numpy(pairs):
    groups = np.array([g for g, _ in pairs], dtype=np.int64)
    values = np.array([np.nan if v is None else v for _, v in pairs])
    q, means, counts = group_quantiles(values, groups, 7, (0.5, 0.9, 0.99))
    for gi in range(7):
        vals = values[(groups == gi) & ~np.isnan(values)]
        assert counts[gi] == len(vals)
        if len(vals):
            assert np.allclose(q[gi], np.percentile(vals, [50, 90, 99]))
            assert means[gi] == pytest.approx(vals.mean())
        else:
            assert np.isnan(q[gi]).all()


def test_helpers():
    assert flags_of("UF,URX") == ("UF", "URX") and flags_of("-") == () and flags_of(None) == ()
    assert split_service("reviews.default.svc.cluster.local:9080", None) == ("reviews", "default", True)
    assert split_service("reviews", "ns") == ("reviews", "ns", True)
    assert split_service("api.stripe.com", None) == ("api.stripe.com", None, False)
    assert "UF" in FLAG_NAMES


def test_dependency_links(oracles_dir):
    import json

    links = json.loads((oracles_dir / "data/jaeger-ui/dependencygraph-large.json").read_text())
    g = from_dependency_links(links)
    pairs = {(x["parent"], x["child"]) for x in links}
    services = {x["parent"] for x in links} | {x["child"] for x in links}
    assert g.number_of_edges() == len(pairs) and g.number_of_nodes() == len(services) == 1238
    assert sum(a["requests"] for _, _, a in g.edges(data=True)) == sum(x["callCount"] for x in links) == 2_985_281
    with pytest.raises(ValueError, match="link 0"):
        from_dependency_links([{"parent": "a"}])


def test_client_rows_borrow_the_callee_identity_their_server_rows_know():
    # Outbound logs name the service (and the subset) but not the pod that answered; the inbound row
    # of the same request does. Versioned and workload graphs use the server's identity.
    rows = []
    for i, ver in enumerate(["v1", "v2", "v2", "v1", "v2"]):
        rows.append(row("ns/a:v1", None, rid=f"r{i}", destination_service="b.ns.svc.cluster.local",
                        destination_subset=ver, t=i))
        rows.append(row(None, f"ns/b:{ver}", direction="inbound", rid=f"r{i}", t=i))
    rows.append(row("ns/a:v1", None, rid="lost", code=503, flags="UH", destination_service="b.ns.svc.cluster.local"))
    df = frame(rows)
    g = build_graph(df, group_by="app-version")
    assert g.edges["ns/a:v1", "ns/b:v1"]["requests"] == 2
    assert g.edges["ns/a:v1", "ns/b:v2"]["requests"] == 3
    assert g.edges["ns/a:v1", "ns/b:v2"]["reporter"] == "client"  # still counted from the client rows
    assert g.edges["ns/a:v1", "svc:ns/b"]["flags"] == {"UH": 1}  # never reached a pod
    assert g.graph["rows_counted"] == 6
    g = build_graph(df, group_by="workload")
    assert g.edges["ns/a-v1", "ns/b-v2"]["requests"] == 3
    g = build_graph(df, group_by="app")
    assert g.edges["ns/a", "ns/b"]["requests"] == 6


def test_logs_and_traces_of_the_same_calls_count_once_at_every_grouping():
    # Access logs know workloads; the trace rows of the same calls know only apps (version "latest":
    # Istio's revision for an unlabelled workload). However grouped, each call counts once.
    rows = []
    for i in range(20):
        rows.append(row("istio-system/istio-ingressgateway", "shop/front:v1", rid=f"r{i}", t=i,
                        source_app=None, source_workload="istio-ingressgateway"))
        rows.append(row("istio-system/istio-ingressgateway:latest", "shop/front:v1", rid=f"r{i}", t=i,
                        record_kind="span", direction="gateway", source_workload=None, destination_workload=None,
                        reporter_workload="istio-ingressgateway", trace_id=f"t{i}", span_id=f"s{i}"))
        rows.append(row(None, "istio-system/istio-ingressgateway:latest", t=i, record_kind="span",
                        direction="inbound", source_kind="user", destination_workload=None, trace_id=f"t{i}",
                        span_id=f"e{i}"))
    df = frame(rows)
    for group_by in ("app", "app-version", "workload", "service"):
        g = build_graph(df, group_by=group_by)
        assert g.graph["rows_counted"] == 40, group_by
        gw = [n for n, a in g.nodes(data=True) if a["kind"] == "gateway"]
        assert len(gw) == 1 and g.nodes[gw[0]]["out_requests"] == 20 and g.nodes[gw[0]]["in_requests"] == 20
