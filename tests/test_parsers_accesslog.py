"""Access-log parsers on real logs written by other projects (read in place from ../shared/oracles),
plus the format compiler, envelopes and detection."""

from __future__ import annotations

import gzip
import io
import json
from datetime import datetime, timezone

import pyarrow as pa
import pytest

from meshctl.errors import InputError
from meshctl.parsers.accesslog import AccessLogParser
from meshctl.parsers.containers import pod_log_path
from meshctl.parsers.envoy_format import ENVOY_DEFAULT_FORMAT, ISTIO_DEFAULT_FORMAT, compile_format
from meshctl.parsers.fields import AUX_REPORTER_POD, AUX_SNI


def parse_bytes(data: bytes, fmt: str = "auto", format_string: str | None = None, **kw):
    parser = AccessLogParser(fmt, format_string, **kw)
    results = list(parser.parse_stream(io.BytesIO(data), file="mem.log"))
    tables = [r.table for r in results if r.rows]
    table = pa.concat_tables(tables, promote_options="default") if tables else pa.table({})
    rejects = [j for r in results for j in r.rejects]
    return table, rejects, results


def parse_file(path, fmt: str = "auto"):
    with open(path, "rb") as f:
        results = list(AccessLogParser(fmt).parse_stream(f, file=str(path)))
    tables = [r.table for r in results if r.rows]
    table = pa.concat_tables(tables, promote_options="default") if tables else pa.table({})
    rejects = [j for r in results for j in r.rejects]
    return table, rejects, results


def rows(table: pa.Table) -> list[dict]:
    return sorted(table.to_pylist(), key=lambda r: r["record_line"])


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)


@pytest.fixture(scope="module")
def data(oracles_dir):
    return oracles_dir / "data"


# ---- Istio TEXT (elastic-integrations, istio.io) ---------------------------------------------
def test_istio_text_failures(data):
    table, rejects, results = parse_file(data / "elastic-integrations/istio/test-access-failed.log")
    assert not rejects and results[0].format == "istio-text"
    r = rows(table)
    assert len(r) == 8  # no final newline: the last line still counts
    first = r[0]
    assert first["timestamp"] == ts("2022-06-22T10:17:14.118Z")
    assert (first["method"], first["path"], first["protocol"]) == ("GET", "/status/418", "HTTP/1.1")
    assert (first["response_code"], first["response_flags"], first["response_code_details"]) == \
        (503, "UH", "no_healthy_upstream")
    assert first["upstream_host"] is None  # "-" is a null, never the string "-"
    assert first["upstream_cluster"] == "outbound|8000||httpbin.default.svc.cluster.local"
    assert first["request_id"] == "5735b2d0-4949-9384-b082-9d4c368eb9dc"
    assert (first["bytes_received"], first["bytes_sent"], first["duration_ms"]) == (0, 19, 1.0)
    assert first["upstream_service_time_ms"] is None
    assert first["downstream_remote_address"] == "172.17.0.6:44690"
    assert first[AUX_SNI] is None and first["route_name"] == "default"
    dpe = r[4]  # "- - HTTP/1.1" 400 DPE http1.codec_error
    assert (dpe["method"], dpe["path"], dpe["protocol"]) == (None, None, "HTTP/1.1")
    assert (dpe["response_code"], dpe["response_flags"], dpe["response_code_details"]) == (400, "DPE", "http1.codec_error")
    assert dpe["user_agent"] is None and dpe["request_id"] is None and dpe["route_name"] is None
    uf = r[6]
    assert uf["response_flags"] == "UF"
    assert uf["response_code_details"] == \
        "upstream_reset_before_response_started{connection_failure,delayed_connect_error:_111}"
    assert uf["upstream_cluster"] == "inbound|9080||"
    assert uf[AUX_SNI] == "outbound_.9080_._.reviews.default.svc.cluster.local"
    dc = r[7]
    assert (dc["response_code"], dc["response_flags"], dc["duration_ms"]) == (0, "DC", 746.0)
    assert dc["downstream_remote_address"] == "10.128.0.60:0"


def test_istio_text_bookinfo_and_ipv6(data):
    table, rejects, _ = parse_file(data / "elastic-integrations/istio/test-access-logs.log")
    assert not rejects
    r = rows(table)
    assert len(r) == 8
    assert r[0]["user_agent"].startswith("Mozilla/5.0 (Macintosh;")  # spaces inside a quoted field
    assert r[0]["upstream_service_time_ms"] == 1.0 and r[0]["duration_ms"] == 2.0
    # One request seen on productpage inbound and reviews outbound: same x-request-id.
    same = [x for x in r if x["request_id"] == "00bcf1d7-12c4-93b9-b36a-bc0faac8e428"]
    assert {x["upstream_cluster"] for x in same} == {"outbound|9080||reviews.default.svc.cluster.local",
                                                      "inbound|9080||"}
    assert r[7]["upstream_host"] == "[2a02:cf40::7]:3000"
    assert r[7]["downstream_remote_address"] == "[2a02:cf40::4e36]:5000"


def test_istio_docs_client_and_server_lines(data):
    table, rejects, _ = parse_file(data / "istio-docs/access-log-task.excerpt.log")
    assert not rejects
    client, server = rows(table)
    assert client["request_id"] == server["request_id"] == "84961386-6d84-929d-98bd-c5aee93b5c88"
    assert client["upstream_cluster"] == "outbound|8000||httpbin.foo.svc.cluster.local"
    assert server["upstream_cluster"] == "inbound|8000||"
    assert (client["response_code"], client["duration_ms"], client["upstream_service_time_ms"]) == (418, 4.0, 4.0)
    assert (server["duration_ms"], server["upstream_service_time_ms"]) == (3.0, 1.0)
    assert client["user_agent"] == "curl/7.73.0-DEV" and client["authority"] == "httpbin:8000"


def test_cri_wrapped_istio_text(data):
    table, rejects, results = parse_file(data / "elastic-integrations/istio/test-access_container_logs.log")
    assert not rejects and results[0].format == "istio-text"
    r = rows(table)
    assert len(r) == 15 and [x["record_line"] for x in r] == list(range(1, 16))
    # The access log's own START_TIME, not the CRI envelope's time.
    assert r[0]["timestamp"] == ts("2022-07-22T12:24:09.217Z")
    assert (r[0]["response_code"], r[0]["response_flags"]) == (0, "DC")
    assert r[1]["upstream_cluster"] == "outbound|9080||ratings.default.svc.cluster.local"
    # reviews inbound / ratings outbound pairs share request ids.
    pairs = {}
    for x in r:
        pairs.setdefault(x["request_id"], set()).add(x["upstream_cluster"])
    assert pairs["05106d2a-339c-996d-9fae-37276f2a6ac7"] == {
        "inbound|9080||", "outbound|9080||ratings.default.svc.cluster.local"}


def test_other_elastic_istio_text_files(data):
    for name, n in (("test-access_logs.log", 3), ("test-access-other-logs.log", 1)):
        table, rejects, _ = parse_file(data / "elastic-integrations/istio" / name)
        assert not rejects and table.num_rows == n
    table, _, _ = parse_file(data / "elastic-integrations/istio/test-access-other-logs.log")
    assert table.column("downstream_remote_address").to_pylist() == ["89.160.20.156:39696"]


# ---- Istio JSON ------------------------------------------------------------------------------
def test_istio_json_typed_values_and_nulls(data):
    table, rejects, results = parse_file(data / "elastic-integrations/istio/test-access-json-logs.log")
    assert not rejects and results[0].format == "istio-json"
    r = rows(table)
    assert len(r) == 3
    a = r[0]
    assert a["timestamp"] == ts("2022-09-08T12:51:05.656Z")
    assert (a["response_code"], a["bytes_sent"], a["duration_ms"]) == (200, 358, 15.0)
    assert a["upstream_service_time_ms"] == 14.0  # written as the string "14"
    assert a["response_flags"] is None  # "-"
    assert a["upstream_cluster"] == "inbound|9080||" and a["route_name"] == "default"
    assert a[AUX_SNI] == "outbound_.9080_._.reviews.default.svc.cluster.local"
    assert r[1]["downstream_remote_address"] == "[2a02:cf40::4e36]:5000"
    dpe = r[2]
    assert (dpe["method"], dpe["path"], dpe["authority"], dpe["request_id"]) == (None, None, None, None)
    assert dpe["upstream_cluster"] is None  # JSON null
    assert (dpe["response_code"], dpe["response_flags"], dpe["response_code_details"]) == (400, "DPE", "http1.codec_error")


def test_istio_json_all_string_encoding():
    # Older proxies / custom formats write every value as a string.
    line = {"start_time": "2024-03-01T10:00:00.123Z", "method": "POST", "path": "/cart", "protocol": "HTTP/2",
            "response_code": "503", "response_flags": "UO", "bytes_received": "12", "bytes_sent": "0",
            "duration": "7", "upstream_service_time": "-", "upstream_cluster": "outbound|8080|v2|cart.shop.svc.cluster.local",
            "request_id": "abc", "grpc_status": "Unavailable"}
    table, rejects, _ = parse_bytes((json.dumps(line) + "\n").encode())
    assert not rejects
    (r,) = table.to_pylist()
    assert (r["response_code"], r["response_flags"], r["bytes_received"], r["duration_ms"]) == (503, "UO", 12, 7.0)
    assert r["upstream_service_time_ms"] is None and r["grpc_status"] == 14


def test_json_types_change_between_blocks():
    # Typed in the first block, strings later: the reader adapts its schema instead of rejecting.
    typed = json.dumps({"start_time": "2024-03-01T10:00:00Z", "response_code": 200, "duration": 5})
    strings = json.dumps({"start_time": "2024-03-01T10:00:01Z", "response_code": "-", "duration": "6"})
    data = ((typed + "\n") * 3000 + (strings + "\n") * 3000).encode()
    table, rejects, _ = parse_bytes(data, block_bytes=64 << 10)
    assert not rejects and table.num_rows == 6000
    codes = table.column("response_code").to_pylist()
    assert codes.count(200) == 3000 and codes.count(None) == 3000


# ---- Envoy default format --------------------------------------------------------------------
def test_envoy_default_with_ambassador_and_docker_json(data):
    table, rejects, results = parse_file(data / "elastic-integrations/envoyproxy/test-log.log")
    assert not rejects and results[0].format == "envoy-text"
    r = rows(table)
    assert len(r) == 7
    tcp = r[0]  # "- - -": a TCP proxy line
    assert (tcp["method"], tcp["path"], tcp["protocol"], tcp["response_code"]) == (None, None, None, 0)
    assert (tcp["bytes_received"], tcp["bytes_sent"], tcp["duration_ms"], tcp["upstream_host"]) == \
        (87, 254, 4.0, "172.27.0.2:80")
    assert r[2]["response_flags"] == "NR" and r[2]["upstream_host"] is None
    assert r[4]["timestamp"] == ts("2024-04-25T17:51:55.294Z")  # "ACCESS " prefix (Emissary)
    assert r[4]["path"] == "/backend/"
    docker = r[5]  # {"message": "ACCESS [...] ...", "kubernetes": {...}}
    assert docker["path"] == "/httpbin/status/501" and docker["response_code"] == 501
    assert docker["authority"] == "httpbin.org" and docker[AUX_REPORTER_POD] == "ambassador-76c58d9df4-jwhsg"
    assert docker["reporter_namespace"] == "default"
    assert r[6]["response_flags"] == "UF,URX" and r[6]["response_code"] == 0


def test_contour_default_format(data):
    table, rejects, _ = parse_file(data / "envoy-docs/contour-default-format.excerpt.log")
    assert not rejects
    (r,) = table.to_pylist()
    assert (r["method"], r["path"], r["response_code"], r["bytes_sent"]) == ("GET", "/foo", 200, 463)
    assert (r["duration_ms"], r["upstream_service_time_ms"], r["user_agent"]) == (6.0, 3.0, "HTTPie/1.0.3")
    assert (r["authority"], r["upstream_host"]) == ("localhost:8080", "127.0.0.1:8081")


# ---- Linkerd -------------------------------------------------------------------------------
def test_linkerd_apache(data):
    table, rejects, results = parse_file(data / "linkerd-docs/access-log-apache.excerpt.log")
    assert not rejects and results[0].format == "linkerd-apache"
    r = rows(table)
    assert len(r) == 5 and {x["direction"] for x in r} == {"inbound"}
    assert r[0]["timestamp"] == datetime(2022, 8, 23, 20, 28, 20, 71809, tzinfo=timezone.utc)  # ns → µs
    assert (r[0]["method"], r[0]["path"], r[0]["authority"], r[0]["protocol"]) == ("GET", "/", "webapp:7000", "HTTP/2.0")
    assert r[1]["response_code"] == 303 and r[1]["path"] == "/authors"
    assert r[0]["source_principal"] == "traffic.booksapp.serviceaccount.identity.linkerd.cluster.local"
    assert r[4]["source_principal"] is None and r[4]["path"] == "/ping" and r[4]["authority"] is None


def test_linkerd_json(data):
    table, rejects, results = parse_file(data / "linkerd-docs/access-log-json.excerpt.log")
    assert not rejects and results[0].format == "linkerd-json"
    r = rows(table)
    assert len(r) == 5
    assert r[0]["duration_ms"] == pytest.approx(14.441135)  # total_ns
    assert (r[0]["bytes_received"], r[0]["bytes_sent"]) == (None, 19627)  # "" is a null
    assert r[1]["bytes_received"] == 33 and r[1]["method"] == "POST"
    assert r[4]["authority"] == "10.42.0.69:7000" and r[4]["user_agent"] == "kube-probe/1.24"
    assert r[0]["trace_id"] is None  # "" → null


# ---- OTLP log records ------------------------------------------------------------------------
def test_otlp_logs_example_document(data):
    table, rejects, results = parse_file(data / "otel-proto/logs.json")  # pretty-printed, one document
    assert not rejects and results[-1].format == "otlp-logs"
    (r,) = table.to_pylist()
    assert r["record_kind"] == "otlp_log"
    assert r["timestamp"] == datetime.fromtimestamp(1544712660.3, tz=timezone.utc)
    assert r["trace_id"] == "5b8efff798038103d269b633813fc60c" and r["span_id"] == "eee19b7ec3c1b174"


def _otlp_line(body: str | dict, attrs: dict, *, node: str | None = None, trace: str = "0af7651916cd43dd8448eb211c80319c",
               span: str = "b7ad6b7169203331", t_ns: int = 1_700_000_000_123_000_000) -> str:
    def av(v):
        if isinstance(v, bool):
            return {"boolValue": v}
        if isinstance(v, int):
            return {"intValue": str(v)}
        if isinstance(v, dict):
            return {"kvlistValue": {"values": [{"key": k, "value": av(x)} for k, x in v.items()]}}
        return {"stringValue": v}

    res = [{"key": "node_name", "value": {"stringValue": node}}] if node else []
    rec = {"timeUnixNano": str(t_ns), "traceId": trace, "spanId": span, "body": av(body),
           "attributes": [{"key": k, "value": av(v)} for k, v in attrs.items()]}
    return json.dumps({"resourceLogs": [{"resource": {"attributes": res}, "scopeLogs": [{"logRecords": [rec]}]}]})


def test_otlp_envoy_open_telemetry_access_logger(data):
    body = (data / "istio-docs/access-log-task.excerpt.log").read_text().splitlines()[1]
    lines = [
        _otlp_line(body, {}, node="sidecar~10.44.1.27~httpbin-74fb669cc6-qvlb4.foo~foo.svc.cluster.local"),
        _otlp_line("", {"response_code": 503, "response_flags": "UO", "method": "GET", "start_time": "2024-01-01T00:00:00Z",
                        "upstream_cluster": "outbound|80||web.shop.svc.cluster.local", "http.request.method": "GET"},
                   span="00f067aa0ba902b7", trace="AAAAAAAAAAAAAAAAAAAAAQ=="),  # base64 ids are converted
    ]
    table, rejects, results = parse_bytes(("\n".join(lines) + "\n").encode())
    assert not rejects and results[0].format == "otlp-logs"
    a, b = rows(table)
    assert a["response_code"] == 418 and a["upstream_cluster"] == "inbound|8000||"
    assert a["request_id"] == "84961386-6d84-929d-98bd-c5aee93b5c88"
    assert a["timestamp"] == ts("2020-11-25T21:26:18.409Z")  # the body's START_TIME: when the request started
    assert a["trace_id"] == "0af7651916cd43dd8448eb211c80319c" and a["span_id"] == "b7ad6b7169203331"
    assert (a[AUX_REPORTER_POD], a["reporter_namespace"]) == ("httpbin-74fb669cc6-qvlb4", "foo")
    assert (b["response_code"], b["response_flags"], b["method"]) == (503, "UO", "GET")
    assert b["timestamp"] == ts("2024-01-01T00:00:00Z")
    # Without a start time in the record's content, the record's own time is the row's.
    table, _, _ = parse_bytes((_otlp_line("", {"response_code": 200}) + "\n").encode())
    assert table.column("timestamp")[0].as_py() == datetime.fromtimestamp(1_700_000_000.123, tz=timezone.utc)
    assert b["trace_id"] == "00000000000000000000000000000001"


# ---- format strings --------------------------------------------------------------------------
def test_compile_istio_default_format_has_csv_plan():
    fmt = compile_format(ISTIO_DEFAULT_FORMAT)
    assert fmt.csv is not None and len(fmt.csv) == 22
    assert [c.mode for c in fmt.csv[:3]] == ["affix", "split", "direct"]
    assert compile_format(ENVOY_DEFAULT_FORMAT).csv is not None


def test_custom_format_string_with_truncation_and_literals():
    fmt = ('%START_TIME(%s)% "%REQ(:METHOD)% %REQ(:PATH):20%" code=%RESPONSE_CODE% flags=%RESPONSE_FLAGS_LONG% '
           'dur=%DURATION%ms up=%UPSTREAM_HOST% rid=%REQ(X-REQUEST-ID)% grpc=%GRPC_STATUS% '
           'tp=%REQ(TRACEPARENT)% peer=%CEL(filter_state.upstream_peer.workload)%\n')
    line = ('1709287200 "GET /api/v1/items?page=2" code=429 flags=RateLimited dur=3ms up=10.0.0.7:8080 '
            'rid=r-1 grpc=ResourceExhausted tp=00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 peer=cart-v2\n')
    odd = line.replace('"GET /api', '"GET /a"pi')  # a quote inside a value: the per-line path reads it
    table, rejects, results = parse_bytes((line + odd).encode(), format_string=fmt)
    assert not rejects and results[0].format == "envoy-format"
    a, b = rows(table)
    assert a["timestamp"] == datetime(2024, 3, 1, 10, 0, tzinfo=timezone.utc)
    assert (a["method"], a["path"], a["response_code"]) == ("GET", "/api/v1/items?page=2", 429)
    assert (a["response_flags"], a["duration_ms"], a["upstream_host"]) == ("RL", 3.0, "10.0.0.7:8080")
    assert a["grpc_status"] == 8 and a["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert a["destination_workload"] == "cart-v2"
    assert b["path"] == '/a"pi/v1/items?page=2' and b["response_code"] == 429


def test_custom_format_without_csv_plan_uses_regex():
    fmt = "%START_TIME(%Y-%m-%d %H:%M:%S)% %RESPONSE_CODE% %REQ(:AUTHORITY)%"
    assert compile_format(fmt).csv is None  # a space inside the time value
    table, rejects, _ = parse_bytes(b"2024-03-01 10:00:05 200 web:80\n2024-03-01 10:00:06 500 web:80\n",
                                    format_string=fmt)
    assert not rejects
    assert table.column("response_code").to_pylist() == [200, 500]
    assert table.column("timestamp")[1].as_py() == datetime(2024, 3, 1, 10, 0, 6, tzinfo=timezone.utc)


def test_json_format_dict():
    fmt = json.dumps({"ts": "%START_TIME%", "code": "%RESPONSE_CODE%", "svc": "%UPSTREAM_CLUSTER%",
                      "t": "%DURATION%", "unused": "%BYTES_SENT%x"})
    line = json.dumps({"ts": "2024-03-01T10:00:00Z", "code": 201, "svc": "outbound|80||a.b.svc.cluster.local", "t": 9})
    table, rejects, results = parse_bytes((line + "\n").encode(), format_string=fmt)
    assert not rejects and results[0].format == "envoy-json"
    (r,) = table.to_pylist()
    assert (r["response_code"], r["duration_ms"], r["upstream_cluster"]) == (201, 9.0, "outbound|80||a.b.svc.cluster.local")


def test_bad_format_strings_are_input_errors():
    with pytest.raises(InputError, match="no Envoy command operator"):
        AccessLogParser("envoy-format", "just text")
    with pytest.raises(InputError, match="no operator meshctl can use"):
        AccessLogParser("envoy-format", "%UPSTREAM_LOCAL_ADDRESS% %BYTES_X%")
    with pytest.raises(InputError, match="needs --log-format-string"):
        AccessLogParser("envoy-format")
    with pytest.raises(InputError, match="unknown access-log format"):
        AccessLogParser("nginx")


def test_forced_format_rejects_other_lines(data):
    _, rejects, _ = parse_file(data / "linkerd-docs/access-log-json.excerpt.log", fmt="istio-text")
    assert len(rejects) == 5
    assert "looks like linkerd-json" in rejects[0].reason


# ---- envelopes, encodings, paths -------------------------------------------------------------
def test_docker_json_file_and_k8s_timestamps_and_gzip(data):
    text = (data / "istio-docs/access-log-task.excerpt.log").read_text().splitlines()
    docker = "".join(json.dumps({"log": ln + "\n", "stream": "stdout", "time": "2020-11-25T21:26:18.5Z"}) + "\n"
                     for ln in text)
    kts = "".join(f"2020-11-25T21:26:18.50{i}Z {ln}\n" for i, ln in enumerate(text))
    for payload in (docker.encode(), kts.encode(), gzip.compress(docker.encode())):
        stream = gzip.GzipFile(fileobj=io.BytesIO(payload)) if payload[:2] == b"\x1f\x8b" else io.BytesIO(payload)
        results = list(AccessLogParser().parse_stream(stream, file="x"))
        table = pa.concat_tables([r.table for r in results if r.rows])
        assert table.num_rows == 2 and results[0].format == "istio-text"
        assert table.column("response_code").to_pylist() == [418, 418]


def test_cri_partial_lines_are_joined(data):
    line = (data / "istio-docs/access-log-task.excerpt.log").read_text().splitlines()[0]
    cut = len(line) // 2
    cri = (f"2020-11-25T21:26:18.1Z stdout P {line[:cut]}\n"
           f"2020-11-25T21:26:18.1Z stdout F {line[cut:]}\n"
           f"2020-11-25T21:26:18.2Z stdout F {line}\n").encode()
    table, rejects, results = parse_bytes(cri)
    assert not rejects and table.num_rows == 2
    assert sum(r.lines for r in results) == 3 and sum(r.ignored for r in results) == 1
    assert table.column("record_line").to_pylist() == [2, 3]


def test_utf8_bom_and_utf16_files(data):
    text = (data / "istio-docs/access-log-task.excerpt.log").read_text()
    for payload in (b"\xef\xbb\xbf" + text.encode(), text.encode("utf-16")):
        table, rejects, _ = parse_bytes(payload)
        assert not rejects and table.num_rows == 2


def test_node_log_path_convention():
    p = pod_log_path("/var/log/pods/shop_reviews-v2-5f7d9b8c4-x2x9p_0b7c1a2e-1111-2222-3333-444455556666/istio-proxy/0.log")
    assert (p.namespace, p.pod, p.container) == ("shop", "reviews-v2-5f7d9b8c4-x2x9p", "istio-proxy")
    assert pod_log_path("/var/log/pods/shop_web-0_0b7c1a2e-1111/linkerd-proxy/3.log.20240101-000000.gz").pod == "web-0"
    c = pod_log_path("/var/log/containers/web-7d4b9c-abcde_shop_istio-proxy-" + "a" * 64 + ".log")
    assert (c.pod, c.namespace, c.container) == ("web-7d4b9c-abcde", "shop", "istio-proxy")
    assert pod_log_path("/tmp/envoy.log") is None


def test_proxy_diagnostic_lines_are_ignored_not_rejected(data):
    access = (data / "istio-docs/access-log-task.excerpt.log").read_text().splitlines()[0]
    mixed = "\n".join([
        "2024-01-02T03:04:05.678901Z\tinfo\tsds\tSDS: PUSH request for node:sidecar~10.0.0.1~a.b",
        access,
        "[2024-01-02 03:04:05.678][15][warning][config] [source/common/config/grpc_stream.h:191] stream closed",
        "[     0.002113s]  INFO ThreadId(01) linkerd2_proxy: release 2.200.0",
        "",
        access,
    ]) + "\n"
    table, rejects, results = parse_bytes(mixed.encode())
    assert not rejects and table.num_rows == 2
    assert sum(r.ignored for r in results) == 4 and sum(r.lines for r in results) == 6


def test_json_key_appearing_only_later_is_read():
    # Envoy's omit_empty_values drops keys: a key absent from the first lines still lands when it shows up.
    plain = json.dumps({"start_time": "2024-03-01T10:00:00Z", "response_code": 200, "x_unused": None})
    traced = json.dumps({"start_time": "2024-03-01T10:00:01Z", "response_code": 200,
                         "trace_id": "4BF92F3577B34DA6A3CE929D0E0E4736", "pod_name": "web-7d4b9c8f5-x2x9p"})
    data = ((plain + "\n") * 2000 + (traced + "\n") * 10 + (plain + "\n") * 500).encode()
    table, rejects, _ = parse_bytes(data, block_bytes=16 << 10)
    assert not rejects and table.num_rows == 2510
    ids = [t for t in table.column("trace_id").to_pylist() if t]
    assert ids == ["4bf92f3577b34da6a3ce929d0e0e4736"] * 10
    assert table.column(AUX_REPORTER_POD).drop_null().to_pylist() == ["web-7d4b9c8f5-x2x9p"] * 10


def test_otlp_file_exporter_lines_with_several_records_and_bad_lines(data):
    body = (data / "istio-docs/access-log-task.excerpt.log").read_text().splitlines()[0]
    one = json.loads(_otlp_line(body, {}))
    two = json.loads(_otlp_line(body, {"response_code": 200}))
    rl = one["resourceLogs"][0]
    rl["scopeLogs"][0]["logRecords"].append(two["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0])
    lines = [json.dumps(one), json.dumps({"resourceLogs": []}), json.dumps(one)[:80],
             _otlp_line("not an access log line", {}), json.dumps(one)]
    table, rejects, results = parse_bytes(("\n".join(lines) + "\n").encode())
    # lines 1 and 5 hold two records each; line 2 is an empty export; line 3 is cut short;
    # line 4's record has a body nothing can read but a time and ids: a row with what it has.
    assert table.num_rows == 4 + 1
    assert [r.line for r in rejects] == [3]
    assert sum(r.ignored for r in results) == 1
    assert sum(r.lines for r in results) == table.num_rows + len(rejects) + 1
    assert sorted(table.column("record_line").to_pylist()) == [1, 1, 4, 5, 5]
    assert table.column("response_code").to_pylist().count(418) == 4
