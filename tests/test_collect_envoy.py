"""Real Envoys (meshctl.mesh, 127.0.0.1) write Istio JSON and TEXT access logs under the OpenTelemetry
tracer; meshctl's rows must match what was sent and what Envoy counted: response codes, the
rate-limited requests (429 RL), circuit-breaker overflows (503 UO), a backend's own 503s — and a
request to reviews-v2 attributed to version v2."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from meshctl.ingest import ingest
from meshctl.mesh import Mesh, load_topology, log_sources
from meshctl.parsers.accesslog import AccessLogParser
from meshctl.store import Dataset

REQUESTS = 300
TOPOLOGY = {
    "gateway": {"service": "frontend"},
    "telemetry": {"access_logs": ["json", "text"], "tracing": True, "otlp_protocol": "grpc",
                  "flush_interval_ms": 1000, "app_spans": False},
    "services": {
        # Local rate limit on frontend's inbound side: 150 tokens, never refilled during the test.
        "frontend": {"calls": [{"host": "reviews", "path": "/reviews/1"}],
                     "rate_limit": {"max_tokens": 150, "tokens_per_fill": 150, "fill_interval": "3600s"}},
        # reviews-v2's app answers 503 to a third of its requests; at most 2 requests in flight per
        # subset from a caller (DestinationRule http2MaxRequests): the rest overflow (503 UO).
        "reviews": {"versions": {"v1": {"faults": {"latency_ms": 25}},
                                 "v2": {"faults": {"latency_ms": 25, "error_rate": 0.33}}},
                    "weights": {"v1": 50, "v2": 50},
                    "traffic_policy": {"connectionPool": {"http": {"http2MaxRequests": 2}}}},
    },
}


@pytest.fixture(scope="module")
def mesh_run(tmp_path_factory, envoy_bin):
    tmp = tmp_path_factory.mktemp("mesh")
    with Mesh(load_topology(TOPOLOGY), tmp / "mesh") as mesh:
        result = mesh.drive(requests=REQUESTS, concurrency=8)
        assert mesh.flush_telemetry(timeout=20)
        stats = {p.workload: p.envoy.stats() for p in [mesh.gateway, *mesh.pods]}
        logs = {fmt: mesh.access_logs(fmt) for fmt in ("json", "text")}
        traces = mesh.receiver.traces_path
    datasets = {}
    reports = {}
    for fmt, files in logs.items():
        ds = Dataset(tmp / f"data-{fmt}")
        reports[fmt] = ingest(log_sources(files), AccessLogParser("auto"), ds, progress=False)
        datasets[fmt] = ds.read()
    return {"result": result, "stats": stats, "logs": logs, "reports": reports, "df": datasets, "traces": traces}


def _raw_lines(files) -> int:
    return sum(sum(1 for line in f.path.read_text().splitlines() if line.strip()) for f in files)


@pytest.mark.envoy
@pytest.mark.slow
def test_every_line_becomes_a_row_in_both_formats(mesh_run):
    for fmt, report in mesh_run["reports"].items():
        assert report.rejected == 0 and report.ignored == 0 and not report.failed
        assert report.parsed == _raw_lines(mesh_run["logs"][fmt])
        assert {s.format for s in report.sources} == {f"istio-{fmt}"}
    key = ["reporter_workload", "request_id", "response_code", "response_flags", "upstream_cluster", "duration_ms",
           "direction", "destination_version"]
    j = mesh_run["df"]["json"][key].astype(str).value_counts().sort_index()
    t = mesh_run["df"]["text"][key].astype(str).value_counts().sort_index()
    assert j.equals(t), "JSON and TEXT logs describe the same requests"


@pytest.mark.envoy
@pytest.mark.slow
def test_gateway_rows_match_what_the_client_saw(mesh_run):
    result = mesh_run["result"]
    assert result.requests == REQUESTS
    for df in mesh_run["df"].values():
        gw = df[df["direction"] == "gateway"]
        assert len(gw) == REQUESTS
        assert dict(Counter(gw["response_code"].astype(int))) == dict(result.by_code)
        assert set(gw["reporter_workload"]) == {"istio-ingressgateway"}
        assert set(gw["destination_service"]) == {"frontend.default.svc.cluster.local"}


@pytest.mark.envoy
@pytest.mark.slow
def test_rate_limited_requests_are_429_rl(mesh_run):
    stats = mesh_run["stats"]["frontend-v1"]
    limited = sum(v for k, v in stats.items() if k.endswith("http_local_rate_limit.rate_limited"))
    assert limited == REQUESTS - 150
    assert mesh_run["result"].by_code.get(429) == limited
    for df in mesh_run["df"].values():
        rl = df[df["response_flags"] == "RL"]
        assert len(rl) == limited
        assert set(rl["response_code"].astype(int)) == {429}
        assert set(rl["direction"]) == {"inbound"} and set(rl["destination_workload"]) == {"frontend-v1"}
        # The gateway saw those as plain 429s from upstream (no flag of its own).
        gw = df[df["direction"] == "gateway"]
        assert set(gw[gw["response_code"] == 429]["request_id"]) == set(rl["request_id"])


@pytest.mark.envoy
@pytest.mark.slow
def test_circuit_breaker_overflow_is_503_uo(mesh_run):
    stats = mesh_run["stats"]["frontend-v1"]
    overflow = sum(v for k, v in stats.items() if "reviews" in k and k.endswith(("upstream_rq_active_overflow",
                                                                                "upstream_rq_pending_overflow")))
    for df in mesh_run["df"].values():
        uo = df[df["response_flags"] == "UO"]
        assert len(uo) == overflow > 0
        assert set(uo["response_code"].astype(int)) == {503}
        assert set(uo["direction"]) == {"outbound"} and set(uo["source_workload"]) == {"frontend-v1"}
        assert set(uo["destination_service"]) == {"reviews.default.svc.cluster.local"}
        assert set(uo["destination_subset"]) <= {"v1", "v2"}


@pytest.mark.envoy
@pytest.mark.slow
def test_backend_503s_and_version_attribution(mesh_run):
    for df in mesh_run["df"].values():
        inbound_v2 = df[(df["direction"] == "inbound") & (df["destination_workload"] == "reviews-v2")]
        assert len(inbound_v2) > 0 and set(inbound_v2["destination_version"]) == {"v2"}
        app_503 = inbound_v2[inbound_v2["response_code"] == 503]
        assert len(app_503) > 0 and app_503["response_flags"].isna().all()
        assert set(app_503["response_code_details"]) == {"via_upstream"}
        assert len(df[(df["destination_workload"] == "reviews-v1") & (df["response_code"] == 503)
                      & df["response_flags"].isna()]) == 0
        # The caller's side of the same requests: frontend → reviews subset v2, version v2.
        out = df[(df["direction"] == "outbound") & (df["source_workload"] == "frontend-v1")]
        callers = out[out["request_id"].isin(set(app_503["request_id"]))]
        assert len(callers) == len(app_503)
        assert set(callers["destination_version"]) == {"v2"} and set(callers["response_code"].astype(int)) == {503}
        # Each request that reached reviews-v2 went out to subset v2 and nowhere else.
        reached_v2 = set(inbound_v2["request_id"])
        assert set(out[out["request_id"].isin(reached_v2)]["destination_subset"]) == {"v2"}
        # frontend answered 502 exactly for the calls that failed (backend 503 or overflow).
        front_in = df[(df["direction"] == "inbound") & (df["destination_workload"] == "frontend-v1")]
        failed_calls = out[out["response_code"] >= 500]
        assert (front_in["response_code"] == 502).sum() == len(failed_calls)


@pytest.mark.envoy
@pytest.mark.slow
def test_logs_join_the_tracer_spans(mesh_run):
    trace_ids = set()
    for line in mesh_run["traces"].read_text().splitlines():
        for rs in json.loads(line).get("resourceSpans", []):
            for ss in rs.get("scopeSpans", []):
                trace_ids.update(s["traceId"].lower() for s in ss.get("spans", []))
    df = mesh_run["df"]["json"]  # the JSON format carries %REQ(TRACEPARENT)%
    traced = df[df["trace_id"].notna()]
    # The gateway's tracer starts each trace and sets traceparent before the log line is written:
    # every row carries it, and every hop of one request the same one.
    assert len(traced) == len(df)
    assert set(traced["trace_id"]) <= trace_ids
    assert traced[traced["direction"] == "gateway"]["trace_id"].nunique() == REQUESTS
    per_request = traced.groupby("request_id")["trace_id"].nunique()
    assert (per_request == 1).all()
