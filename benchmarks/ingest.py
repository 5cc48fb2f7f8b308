"""Ingest throughput: generated access logs → `meshctl collect logs` pipeline → Parquet dataset.

    .venv/bin/python benchmarks/ingest.py                      # 1M lines per format
    .venv/bin/python benchmarks/ingest.py --lines 5000000 --formats istio-json   # the RSS target

For each format it writes N lines (cached under --workdir), then runs the whole pipeline (parse,
normalize, identity, dedup, write) in a fresh process and prints lines/s, MB/s, that process's
peak RSS, its CPU seconds (and by stage). On the same Istio JSON file it also runs a bare
`pyarrow.json.read_json(path)` (default options, all threads) and prints the ratio pipeline/bare.
Both clocks start after the libraries are loaded (the import time of the pipeline's is printed).

Targets (2 cores): Istio JSON end to end >= 0.8x bare read_json (aim 1.0x); Istio TEXT >= 500k
lines/s; peak RSS < 1.5 GB for 5M lines.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import figure, peak_rss_mb

# What the pipeline loads lazily (the meshctl modules that parse, resolve identities and store).
WARM_IMPORTS = ("numpy", "pandas", "polars", "pyarrow.compute", "pyarrow.csv", "pyarrow.json", "pyarrow.parquet",
                "meshctl.parsers.normalize", "meshctl.parsers.jsonlog", "meshctl.parsers.text",
                "meshctl.parsers.otlp_logs", "meshctl.store", "meshctl.identity")
FORMATS = ("istio-json", "istio-text", "envoy-text", "linkerd-json", "linkerd-apache", "otlp-logs")
SLOW = {"otlp-logs"}  # per-record Python path: measured on fewer lines

SERVICES = [("productpage", "default", 9080), ("reviews", "default", 9080), ("ratings", "default", 9080),
            ("details", "default", 9080), ("cart", "shop", 8080), ("checkout", "shop", 8080),
            ("payments", "shop", 8443), ("catalog", "shop", 8080)]
AGENTS = ["curl/7.79.1", "Go-http-client/1.1", "python-requests/2.31.0", "grpc-java-netty/1.58.0",
          "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/120.0.0.0 Safari/537.36",
          "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0 meshctl-bench/1.0 "
          "(+https://example.org/a-rather-long-user-agent-string-as-browsers-send-them)"]
PATHS = ["/productpage", "/reviews/0", "/ratings/0", "/details/0", "/api/v1/cart/items?limit=20&offset=40",
         "/api/v1/checkout/confirm", "/static/bootstrap/fonts/glyphicons-halflings-regular.woff2",
         "/api/v2/catalog/search?q=shoes&sort=price&page=3"]
CODES = [200] * 90 + [201, 204, 301, 404, 404, 429, 500, 503, 503, 0]
FLAGS = {429: "RL", 503: "UO", 0: "DC", 500: "-", 404: "NR"}


def _record(i: int, rnd: random.Random) -> dict:
    svc, ns, port = SERVICES[i % len(SERVICES)]
    code = rnd.choice(CODES)
    dur = rnd.randint(1, 900)
    inbound = i % 2 == 0
    ts = 1_767_225_600.0 + i * 0.002
    sec = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts))
    return {
        "start_time": f"{sec}.{int(ts * 1000) % 1000:03d}Z",
        "method": "GET" if i % 5 else "POST",
        "path": rnd.choice(PATHS),
        "protocol": "HTTP/1.1" if i % 3 else "HTTP/2",
        "response_code": code,
        "response_flags": FLAGS.get(code, "-"),
        "response_code_details": "via_upstream" if code not in FLAGS else "upstream_reset_before_response_started",
        "connection_termination_details": None,
        "upstream_transport_failure_reason": None,
        "bytes_received": rnd.randint(0, 2048),
        "bytes_sent": rnd.randint(0, 65536),
        "duration": dur,
        "upstream_service_time": str(max(dur - 1, 0)) if code not in (0, 429) else None,
        "x_forwarded_for": None,
        "user_agent": rnd.choice(AGENTS),
        "request_id": str(uuid.UUID(int=rnd.getrandbits(128))),
        "authority": f"{svc}:{port}",
        "upstream_host": f"10.{i % 7}.{(i // 7) % 250}.{i % 200 + 2}:{port}",
        "upstream_cluster": f"inbound|{port}||" if inbound else f"outbound|{port}|v{i % 3 + 1}|{svc}.{ns}.svc.cluster.local",
        "upstream_local_address": f"127.0.0.6:{30000 + i % 30000}",
        "downstream_local_address": f"10.96.{i % 200}.{i % 250}:{port}",
        "downstream_remote_address": f"10.{(i + 3) % 7}.{(i // 3) % 250}.{i % 190 + 3}:{40000 + i % 20000}",
        "requested_server_name": f"outbound_.{port}_._.{svc}.{ns}.svc.cluster.local" if inbound else None,
        "route_name": "default",
    }


def _dash(v: object) -> str:
    return "-" if v is None else str(v)


def _line(fmt: str, r: dict) -> str:
    if fmt == "istio-json":
        return json.dumps(r, separators=(",", ":"))
    req = f'"{r["method"]} {r["path"]} {r["protocol"]}"'
    common = (f'{r["bytes_received"]} {r["bytes_sent"]} {r["duration"]} {_dash(r["upstream_service_time"])} '
              f'"-" "{r["user_agent"]}" "{r["request_id"]}" "{r["authority"]}" "{r["upstream_host"]}"')
    if fmt == "istio-text":
        return (f'[{r["start_time"]}] {req} {r["response_code"]} {r["response_flags"]} '
                f'{r["response_code_details"]} - "-" {common} {r["upstream_cluster"]} {r["upstream_local_address"]} '
                f'{r["downstream_local_address"]} {r["downstream_remote_address"]} '
                f'{_dash(r["requested_server_name"])} {r["route_name"]}')
    if fmt == "envoy-text":
        return f'[{r["start_time"]}] {req} {r["response_code"]} {r["response_flags"]} {common}'
    host = r["authority"]
    if fmt == "linkerd-json":
        return json.dumps({
            "client.addr": r["downstream_remote_address"], "client.id": "web.shop.serviceaccount.identity.linkerd.cluster.local",
            "host": host, "method": r["method"], "processing_ns": "39826", "request_bytes": str(r["bytes_received"]),
            "response_bytes": str(r["bytes_sent"]), "status": r["response_code"],
            "timestamp": r["start_time"].replace("Z", "123456Z"), "total_ns": str(r["duration"] * 1_000_000),
            "trace_id": "", "uri": f"http://{host}{r['path']}", "user_agent": r["user_agent"], "version": "HTTP/2.0",
        }, separators=(",", ":"))
    if fmt == "linkerd-apache":
        return (f'{r["downstream_remote_address"]} web.shop.serviceaccount.identity.linkerd.cluster.local - '
                f'[{r["start_time"]}] "{r["method"]} http://{host}{r["path"]} HTTP/2.0" {r["response_code"]}')
    if fmt == "otlp-logs":
        body = _line("istio-text", r)
        t_ns = int(time.mktime(time.strptime(r["start_time"][:19], "%Y-%m-%dT%H:%M:%S")) * 1e9)
        return json.dumps({"resourceLogs": [{"resource": {"attributes": [
            {"key": "node_name", "value": {"stringValue": "sidecar~10.1.2.3~reviews-v2-5f7d9b8c4-x2x9p.default~default.svc.cluster.local"}}]},
            "scopeLogs": [{"logRecords": [{"timeUnixNano": str(t_ns), "body": {"stringValue": body},
                                           "traceId": uuid.UUID(int=hash(body) & (2**128 - 1)).hex,
                                           "spanId": f"{hash(body) & (2**64 - 1):016x}"}]}]}]},
            separators=(",", ":"))
    raise ValueError(fmt)


def generate(fmt: str, n: int, workdir: Path) -> Path:
    path = workdir / f"{fmt}-{n}.log"
    if path.exists() and path.stat().st_size > 0:
        return path
    rnd = random.Random(42)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        buf = []
        for i in range(n):
            buf.append(_line(fmt, _record(i, rnd)))
            if len(buf) >= 10_000:
                f.write("\n".join(buf) + "\n")
                buf = []
        if buf:
            f.write("\n".join(buf) + "\n")
    tmp.rename(path)
    return path


# ---- measured runs (each in a fresh process, so peak RSS is the run's own) --------------------
def _child(kind: str, fmt: str, path: str) -> None:
    if kind == "bare":
        import pyarrow.json as pj

        t0, c0 = time.perf_counter(), _cpu()
        rows = pj.read_json(path).num_rows
    elif kind == "bare-csv":
        import pyarrow.csv as pcsv

        # The tokenizer meshctl's TEXT reader runs on (space-separated, "-quoted fields), here with
        # pyarrow's defaults otherwise: all threads, type inference, every column.
        parse = pcsv.ParseOptions(delimiter=" ", quote_char='"', double_quote=False, escape_char=False)
        t0, c0 = time.perf_counter(), _cpu()
        rows = pcsv.read_csv(path, read_options=pcsv.ReadOptions(autogenerate_column_names=True),
                             parse_options=parse).num_rows
    else:
        import importlib
        import shutil

        # Libraries are loaded before the clock starts, as the baseline loads pyarrow.json before its
        # own: the figures are throughput, not start-up (`meshctl --help` start-up: benchmarks/startup.py).
        t_imp = time.perf_counter()
        for mod in WARM_IMPORTS:
            importlib.import_module(mod)
        import_seconds = time.perf_counter() - t_imp
        from meshctl.identity import Identity
        from meshctl.ingest import file_sources, ingest
        from meshctl.parsers.accesslog import AccessLogParser
        from meshctl.store import Dataset

        stages = _stage_clocks()
        out = tempfile.mkdtemp(prefix="meshctl-bench-")
        sources = file_sources([path], workload="reviews-v2", namespace="default")
        try:
            t0, c0 = time.perf_counter(), _cpu()
            report = ingest(sources, AccessLogParser(fmt), Dataset(out), identity=Identity(), progress=False)
            seconds, cpu = time.perf_counter() - t0, _cpu() - c0
        finally:
            shutil.rmtree(out, ignore_errors=True)
        rows = report.parsed
        assert report.rejected == 0, report.first_rejects[:3]
        print(json.dumps({"seconds": seconds, "cpu": cpu, "rows": rows, "rss_mb": peak_rss_mb(),
                          "import_seconds": import_seconds, "stages": stages}))
        return
    seconds, cpu = time.perf_counter() - t0, _cpu() - c0
    print(json.dumps({"seconds": seconds, "cpu": cpu, "rows": rows, "rss_mb": peak_rss_mb()}))


def _cpu() -> float:
    """CPU seconds of this process so far, all threads (user + system)."""
    t = os.times()
    return t.user + t.system


def _stage_clocks() -> dict[str, float]:
    """Thread CPU time spent in each pipeline stage, summed over the threads that run it (filled in
    as the pipeline runs). Work done in the threads of polars and Arrow is not in any stage."""
    import threading

    import pyarrow.parquet as pq

    import meshctl.store as store
    from meshctl.identity import Identity
    from meshctl.parsers import accesslog

    clocks: dict[str, float] = {}
    lock = threading.Lock()

    def timed(owner: object, name: str, stage: str) -> None:
        inner = getattr(owner, name, None)
        if inner is None:  # (an older meshctl, measured for comparison)
            return

        def wrapper(*args: object, **kw: object) -> object:
            c = time.thread_time()
            try:
                return inner(*args, **kw)
            finally:
                with lock:
                    clocks[stage] = clocks.get(stage, 0.0) + time.thread_time() - c

        setattr(owner, name, wrapper)

    timed(accesslog, "_fast", "reader")  # the format's block reader (polars / Arrow JSON / Arrow CSV)
    timed(accesslog, "normalize", "normalize")
    timed(Identity, "enrich", "identity")
    timed(store, "dedup_keys", "keys")
    timed(pq, "write_table", "write")
    timed(store, "_first_unseen", "dedup")
    return clocks


def measure(kind: str, fmt: str, path: Path) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", kind, fmt, str(path)], capture_output=True,
                         text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{kind} {fmt} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--formats", default=",".join(FORMATS))
    ap.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "meshctl-bench-ingest"))
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(*args.child)
        return
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    formats = [f for f in args.formats.split(",") if f]
    print(f"# ingest benchmark: {args.lines:,} lines per format ({os.cpu_count()} cpus), files in {workdir}")
    for fmt in formats:
        n = args.lines // 10 if fmt in SLOW else args.lines
        path = generate(fmt, n, workdir)
        size_mb = path.stat().st_size / 1e6
        r = measure("pipeline", fmt, path)
        note = f"{r['rows']:,} rows, {size_mb:,.0f} MB, {size_mb * 1e6 / n:,.0f} B/line"
        figure(f"{fmt} end-to-end lines/s", r["rows"] / r["seconds"], "lines/s", note)
        figure(f"{fmt} end-to-end MB/s", size_mb / r["seconds"], "MB/s")
        figure(f"{fmt} peak RSS", r["rss_mb"], "MiB")
        figure(f"{fmt} CPU", r["cpu"], "s", f"{r['cpu'] / r['seconds']:.2f} cores busy over {r['seconds']:.2f} s; "
               f"+{r['import_seconds']:.2f} s loading libraries before the clock")
        st = r["stages"]
        parts = " · ".join(f"{k} {st.get(k, 0.0):.2f}" for k in ("reader", "normalize", "identity", "keys", "dedup", "write"))
        print(f"  {fmt} CPU s by stage: {parts} · other {r['cpu'] - sum(st.values()):.2f} "
              "(other: polars/Arrow threads, reading and cutting blocks, queues, GC)")
        if fmt == "istio-text":
            b = measure("bare-csv", fmt, path)
            figure("istio-text bare pyarrow.csv.read_csv lines/s", b["rows"] / b["seconds"], "lines/s",
                   "the same file, space-delimited, default options otherwise")
            figure("istio-text ratio end-to-end / bare read_csv", b["seconds"] / r["seconds"], "x",
                   "target: >= 500k lines/s end to end; this ratio carries it across machines")
        if fmt == "istio-json":
            b = measure("bare", fmt, path)
            figure("istio-json bare pyarrow.json.read_json lines/s", b["rows"] / b["seconds"], "lines/s",
                   "default options, all threads")
            figure("istio-json bare read_json MB/s", size_mb / b["seconds"], "MB/s")
            figure("istio-json bare read_json peak RSS", b["rss_mb"], "MiB")
            figure("istio-json bare read_json CPU", b["cpu"], "s", f"{b['cpu'] / b['seconds']:.2f} cores busy")
            figure("istio-json ratio end-to-end / bare read_json", b["seconds"] / r["seconds"], "x",
                   "target >= 0.8, aim >= 1.0")


if __name__ == "__main__":
    main()
