"""Graph diff, the root-cause walk and the structure checks on tables with a known cause."""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pytest

from analyzers.graph import build_graph
from analyzers.graph_checks import (
    CATALOG,
    CHECKS,
    CheckConfig,
    check_graph,
    cycles,
    fan_in,
    fan_out,
    run_checks,
)
from analyzers.graph_diff import DiffThresholds, diff_graphs, proportion_rise_p
from analyzers.graph_why import ServiceNotFound, resolve_service, why
from tests.test_graph import frame, row


def calls(src, dst, n, *, errors=0, ms=10.0, jitter=0.0, t0=0.0, prefix="r", code=503, flags=None, seed=0, **kw):
    """n client-side rows src -> dst, the first `errors` of them failing."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        fail = i < errors
        out.append(row(src, dst, rid=f"{prefix}{i}", t=t0 + i * 0.1, code=code if fail else 200,
                       flags=flags if fail else None, ms=ms + (rng.random() * jitter if jitter else 0.0), **kw))
    return out


# ---- diff ---------------------------------------------------------------------------------------
def test_diff_new_vanished_regressed_improved_and_noise():
    before = frame(calls("ns/a:v1", "ns/b:v1", 1000, errors=5, prefix="ab", seed=1)      # 0.5% errors
                   + calls("ns/b:v1", "ns/c:v1", 500, ms=20, jitter=2, prefix="bc", seed=2)
                   + calls("ns/a:v1", "ns/old:v1", 100, prefix="ao")
                   + calls("ns/c:v1", "ns/d:v1", 400, errors=40, prefix="cd")               # 10% errors
                   + calls("ns/a:v1", "ns/e:v1", 1000, errors=6, prefix="ae")               # 0.6%
                   + calls("ns/a:v1", "ns/rare:v1", 5, prefix="ar"))
    after = frame(calls("ns/a:v1", "ns/b:v1", 1000, errors=100, prefix="ab", seed=1)     # 10% errors
                  + calls("ns/b:v1", "ns/c:v1", 500, ms=60, jitter=2, prefix="bc", seed=2)  # 3x slower
                  + calls("ns/a:v1", "ns/new:v1", 50, prefix="an")
                  + calls("ns/c:v1", "ns/d:v1", 400, errors=2, prefix="cd")                 # 0.5%
                  + calls("ns/a:v1", "ns/e:v1", 1000, errors=9, prefix="ae")                # 0.9%: noise
                  + calls("ns/a:v1", "ns/rare:v1", 5, errors=5, prefix="ar"))               # too few
    d = diff_graphs(build_graph(before), build_graph(after), DiffThresholds())
    assert [(c.source, c.target) for c in d.new] == [("ns/a", "ns/new")]
    assert [(c.source, c.target) for c in d.vanished] == [("ns/a", "ns/old")]
    reg = {(c.source, c.target): c for c in d.regressed}
    assert set(reg) == {("ns/a", "ns/b"), ("ns/b", "ns/c")}
    assert "error rate 0.50% -> 10.00%" in reg["ns/a", "ns/b"].reasons[0]
    assert reg["ns/a", "ns/b"].error_rate_delta == pytest.approx(0.095)
    assert any(r.startswith("p99 ") for r in reg["ns/b", "ns/c"].reasons)
    assert [(c.source, c.target) for c in d.improved] == [("ns/c", "ns/d")]
    assert d.too_few_requests == 1 and d.compared == 5
    assert d.has_regressions
    out = d.to_dict()
    assert out["summary"] == {"new": 1, "vanished": 1, "regressed": 2, "improved": 1, "compared": 5,
                              "too_few_requests": 1}
    # stricter thresholds: the latency change alone does not count any more
    d2 = diff_graphs(build_graph(before), build_graph(after), DiffThresholds(p99_ratio=5.0))
    assert {(c.source, c.target) for c in d2.regressed} == {("ns/a", "ns/b")}


def test_diff_reports_new_flags():
    before = frame(calls("ns/a:v1", "ns/b:v1", 200, errors=2, flags="UF", code=0))
    after = frame(calls("ns/a:v1", "ns/b:v1", 200, errors=40, flags="UO", code=503))
    (c,) = diff_graphs(build_graph(before), build_graph(after)).regressed
    assert "flags UO 0->40" in c.reasons[0]


def test_proportion_test_matches_the_normal_tail():
    from scipy.stats import norm

    for e0, n0, e1, n1 in [(5, 1000, 100, 1000), (10, 500, 14, 500), (0, 100, 3, 100), (30, 300, 20, 300)]:
        p0, p1, pool = e0 / n0, e1 / n1, (e0 + e1) / (n0 + n1)
        z = (p1 - p0) / math.sqrt(pool * (1 - pool) * (1 / n0 + 1 / n1))
        assert proportion_rise_p(e0, n0, e1, n1) == pytest.approx(norm.sf(z), rel=1e-9)
    assert proportion_rise_p(0, 100, 0, 100) == 1.0


# ---- why ----------------------------------------------------------------------------------------
def chain(c_fails: int, *, b_own: int = 0, flags: str | None = None, code: int = 500, with_ids: bool = True) -> list:
    """a -> b -> c -> d, 400 requests. c fails `c_fails` of its requests by itself (its calls to d are
    fine) and b passes the failure up (502), as does a's caller; b also fails `b_own` on its own."""
    rows = []
    for i in range(400):
        rid = f"q{i}" if with_ids else None
        c_bad = i < c_fails
        b_bad = c_bad or (c_fails <= i < c_fails + b_own)
        rows.append(row("ns/gw:v1", "ns/a:v1", rid=rid, t=i, code=502 if b_bad else 200, ms=40))
        rows.append(row("ns/a:v1", "ns/b:v1", rid=rid, t=i, code=502 if b_bad else 200, ms=30))
        rows.append(row("ns/b:v1", "ns/c:v1", rid=rid, t=i, code=(0 if flags else code) if c_bad else 200,
                        flags=flags if c_bad else None, ms=20))
        if not (c_bad and flags):
            rows.append(row("ns/c:v1", "ns/d:v1", rid=rid, t=i, ms=5))
    return rows


def test_why_walks_to_the_service_whose_errors_originate_there():
    res = why(frame(chain(40)), "a")
    assert res.service == "ns/a" and res.symptoms == ["errors"]
    assert [(h.source, h.target, h.verdict) for h in res.error_path] == [
        ("ns/a", "ns/b", "propagates"), ("ns/b", "ns/c", "origin-service")]
    assert res.error_path[0].explained == 40 and res.error_path[0].matched_by == "request_id"
    assert res.error_path[1].explained == 0  # c's own calls did not fail
    assert (res.origin, res.origin_kind) == ("ns/c", "service")
    assert "ns/c returns errors to ns/b" in res.verdict


def test_why_blames_the_edge_when_the_proxy_failed_the_calls():
    res = why(frame(chain(40, flags="UF,URX")), "ns/b")
    (hop,) = res.error_path
    assert (hop.source, hop.target, hop.verdict, hop.proxy_errors) == ("ns/b", "ns/c", "origin-edge", 40)
    assert (res.origin, res.origin_kind) == ("ns/b -> ns/c", "edge")
    assert "UF (upstream connection failure)" in res.verdict


def test_why_stops_where_downstream_failures_do_not_explain_the_errors():
    # b fails 60 requests itself and 10 because c failed: most of b's errors are its own.
    res = why(frame(chain(10, b_own=60)), "a")
    assert [(h.target, h.verdict) for h in res.error_path] == [("ns/b", "origin-service")]
    assert res.error_path[0].explained == 10 and res.origin == "ns/b"


def test_why_without_request_ids_matches_by_counts():
    res = why(frame(chain(40, with_ids=False)), "a")
    assert res.error_path[0].matched_by == "counts"
    assert res.origin == "ns/c"


def test_why_healthy_service_and_latency_estimate_without_traces():
    res = why(frame(chain(0)), "a", p99_threshold_ms=25)
    assert res.symptoms == ["latency"] and res.error_path == [] and "below" in res.verdict
    assert res.latency_method.startswith("estimate")
    # calls into a take 40 ms, 30 of them waiting on b; b's 30 ms wait 20 on c; c's 20 ms wait 5 on d
    assert [s.node for s in res.latency_path] == ["ns/a", "ns/b", "ns/c"]
    assert res.latency_path[0].total_ms == pytest.approx(40) and res.latency_path[0].own_ms == pytest.approx(10)
    assert res.latency_path[-1].own_ms == pytest.approx(15)  # c: 20 ms, 5 of them waiting on d


def test_resolve_service_and_not_found():
    rows = calls("ns/a:v1", "ns/b:v1", 50) + calls("ns/a:v1", "ns/b:v2", 50, errors=20, prefix="x")
    g = build_graph(frame(rows), group_by="app-version")
    node, cands = resolve_service(g, "b")
    assert node == "ns/b:v2" and set(cands) == {"ns/b:v1", "ns/b:v2"}  # the failing version first
    assert resolve_service(g, "ns/b:v1")[0] == "ns/b:v1"
    with pytest.raises(ServiceNotFound) as exc:
        resolve_service(g, "nope")
    assert "ns/a:v1" in exc.value.candidates


# ---- checks -------------------------------------------------------------------------------------
def test_structure_checks():
    rows = calls("ns/a:v1", "ns/b:v1", 30, prefix="1") + calls("ns/b:v1", "ns/c:v1", 30, prefix="2") \
        + calls("ns/c:v1", "ns/a:v1", 30, prefix="3") + calls("ns/c:v1", "ns/c:v1", 30, prefix="4") \
        + calls("ns/a:v1", "ns/x:v1", 30, errors=10, prefix="5")
    for i in range(9):
        rows += calls("ns/hub:v1", f"ns/s{i}:v1", 25, prefix=f"h{i}")
        rows += calls(f"ns/s{i}:v1", "ns/db:v1", 25, prefix=f"d{i}")
    # single-version: only cart v2 calls the new recommender; v1 and v2 of cart both call prices
    rows += calls("ns/cart:v1", "ns/prices:v1", 30, prefix="p1") + calls("ns/cart:v2", "ns/prices:v1", 30, prefix="p2")
    rows += calls("ns/cart:v2", "ns/recommend:v1", 30, prefix="r2")
    # only v1 of stock gets cart's calls although v2 of stock serves others
    rows += calls("ns/cart:v1", "ns/stock:v1", 30, prefix="s1") + calls("ns/cart:v2", "ns/stock:v1", 30, prefix="s3") \
        + calls("ns/ops:v1", "ns/stock:v2", 30, prefix="s2")
    rows += [row(None, "ns/a:v1", direction="inbound", rid=f"outside{i}", t=i) for i in range(25)]
    report = check_graph(frame(rows), config=CheckConfig(fan_out=8, fan_in=8))
    by_code: dict[str, list] = {}
    for f in report.findings:
        by_code.setdefault(f.code, []).append(f)
        assert (f.severity, f.check) == CATALOG[f.code][:2]
    assert {f.subject for f in by_code["GRAPH001"]} == {"ns/a -> ns/b -> ns/c -> ns/a", "ns/c -> ns/c"}
    assert [f.subject for f in by_code["GRAPH002"]] == ["ns/hub"]
    assert [f.subject for f in by_code["GRAPH003"]] == ["ns/db"]
    assert [f.subject for f in by_code["GRAPH004"]] == ["ns/cart -> ns/recommend"]
    assert by_code["GRAPH004"][0].data["version"] == "v2"
    assert [f.subject for f in by_code["GRAPH005"]] == ["ns/cart -> ns/stock", "ns/ops -> ns/stock"]
    assert [f.data["version"] for f in by_code["GRAPH005"]] == ["v1", "v2"]
    assert [f.subject for f in by_code["GRAPH006"]] == ["ns/a -> ns/x"]
    assert [f.subject for f in by_code["GRAPH007"]] == ["ns/a"]
    assert report.worst() == "error" and report.findings[0].severity == "error"
    assert report.to_dict()["summary"]["error"] == 1
    assert {name for name, _ in CHECKS} >= {"cycle", "fan", "single-version", "failing-edge"}


def test_graph_only_helpers():
    g = nx.DiGraph([("a", "b"), ("b", "a"), ("b", "c"), ("c", "c"), ("c", "d"), ("d", "b")])
    assert cycles(g) == [["c"], ["a", "b"], ["b", "c", "d"]]
    assert fan_out(g, 2) == [("b", 2)] and fan_in(g, 2) == [("b", 2)]
    for _, _, a in g.edges(data=True):
        a.update(requests=1, errors=0, error_rate=0.0)
    assert {f.code for f in run_checks(g).findings} == {"GRAPH001"}


def test_single_version_target_uses_the_version_the_server_rows_name():
    # Client rows name only the service; the callee's version comes from the paired server rows.
    rows = []
    for i in range(40):
        ver = "v1" if i < 30 else "v2"
        caller = "ns/web:v1" if ver == "v1" else "ns/batch:v1"
        rows.append(row(caller, None, rid=f"r{i}", t=i, destination_service="api.ns.svc.cluster.local"))
        rows.append(row(None, f"ns/api:{ver}", direction="inbound", rid=f"r{i}", t=i))
    rows += calls("ns/web:v1", "ns/api:v1", 1, prefix="pad")  # (only to give web a second row)
    report = check_graph(frame(rows), config=CheckConfig(min_requests=5))
    got = {(f.code, f.subject, f.data["version"]) for f in report.findings if f.code == "GRAPH005"}
    assert got == {("GRAPH005", "ns/web -> ns/api", "v1"), ("GRAPH005", "ns/batch -> ns/api", "v2")}
