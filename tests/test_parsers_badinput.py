"""Bad input: every bad line counted and explained (file:line, field), every good line around it kept,
the per-line fallback paid only by the block that needs it; property tests over generated and
mutated lines."""

from __future__ import annotations

import io
import json
import random

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshctl.parsers import jsonlog, text
from meshctl.parsers.accesslog import AccessLogParser
from meshctl.parsers.blocks import Block, LongLine, iter_blocks


def run(data: bytes, fmt: str = "auto", **kw):
    results = list(AccessLogParser(fmt, **kw).parse_stream(io.BytesIO(data), file="bad.log"))
    tables = [r.table for r in results if r.rows]
    table = pa.concat_tables(tables, promote_options="default") if tables else pa.table({})
    rejects = [j for r in results for j in r.rejects]
    lines = sum(r.lines for r in results)
    ignored = sum(r.ignored for r in results)
    return table, rejects, lines, ignored


def istio_json(i: int, **over) -> str:
    rec = {"start_time": f"2024-05-01T10:00:{i % 60:02d}.{i % 1000:03d}Z", "method": "GET", "path": f"/items/{i}",
           "protocol": "HTTP/1.1", "response_code": 200 if i % 7 else 503, "response_flags": "-" if i % 7 else "UF",
           "bytes_received": 0, "bytes_sent": 100 + i, "duration": i % 50, "upstream_service_time": str(i % 40),
           "user_agent": "curl/8.0", "request_id": f"req-{i}", "authority": "web:8080",
           "upstream_host": f"10.0.0.{i % 250}:8080", "upstream_cluster": "outbound|8080||web.shop.svc.cluster.local",
           "downstream_remote_address": f"10.1.0.{i % 250}:4{i % 1000:04d}"}
    rec.update(over)
    return json.dumps(rec)


def istio_text(i: int, ua: str = "curl/8.0") -> str:
    return (f'[2024-05-01T10:00:{i % 60:02d}.{i % 1000:03d}Z] "GET /items/{i} HTTP/1.1" {200 if i % 7 else 503} '
            f'{"-" if i % 7 else "UF"} via_upstream - "-" 0 {100 + i} {i % 50} {i % 40} "-" "{ua}" "req-{i}" "web:8080" '
            f'"10.0.0.{i % 250}:8080" outbound|8080||web.shop.svc.cluster.local 10.1.0.9:5{i % 1000:04d} '
            f"10.96.0.10:8080 10.1.0.9:4{i % 1000:04d} - default")


def envoy_text(i: int) -> str:
    return (f'[2024-05-01T10:00:{i % 60:02d}.000Z] "POST /api/{i} HTTP/2" {200 if i % 5 else 429} '
            f'{"-" if i % 5 else "RL"} 10 {i} {i % 30} - "-" "grpc-go/1.60" "rid-{i}" "api:443" "10.2.0.1:443"')


# ---- the classic bad lines -----------------------------------------------------------------
def test_truncated_json_line_is_one_reject_and_neighbours_stay():
    lines = [istio_json(i) for i in range(50)]
    lines[20] = lines[20][:57]  # truncated
    table, rejects, n, ignored = run(("\n".join(lines) + "\n").encode())
    assert (table.num_rows, len(rejects), n, ignored) == (49, 1, 50, 0)
    (r,) = rejects
    assert (r.file, r.line) == ("bad.log", 21) and "truncated or malformed JSON" in r.reason
    assert r.sample == lines[20]
    assert sorted(table.column("record_line").to_pylist()) == [i for i in range(1, 51) if i != 21]


def test_bad_value_rejects_the_row_and_names_the_field():
    lines = [istio_json(i) for i in range(10)]
    lines[3] = istio_json(3, response_code="abc")
    lines[6] = istio_json(6, bytes_sent={"nested": 1})
    lines[8] = istio_json(8, response_code=1200)
    table, rejects, n, _ = run(("\n".join(lines) + "\n").encode())
    assert table.num_rows == 7 and n == 10
    by_line = {r.line: r for r in rejects}
    assert by_line[4].field == "response_code" and "'abc'" in by_line[4].reason
    assert by_line[7].field == "bytes_sent"
    assert by_line[9].field == "response_code" and "out of range" in by_line[9].reason


def test_binary_garbage_and_wrong_encoding():
    good = [istio_text(i) for i in range(30)]
    latin1 = istio_text(99, ua="Mozilla/5.0 (compatible; Bücherbot)").encode("latin-1")
    garbage = bytes(random.Random(7).randrange(256) for _ in range(3000)).replace(b"\n", b"")
    data = b"\n".join([*(g.encode() for g in good[:10]), latin1, garbage, *(g.encode() for g in good[10:])]) + b"\n"
    table, rejects, n, ignored = run(data)
    assert table.num_rows == 30 and n == 32 and ignored == 0
    assert [r.line for r in rejects] == [11, 12]
    assert "not UTF-8" in rejects[0].reason and "wrong encoding" in rejects[0].reason
    assert len(rejects[1].sample) <= 600  # samples are bounded


def test_ten_megabyte_line_is_skipped_with_bounded_memory():
    lines = [istio_text(i).encode() for i in range(20)]
    huge = b'[2024-05-01T10:00:00.000Z] "GET /' + b"a" * (10 << 20) + b' HTTP/1.1" 200'
    data = b"\n".join([*lines[:5], huge, *lines[5:]]) + b"\n"
    table, rejects, n, _ = run(data)
    assert table.num_rows == 20 and n == 21
    (r,) = rejects
    assert r.line == 6 and "longer than" in r.reason and len(r.sample) <= 600
    # The reader never buffers the long line: its blocks stay small.
    for item in iter_blocks(io.BytesIO(data), block_bytes=1 << 20):
        if isinstance(item, Block):
            assert len(item.data) <= 2 << 20
        else:
            assert isinstance(item, LongLine) and item.line == 6


def test_line_of_another_format_in_the_middle():
    lines = [istio_text(i) for i in range(40)]
    lines[10] = istio_json(10)
    lines[30] = envoy_text(30)
    table, rejects, n, _ = run(("\n".join(lines) + "\n").encode())
    assert table.num_rows == 38 and n == 40
    assert [r.line for r in rejects] == [11, 31]
    assert "istio-json" in rejects[0].reason and "envoy-text" in rejects[1].reason


def lines_parsed_one_by_one(monkeypatch, fmt_class) -> list[bytes]:
    """The lines `fmt_class.parse_line` (the per-line slow path) gets from here on."""
    calls: list[bytes] = []
    orig = fmt_class.parse_line

    def counting(self, line):
        calls.append(line)
        return orig(self, line)

    monkeypatch.setattr(fmt_class, "parse_line", counting)
    return calls


def test_fallback_only_for_the_block_with_bad_lines(monkeypatch):
    calls = lines_parsed_one_by_one(monkeypatch, jsonlog.JsonFormat)
    lines = [istio_json(i) for i in range(2000)]
    lines[1500] = "{not json"
    data = ("\n".join(lines) + "\n").encode()
    table, rejects, n, _ = run(data, block_bytes=32 << 10, threads=1)
    assert (table.num_rows, len(rejects), n) == (1999, 1, 2000)
    per_block = (32 << 10) // len(lines[0]) + 2
    assert 0 < len(calls) <= per_block, "only the bad block is read line by line"
    assert b"{not json" in calls


def test_text_fallback_only_for_odd_lines(monkeypatch):
    calls = lines_parsed_one_by_one(monkeypatch, text.RegexFormat)
    lines = [istio_text(i) for i in range(3000)]
    lines[100] = istio_text(100, ua='Mozilla "quoted" agent')  # a quote inside a value
    lines[2000] = "garbage line"
    table, rejects, n, _ = run(("\n".join(lines) + "\n").encode(), threads=1)
    assert (table.num_rows, len(rejects), n) == (2999, 1, 3000)
    assert len(calls) == 2  # the CSV fast path read everything else
    ua = dict(zip(table.column("record_line").to_pylist(), table.column("user_agent").to_pylist(), strict=True))
    assert ua[101] == 'Mozilla "quoted" agent'


def test_blank_lines_and_crlf_are_not_rows_or_rejects():
    lines = [istio_text(i) for i in range(5)]
    data = ("\r\n".join(["", lines[0], "", lines[1], "   ", lines[2], lines[3], lines[4], ""]) + "\r\n").encode()
    table, rejects, n, ignored = run(data)
    assert (table.num_rows, len(rejects)) == (5, 0)
    assert n == table.num_rows + len(rejects) + ignored
    assert sorted(table.column("record_line").to_pylist()) == [2, 4, 6, 7, 8]


def test_unrecognizable_file_rejects_every_line():
    data = b"hello\nworld\n\x00\x01\x02\n"
    table, rejects, n, _ = run(data)
    assert table.num_rows == 0 and len(rejects) == 3 == n
    assert "not an access-log line" in rejects[0].reason


# ---- property tests ---------------------------------------------------------------------------
def linkerd_json(i: int) -> str:
    return json.dumps({"client.addr": f"10.42.0.{i % 250}:5{i % 1000:04d}", "client.id": "web.shop.serviceaccount.identity.linkerd.cluster.local",
                       "host": "api:8080", "method": "GET", "processing_ns": "39826", "request_bytes": "",
                       "response_bytes": str(100 + i), "status": 200 if i % 9 else 503,
                       "timestamp": f"2024-05-01T10:00:{i % 60:02d}.123456789Z", "total_ns": str(1_000_000 + i),
                       "trace_id": "", "uri": f"http://api:8080/items/{i}", "user_agent": "Go-http-client/1.1",
                       "version": "HTTP/2.0"})


def linkerd_apache(i: int) -> str:
    return (f"10.42.0.{i % 250}:5{i % 1000:04d} web.shop.serviceaccount.identity.linkerd.cluster.local - "
            f'[2024-05-01T10:00:{i % 60:02d}.123456789Z] "GET http://api:8080/items/{i} HTTP/2.0" {200 if i % 9 else 503}')


MAKERS = {"istio-json": istio_json, "istio-text": istio_text, "envoy-text": envoy_text, "linkerd-json": linkerd_json,
          "linkerd-apache": linkerd_apache}


@st.composite
def mutated_files(draw):
    fmt = draw(st.sampled_from(sorted(MAKERS)))
    n = draw(st.integers(1, 60))
    lines = [MAKERS[fmt](i).encode() for i in range(n)]
    for _ in range(draw(st.integers(0, 8))):
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["truncate", "insert", "bytes", "other", "replace", "dup"]))
        ln = lines[i]
        if op == "truncate":
            lines[i] = ln[: draw(st.integers(0, max(len(ln) - 1, 0)))]
        elif op == "insert":
            pos = draw(st.integers(0, len(ln)))
            lines[i] = ln[:pos] + draw(st.binary(min_size=1, max_size=8)) + ln[pos:]
        elif op == "bytes":
            lines[i] = draw(st.binary(max_size=200))
        elif op == "other":
            other = draw(st.sampled_from(sorted(MAKERS)))
            lines[i] = MAKERS[other](i).encode()
        elif op == "replace":
            pos = draw(st.integers(0, max(len(ln) - 1, 0)))
            lines[i] = ln[:pos] + draw(st.sampled_from([b'"', b" ", b"-", b"{", b"\r", b"\x00", b"\xff"])) + ln[pos + 1:]
        else:
            lines.insert(i, ln)
    data = b"\n".join(lines) + b"\n"
    return fmt, data


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(mutated_files(), st.sampled_from(["auto", "forced"]), st.sampled_from([1 << 10, 1 << 20]))
def test_property_no_crash_and_every_line_accounted_for(case, mode, block):
    fmt, data = case
    table, rejects, n, ignored = run(data, fmt if mode == "forced" else "auto", block_bytes=block, threads=1)
    assert n == data.count(b"\n")
    assert table.num_rows + len(rejects) + ignored == n
    for r in rejects:
        assert r.file == "bad.log" and 1 <= r.line <= n and r.reason
    if table.num_rows:
        lines = table.column("record_line").to_pylist()
        assert len(set(lines)) == len(lines) and all(1 <= x <= n for x in lines)
        codes = [c for c in table.column("response_code").to_pylist() if c is not None]
        assert all(0 <= c <= 999 for c in codes)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.binary(max_size=120), max_size=40))
def test_property_arbitrary_bytes(chunks):
    data = b"\n".join(chunks) + b"\n"
    table, rejects, n, ignored = run(data, threads=1)
    assert table.num_rows + len(rejects) + ignored == n == data.count(b"\n")
