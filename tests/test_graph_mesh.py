"""The graph of a real mesh: Envoy sidecars and gateway on 127.0.0.1 (meshctl.mesh), their access logs
collected like a cluster's (meshctl.ingest), and a regression recorded live for `graph diff` / `why`."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from analyzers.graph import GRAPH_COLUMNS, build_graph
from meshctl.store import Dataset

TOPOLOGY = {
    "gateway": {"service": "frontend"},
    "telemetry": {"access_logs": ["json"], "tracing": False, "app_spans": False},
    "services": {
        "frontend": {"calls": [{"host": "reviews", "path": "/reviews/1"},
                               {"host": "api.partner.example", "port": 80, "path": "/quote"}]},
        "reviews": {"versions": {"v1": {}, "v2": {}}, "weights": {"v1": 50, "v2": 50},
                    "calls": [{"host": "ratings", "path": "/ratings/1"}]},
        "ratings": {},
    },
    "externals": {"api.partner.example": {"port": 80}},
}


def collect(mesh, data: Path) -> Dataset:
    """The proxies' JSON access logs into a dataset, each file with its pod's identity (as
    `meshctl collect logs` does from Kubernetes node log paths)."""
    from meshctl.ingest import ingest
    from meshctl.mesh import log_sources
    from meshctl.parsers.accesslog import AccessLogParser

    ds = Dataset(data)
    report = ingest(log_sources(mesh.access_logs("json")), AccessLogParser("auto"), ds, progress=False)
    assert report.rows > 0 and not [s for s in report.sources if s.error]
    return ds


@pytest.mark.envoy
def test_real_envoy_mesh_yields_exactly_the_configured_edges_and_a_recorded_regression(tmp_path, envoy_bin, run_cli):
    from meshctl.mesh import Mesh, load_topology

    with Mesh(load_topology(TOPOLOGY), tmp_path / "mesh") as mesh:
        healthy = mesh.drive(requests=60, concurrency=4, headers={"host": "shop.example.com"})
        time.sleep(0.05)
        mid = datetime.now(timezone.utc)
        time.sleep(0.05)
        # The regression: ratings starts failing half of its requests; reviews and frontend pass the
        # failure up (502), so the gateway sees errors although only ratings is broken.
        mesh.set_faults("ratings", {"error_rate": 0.5, "error_code": 503})
        broken = mesh.drive(requests=80, concurrency=4, headers={"host": "shop.example.com"})
        mesh.flush_telemetry()
        ds = collect(mesh, tmp_path / "data")
    assert healthy.by_code == {200: 60}
    failed = sum(n for code, n in broken.by_code.items() if code >= 500)
    assert 15 < failed < 65

    df = ds.read(columns=GRAPH_COLUMNS)
    # Every proxy logged its side: the gateway, then client and server rows of each in-mesh hop.
    assert set(df["direction"].dropna().unique()) >= {"inbound", "outbound"}

    # Before the fault: exactly the configured edges, each request counted once.
    g = build_graph(df, until=mid)
    edges = {(s, t): a for s, t, a in g.edges(data=True)}
    assert set(edges) == {("istio-system/istio-ingressgateway", "default/frontend"),
                          ("default/frontend", "default/reviews"), ("default/reviews", "default/ratings"),
                          ("default/frontend", "external:api.partner.example")}, sorted(edges)
    assert {k: a["requests"] for k, a in edges.items()} == dict.fromkeys(edges, 60)
    assert all(a["errors"] == 0 for a in edges.values())
    assert edges["default/frontend", "default/reviews"]["reporter"] == "client"
    assert edges["default/frontend", "default/reviews"]["paired_server_rows"] == 60
    assert g.nodes["istio-system/istio-ingressgateway"]["kind"] == "gateway"
    assert g.nodes["external:api.partner.example"]["kind"] == "external"
    gv = build_graph(df, until=mid, group_by="app-version")
    split = {t: a["requests"] for s, t, a in gv.edges(data=True) if s == "default/frontend:v1" and "reviews" in t}
    assert set(split) == {"default/reviews:v1", "default/reviews:v2"} and sum(split.values()) == 60
    assert sum(a["requests"] for s, t, a in gv.edges(data=True) if t == "default/ratings:v1") == 60

    # After: the errors on every hop are the ones the client saw.
    after = build_graph(df, since=mid)
    assert after.edges["istio-system/istio-ingressgateway", "default/frontend"]["errors"] == failed
    assert after.edges["default/frontend", "default/reviews"]["errors"] == failed
    assert after.edges["default/reviews", "default/ratings"]["errors"] == failed
    assert after.edges["default/frontend", "external:api.partner.example"]["errors"] == 0

    data = str(tmp_path / "data")
    stamp = mid.isoformat().replace("+00:00", "Z")
    code, out, err = run_cli("graph", "diff", "--data", data, "--before", f"..{stamp}", "--after", f"{stamp}..",
                             "-o", "json", "--exit-code")
    assert code == 1, err
    d = json.loads(out)
    regressed = {(c["source"], c["target"]) for c in d["changes"] if c["change"] == "regressed"}
    assert regressed == {("istio-system/istio-ingressgateway", "default/frontend"),
                         ("default/frontend", "default/reviews"), ("default/reviews", "default/ratings")}
    assert d["summary"]["new"] == d["summary"]["vanished"] == 0

    code, out, err = run_cli("graph", "why", "frontend", "--data", data, "--since", stamp, "-o", "json")
    assert code == 0, err
    w = json.loads(out)
    assert w["symptoms"] == ["errors"]
    assert [(h["source"], h["target"], h["verdict"]) for h in w["error_path"]] == [
        ("default/frontend", "default/reviews", "propagates"),
        ("default/reviews", "default/ratings", "origin-service")]
    assert w["error_path"][0]["matched_by"] == "request_id" and w["error_path"][0]["explained"] == failed
    assert (w["origin"], w["origin_kind"]) == ("default/ratings", "service")

    code, out, _ = run_cli("graph", "--data", data, "-o", "svg")
    assert code == 0 and out.lstrip().startswith("<?xml") and "ratings" in out
