"""The graph on real trace exports (read in place from ../shared/oracles/data), through the trace
parsers (meshctl.parsers.traces), checked against counts computed here from the raw span
parent/child relations; and the critical path / root-cause walk on traces."""

from __future__ import annotations

import csv
import json
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analyzers import table as rt
from analyzers.graph import build_graph, prepare
from analyzers.graph_critical import critical_path
from analyzers.graph_why import why
from meshctl.parsers.traces import trace_file_rows

VIRTUAL = ("external", "database", "messaging", "unknown")


@pytest.fixture(scope="module")
def data_dir(oracles_dir) -> Path:
    return oracles_dir / "data"


def rows_of(path: Path) -> pd.DataFrame:
    res = trace_file_rows(path)
    assert not res.rejects, res.rejects[:3]
    return rt.to_frame(res.table)


def edge_counts(g) -> Counter:
    return Counter({(s, t): a["requests"] for s, t, a in g.edges(data=True)})


# ---- DeathStarBench: Jaeger UI export, no span kinds -------------------------------------------
def jaeger_parent_child(path: Path) -> tuple[Counter, Counter, dict]:
    """(service -> service counts over spans whose parent is in another service, root spans per
    service, the parent (calling) span's duration in ms per edge) straight from the Jaeger JSON."""
    doc = json.loads(path.read_text())
    edges, roots, durations = Counter(), Counter(), defaultdict(list)
    for trace in doc["data"]:
        procs = trace["processes"]
        by_id = {s["spanID"]: s for s in trace["spans"]}
        for s in trace["spans"]:
            svc = procs[s["processID"]]["serviceName"]
            parents = [r["spanID"] for r in s.get("references", []) if r["refType"] == "CHILD_OF"]
            if not parents or parents[0] not in by_id:
                roots[svc] += 1
                continue
            psvc = procs[by_id[parents[0]]["processID"]]["serviceName"]
            if psvc != svc:
                edges[(psvc, svc)] += 1
                durations[(psvc, svc)].append(by_id[parents[0]]["duration"] / 1000.0)
    return edges, roots, durations


def test_deathstarbench_edges_match_span_parent_child_relations(data_dir):
    path = data_dir / "deathstarbench/traces-1695947455229.json"
    expected, roots, durations = jaeger_parent_child(path)
    g = build_graph(rows_of(path), group_by="app")
    got = edge_counts(g)
    assert roots == Counter({"nginx-web-server": 20})
    assert got == expected + Counter({("user", svc): n for svc, n in roots.items()})
    assert len(expected) == 11 and set(expected.values()) == {20}
    # The same edges from the call-graph CSV flattened by DeathStarBench (an independent file).
    with open(data_dir / "deathstarbench/trace.csv", newline="") as f:
        from_csv = Counter((r["parentMS"], r["childMS"]) for r in csv.DictReader(f) if r["parentMS"] != r["childMS"])
    assert from_csv == expected
    # Latency per edge: what the caller waited, i.e. the calling span's duration (the export has no span
    # kinds; the parent span in the other service is the call's client side).
    for key, ms in durations.items():
        a = g.edges[key]
        assert a["reporter"] == "trace" and a["errors"] == 0
        assert a["p50_ms"] == pytest.approx(np.percentile(ms, 50), abs=1e-3)
        assert a["p99_ms"] == pytest.approx(np.percentile(ms, 99), abs=1e-3)


def test_deathstarbench_critical_path_accounts_for_every_root_millisecond(data_dir):
    df = rows_of(data_dir / "deathstarbench/traces-1695947455229.json")
    prep = prepare(df)
    cp = critical_path(prep)
    assert cp.traces == 20
    # Own time along the critical paths adds up to the root calls' durations, trace by trace.
    roots = prep.frame["parent_span_id"].isna().to_numpy()
    assert cp.self_ms.sum() == pytest.approx(prep.floats("duration_ms")[roots].sum(), rel=1e-9)
    assert cp.crit_ms[roots].sum() == pytest.approx(prep.floats("duration_ms")[roots].sum(), rel=1e-9)
    idx = {n.id: i for i, n in enumerate(prep.nodes)}
    compose = idx["compose-post-service"]
    waits = sum(ms for (s, _), ms in cp.wait_ms.items() if s == compose)
    assert cp.own_ms[compose] + waits == pytest.approx(cp.total_ms[compose], rel=1e-9)
    res = why(df, "nginx-web-server")
    assert res.latency_method == "critical path (20 traces)"
    assert res.latency_path[0].node == "nginx-web-server"
    assert res.latency_path[1].node == "compose-post-service"
    assert res.symptoms == [] and res.error_path == []


# ---- Zipkin v2: SmartThings (1,041 spans), OAuth, Ascend (shared spans), Yelp --------------------
def zipkin_relations(path: Path) -> dict:
    """From the raw Zipkin spans: SERVER spans per service; callers fixed by a CLIENT span (the shared
    half with the same id, or a CLIENT parent); root SERVER spans; SERVER spans whose parent is not a
    client span (callers the tracer did not record); CLIENT spans with no server side, per service."""
    spans = json.loads(path.read_text())

    def svc(s: dict) -> str | None:
        return (s.get("localEndpoint") or {}).get("serviceName")

    by_id = defaultdict(list)
    for s in spans:
        by_id[s["id"]].append(s)
    server_ids = {s["id"] for s in spans if s.get("kind") == "SERVER"}
    server_parents = {s.get("parentId") for s in spans if s.get("kind") == "SERVER"}
    out = {"servers": Counter(), "by_client": Counter(), "roots": Counter(), "other": Counter(),
           "unpaired_clients": Counter(), "spans": len(spans)}
    for s in spans:
        if s.get("kind") == "SERVER":
            out["servers"][svc(s)] += 1
            shared = [c for c in by_id[s["id"]] if c.get("kind") == "CLIENT" and svc(c) not in (None, "unknown")]
            parent = [p for p in by_id.get(s.get("parentId") or "", []) if svc(p) not in (None, "unknown")]
            # ("unknown" is Zipkin's placeholder for a missing service name, not a service)
            if shared:
                out["by_client"][(svc(shared[0]), svc(s))] += 1
            elif parent and parent[0].get("kind") == "CLIENT":
                out["by_client"][(svc(parent[0]), svc(s))] += 1
            elif not s.get("parentId"):
                out["roots"][svc(s)] += 1
            else:
                out["other"][svc(s)] += 1
        elif s.get("kind") == "CLIENT" and s["id"] not in server_ids and s["id"] not in server_parents:
            out["unpaired_clients"][svc(s)] += 1
    return out


@pytest.mark.parametrize("name", ["smartthings-mobile-web-install.json", "smartthings-oauth-authorization.json",
                                  "ascend.json", "yelp.json", "simple-db-p6.json"])
def test_zipkin_edges_match_span_relations(data_dir, name):
    path = data_dir / "zipkin" / name
    rel = zipkin_relations(path)
    g = build_graph(rows_of(path), group_by="app")
    got = edge_counts(g)
    if name.startswith("smartthings-mobile"):
        assert rel["spans"] == 1041
    # every SERVER span is one request into its service: none lost, none counted twice
    for service, n in rel["servers"].items():
        assert g.nodes[service]["in_requests"] == n, service
    # a request whose caller is a CLIENT span is on that caller's edge
    for (caller, callee), n in rel["by_client"].items():
        assert n <= got[(caller, callee)] <= n + rel["other"][callee], (caller, callee)
    # traffic from outside the traced system: the root SERVER spans, exactly
    assert {t: n for (s, t), n in got.items() if s == "user"} == dict(rel["roots"])
    # CLIENT spans nobody answered are calls to virtual peers (databases, external hosts, unknown)
    virtual = Counter()
    for (s, t), n in got.items():
        if g.nodes[t]["kind"] in VIRTUAL:
            virtual[s] += n
    assert virtual == rel["unpaired_clients"]
    assert sum(got.values()) == sum(rel["servers"].values()) + sum(rel["unpaired_clients"].values())


def test_smartthings_virtual_peers_and_figures(data_dir):
    g = build_graph(rows_of(data_dir / "zipkin/smartthings-mobile-web-install.json"))
    kinds = Counter(a["kind"] for _, a in g.nodes(data=True))
    assert kinds["database"] >= 2  # cassandra keyspaces behind auth and bookie
    assert g.edges["auth", "database:auth"]["requests"] == 132
    assert g.edges["execution", "alice"]["errors"] == 1  # the one failed call in the trace
    assert all(a["reporter"] == "trace" for _, _, a in g.edges(data=True))


# ---- Tempo (OTLP JSON, base64 ids) and Tempo's own expected service-graph edges -----------------
def test_tempo_expected_edges(data_dir):
    g = build_graph(rows_of(data_dir / "tempo/trace-with-queue-database.json"))
    got = edge_counts(g)
    # servicegraphs_test.go: requester->server 1, server->postgres (database) 1, requester->recorder (messaging) 1
    assert got[("mythical-requester", "mythical-server")] == 1
    assert got[("mythical-server", "database:postgres")] == 1
    assert got[("mythical-requester", "mythical-recorder")] == 1
    g = build_graph(rows_of(data_dir / "tempo/trace-with-failed-requests.json"))
    assert (g.edges["mythical-requester", "mythical-server"]["requests"],
            g.edges["mythical-requester", "mythical-server"]["errors"]) == (1, 1)
    assert (g.edges["mythical-server", "database:postgres"]["requests"],
            g.edges["mythical-server", "database:postgres"]["errors"]) == (1, 1)
    g = build_graph(rows_of(data_dir / "tempo/trace-with-virtual-nodes.json"))
    assert set(g.edges) == {("user", "mythical-server"), ("mythical-requester", "external:external-payments-platform"),
                            ("external:external-producer", "internal-consumer")}


def test_why_follows_failed_requests_through_a_trace(data_dir):
    res = why(rows_of(data_dir / "tempo/trace-with-failed-requests.json"), "mythical-requester")
    assert res.symptoms == ["errors"]
    assert [(h.source, h.target, h.verdict) for h in res.error_path] == [
        ("mythical-requester", "mythical-server", "propagates"),
        ("mythical-server", "database:postgres", "origin-service"),
    ]
    assert res.error_path[0].matched_by == "trace_id" and res.error_path[0].explained == 1
    assert (res.origin, res.origin_kind) == ("database:postgres", "service")
    assert res.latency_method.startswith("critical path")


# ---- Jaeger query-API JSON (jaeger-ui test traces) and the OTLP example ---------------------------
def test_jaeger_ui_traces_and_otlp_example(data_dir):
    g = build_graph(rows_of(data_dir / "jaeger-ui/flamegraph-testTrace.json"))
    assert set(g.edges) == {("load-generator", "ride-sharing-app")}
    g = build_graph(rows_of(data_dir / "jaeger-ui/spanAmongEachOtherGroupedAndSpans.json"))
    assert edge_counts(g) == Counter({("user", "api-gateway"): 1, ("api-gateway", "customers-service"): 1})
    g = build_graph(rows_of(data_dir / "otel-proto/trace.json"))
    assert g.graph["rows_counted"] == 1 and g.nodes["my.service"]["in_requests"] == 1


# ---- critical path on a hand-built trace ----------------------------------------------------------
def test_critical_path_with_parallel_children():
    t0 = pd.Timestamp("2026-03-01T10:00:00Z")

    def span(sid, parent, src, dst, start_ms, dur_ms):
        return {"timestamp": t0 + pd.Timedelta(milliseconds=start_ms), "duration_ms": dur_ms, "trace_id": "t1",
                "span_id": sid, "parent_span_id": parent, "source_app": src, "destination_app": dst,
                "record_kind": "span", "direction": "outbound", "response_code": 200}

    # A is called for 100 ms; it calls B (10-40 ms) and, in parallel, C (20-90 ms); C calls D (30-80 ms).
    df = rt.conform_frame(pd.DataFrame([
        span("a", None, "user", "A", 0, 100), span("b", "a", "A", "B", 10, 30),
        span("c", "a", "A", "C", 20, 70), span("d", "c", "C", "D", 30, 50)]))
    prep = prepare(df)
    cp = critical_path(prep)
    idx = {n.id: i for i, n in enumerate(prep.nodes)}
    # Walking back from 100: A alone 90-100, C 20-90 (of which D 30-80), then B until 20 (B's 10-20),
    # then A alone 0-10.
    assert cp.own_ms[idx["A"]] == pytest.approx(20)
    assert cp.own_ms[idx["C"]] == pytest.approx(20)
    assert cp.own_ms[idx["D"]] == pytest.approx(50)
    assert cp.own_ms[idx["B"]] == pytest.approx(10)
    assert cp.wait_ms[(idx["A"], idx["C"])] == pytest.approx(70)
    assert cp.wait_ms[(idx["A"], idx["B"])] == pytest.approx(10)
    res = why(df, "A")
    assert [s.node for s in res.latency_path] == ["A", "C", "D"]
    assert "D spends 50.0 of its 50.0 ms itself" in res.latency_verdict


def test_critical_path_is_used_when_access_logs_cover_the_same_calls():
    t0 = pd.Timestamp("2026-03-01T10:00:00Z")
    spans = [{"timestamp": t0, "duration_ms": 100.0, "trace_id": "t1", "span_id": "a", "source_app": "gw",
              "destination_app": "A", "record_kind": "span", "direction": "outbound"},
             {"timestamp": t0 + pd.Timedelta(milliseconds=10), "duration_ms": 80.0, "trace_id": "t1", "span_id": "b",
              "parent_span_id": "a", "source_app": "A", "destination_app": "B", "record_kind": "span",
              "direction": "outbound"}]
    logs = [{**s, "record_kind": "access_log", "trace_id": None, "span_id": None, "parent_span_id": None,
             "request_id": "r1", "duration_ms": s["duration_ms"] + 1} for s in spans]
    df = rt.conform_frame(pd.DataFrame(spans + logs))
    g = build_graph(df)
    assert g.edges["A", "B"]["reporter"] == "client" and g.edges["A", "B"]["dropped_trace_rows"] == 1
    res = why(df, "A")
    assert res.latency_method == "critical path (1 traces)"
    assert [(s.node, s.total_ms, s.own_ms) for s in res.latency_path] == [("A", 100.0, 20.0), ("B", 80.0, 80.0)]
