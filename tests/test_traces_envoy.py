"""Spans written by real Envoys (and by the apps behind them) against the same proxies' access logs.

A local mesh of real Envoy sidecars and an ingress gateway (meshctl.mesh) exports OpenTelemetry spans
to an in-process OTLP receiver that writes the Collector's JSON lines; the apps emit their own client
and server spans around the sidecars' (app_spans), so every call is seen by four spans. The rows
meshctl builds from the spans must count each call once, agree with the access logs on every edge
and response code, and join them by request id.
"""

from __future__ import annotations

import collections
import time

import pandas as pd
import pytest

from analyzers import table as rt

TOPOLOGY = {
    "gateway": {"service": "frontend"},
    "telemetry": {"access_logs": ["json"], "tracing": True, "sampling": 100, "app_spans": True,
                  "flush_interval_ms": 500},
    "services": {
        "frontend": {"calls": [{"host": "reviews", "path": "/reviews/1"},
                               {"host": "api.partner.example", "port": 80, "path": "/quote"}]},
        "reviews": {"versions": {"v1": {}, "v2": {}}, "weights": {"v1": 50, "v2": 50},
                    "calls": [{"host": "ratings", "path": "/ratings/1"}]},
        "ratings": {"faults": {"error_rate": 0.3, "error_code": 503}},
    },
    "externals": {"api.partner.example": {"port": 80}},
}
REQUESTS = 40


@pytest.mark.envoy
def test_real_envoy_spans_match_access_logs(tmp_path, envoy_bin) -> None:
    from meshctl.ingest import ingest
    from meshctl.mesh import Mesh, load_topology, log_sources
    from meshctl.parsers.accesslog import AccessLogParser
    from meshctl.parsers.traces import read_trace_file, trace_rows
    from meshctl.store import Dataset

    with Mesh(load_topology(TOPOLOGY), tmp_path / "mesh") as mesh:
        sent = mesh.drive(requests=REQUESTS, concurrency=4, headers={"host": "shop.example.com"})
        # Spans reach the receiver after the flush interval; wait until every request's gateway span is in.
        deadline = time.monotonic() + 30
        while True:
            mesh.flush_telemetry()
            spans = read_trace_file(mesh.receiver.traces_path)
            entries = int((rt.to_frame(trace_rows(spans))["source_kind"] == "user").sum())
            if entries >= REQUESTS or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        ds = Dataset(tmp_path / "logs")
        ingest(log_sources(mesh.access_logs("json")), AccessLogParser("auto"), ds, progress=False)

    assert spans.rejects == [] and sent.requests == REQUESTS
    kinds = collections.Counter(spans.spans.column("kind").to_pylist())
    assert kinds["client"] > 0 and kinds["server"] > 0
    rows = rt.to_frame(trace_rows(spans))
    logs = ds.read()

    # Each request enters once through the gateway, whatever the number of spans per call.
    assert (rows["source_kind"] == "user").sum() == REQUESTS
    assert set(rows.loc[rows["source_kind"] == "user", "destination_workload"]) == {"istio-ingressgateway"}

    # Span rows per edge = the client proxies' access-log rows per edge (outbound/gateway), codes included.
    calls = rows[rows["source_kind"].isna()]
    client_logs = logs[logs["direction"].isin(["outbound", "gateway"])]

    def per_edge(df: pd.DataFrame) -> collections.Counter:
        return collections.Counter(zip(df["reporter_workload"], df["destination_service"], df["response_code"],
                                       strict=True))

    span_edges, log_edges = per_edge(calls), per_edge(client_logs)
    assert span_edges == log_edges
    totals = collections.Counter()
    for (src, dst, _), n in span_edges.items():
        totals[(src, dst)] += n
    assert totals[("istio-ingressgateway", "frontend.default.svc.cluster.local")] == REQUESTS
    assert totals[("frontend-v1", "api.partner.example")] == REQUESTS
    assert totals[("frontend-v1", "reviews.default.svc.cluster.local")] == REQUESTS
    assert sum(n for (src, dst, code), n in span_edges.items() if dst.startswith("ratings.") and code == 503) > 0
    # Spans know more than the client's log: which version answered.
    reviews = calls[calls["destination_service"] == "reviews.default.svc.cluster.local"]
    assert set(reviews["destination_workload"]) == {"reviews-v1", "reviews-v2"}
    assert set(reviews["destination_version"]) == {"v1", "v2"}
    assert set(calls.loc[calls["source_workload"] == "istio-ingressgateway", "direction"]) == {"gateway"}

    # Access-log rows and span rows of the same call join: x-request-id is shared by every hop of one
    # user request, so (request id, callee) names one call here; the trace ids agree.
    key = ["request_id", "destination_service"]
    assert not calls.duplicated(key).any() and not client_logs.duplicated(key).any()
    joined = client_logs.merge(calls, on=key, suffixes=("_log", "_span"), validate="one_to_one")
    assert len(joined) == len(calls) == len(client_logs)
    assert (joined["response_code_log"] == joined["response_code_span"]).all()
    with_trace = joined.dropna(subset=["trace_id_log"])
    assert len(with_trace) == len(joined)  # Istio JSON logs carry the trace id (traceparent)
    assert (with_trace["trace_id_log"] == with_trace["trace_id_span"]).all()
