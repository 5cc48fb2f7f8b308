"""The OTLP receiver: gRPC, HTTP protobuf / JSON / chunked / gzip, errors, real exporters, the CLI."""

from __future__ import annotations

import gzip
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from meshctl.receiver import OTLPReceiver, from_otlp_json, to_otlp_json

TRACE_ID = "5b8efff798038103d269b633813fc60c"
SPAN_ID = "eee19b7ec3c1b174"
PARENT_ID = "eee19b7ec3c1b173"


def _trace_request(n_spans: int = 2):
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    doc = {"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "reviews.default"}}]},
        "scopeSpans": [{"scope": {"name": "envoy"}, "spans": [
            {"traceId": TRACE_ID, "spanId": f"{i + 1:016x}", "parentSpanId": PARENT_ID, "name": f"span-{i}",
             "kind": 2, "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1700000000500000000",
             "attributes": [{"key": "http.status_code", "value": {"stringValue": "503"}}],
             "status": {"code": 2}}
            for i in range(n_spans)]}],
    }]}
    return doc, from_otlp_json(doc, ExportTraceServiceRequest)


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def _post(url: str, body: bytes, ctype: str, headers: dict[str, str] | None = None):
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": ctype, **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read(), r.headers.get("Content-Type")
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers.get("Content-Type")


def test_json_round_trip_uses_hex_ids_and_integer_enums():
    _doc, msg = _trace_request()
    span = msg.resource_spans[0].scope_spans[0].spans[0]
    assert span.trace_id.hex() == TRACE_ID and span.parent_span_id.hex() == PARENT_ID
    out = to_otlp_json(msg)
    s = out["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert s["traceId"] == TRACE_ID and s["spanId"] == "0000000000000001" and s["kind"] == 2
    assert s["startTimeUnixNano"] == "1700000000000000000"  # 64-bit integers as strings
    assert s["status"] == {"code": 2}


def _reference_json(message):
    """The protobuf JSON mapping (json_format) with ids as hex: what to_otlp_json must equal."""
    import base64

    from google.protobuf import json_format

    def walk(o, key=None):
        if isinstance(o, dict):
            return {k: walk(v, k) for k, v in o.items()}
        if isinstance(o, list):
            return [walk(v, key) for v in o]
        if key in ("traceId", "spanId", "parentSpanId") and isinstance(o, str):
            return base64.b64decode(o).hex()
        return o

    return walk(json_format.MessageToDict(message, use_integers_for_enums=True))


def test_fast_json_conversion_equals_the_protobuf_json_mapping():
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

    _, traces = _trace_request(3)
    logs = from_otlp_json({"resourceLogs": [{"scopeLogs": [{"logRecords": [{
        "timeUnixNano": "1700000000000000001", "severityNumber": 9, "severityText": "INFO",
        "traceId": TRACE_ID, "spanId": SPAN_ID, "flags": 1,
        "body": {"kvlistValue": {"values": [
            {"key": "b", "value": {"boolValue": False}}, {"key": "i", "value": {"intValue": "0"}},
            {"key": "d", "value": {"doubleValue": 0.5}}, {"key": "raw", "value": {"bytesValue": "AAEC"}},
            {"key": "arr", "value": {"arrayValue": {"values": [{"stringValue": "x"}, {"intValue": "-7"}]}}}]}},
        "attributes": [{"key": "empty", "value": {}}]}]}]}]}, ExportLogsServiceRequest)
    metrics = from_otlp_json({"resourceMetrics": [{"scopeMetrics": [{"metrics": [
        {"name": "h", "histogram": {"aggregationTemporality": 2, "dataPoints": [{
            "count": "3", "sum": 1.5, "bucketCounts": ["1", "2"], "explicitBounds": [1.0],
            "exemplars": [{"asDouble": 2.0, "traceId": TRACE_ID, "spanId": SPAN_ID}]}]}},
        {"name": "g", "gauge": {"dataPoints": [{"asDouble": "NaN"}, {"asInt": "5"}]}}]}]}]},
        ExportMetricsServiceRequest)
    for message in (traces, logs, metrics):
        assert to_otlp_json(message) == _reference_json(message)
    assert json.loads(json.dumps(to_otlp_json(metrics)))  # NaN written as a string, valid JSON


def test_http_protobuf_json_chunked_gzip(tmp_path):
    _, msg = _trace_request(3)
    with OTLPReceiver(tmp_path, grpc_port=None, http_port=0) as rx:
        base = f"http://127.0.0.1:{rx.http_port}"
        status, body, ctype = _post(base + "/v1/traces", msg.SerializeToString(), "application/x-protobuf")
        assert status == 200 and ctype == "application/x-protobuf"
        status, body, ctype = _post(base + "/v1/traces", json.dumps(to_otlp_json(msg)).encode(), "application/json")
        assert status == 200 and ctype == "application/json" and json.loads(body) == {}
        status, _, _ = _post(base + "/v1/traces", gzip.compress(msg.SerializeToString()), "application/x-protobuf",
                             {"Content-Encoding": "gzip"})
        assert status == 200
        # Chunked body without Content-Length, in several chunks, as Envoy's HTTP exporter sends it.
        payload = msg.SerializeToString()
        chunks = [payload[:7], payload[7:20], payload[20:]]
        raw = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
        with socket.create_connection(("127.0.0.1", rx.http_port), timeout=5) as sock:
            sock.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: collector\r\nContent-Type: application/x-protobuf\r\n"
                         b"Transfer-Encoding: chunked\r\n\r\n" + raw)
            reply = sock.recv(4096)
        assert reply.startswith(b"HTTP/1.1 200")
        assert rx.stats.http_chunked == 1
        assert rx.stats.traces.requests == 4 and rx.stats.traces.items == 12
    lines = _lines(tmp_path / "traces.jsonl")
    assert len(lines) == 4
    assert all(line == lines[0] for line in lines)
    assert [s["spanId"] for s in lines[0]["resourceSpans"][0]["scopeSpans"][0]["spans"]] == \
        ["0000000000000001", "0000000000000002", "0000000000000003"]


def test_http_errors_are_reported_and_counted(tmp_path):
    with OTLPReceiver(tmp_path, grpc_port=None, http_port=0) as rx:
        base = f"http://127.0.0.1:{rx.http_port}"
        assert _post(base + "/v1/traces", b"\xff\x00garbage", "application/x-protobuf")[0] == 400
        status, body, _ctype = _post(base + "/v1/traces", b"{not json", "application/json")
        assert status == 400 and "invalid JSON" in json.loads(body)["message"]
        status, body, _ = _post(base + "/v1/traces", b'{"resourceSpans": 5}', "application/json")
        assert status == 400
        assert _post(base + "/v1/traces", b"x", "text/plain")[0] == 415
        assert _post(base + "/v1/nothing", b"", "application/x-protobuf")[0] == 404
        assert rx.stats.traces.rejected == 4 and rx.stats.traces.requests == 0
        # still serving after bad input
        _, msg = _trace_request(1)
        assert _post(base + "/v1/traces", msg.SerializeToString(), "application/x-protobuf")[0] == 200
    assert len(_lines(tmp_path / "traces.jsonl")) == 1


def test_grpc_traces_and_logs_from_the_sdk(tmp_path):
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    with OTLPReceiver(tmp_path, grpc_port=0, http_port=None) as rx:
        provider = TracerProvider(resource=Resource.create({"service.name": "checkout"}))
        provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"127.0.0.1:{rx.grpc_port}",
                                                                         insecure=True)))
        tracer = provider.get_tracer("t")
        with tracer.start_as_current_span("parent") as parent, tracer.start_as_current_span("child") as child:
            pass
        provider.shutdown()
        # logs over gRPC with the generated stub
        import grpc
        from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
        from opentelemetry.proto.logs.v1 import logs_pb2

        req = logs_service_pb2.ExportLogsServiceRequest(resource_logs=[logs_pb2.ResourceLogs(scope_logs=[
            logs_pb2.ScopeLogs(log_records=[logs_pb2.LogRecord(trace_id=bytes.fromhex(TRACE_ID),
                                                               span_id=bytes.fromhex(SPAN_ID))])])])
        with grpc.insecure_channel(f"127.0.0.1:{rx.grpc_port}") as ch:
            logs_service_pb2_grpc.LogsServiceStub(ch).Export(req, timeout=5)
        assert rx.wait_for(spans=2, logs=1, timeout=10)
    spans = [s for doc in _lines(tmp_path / "traces.jsonl") for rs in doc["resourceSpans"]
             for ss in rs["scopeSpans"] for s in ss["spans"]]
    by_name = {s["name"]: s for s in spans}
    assert by_name["child"]["parentSpanId"] == f"{parent.get_span_context().span_id:016x}"
    assert by_name["child"]["spanId"] == f"{child.get_span_context().span_id:016x}"
    assert by_name["child"]["traceId"] == f"{child.get_span_context().trace_id:032x}"
    rec = _lines(tmp_path / "logs.jsonl")[0]["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]
    assert rec["traceId"] == TRACE_ID and rec["spanId"] == SPAN_ID


def test_ports_in_use_and_disabled(tmp_path):
    from meshctl.errors import MeshctlError
    from meshctl.receiver import parse_port

    with OTLPReceiver(tmp_path, grpc_port=None, http_port=0) as rx, pytest.raises(MeshctlError, match="cannot listen"):
        OTLPReceiver(tmp_path, grpc_port=None, http_port=rx.http_port).start()
    with pytest.raises(MeshctlError):
        OTLPReceiver(tmp_path, grpc_port=None, http_port=None)
    assert parse_port("off", "--grpc-port") is None and parse_port("0", "x") == 0
    with pytest.raises(MeshctlError, match="out of range"):
        parse_port("70000", "--http-port")


@pytest.mark.envoy
@pytest.mark.slow
def test_real_envoy_exports_over_http_and_grpc(tmp_path, envoy_bin):
    """Envoy's OTLP/HTTP tracer (chunked bodies) and its OTLP/gRPC access logger, through the local mesh."""
    from meshctl.mesh import Mesh

    topo = {"gateway": {"service": "api"},
            "telemetry": {"access_logs": ["json"], "otlp_protocol": "http", "otel_access_log": True,
                          "app_spans": False, "flush_interval_ms": 500},
            "services": {"api": {}}}
    with Mesh(topo, tmp_path / "m") as mesh:
        result = mesh.drive(requests=20, concurrency=2)
        assert mesh.flush_telemetry(timeout=15)
        rx = mesh.receiver
        chunked = rx.stats.http_chunked
        assert rx.wait_for(spans=60, logs=40, timeout=10)  # 3 spans + 2 log records per request
    assert result.by_code == {200: 20}
    assert chunked >= 1
    spans = [(rs, s) for doc in _lines(rx.traces_path) for rs in doc["resourceSpans"]
             for ss in rs["scopeSpans"] for s in ss["spans"]]
    logs = [r for doc in _lines(rx.logs_path) for rl in doc["resourceLogs"] for sl in rl["scopeLogs"]
            for r in sl["logRecords"]]
    assert len(spans) == 60 and len(logs) == 40
    trace_ids = {s["traceId"] for _, s in spans}
    assert len(trace_ids) == 20
    # access-log records carry the trace context of the request they describe
    assert {r["traceId"] for r in logs} == trace_ids


def test_receive_command_runs_until_sigterm(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "meshctl", "receive", "--out", str(tmp_path), "--grpc-port", "off", "--http-port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        line = proc.stderr.readline()
        assert "listening on HTTP 127.0.0.1:" in line, line
        port = int(line.split("HTTP 127.0.0.1:")[1].split(";")[0])
        _, msg = _trace_request(2)
        assert _post(f"http://127.0.0.1:{port}/v1/traces", msg.SerializeToString(), "application/x-protobuf")[0] == 200
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "traces: 1 requests, 2 spans" in err
    assert len(_lines(tmp_path / "traces.jsonl")) == 1


def test_receive_command_duration(run_cli, tmp_path):
    t0 = time.monotonic()
    code, _out, err = run_cli("receive", "--out", str(tmp_path), "--grpc-port", "0", "--http-port", "0",
                             "--duration", "0.3")
    assert code == 0 and "nothing received" in err and time.monotonic() - t0 < 5
    code, _out, err = run_cli("receive", "--out", str(tmp_path), "--grpc-port", "nope")
    assert code == 3 and "--grpc-port" in err
