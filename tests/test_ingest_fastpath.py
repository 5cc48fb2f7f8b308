"""The fast ingest paths give the same stored rows as the slow, line-by-line reference path.

Collection reads blocks with polars (JSON lines) or Arrow's CSV reader (text formats), carries
repeating columns dictionary-encoded to Parquet, and computes dedup keys column by column. Each
shortcut is checked here against the plain way of doing the same thing: every line read with
json.loads / the format's regular expression, keys hashed by pandas over the whole frame.
"""

from __future__ import annotations

import io
import json
import random

import pandas as pd
import pyarrow as pa
import pytest

from analyzers import table as rt
from meshctl.identity import Identity, workload_of
from meshctl.ingest import file_sources, ingest
from meshctl.parsers import accesslog, jsonlog
from meshctl.parsers.accesslog import AccessLogParser
from meshctl.parsers.blocks import Block, iter_blocks
from meshctl.store import KEY_COLUMNS, Dataset, concat_storage, dedup_keys, storage_conform

AGENTS = ["curl/8.0", 'Mozilla/5.0 (X11; Linux x86_64) "quoted"', "grpc-go/1.60", "Bücherbot/1.0 \\ backslash"]
PATHS = ["/productpage", "/api/v1/items?id=7&x=[1]", "/reviews/0", "/static/a b.css"]


def record(i: int, rnd: random.Random) -> dict:
    code = rnd.choice([200] * 8 + [503, 429, 0])
    inbound = i % 2 == 0
    rec = {
        "start_time": f"2026-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}.{i % 1000:03d}Z",
        "method": rnd.choice(["GET", "POST"]), "path": rnd.choice(PATHS), "protocol": "HTTP/1.1",
        "response_code": code, "response_flags": {503: "UO", 429: "RL", 0: "DC"}.get(code, "-"),
        "response_code_details": "via_upstream", "bytes_received": rnd.randint(0, 900),
        "bytes_sent": rnd.randint(0, 9000), "duration": rnd.randint(0, 500),
        "upstream_service_time": None if code in (0, 429) else str(rnd.randint(0, 400)),
        "user_agent": rnd.choice(AGENTS), "request_id": f"{rnd.getrandbits(64):016x}-{i}",
        "authority": rnd.choice(["reviews:9080", "ratings:9080", "shop.example.com"]),
        "upstream_host": rnd.choice(["10.0.0.7:9080", "[2001:db8::7]:9080", None]),
        "upstream_cluster": "inbound|9080||" if inbound else f"outbound|9080|v{i % 3 + 1}|reviews.default.svc.cluster.local",
        "downstream_remote_address": f"10.1.{i % 200}.{i % 250}:{40000 + i % 999}",
        "requested_server_name": "outbound_.9080_._.reviews.default.svc.cluster.local" if inbound else None,
        "route_name": "default",
    }
    if i % 97 == 5:  # a key the first lines do not have (Envoy's omit_empty_values drops keys)
        rec["trace_id"] = f"{rnd.getrandbits(128):032X}"
    return rec


def text_line(r: dict) -> str:
    def d(v: object) -> str:
        return "-" if v is None else str(v)

    return (f'[{r["start_time"]}] "{r["method"]} {r["path"]} {r["protocol"]}" {r["response_code"]} '
            f'{r["response_flags"]} {r["response_code_details"]} - "-" {r["bytes_received"]} {r["bytes_sent"]} '
            f'{r["duration"]} {d(r["upstream_service_time"])} "-" "{r["user_agent"]}" "{r["request_id"]}" '
            f'"{r["authority"]}" "{d(r["upstream_host"])}" {r["upstream_cluster"]} 127.0.0.6:3000 '
            f'10.96.0.1:9080 {r["downstream_remote_address"]} {d(r["requested_server_name"])} {r["route_name"]}')


def make_file(path, fmt: str, n: int, *, bad: bool) -> None:
    rnd = random.Random(11)
    lines = []
    for i in range(n):
        r = record(i, rnd)
        lines.append(json.dumps(r, ensure_ascii=i % 3 == 0) if fmt == "istio-json" else text_line(r))
        if bad and i % 251 == 7:
            lines.append(rnd.choice(['{"start_time": "2026-01-01T00:00:00Z", "path": {"nested": 1}}',
                                     '{"truncated": ', "", "garbage \x01 line", '{"response_code": "abc"}']))
    data = ("\n".join(lines) + "\n").encode()
    if bad:  # and a line in another encoding now and then
        data = data.replace(b"curl/8.0", "curl/8.0 (Bücherbot)".encode("latin-1"), 7)
    path.write_bytes(data)


def collect(path, data_dir, fmt: str) -> pa.Table:
    ident = Identity().for_reporter(workload_of("reviews-v2", "default"))
    report = ingest(file_sources([str(path)], workload="reviews-v2", namespace="default"),
                    AccessLogParser(fmt, block_bytes=64 << 10), Dataset(data_dir), identity=ident, progress=False)
    assert report.lines == report.parsed + report.rejected + report.ignored
    table = Dataset(data_dir).arrow()
    assert table.schema.equals(rt.arrow_schema(), check_metadata=False)  # plain strings, not dictionaries
    return table.sort_by("record_line")


@pytest.mark.parametrize("fmt", ["istio-json", "istio-text"])
@pytest.mark.parametrize("bad", [False, True])
def test_fast_paths_store_what_the_line_by_line_path_stores(tmp_path, monkeypatch, fmt, bad):
    path = tmp_path / f"{fmt}.log"
    make_file(path, fmt, 3000, bad=bad)
    fast = collect(path, tmp_path / "fast", fmt)
    with monkeypatch.context() as m:
        m.setattr(accesslog, "_fast", lambda *_: None)  # every line through parse_line + normalize
        slow = collect(path, tmp_path / "slow", fmt)
    assert fast.num_rows == slow.num_rows == (2993 if bad else 3000)  # 7 lines in latin-1 when bad
    for name in fast.column_names:
        assert fast.column(name).equals(slow.column(name)), name
    if fmt == "istio-json":
        assert fast.column("trace_id").drop_null().to_pylist()[0] == fast.column("trace_id").drop_null().to_pylist()[0].lower()
        assert len(fast.column("trace_id").drop_null()) == 31


def test_polars_and_arrow_readers_return_the_same_values(monkeypatch):
    rnd = random.Random(3)
    lines = [json.dumps(record(i, rnd)) for i in range(400)]
    data = ("\n".join(lines) + "\n").encode()

    def read(use_polars: bool):
        fmt = jsonlog.istio_json()
        if not use_polars:
            monkeypatch.setattr(jsonlog, "_polars", lambda: None)
        raw = fmt.parse_block(data, data.count(b"\n"))
        monkeypatch.undo()
        return raw.columns

    a, b = read(True), read(False)
    assert sorted(a) == sorted(b)
    for k in a:
        assert a[k].equals(b[k]), k


@pytest.mark.parametrize("line", [
    b'{"start_time": "2026-01-01T00:00:00Z", "path": {"nested": 1}}',  # an object where a string goes
    b'{"start_time": "2026-01-01T00:00:00Z", "path": "\\ud800"}',  # a broken surrogate escape
    b'{"start_time": "2026-01-01T00:00:00Z", "path": "/x", "response_code": "abc"}',  # a string where a number goes
    b'{"start_time": "2026-01-01T00:00:00Z", "path": "/x", "grpc_status": 14}',  # a key not seen before
])
def test_polars_leaves_what_it_would_read_differently_to_the_arrow_reader(line):
    head = b'{"start_time": "2026-01-01T00:00:00Z", "path": "/a", "response_code": 200}\n' * 50
    fmt = jsonlog.istio_json()
    fmt._types = fmt._learn(head)
    assert fmt._polars_block(head, 50) is not None
    block = head + line + b"\n"
    assert fmt._polars_block(block, 51) is None


def test_dedup_keys_are_pandas_frame_hashes_and_pinned():
    table = pa.table({
        "record_kind": pa.array(["access_log", "access_log", "span"]).dictionary_encode(),
        "direction": ["inbound", None, "outbound"],
        "reporter_workload": ["reviews-v2", "reviews-v2", None],
        "request_id": ["a1", "", None],
        "span_id": pa.nulls(3, pa.string()),
        "trace_id": ["4bf92f3577b34da6a3ce929d0e0e4736", None, "x"],
        "timestamp": pa.array([1_767_225_600_000_000, 1_767_225_600_002_000, 0], pa.timestamp("us", tz="UTC")),
        "upstream_host": pa.array(["10.0.0.7:9080", "10.0.0.7:9080", None]).dictionary_encode(),
    })
    keys = dedup_keys(table).to_pylist()
    frame = pa.table({c: table.column(c).cast(pa.int64()) if c == "timestamp" else table.column(c).cast(pa.string())
                      for c in KEY_COLUMNS}).to_pandas()
    assert keys == pd.util.hash_pandas_object(frame, index=False).tolist()
    # Stored keys are compared with new ones: the values themselves must never change.
    assert keys == [5301850273803490291, 6819464945772041554, 2171798610115471995]
    # A key column the table lacks hashes as nulls.
    assert dedup_keys(table.drop_columns(["span_id"])).to_pylist() == keys


def test_dictionary_and_plain_batches_concatenate_and_store_as_strings(tmp_path):
    base = {"timestamp": pa.array([1, 2], pa.timestamp("us", tz="UTC")), "request_id": ["a", "b"]}
    t1 = storage_conform(pa.table({**base, "method": pa.array(["GET", "GET"]).dictionary_encode()}))
    t2 = storage_conform(pa.table({**base, "request_id": ["c", "d"], "method": ["POST", None]}))
    t3 = storage_conform(pa.table({**base, "request_id": ["e", "f"], "method": pa.array(["PUT", "GET"]).dictionary_encode()}))
    both = concat_storage([t1, t3])
    assert pa.types.is_dictionary(both.schema.field("method").type) and both.column("method").num_chunks == 2
    mixed = concat_storage([t1, t2, t3])
    assert mixed.column("method").to_pylist() == ["GET", "GET", "POST", None, "PUT", "GET"]
    ds = Dataset(tmp_path)
    ds.append([mixed])
    stored = ds.arrow(columns=["method", "request_id"])
    assert stored.column("method").type == pa.string()
    assert sorted(stored.column("request_id").to_pylist()) == list("abcdef")


def test_block_reader_cuts_files_at_line_ends_as_it_cuts_streams(tmp_path):
    rnd = random.Random(5)
    lines = []
    for i in range(3000):
        n = rnd.choice([0, 1, 40, 300, 2000])
        lines.append(("x" * n + str(i)).encode() + (b"\r" if i % 7 == 0 else b""))
    lines.insert(1500, b"y" * 5000)  # longer than the line limit below
    data = b"\n".join(lines)  # no final newline
    path = tmp_path / "lines.log"
    path.write_bytes(data)

    def blocks(stream):
        out = []
        for item in iter_blocks(stream, block_bytes=20_000, max_line_bytes=4096):
            out.append((item.first_line, item.count, item.data) if isinstance(item, Block)
                       else ("long", item.line, item.head))
        return out

    with open(path, "rb") as f:
        from_file = blocks(f)
    from_stream = blocks(io.BytesIO(data))
    assert [x for x in from_file if x[0] == "long"] == [x for x in from_stream if x[0] == "long"] == [
        ("long", 1501, b"y" * 512)]
    # Blocks may be cut at other lines, but they hold the same lines with the same numbers.
    def lines_of(bl):
        return [(first + k, ln) for first, count, d in (b for b in bl if b[0] != "long")
                for k, ln in enumerate(d.split(b"\n")[:count])]
    assert lines_of(from_file) == lines_of(from_stream)
    assert len(lines_of(from_file)) == 3000


def test_loose_text_pattern_is_tried_only_where_it_can_match():
    from meshctl.parsers.detect import make_format

    fmt = make_format("istio-text")
    rnd = random.Random(9)
    good = text_line(record(3, rnd))
    cases = [good.replace("curl/8.0", 'curl "8.0" x'), good.replace('"GET ', '"GET /a b ', 1), good[:60],
             good[: len(good) // 2], good + " trailing", good.replace(" - ", "  - ", 1)]
    for text in cases:
        if fmt.strict.match(text):
            continue
        m = fmt.loose.match(text)
        assert fmt._may_match_loose(text) or m is None, text  # the pre-check never refuses a match
        assert fmt._loose_groups(text) == (m.groupdict() if m else None), text
    assert not fmt._may_match_loose(good[:140]) and not fmt._may_match_loose("x" + good)
    # A truncated line (Python's engine backtracks for seconds on some) is one reject, like any other.
    table, rejects, n, _ = _parse(good.encode() + b"\n" + good[:140].encode() + b"\n" + good.encode() + b"\n")
    assert (table.num_rows, n, [r.line for r in rejects]) == (2, 3, [2])


def _parse(data: bytes):
    results = list(AccessLogParser("istio-text").parse_stream(io.BytesIO(data), file="t.log"))
    tables = [r.table for r in results if r.rows]
    table = pa.concat_tables(tables, promote_options="default") if tables else pa.table({})
    return table, [j for r in results for j in r.rejects], sum(r.lines for r in results), 0
