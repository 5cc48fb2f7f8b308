"""The ingest pipeline: sources → parser → identity → dataset, summaries, rejects, failing sources,
and the generic parser protocol (trace collection reuses it)."""

from __future__ import annotations

import gzip
import io
import shutil

import pyarrow as pa

from analyzers import table as rt
from meshctl.identity import workload_of
from meshctl.ingest import FileSource, RejectSpool, file_sources, ingest, print_summary
from meshctl.parsers.accesslog import AccessLogParser
from meshctl.parsers.base import ParseResult, Reject
from meshctl.sources.files import InputFile
from meshctl.store import Dataset


def test_files_to_dataset_with_summaries(tmp_path, oracles_dir):
    data = oracles_dir / "data"
    sources = file_sources([str(data / "elastic-integrations/istio"), str(data / "linkerd-docs")])
    report = ingest(sources, AccessLogParser(), Dataset(tmp_path / "d"), progress=False)
    by_name = {s.source.rsplit("/", 1)[1]: s for s in report.sources}
    assert by_name["test-access-failed.log"].format == "istio-text" and by_name["test-access-failed.log"].rows == 8
    assert by_name["test-access-json-logs.log"].format == "istio-json"
    assert by_name["access-log-json.excerpt.log"].format == "linkerd-json"
    assert all(s.error is None and s.rejected == 0 and s.seconds >= 0 for s in report.sources)
    assert report.parsed == 48 and report.lines == 48 and report.rejected == 0
    # The Elastic copies repeat some requests: stored once.
    assert report.rows == report.parsed - report.append.duplicates
    ds = Dataset(tmp_path / "d")
    df = ds.read()
    assert len(df) == report.rows and list(df.columns) == rt.COLUMN_NAMES
    info = ds.info()
    assert info["rows"] == report.rows and len(info["sources"]) == 8
    # Collected again: every row is a duplicate.
    again = ingest(file_sources([str(data / "linkerd-docs")]), AccessLogParser(), ds, progress=False)
    assert again.rows == 0 and again.append.duplicates == 10


def test_rejects_land_in_the_dataset_and_are_shown(tmp_path, oracles_dir, capsys):
    good = (oracles_dir / "data/istio-docs/access-log-task.excerpt.log").read_bytes()
    bad = tmp_path / "bad.log"
    bad.write_bytes(good + b"{truncated\n" + b"\xff\xfe\xfd\n" * 3 + good)
    report = ingest(file_sources([str(bad)]), AccessLogParser(), Dataset(tmp_path / "d"), progress=False)
    assert (report.parsed, report.rejected, report.lines) == (4, 4, 8)
    rejects = list(Dataset(tmp_path / "d").iter_rejects())
    assert [r["line"] for r in rejects] == [3, 4, 5, 6] and all(r["file"] == str(bad) for r in rejects)
    print_summary(report)
    err = capsys.readouterr().err
    assert f"rejected {bad}:3: does not match the istio-text format" in err
    assert "4 rejected" in err


def test_many_rejects_spill_to_disk_and_all_are_written(tmp_path):
    junk = tmp_path / "junk.log"
    junk.write_bytes(b"".join(b"not an access log line %d\n" % i for i in range(25_000)))
    report = ingest(file_sources([str(junk)]), AccessLogParser("istio-text"), Dataset(tmp_path / "d"), progress=False)
    assert report.rejected == 25_000 and report.parsed == 0
    assert sum(1 for _ in Dataset(tmp_path / "d").iter_rejects()) == 25_000
    assert Dataset(tmp_path / "d").info()["rejected"] == 25_000


def test_a_failing_source_is_reported_and_the_rest_lands(tmp_path, oracles_dir):
    broken = tmp_path / "broken.log.gz"
    payload = b"".join(b"%d %x\n" % (i, i * 7919) for i in range(50_000))
    broken.write_bytes(gzip.compress(payload)[:20_000])  # a gzip file cut short
    good = oracles_dir / "data/istio-docs/access-log-task.excerpt.log"
    report = ingest(file_sources([str(broken), str(good)]), AccessLogParser(), Dataset(tmp_path / "d"),
                    progress=False)
    failed = {s.source: s.error for s in report.sources if s.error}
    assert list(failed) == [str(broken)] and "EOFError" in failed[str(broken)]
    assert report.rows == 2


def test_gzip_glob_and_node_log_layout(tmp_path, oracles_dir):
    src = oracles_dir / "data/elastic-integrations/istio/test-access_container_logs.log"
    pod_dir = tmp_path / "var/log/pods/default_reviews-v2-5f7d9b8c4-x2x9p_1b2c3d4e-0000-1111-2222-333344445555"
    (pod_dir / "istio-proxy").mkdir(parents=True)
    shutil.copy(src, pod_dir / "istio-proxy/0.log")
    with gzip.open(pod_dir / "istio-proxy/1.log.20220722-122400.gz", "wb") as f:
        f.write(src.read_bytes())
    sources = file_sources([str(tmp_path / "var/log/pods/*/istio-proxy/*")])
    assert len(sources) == 2 and all(s.reporter.workload == "reviews-v2" for s in sources)
    report = ingest(sources, AccessLogParser(), Dataset(tmp_path / "d"), progress=False, dedup=False)
    assert report.parsed == 30 and report.rejected == 0
    df = Dataset(tmp_path / "d").read()
    inbound = df[df["direction"] == "inbound"]
    assert set(inbound["destination_workload"]) == {"reviews-v2"} and set(inbound["destination_version"]) == {"v2"}
    outbound = df[df["direction"] == "outbound"]
    assert set(outbound["source_workload"]) == {"reviews-v2"}
    assert set(outbound["destination_service"]) == {"ratings.default.svc.cluster.local"}


def test_workload_and_namespace_for_plain_files(tmp_path, oracles_dir):
    src = str(oracles_dir / "data/istio-docs/access-log-task.excerpt.log")
    sources = file_sources([src], workload="httpbin", namespace="foo")
    report = ingest(sources, AccessLogParser(), Dataset(tmp_path / "d"), progress=False)
    df = Dataset(tmp_path / "d").read().sort_values("record_line")
    assert report.rows == 2
    assert list(df["reporter_workload"]) == ["httpbin", "httpbin"]
    assert list(df["direction"]) == ["outbound", "inbound"]


def test_batches_become_several_parts(tmp_path, oracles_dir):
    src = oracles_dir / "data/elastic-integrations/istio/test-access_container_logs.log"
    report = ingest(file_sources([str(src)]), AccessLogParser(block_bytes=1024), Dataset(tmp_path / "d"),
                    progress=False, batch_rows=4)
    assert report.rows == 15 and len(report.append.parts) >= 3


class SpanLikeParser:
    """A parser of another kind of record (as trace collection brings): ingest only needs the protocol."""

    name = "fake-spans"

    def parse_stream(self, stream, *, file, source=None):
        text = stream.read().decode()
        n = len(text.splitlines())
        table = pa.table({"timestamp": pa.array([1_700_000_000_000_000] * n, pa.timestamp("us", tz="UTC")),
                          "response_code": pa.array([200] * n, pa.int32()),
                          "span_id": pa.array([f"{i:016x}" for i in range(n)]),
                          "record_kind": pa.array(["span"] * n), "record_line": pa.array(range(1, n + 1), pa.int64())})
        yield ParseResult(table=table, rejects=[Reject.of(file, n + 1, "demo reject", b"")], lines=n + 1,
                          format="fake-spans")


def test_generic_parser_protocol(tmp_path):
    class Mem:
        name = "mem://spans"
        file = "spans.json"
        reporter = workload_of("checkout", "shop")

        def open(self):
            return io.BytesIO(b"a\nb\nc\n")

        def size(self):
            return None

    report = ingest([Mem()], SpanLikeParser(), Dataset(tmp_path / "d"), progress=False)
    assert (report.rows, report.rejected, report.sources[0].format) == (3, 1, "fake-spans")
    df = Dataset(tmp_path / "d").read()
    assert set(df["reporter_workload"]) == {"checkout"} and set(df["record_kind"]) == {"span"}


def test_stdin_source(tmp_path, oracles_dir, monkeypatch):
    data = (oracles_dir / "data/istio-docs/access-log-task.excerpt.log").read_bytes()

    class FakeStdin:
        buffer = io.BufferedReader(io.BytesIO(data))

    monkeypatch.setattr("sys.stdin", FakeStdin())
    report = ingest([FileSource(InputFile("<stdin>", None))], AccessLogParser(), Dataset(tmp_path / "d"),
                    progress=False)
    assert report.rows == 2 and report.sources[0].source == "<stdin>"


def test_reject_spool_round_trip():
    spool = RejectSpool(keep=3, memory=10)
    for i in range(55):
        spool.add([Reject.of("f", i, "r", b"x" * 10)])
    assert len(spool) == 55 and [r.line for r in spool.first] == [0, 1, 2]
    assert [r.line for r in spool] == list(range(55))
    spool.close()
