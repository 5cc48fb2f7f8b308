"""Trace parsers and client/server pairing on real trace exports (read in place from ../shared/oracles).

Every count is checked against an independent count computed here from the raw JSON with plain
dicts (parent/child and shared-id relations), not with meshctl's vectorized pairing.
"""

from __future__ import annotations

import base64
import collections
import csv
import json
from pathlib import Path

import pandas as pd
import pytest

from analyzers import table as rt
from meshctl.parsers.spans import normalize_id
from meshctl.parsers.trace_detect import detect_trace_format
from meshctl.parsers.traces import parse_trace_bytes, read_trace_file, trace_file_rows, trace_rows


@pytest.fixture(scope="module")
def data(oracles_dir: Path) -> Path:
    return oracles_dir / "data"


def rows_of(path: Path, fmt: str = "auto") -> pd.DataFrame:
    res = read_trace_file(path, fmt=fmt)
    assert res.rejects == [], [str(r) for r in res.rejects]
    table = trace_rows(res)
    assert table.schema.equals(rt.arrow_schema(), check_metadata=False)
    return rt.to_frame(table)


def edges(df: pd.DataFrame) -> collections.Counter:
    return collections.Counter(zip(df["source_app"].fillna("-"), df["destination_service"].fillna("-"), strict=False))


# ---------------------------------------------------------------------------------------------
# Independent counts (plain Python over the raw JSON)
# ---------------------------------------------------------------------------------------------
def zipkin_calls(spans: list[dict]) -> dict:
    """Calls in a Zipkin v2 span list, by the v2 model's rules, with dicts."""

    def svc(s):
        name = (s.get("localEndpoint") or {}).get("serviceName")
        return None if name in (None, "", "unknown") else name

    by_id: dict[tuple, list[dict]] = collections.defaultdict(list)
    for s in spans:
        by_id[(s["traceId"], s["id"])].append(s)

    def service_of(s):  # a span without a service runs in its parent's process
        if svc(s) is None and s.get("parentId"):
            for p in by_id.get((s["traceId"], s["parentId"]), []):
                if p.get("kind") == "SERVER" or len(by_id[(s["traceId"], s["parentId"])]) == 1:
                    return svc(p)
        return svc(s)

    clients = {(s["traceId"], s["id"]): s for s in spans if s.get("kind") in ("CLIENT", "PRODUCER")}
    pairs: collections.Counter = collections.Counter()
    used, entries = set(), collections.Counter()
    for s in spans:
        if s.get("kind") not in ("SERVER", "CONSUMER"):
            continue
        key = (s["traceId"], s["id"])
        is_shared = s.get("kind") == "SERVER" and key in clients
        if not is_shared:
            key = (s["traceId"], s.get("parentId"))
        if key in clients:
            pairs[(service_of(clients[key]), service_of(s))] += 1
            used.add(key)
            continue
        parents = by_id.get((s["traceId"], s.get("parentId")), [])
        parent = next((p for p in parents if p.get("kind") == "SERVER"), parents[0] if parents else None)
        if s.get("parentId") is None:
            entries["root"] += 1
        elif parent is None:
            entries["orphan"] += 1
        elif s.get("shared") or parent.get("kind") not in ("SERVER", "CONSUMER"):
            pairs[(service_of(parent), service_of(s))] += 1  # the caller left no client span
        elif s["timestamp"] >= parent["timestamp"] + parent["duration"]:
            entries["after_parent"] += 1  # a new request (browser redirect), caller unknown
        else:
            entries["nested"] += 1  # the same request handled twice: no row
    unpaired = [c for k, c in clients.items() if k not in used]
    return {"pairs": pairs, "unpaired_clients": unpaired, "entries": entries,
            "services": {service_of(s) for s in spans} - {None},
            "remote": collections.Counter((c.get("remoteEndpoint") or {}).get("serviceName") for c in unpaired)}


def jaeger_cross_service(doc: dict) -> tuple[collections.Counter, int, set]:
    """Jaeger's dependency rule: a span whose parent is in another service is a call parent → child."""
    calls: collections.Counter = collections.Counter()
    roots, services = 0, set()
    traces = doc["data"] if isinstance(doc.get("data"), list) else [doc.get("data", doc)]
    for t in traces:
        procs = t.get("processes", {})
        by_id = {}
        for s in t["spans"]:
            name = (s.get("process") or procs[s["processID"]])["serviceName"]
            by_id[s["spanID"]] = name
            services.add(name)
        for s in t["spans"]:
            refs = [r for r in s["references"] if r["refType"] == "CHILD_OF"]
            if not refs:
                roots += any(tag["key"] in ("http.method", "http.url") for tag in s["tags"])
            elif by_id.get(refs[0]["spanID"]) not in (None, by_id[s["spanID"]]):
                calls[(by_id[refs[0]["spanID"]], by_id[s["spanID"]])] += 1
    return calls, roots, services


# ---------------------------------------------------------------------------------------------
# Zipkin
# ---------------------------------------------------------------------------------------------
ZIPKIN_FILES = ["smartthings-mobile-web-install.json", "smartthings-oauth-authorization.json", "yelp.json",
                "messaging-kafka.json", "messaging.json", "messaging2.json", "ascend.json", "simple-db-p6.json",
                "skew.json", "envoy.json"]


@pytest.mark.parametrize("name", ZIPKIN_FILES)
def test_zipkin_counts_match_independent_count(data: Path, name: str) -> None:
    path = data / "zipkin" / name
    raw = json.loads(path.read_text())
    res = read_trace_file(path)
    assert res.format == "zipkin" and res.records == len(raw) == res.count and res.rejects == []
    df = rt.to_frame(trace_rows(res))
    ind = zipkin_calls(raw)

    called = df[df["source_kind"].isna() & df["destination_kind"].isna() & df["source_app"].notna()]
    assert edges(called) == collections.Counter({(a or "-", b or "-"): n for (a, b), n in ind["pairs"].items()})
    virtual = df[df["destination_kind"].notna() & df["source_kind"].isna()]
    assert len(virtual) == len(ind["unpaired_clients"])
    entries = df[df["source_kind"].notna()]
    assert len(entries) == ind["entries"]["root"] + ind["entries"]["orphan"] + ind["entries"]["after_parent"]
    assert len(df) == sum(ind["pairs"].values()) + len(ind["unpaired_clients"]) + len(entries)
    # Every instrumented service shows up as a caller or a callee.
    seen = set(df["source_app"].dropna()) | set(df.loc[df["destination_kind"].isna(), "destination_service"].dropna())
    assert ind["services"] <= seen | {None}
    assert (df["record_kind"] == "span").all() and (df["record_format"] == "zipkin").all()
    assert df["trace_id"].notna().all() and df["span_id"].notna().all()


def test_smartthings_1041_span_trace(data: Path) -> None:
    raw = json.loads((data / "zipkin" / "smartthings-mobile-web-install.json").read_text())
    assert len(raw) == 1041
    df = rows_of(data / "zipkin" / "smartthings-mobile-web-install.json")
    ind = zipkin_calls(raw)
    # 628 CLIENT spans: 295 paired with their server half, 338 went to uninstrumented peers;
    # 30 server spans are new requests made after their parent's response (the user's browser).
    assert sum(ind["pairs"].values()) == 295 and len(ind["unpaired_clients"]) == 338
    assert ind["entries"] == {"root": 1, "after_parent": 30}
    assert len(df) == 295 + 338 + 31
    assert df["source_kind"].value_counts().to_dict() == {"unknown": 30, "user": 1}
    # Cassandra (132 spans with cassandra.* tags) and SQL (120 with sql.query) calls are database peers.
    cassandra = sum(1 for c in ind["unpaired_clients"] if any(k.startswith("cassandra.") for k in c.get("tags", {})))
    sql = sum(1 for c in ind["unpaired_clients"] if "sql.query" in c.get("tags", {}))
    assert (cassandra, sql) == (132, 120)
    assert (df["destination_kind"] == "database").sum() == cassandra + sql
    assert len(ind["services"]) == 16
    assert ind["services"] <= set(df["source_app"].dropna()) | set(df["destination_service"].dropna())
    assert df["trace_id"].nunique() == 1


def test_yelp_remote_only_peers_become_virtual_nodes(data: Path) -> None:
    df = rows_of(data / "zipkin" / "yelp.json")
    virtual = df[df["destination_kind"].notna()]
    assert collections.Counter(zip(virtual["destination_service"], virtual["destination_kind"], strict=False)) == {
        ("memcache", "database"): 5, ("mysql", "database"): 2, ("blt", "external"): 1}
    # memcache / mysql never appear as callers: they are only remote endpoints.
    assert not ({"memcache", "mysql"} & set(df["source_app"].dropna()))
    # The client span logged as service `unknown` ran under routing's server span: routing is the caller.
    row = df[df["destination_service"] == "yelp_main/api_proxy"].iloc[0]
    assert row["source_app"] == "routing" and row["upstream_service_time_ms"] == pytest.approx(88.935)
    assert df[df["source_kind"] == "user"]["destination_service"].tolist() == ["routing"]


def test_messaging_kafka(data: Path) -> None:
    raw = json.loads((data / "zipkin" / "messaging-kafka.json").read_text())
    df = rows_of(data / "zipkin" / "messaging-kafka.json")
    producers = {s["id"] for s in raw if s.get("kind") == "PRODUCER"}
    consumers_of = collections.Counter(s["parentId"] for s in raw if s.get("kind") == "CONSUMER"
                                       and s.get("parentId") in producers)
    pairs = df[df["source_kind"].isna() & df["destination_kind"].isna()]
    assert len(pairs) == sum(consumers_of.values()) == 6  # one row per delivery (fan-out)
    assert set(pairs["protocol"]) == {"kafka"}
    to_broker = df[df["destination_kind"] == "messaging"]
    assert len(to_broker) == len(producers) - len(consumers_of) == 6
    assert set(to_broker["destination_service"]) == {"kafka"}
    from_broker = df[df["source_kind"] == "messaging"]
    assert from_broker[["source_app", "destination_service"]].values.tolist() == [["kafka", "servicea"]]
    assert len(df) == 13
    assert set(df["source_app"].dropna()) | set(df["destination_service"].dropna()) == {"servicea", "serviceb", "kafka"}


def test_ascend_shared_spans_and_local_spans(data: Path) -> None:
    raw = json.loads((data / "zipkin" / "ascend.json").read_text())
    df = rows_of(data / "zipkin" / "ascend.json")
    shared = [s for s in raw if s.get("shared")]
    assert len(shared) == 2
    pairs = df[df["upstream_service_time_ms"].notna()]
    # Each shared id gives one row; its span_id is the shared id; the server half's duration is kept.
    assert sorted(pairs["span_id"]) == sorted(s["id"] for s in shared)
    assert sorted(pairs["upstream_service_time_ms"]) == sorted(s["duration"] / 1000 for s in shared)
    assert edges(pairs) == {("mobile-gateway", "content-service"): 1, ("mobile-gateway", "auth-service"): 1}
    # Kind-less spans (hystrix, extend-token-life) are local work, never calls.
    assert len(df) == 4
    unknown = df[df["destination_kind"] == "unknown"]
    assert unknown[["source_app", "path"]].values.tolist() == [["content-service", "/api/v1/banners/10000001502"]]
    # The trace forms a tree: every parent_span_id of a non-root row is the span_id of another row.
    ids = set(df["span_id"])
    assert all(p in ids for p in df["parent_span_id"].dropna())


def test_skew_keeps_client_timing(data: Path) -> None:
    raw = {(s["id"], s.get("kind")): s for s in json.loads((data / "zipkin" / "skew.json").read_text())}
    df = rows_of(data / "zipkin" / "skew.json")
    call = df[df["source_app"] == "servicea"].iloc[0]
    client, server = raw[("74280ae0c10d8062", "CLIENT")], raw[("74280ae0c10d8062", "SERVER")]
    assert server["timestamp"] < client["timestamp"]  # the server's clock is behind
    assert call["destination_service"] == "serviceb"
    assert call["timestamp"] == pd.Timestamp(client["timestamp"], unit="us", tz="UTC")
    assert call["duration_ms"] == client["duration"] / 1000
    assert call["upstream_service_time_ms"] == server["duration"] / 1000


def test_envoy_span_without_service_name(data: Path) -> None:
    df = rows_of(data / "zipkin" / "envoy.json")
    assert len(df) == 1
    row = df.iloc[0]
    assert row["source_kind"] == "user" and pd.isna(row["source_app"])
    assert row["destination_service"] == "www.google.com"  # the proxy has no name: where it sent the request
    assert row["upstream_cluster"] == "service_google"
    assert row["request_id"] == "d709b78f-583e-988e-b581-25b72c63852d"
    assert pd.isna(row["response_flags"])  # '-' is no flag
    assert (row["method"], row["authority"], row["path"], row["protocol"]) == ("GET", "www.google.com", "/", "HTTP/1.1")
    assert (row["response_code"], row["bytes_received"], row["bytes_sent"]) == (200, 0, 67342)
    assert row["user_agent"].startswith("Mozilla/5.0")
    assert row["duration_ms"] == 127.115


# ---------------------------------------------------------------------------------------------
# Jaeger
# ---------------------------------------------------------------------------------------------
def test_deathstarbench_jaeger_ui_export(data: Path) -> None:
    path = data / "deathstarbench" / "traces-1695947455229.json"
    doc = json.loads(path.read_text())
    res = read_trace_file(path)
    assert res.format == "jaeger" and res.records == res.count == 660 and res.rejects == []
    df = rt.to_frame(trace_rows(res))
    calls, roots, services = jaeger_cross_service(doc)
    # The same traces flattened upstream into parent→child rows (trace.csv): a second, independent view.
    flat = list(csv.DictReader((data / "deathstarbench" / "trace.csv").open()))
    csv_calls = collections.Counter((r["parentMS"], r["childMS"]) for r in flat if r["parentMS"] != r["childMS"])
    assert calls == csv_calls and sum(calls.values()) == 220
    assert len(services) == 12 and roots == 20
    inner = df[df["source_kind"].isna()]
    assert edges(inner) == calls
    assert (df["source_kind"] == "user").sum() == 20
    assert df.loc[df["source_kind"] == "user", "destination_service"].unique().tolist() == ["nginx-web-server"]
    assert len(df) == 240 and df["trace_id"].nunique() == 20
    # Durations are the caller's (the *_client span); the callee's span is the upstream time.
    row = df[(df["span_id"] == "77254e9f088634fc")].iloc[0]
    assert (row["source_app"], row["destination_service"]) == ("nginx-web-server", "compose-post-service")
    assert (row["duration_ms"], row["upstream_service_time_ms"]) == (4.188, 3.870)


def test_jaeger_ui_test_traces(data: Path) -> None:
    df = rows_of(data / "jaeger-ui" / "flamegraph-testTrace.json")
    assert edges(df) == {("load-generator", "ride-sharing-app"): 1}  # OrderVehicle/FindNearestVehicle: internal
    row = df.iloc[0]
    assert (row["method"], row["authority"], row["response_code"]) == ("GET", "ap-south:5000", 200)
    df = rows_of(data / "jaeger-ui" / "spanAmongEachOtherGroupedAndSpans.json")
    assert edges(df) == {("api-gateway", "customers-service"): 1, ("-", "api-gateway"): 1}
    # Jaeger dropped leading zeros of this trace id: restored to 32 hex digits.
    assert set(df["trace_id"]) == {"0df84e36b9e2ee3815d07f0867a5be1f"}


# ---------------------------------------------------------------------------------------------
# Tempo / OTLP JSON
# ---------------------------------------------------------------------------------------------
def labelled(df: pd.DataFrame) -> collections.Counter:
    """Edges as Tempo's service-graph metrics label them (client, server, connection type)."""
    out: collections.Counter = collections.Counter()
    for _, r in df.iterrows():
        client = r["source_app"] if not pd.isna(r["source_app"]) else "user"
        kind = r["destination_kind"] if not pd.isna(r["destination_kind"]) else None
        if kind is None and r["protocol"] in ("rabbitmq",):
            kind = "messaging_system"
        out[(client, r["destination_service"] if not pd.isna(r["destination_service"]) else None, kind)] += 1
    return out


def test_tempo_queue_database(data: Path) -> None:
    df = rows_of(data / "tempo" / "trace-with-queue-database.json")
    got = labelled(df)
    # The edges grafana/tempo's servicegraphs_test.go expects from this capture:
    assert got[("mythical-requester", "mythical-server", None)] == 1
    assert got[("mythical-server", "postgres", "database")] == 1
    assert got[("mythical-requester", "mythical-recorder", "messaging_system")] == 1
    r = df[df["destination_service"] == "mythical-server"].iloc[0]
    assert r["duration_ms"] == pytest.approx(45.83, abs=0.01)  # client seconds ≈ 0.045
    assert r["upstream_service_time_ms"] == pytest.approx(29.99, abs=0.01)  # server seconds ≈ 0.029
    assert df[df["destination_service"] == "postgres"].iloc[0]["duration_ms"] == pytest.approx(23.78, abs=0.01)
    assert (df["span_status"] == "error").sum() == 0
    # meshctl also keeps what Tempo drops: an HTTP call to loki (net.peer.name) and clients without a peer.
    assert got[("mythical-server", "loki", "external")] == 1
    assert sum(n for (c, s, k), n in got.items() if k == "unknown") == 3


def test_tempo_failed_requests(data: Path) -> None:
    df = rows_of(data / "tempo" / "trace-with-failed-requests.json")
    a = df[df["destination_service"] == "mythical-server"]
    b = df[df["destination_service"] == "postgres"]
    assert len(a) == 1 and len(b) == 1
    assert a.iloc[0]["span_status"] == "error" and a.iloc[0]["response_code"] == 500
    assert b.iloc[0]["span_status"] == "error" and b.iloc[0]["destination_kind"] == "database"
    assert pd.isna(b.iloc[0]["response_code"])  # failed with no HTTP code: only span_status says so


def test_tempo_virtual_nodes(data: Path) -> None:
    df = rows_of(data / "tempo" / "trace-with-virtual-nodes.json")
    got = {(r["source_app"] if not pd.isna(r["source_app"]) else r["source_kind"], r["destination_service"])
           for _, r in df.iterrows()}
    assert got == {("user", "mythical-server"), ("mythical-requester", "external-payments-platform"),
                   ("external-producer", "internal-consumer")}
    assert len(df) == 3


def test_tempo_expired_edges(data: Path) -> None:
    df = rows_of(data / "tempo" / "trace-with-expired-edges.json")
    # Tempo counts 4 edges: a root server, a matched pair, a client with db attributes, and an unmatched
    # server (expired in Tempo; kept here with an unknown caller).
    assert len(df) == 4
    assert sorted(df["source_kind"].fillna("-")) == ["-", "-", "unknown", "user"]
    assert (df["destination_kind"] == "database").sum() == 1


def test_otlp_example_and_hex_ids(data: Path) -> None:
    res = read_trace_file(data / "otel-proto" / "trace.json")
    assert res.format == "otlp-json" and res.count == 1
    span = res.spans.to_pylist()[0]
    assert span["trace_id"] == "5b8efff798038103d269b633813fc60c" and span["kind"] == "server"
    assert span["service"] == "my.service" and span["duration_ms"] == 1000.0
    df = rt.to_frame(trace_rows(res))
    assert df.iloc[0]["source_kind"] == "unknown"  # its parent span is not in the file


def _hexify(doc):
    """Tempo's base64 ids → hex, as the OTLP/JSON spec writes them."""
    for rs in doc["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            for sp in ss["spans"]:
                for k in ("traceId", "spanId", "parentSpanId"):
                    if sp.get(k):
                        sp[k] = base64.b64decode(sp[k]).hex().upper()
    return doc


def test_base64_and_hex_ids_give_the_same_rows(data: Path) -> None:
    path = data / "tempo" / "trace-with-queue-database.json"
    b64 = trace_rows(parse_trace_bytes(path.read_bytes(), file="x", source="x"))
    hexed = json.dumps(_hexify(json.loads(path.read_text()))).encode()
    hx = trace_rows(parse_trace_bytes(hexed, file="x", source="x"))
    assert b64.equals(hx)


def test_otlp_protobuf_single_and_length_prefixed(data: Path, tmp_path: Path) -> None:
    import struct

    from google.protobuf.json_format import ParseDict
    from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

    blobs = []
    for name in ("trace-with-queue-database.json", "trace-with-virtual-nodes.json"):
        msg = ParseDict(json.loads((data / "tempo" / name).read_text()), TracesData())
        blobs.append(msg.SerializeToString())
    one = tmp_path / "one.pb"
    one.write_bytes(blobs[0])
    res = read_trace_file(one)
    assert res.format == "otlp-proto" and res.count == 19 and res.rejects == []
    json_rows = rt.to_frame(trace_rows(read_trace_file(data / "tempo" / "trace-with-queue-database.json")))
    pb_rows = rt.to_frame(trace_rows(res))
    cols = [c for c in rt.COLUMN_NAMES if not c.startswith("record_")]
    pd.testing.assert_frame_equal(pb_rows[cols], json_rows[cols])
    stream = tmp_path / "stream.binpb"
    stream.write_bytes(b"".join(struct.pack(">I", len(b)) + b for b in blobs))
    res = read_trace_file(stream)
    assert res.count == 22 and res.rejects == []
    assert len(trace_rows(res)) == 7 + 3


def test_collector_file_exporter_json_lines(data: Path, tmp_path: Path) -> None:
    """JSON lines, one ExportTraceServiceRequest per line; a bad line is a reject, the rest kept."""
    lines = []
    for name in ("trace-with-queue-database.json", "trace-with-failed-requests.json"):
        lines.append(json.dumps(_hexify(json.loads((data / "tempo" / name).read_text()))))
    lines.insert(1, '{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "')  # cut short
    path = tmp_path / "traces.jsonl"
    path.write_text("\n".join(lines) + "\n")
    res = read_trace_file(path)
    assert res.format == "otlp-json" and res.count == 19 + 15
    assert [(r.file, r.line) for r in res.rejects] == [(str(path), 2)]
    assert "invalid JSON" in res.rejects[0].reason


def test_split_client_and_server_files_pair(data: Path, tmp_path: Path) -> None:
    """Spans of one call in two files still pair when collected together."""
    doc = json.loads((data / "tempo" / "trace-with-queue-database.json").read_text())
    a = {"resourceSpans": [rs for rs in doc["resourceSpans"] if rs["resource"]["attributes"][0]["value"]
                           ["stringValue"] == "mythical-requester"]}
    b = {"resourceSpans": [rs for rs in doc["resourceSpans"] if rs not in a["resourceSpans"]]}
    (tmp_path / "a.json").write_text(json.dumps(a))
    (tmp_path / "b.json").write_text(json.dumps(b))
    res = trace_file_rows(tmp_path / "a.json", tmp_path / "b.json")
    whole = rows_of(data / "tempo" / "trace-with-queue-database.json")
    assert edges(rt.to_frame(res.table)) == edges(whole) and res.lines == 19


# ---------------------------------------------------------------------------------------------
# Detection
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("rel", "fmt"), [
    *[(f"zipkin/{n}", "zipkin") for n in ZIPKIN_FILES],
    ("jaeger-ui/flamegraph-testTrace.json", "jaeger"),
    ("jaeger-ui/spanAmongEachOtherGroupedAndSpans.json", "jaeger"),
    ("deathstarbench/traces-1695947455229.json", "jaeger"),
    *[(f"tempo/{n}", "otlp-json") for n in ("trace-with-virtual-nodes.json", "trace-with-queue-database.json",
                                            "trace-with-failed-requests.json", "trace-with-expired-edges.json")],
    ("otel-proto/trace.json", "otlp-json"),
])
def test_detects_format(data: Path, rel: str, fmt: str) -> None:
    assert detect_trace_format((data / rel).read_bytes()[:65536]) == fmt


def test_not_traces_are_rejected_with_a_hint(data: Path) -> None:
    for blob in (b"\x00\x01garbage\xff" * 10, b"hello world\n", (data / "otel-proto" / "logs.json").read_bytes()):
        res = parse_trace_bytes(blob, file="x.bin")
        assert res.count == 0 and len(res.rejects) == 1
        assert "x.bin" in str(res.rejects[0])
    res = parse_trace_bytes(b"\x00\x01garbage\xff", file="x.bin")
    assert "--format" in res.rejects[0].reason
    # A forced format parses what detection would not guess: a Zipkin span list is not OTLP.
    forced = parse_trace_bytes((data / "zipkin" / "skew.json").read_bytes(), file="s", fmt="otlp-json")
    assert forced.count == 0 and "not OTLP" in forced.rejects[0].reason
    with pytest.raises(ValueError, match="unknown trace format"):
        parse_trace_bytes(b"[]", file="x", fmt="xml")


# ---------------------------------------------------------------------------------------------
# Bad input: clear errors, nothing good lost
# ---------------------------------------------------------------------------------------------
def test_truncated_zipkin_keeps_complete_spans(data: Path) -> None:
    blob = (data / "zipkin" / "smartthings-oauth-authorization.json").read_bytes()
    raw = json.loads(blob)
    cut = blob[: len(blob) * 2 // 3]
    res = parse_trace_bytes(cut, file="cut.json")
    assert 0 < res.count < len(raw)
    [rej] = res.rejects
    assert rej.file == "cut.json" and rej.line > 1 and "damaged at line" in rej.reason
    assert f"kept the {res.count} complete record(s)" in rej.reason
    # What was kept is exactly the leading spans.
    assert res.spans.column("span_id").to_pylist() == [normalize_id(s["id"]) for s in raw[: res.count]]


def test_truncated_jaeger_keeps_complete_traces(data: Path) -> None:
    blob = (data / "deathstarbench" / "traces-1695947455229.json").read_bytes()
    res = parse_trace_bytes(blob[: len(blob) // 2], file="half.json")
    assert res.format == "jaeger" and res.count > 0 and res.count % 33 == 0  # whole traces only
    assert len(res.rejects) == 1 and "damaged" in res.rejects[0].reason
    assert len(trace_rows(res)) == res.count // 33 * 12


def test_wrong_types_reject_the_span_and_keep_the_rest() -> None:
    spans = [
        {"traceId": "a" * 16, "id": "1" * 16, "kind": "SERVER", "timestamp": 1, "duration": 5,
         "localEndpoint": {"serviceName": "a"}},
        {"traceId": "a" * 16, "id": "2" * 16, "kind": "SERVER", "timestamp": "soon",
         "localEndpoint": {"serviceName": "a"}},
        {"traceId": "a" * 16, "id": "not-an-id!", "kind": "SERVER"},
        {"traceId": "a" * 16, "id": "3" * 16, "kind": "SERVER", "tags": ["x"]},
        {"traceId": "a" * 16, "id": "4" * 16, "kind": "SIDEWAYS"},
        "a string",
        {"traceId": "a" * 16, "id": "5" * 16, "parentId": "1" * 16, "kind": "CLIENT", "timestamp": 2, "duration": 1,
         "localEndpoint": {"serviceName": "a"}, "remoteEndpoint": {"serviceName": "redis"}},
    ]
    res = parse_trace_bytes(json.dumps(spans).encode(), file="bad.json")
    assert res.records == 7 and res.count == 2 and len(res.rejects) == 5
    assert [r.field for r in res.rejects] == ["timestamp", "id", "tags", "kind", "span"]
    assert [r.line for r in res.rejects] == [2, 3, 4, 5, 6]
    assert all(str(r).startswith("bad.json:") for r in res.rejects)
    df = rt.to_frame(trace_rows(res))
    assert edges(df) == {("-", "a"): 1, ("a", "redis"): 1}
    assert df.loc[df["destination_service"] == "redis", "destination_kind"].item() == "database"


def test_undecodable_bytes_do_not_cost_the_file(data: Path) -> None:
    blob = (data / "zipkin" / "yelp.json").read_bytes().replace(b"syslog2scribe", b"sysl\xff\xfeg2scribe")
    res = parse_trace_bytes(blob, file="y.json")
    assert res.count == 16 and res.rejects == []


# ---------------------------------------------------------------------------------------------
# Semantic conventions, Envoy/Istio spans, sidecar chains
# ---------------------------------------------------------------------------------------------
def _otlp(resource: dict, spans: list[dict]) -> bytes:
    def attrs(d):
        out = []
        for k, v in d.items():
            if isinstance(v, bool):
                out.append({"key": k, "value": {"boolValue": v}})
            elif isinstance(v, int):
                out.append({"key": k, "value": {"intValue": str(v)}})
            else:
                out.append({"key": k, "value": {"stringValue": v}})
        return out

    groups = collections.defaultdict(list)
    for sp in spans:
        groups[sp.pop("_res")].append({**sp, "attributes": attrs(sp.get("attributes", {}))})
    return json.dumps({"resourceSpans": [
        {"resource": {"attributes": attrs(resource[name])}, "scopeSpans": [{"spans": sps}]}
        for name, sps in groups.items()]}).encode()


def _sp(res, sid, parent, kind, start, end, **attributes):
    return {"_res": res, "traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": sid, "parentSpanId": parent,
            "name": "x", "kind": kind, "startTimeUnixNano": str(start), "endTimeUnixNano": str(end),
            "attributes": attributes}


def test_old_and_new_semantic_conventions_fill_the_same_columns() -> None:
    res = {"old": {"service.name": "web", "k8s.namespace.name": "shop",
                   "k8s.pod.name": "web-7d4b9c8f6-x2x9z", "service.version": "v1"},
           "new": {"service.name": "api", "service.namespace": "shop", "k8s.deployment.name": "api-v2",
                   "service.version": "v2", "k8s.cluster.name": "east"}}
    spans = [
        _sp("old", "a" * 16, None, 3, 1_000_000_000, 1_050_000_000, **{
            "http.method": "POST", "http.status_code": 503, "http.url": "http://api:8080/cart?x=1",
            "http.flavor": "1.1", "net.peer.name": "api", "http.user_agent": "curl/8"}),
        _sp("new", "b" * 16, "a" * 16, 2, 1_010_000_000, 1_040_000_000, **{
            "http.request.method": "POST", "http.response.status_code": 503, "url.path": "/cart",
            "network.protocol.version": "2", "server.address": "api", "http.route": "/cart",
            "client.address": "10.0.0.7", "client.port": 51234, "http.request.body.size": 12,
            "http.response.body.size": 34}),
        _sp("new", "c" * 16, "b" * 16, 3, 1_020_000_000, 1_030_000_000, **{
            "rpc.system": "grpc", "rpc.grpc.status_code": 14, "server.address": "stock.shop.svc.cluster.local",
            "server.port": 9090, "url.full": "http://stock.shop.svc.cluster.local:9090/stock.Stock/Get"}),
    ]
    df = rt.to_frame(trace_rows(parse_trace_bytes(_otlp(res, spans), file="s.json")))
    call = df[df["destination_service"] == "api"].iloc[0]
    assert (call["source_app"], call["source_namespace"], call["source_workload"], call["source_version"]) == \
        ("web", "shop", "web", "v1")
    assert (call["destination_app"], call["destination_namespace"], call["destination_workload"],
            call["destination_version"], call["destination_cluster"]) == ("api", "shop", "api-v2", "v2", "east")
    assert (call["method"], call["response_code"], call["path"], call["protocol"]) == ("POST", 503, "/cart", "HTTP/1.1")
    assert (call["authority"], call["route_name"], call["user_agent"]) == ("api:8080", "/cart", "curl/8")
    assert (call["downstream_remote_address"], call["bytes_received"], call["bytes_sent"]) == ("10.0.0.7:51234", 12, 34)
    assert (call["duration_ms"], call["upstream_service_time_ms"]) == (50.0, 30.0)
    grpc = df[df["destination_service"] == "stock.shop.svc.cluster.local"].iloc[0]
    assert (grpc["grpc_status"], grpc["protocol"], grpc["destination_kind"]) == (14, "gRPC", "external")
    assert grpc["source_app"] == "api" and grpc["parent_span_id"] == "b" * 16


def test_istio_sidecar_chain_counts_each_call_once() -> None:
    """app client → sidecar (outbound) → sidecar (inbound) → app server: one call, one row."""
    res = {"productpage": {"service.name": "productpage", "k8s.namespace.name": "bookinfo"},
           "productpage-proxy": {"service.name": "productpage.bookinfo"},
           "reviews-proxy": {"service.name": "reviews.bookinfo"},
           "reviews": {"service.name": "reviews", "k8s.namespace.name": "bookinfo"}}
    node = "sidecar~10.1.0.9~reviews-v2-5d8f8b8b7c-x2x9z.bookinfo~bookinfo.svc.cluster.local"
    spans = [
        _sp("productpage", "1" * 16, None, 2, 0, 100_000_000, **{"http.method": "GET"}),
        _sp("productpage", "2" * 16, "1" * 16, 3, 10_000_000, 90_000_000, **{"http.method": "GET"}),
        _sp("productpage-proxy", "3" * 16, "2" * 16, 3, 11_000_000, 89_000_000, **{
            "component": "proxy", "upstream_cluster": "outbound|9080|v2|reviews.bookinfo.svc.cluster.local",
            "http.status_code": "200", "response_flags": "-", "guid:x-request-id": "rid-1",
            "node_id": "sidecar~10.1.0.5~productpage-v1-6b746f74dc-9stvz.bookinfo~bookinfo.svc.cluster.local"}),
        _sp("reviews-proxy", "4" * 16, "3" * 16, 2, 12_000_000, 88_000_000, **{
            "component": "proxy", "upstream_cluster": "inbound|9080||", "http.status_code": "200",
            "guid:x-request-id": "rid-1", "node_id": node, "istio.canonical_revision": "v2"}),
        _sp("reviews", "5" * 16, "4" * 16, 2, 13_000_000, 87_000_000, **{"http.method": "GET"}),
    ]
    df = rt.to_frame(trace_rows(parse_trace_bytes(_otlp(res, spans), file="istio.json")))
    assert len(df) == 2  # the user's request to productpage, and productpage → reviews once
    call = df[df["source_kind"].isna()].iloc[0]
    assert (call["source_app"], call["source_workload"], call["destination_app"], call["destination_workload"],
            call["destination_version"], call["destination_subset"]) == \
        ("productpage", "productpage-v1", "reviews", "reviews-v2", "v2", "v2")
    assert (call["request_id"], call["upstream_cluster"]) == ("rid-1", "outbound|9080|v2|reviews.bookinfo.svc.cluster.local")
    assert call["direction"] == "outbound" and call["reporter_workload"] == "productpage-v1"
    assert call["destination_namespace"] == "bookinfo" and pd.isna(call["response_flags"])


def test_gateway_root_client_span() -> None:
    """An ingress gateway's root span (a proxy CLIENT span): the user → gateway request and the
    gateway → app call are both rows, the second under the first."""
    res = {"gw": {"service.name": "istio-ingressgateway.istio-system"},
           "app": {"service.name": "productpage.bookinfo", "k8s.namespace.name": "bookinfo"}}
    spans = [
        _sp("gw", "1" * 16, None, 3, 0, 50_000_000, **{
            "component": "proxy", "http.method": "GET", "http.status_code": "200",
            "node_id": "router~10.1.0.2~istio-ingressgateway-5c6f8d9c7b-xk2lp.istio-system~istio-system.svc.cluster.local",
            "upstream_cluster": "outbound|9080||productpage.bookinfo.svc.cluster.local"}),
        _sp("app", "2" * 16, "1" * 16, 2, 1_000_000, 49_000_000, **{"component": "proxy",
                                                                   "http.status_code": "200"}),
    ]
    df = rt.to_frame(trace_rows(parse_trace_bytes(_otlp(res, spans), file="gw.json")))
    assert len(df) == 2
    entry = df[df["source_kind"] == "user"].iloc[0]
    assert entry["destination_kind"] == "gateway" and entry["destination_workload"] == "istio-ingressgateway"
    fwd = df[df["source_kind"].isna()].iloc[0]
    assert fwd["direction"] == "gateway" and fwd["destination_app"] == "productpage"
    assert fwd["parent_span_id"] == entry["span_id"] == "1" * 16


def test_rows_are_a_tree_on_parent_span_id(data: Path) -> None:
    """Complete traces: every row but the entry rows hangs under another row (span_id of the call it
    was made from), so a consumer can walk calls without the raw spans."""
    for rel in ("deathstarbench/traces-1695947455229.json", "zipkin/smartthings-oauth-authorization.json",
                "zipkin/smartthings-mobile-web-install.json"):
        df = rows_of(data / rel)
        ids = set(zip(df["trace_id"], df["span_id"], strict=False))
        # Span ids are unique per row, but for a Zipkin fan-out: one Kafka send whose id is shared by
        # the five deliveries that received it (smartthings-oauth-authorization, pusher); those rows
        # differ by timestamp, so the store keeps all five.
        dup = df[df.duplicated(["trace_id", "span_id"], keep=False)]
        assert len(ids) == len(df) - len(dup) + dup["span_id"].nunique()
        assert not dup.duplicated(["trace_id", "span_id", "timestamp"]).any()
        has_parent = df["parent_span_id"].notna()
        assert (~has_parent).sum() == (df["source_kind"] == "user").sum()
        assert all((t, p) in ids for t, p in zip(df.loc[has_parent, "trace_id"], df.loc[has_parent, "parent_span_id"], strict=False))
    # mythical-server's calls hang under the row of the request it was serving; calls made under the
    # requester's root client span (not a row of its own) keep their raw parent span id.
    df = rows_of(data / "tempo" / "trace-with-queue-database.json")
    server_row = df[df["destination_service"] == "mythical-server"]["span_id"].item()
    loki_row = df[df["destination_service"] == "loki"]["span_id"].item()
    calls = df[df["source_app"] == "mythical-server"]
    by_callee = dict(zip(calls["destination_service"].fillna("?"), calls["parent_span_id"], strict=False))
    assert by_callee == {"postgres": server_row, "loki": server_row, "?": loki_row}  # DNS lookup for the loki call


# ---------------------------------------------------------------------------------------------
# The vectorized OTLP JSON-lines path gives exactly what the per-document path gives
# ---------------------------------------------------------------------------------------------
def _generated_export_lines(n_traces: int, seed: int = 7) -> bytes:
    import random

    rnd = random.Random(seed)

    def kv(k, v):
        if isinstance(v, bool):
            return {"key": k, "value": {"boolValue": v}}
        if isinstance(v, int):
            return {"key": k, "value": {"intValue": str(v)}}
        if isinstance(v, float):
            return {"key": k, "value": {"doubleValue": v}}
        return {"key": k, "value": {"stringValue": v}}

    services = ["web", "cart", "pay", "reviews.bookinfo"]
    resources = {s: [kv("service.name", s), kv("k8s.namespace.name", "bookinfo" if "." in s else "shop"),
                     kv("k8s.pod.name", f"{s.split('.')[0]}-v1-6b746f74dc-9stvs"), kv("service.version", "v1")]
                 for s in services}
    lines = []
    for t in range(n_traces):
        by: dict[str, list] = {s: [] for s in services}
        tid = f"{rnd.getrandbits(128):032X}"
        ids = [f"{rnd.getrandbits(64):016x}" for _ in range(6)]
        base = 1_700_000_000_000_000_000 + t * 10_000_000

        def span(svc, i, parent, kind, attrs, dur, status=None, _by=by, _tid=tid, _ids=ids, _base=base):
            _by[svc].append({"traceId": _tid, "spanId": _ids[i], "parentSpanId": parent or "", "name": f"op{i}",
                             "kind": kind, "startTimeUnixNano": str(_base + i * 1000),
                             "endTimeUnixNano": str(_base + i * 1000 + dur), "attributes": attrs,
                             "status": status or {}})

        code = rnd.choice([200, 200, 503, 404])
        span("web", 0, None, 2, [kv("http.method", "GET"), kv("http.status_code", code), kv("url.path", "/x?q=1")],
             9_000_000, {"code": 2, "message": "boom"} if code == 503 else {"code": 1})
        span("web", 1, ids[0], 3, [kv("http.request.method", "POST"), kv("server.address", "cart"),
                                   kv("server.port", 8080), kv("http.url", "http://cart:8080/c"),
                                   kv("network.protocol.version", "1.1")], 2_000_000)
        span("cart", 2, ids[1], 2, [kv("http.response.status_code", code), kv("http.route", "/c"),
                                    kv("client.address", "10.0.0.1"), kv("http.request.body.size", 12),
                                    kv("custom.ratio", 0.25), kv("custom.flag", True)], 1_500_000)
        span("cart", 3, ids[2], 3, [kv("db.system", "redis"), kv("net.peer.name", "redis-0"), kv("net.peer.port", 6379)],
             300_000)
        span("pay", 4, ids[2], 4, [kv("messaging.system", "kafka"), kv("messaging.destination.name", "orders")], 50_000)
        span("reviews.bookinfo", 5, ids[1], 2, [kv("rpc.system", "grpc"), kv("rpc.grpc.status_code", 0),
                                                kv("guid:x-request-id", f"r-{t}"), kv("component", "proxy"),
                                                kv("upstream_cluster", "inbound|9080||"), kv("response_flags", "-")],
             700_000)
        lines.append(json.dumps({"resourceSpans": [
            {"resource": {"attributes": resources[s]}, "scopeSpans": [{"scope": {"name": "t"}, "spans": sp}]}
            for s, sp in by.items() if sp]}, separators=(",", ":")))
    return ("\n".join(lines) + "\n").encode()


def test_vectorized_otlp_json_lines_equal_reference_path() -> None:
    from meshctl.parsers.otlp_traces import _FAST_MIN_BYTES, parse_otlp_json

    blob = _generated_export_lines(1200)
    assert len(blob) > _FAST_MIN_BYTES
    fast = parse_otlp_json(blob, file="g.jsonl", fast=True)
    slow = parse_otlp_json(blob, file="g.jsonl", fast=False)
    assert fast.count == slow.count == 1200 * 6 and fast.rejects == slow.rejects == []
    assert fast.spans.schema.equals(slow.spans.schema)
    for name in fast.spans.column_names:
        assert fast.spans.column(name).to_pylist() == slow.spans.column(name).to_pylist(), name
    rows = rt.to_frame(trace_rows(fast))
    assert len(rows) == 1200 * 5  # user→web, web→cart, cart→redis, cart→kafka, web→reviews (server-only)
    assert (rows["destination_kind"] == "database").sum() == 1200
    assert set(rows.loc[rows["destination_kind"] == "messaging", "destination_service"]) == {"kafka"}


def test_vectorized_path_falls_back_on_base64_ids_and_bad_lines(monkeypatch) -> None:
    from meshctl.parsers import otlp_traces

    calls = {"fast": 0, "fallback": 0}
    real = otlp_traces._fast_json_lines

    def counting(block, **kw):
        res = real(block, **kw)
        calls["fast" if res is not None else "fallback"] += 1
        return res

    monkeypatch.setattr(otlp_traces, "_fast_json_lines", counting)
    monkeypatch.setattr(otlp_traces, "_BLOCK_BYTES", 150_000)  # several blocks of whole lines
    blob = _generated_export_lines(1200)
    lines = blob.split(b"\n")
    # base64 ids (as Tempo writes them) on one line: that block takes the reference path.
    doc = json.loads(lines[5])
    for rs in doc["resourceSpans"]:
        for sp in rs["scopeSpans"][0]["spans"]:
            sp["traceId"] = base64.b64encode(bytes.fromhex(sp["traceId"])).decode()
    lines[5] = json.dumps(doc).encode()
    lines[900] = lines[900][: len(lines[900]) // 2]  # a line cut short, in a later block
    res = otlp_traces.parse_otlp_json(b"\n".join(lines), file="mixed.jsonl")
    assert calls["fallback"] == 2 and calls["fast"] >= 5
    assert res.count == res.records == 1199 * 6  # the base64 line is kept, the cut line is lost
    assert [(r.line, "invalid JSON" in r.reason) for r in res.rejects] == [(901, True)]
    assert len(set(res.spans.column("trace_id").to_pylist())) == 1199
    # Span indexes run on across blocks, whichever path read them.
    assert res.spans.column("record_line").to_pylist() == list(range(1, 1199 * 6 + 1))


def test_invalid_utf8_in_json_lines_is_replaced_not_stored(monkeypatch) -> None:
    from meshctl.parsers import otlp_traces

    blob = _generated_export_lines(1200).replace(b'"op1"', b'"op\xff1"', 1)
    res = otlp_traces.parse_otlp_json(blob, file="u.jsonl")
    assert res.count == 1200 * 6 and res.rejects == []
    names = res.spans.column("name").to_pylist()
    assert "op\ufffd1" in names
    res.spans.validate(full=True)


def test_identity_never_flows_from_a_caller_into_the_callee() -> None:
    """Proxies that all call themselves `linkerd-proxy`: a server span without k8s attributes must not
    take the calling pod's workload because the two spans share a service name."""
    res = {"web": {"service.name": "linkerd-proxy", "k8s.deployment.name": "web", "k8s.namespace.name": "shop"},
           "api": {"service.name": "linkerd-proxy"}}
    spans = [
        _sp("web", "1" * 16, None, 2, 0, 9_000_000, **{"http.method": "GET"}),
        _sp("web", "2" * 16, "1" * 16, 3, 1_000_000, 8_000_000, **{"http.authority": "api.shop.svc.cluster.local:80"}),
        _sp("api", "3" * 16, "2" * 16, 2, 2_000_000, 7_000_000, **{"http.status_code": 200}),
    ]
    df = rt.to_frame(trace_rows(parse_trace_bytes(_otlp(res, spans), file="l.json")))
    call = df[df["source_kind"].isna()].iloc[0]
    assert (call["source_workload"], call["source_namespace"]) == ("web", "shop")
    assert call["destination_workload"] != "web" and pd.isna(call["destination_namespace"])
    assert call["authority"] == "api.shop.svc.cluster.local:80"
