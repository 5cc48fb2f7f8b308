"""Benchmark: judge a canary over 10M request rows (two cohorts, the 5 built-in metrics).

    .venv/bin/python benchmarks/canary.py                  # 10M rows, 50/50 split, in memory
    .venv/bin/python benchmarks/canary.py --rows 2e6 --split 0.1 --continuous --judge kayenta
    .venv/bin/python benchmarks/canary.py --from-disk      # + write/read a Parquet dataset

Rows are generated vectorized (not timed) in the requests-table schema: whole-millisecond latencies
as Envoy logs them (or continuous ones with --continuous), 0.1% / 0.15% 5xx, ~20 routes behind 2000
distinct paths, string columns dictionary-encoded as the Parquet store hands them out. Timed: cohort
assignment (selectors, reporter side), the judge (error_rate, latency, latency_p50/p90/p99: sorting,
rank-sum interval with zeroin, quantile and proportion tests, power), and the per-route breakdown.
Target: <= 2 s on 2 cores for 10M rows. Prints seconds per stage and peak RSS.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import figure, peak_rss_mb


def make_table(rows: int, split: float, continuous: bool, seed: int = 1, dictionary: bool = True):
    import numpy as np
    import pyarrow as pa

    from analyzers.table import arrow_schema

    rng = np.random.default_rng(seed)
    canary = rng.random(rows) < split
    t0 = 1_767_261_600_000_000  # 2026-01-01T10:00Z in µs
    ts = t0 + np.sort(rng.integers(0, 1800 * 1_000_000, rows))
    lat = rng.lognormal(3.0, 0.6, rows)
    lat[canary] *= 1.03  # a small, real shift the judge must not fail on
    if not continuous:
        lat = np.round(lat)
    err = rng.random(rows) < np.where(canary, 0.0015, 0.001)
    code = np.where(err, 503, 200).astype(np.int32)
    flags = np.where(err & (rng.random(rows) < 0.3), 1, 0)  # some 503s carry UF
    n_paths = 2000
    path_values = [f"/api/v1/items/{i}" for i in range(n_paths - 100)] + \
                  [f"/api/v1/users/{i}/orders" for i in range(80)] + [f"/static/r{i}.css" for i in range(20)]
    path_idx = rng.integers(0, n_paths, rows).astype(np.int32)
    method_idx = (rng.random(rows) < 0.2).astype(np.int32)

    def dict_col(idx, values):
        arr = pa.DictionaryArray.from_arrays(pa.array(idx, pa.int32()), pa.array(values, pa.string()))
        return arr if dictionary else arr.cast(pa.string())

    def const(value):
        return dict_col(np.zeros(rows, np.int32), [value])

    cols = {
        "timestamp": pa.array(ts, pa.timestamp("us", tz="UTC")),
        "duration_ms": pa.array(lat),
        "response_code": pa.array(code),
        "grpc_status": pa.nulls(rows, pa.int32()),
        "response_flags": pa.DictionaryArray.from_arrays(
            pa.array(np.where(flags == 1, 0, -1), pa.int32(), mask=flags == 0), pa.array(["UF"], pa.string()))
        if dictionary else pa.array(np.where(flags == 1, "UF", None), pa.string()),
        "method": dict_col(method_idx, ["GET", "POST"]),
        "path": dict_col(path_idx, path_values),
        "direction": const("inbound"),
        "destination_service": const("reviews.shop.svc.cluster.local"),
        "destination_app": const("reviews"),
        "destination_namespace": const("shop"),
        "destination_version": dict_col(canary.astype(np.int32), ["v1", "v2"]),
    }
    schema = arrow_schema()
    fields = [pa.field(n, cols[n].type) for n in cols]
    del schema
    return pa.Table.from_arrays(list(cols.values()), schema=pa.schema(fields))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=float, default=10e6)
    ap.add_argument("--split", type=float, default=0.5, help="canary share of the rows")
    ap.add_argument("--continuous", action="store_true", help="continuous latencies (every value distinct)")
    ap.add_argument("--judge", choices=["meshctl", "kayenta"], default="meshctl")
    ap.add_argument("--plain-strings", action="store_true", help="string columns not dictionary-encoded")
    ap.add_argument("--routes", type=int, default=20)
    ap.add_argument("--from-disk", action="store_true", help="also write a Parquet dataset and time read+judge")
    args = ap.parse_args()
    rows = int(args.rows)

    from analyzers.canary import JudgeConfig, assign, judge, parse_selector

    t = time.perf_counter()
    table = make_table(rows, args.split, args.continuous, dictionary=not args.plain_strings)
    print(f"# {rows:,} rows generated in {time.perf_counter() - t:.1f} s (not timed); judge {args.judge}, "
          f"canary share {args.split:g}, {'continuous' if args.continuous else 'whole-ms'} latencies", flush=True)
    cfg = JudgeConfig(judge=args.judge)
    base, can = parse_selector("version=v1"), parse_selector("version=v2")

    # Wall time, and this process's CPU time beside it: on a shared machine the CPU figure is the one
    # that does not depend on the neighbours (the work is single-threaded numpy).
    w0, c0 = time.perf_counter(), time.process_time()
    cohorts = assign(table, "reviews", baseline=base, canary=can)
    w1, c1 = time.perf_counter(), time.process_time()
    res = judge(cfg, cohorts, routes=0)
    w2, c2 = time.perf_counter(), time.process_time()
    res_routes = judge(cfg, assign(table, "reviews", baseline=base, canary=can), routes=args.routes) \
        if args.routes else None
    w3, c3 = time.perf_counter(), time.process_time()
    figure("cohorts (selectors, reporter side)", w1 - w0, "s", f"cpu {c1 - c0:.3f} s; "
           f"{cohorts.baseline.rows:,} + {cohorts.canary.rows:,} requests")
    figure("judge, 5 metrics", w2 - w1, "s", f"cpu {c2 - c1:.3f} s; verdict {res.verdict}, score {res.score:g}")
    figure("total: cohorts + judge", w2 - w0, "s", f"cpu {c2 - c0:.3f} s; target <= 2 s on 2 cores")
    if res_routes is not None:
        figure(f"cohorts + judge + {args.routes}-route breakdown", w3 - w2, "s",
               f"cpu {c3 - c2:.3f} s; {len(res_routes.routes)} routes")
    for m in res.metrics:
        print(f"#   {m.name:<12} {m.classification:<8} p={m.p_value:.3g} effect={m.effect:.4g} "
              f"ci=[{m.ci[0]:.4g}, {m.ci[1]:.4g}]", flush=True)
    if args.from_disk:
        from meshctl.store import Dataset

        with tempfile.TemporaryDirectory() as tmp:
            plain = make_table(rows, args.split, args.continuous, dictionary=False)
            from analyzers.table import conform_arrow

            ds = Dataset(Path(tmp) / "data")
            step = 1_000_000
            ds.append((conform_arrow(plain.slice(i, step)) for i in range(0, rows, step)), dedup=False)
            del plain
            t4 = time.perf_counter()
            cols = ["timestamp", "duration_ms", "response_code", "grpc_status", "response_flags", "span_status",
                    "method", "path", "direction", "destination_service", "destination_app",
                    "destination_namespace", "destination_version", "record_kind"]
            disk = ds.arrow(columns=cols, dictionary=True)
            t5 = time.perf_counter()
            r = judge(cfg, assign(disk, "reviews", baseline=base, canary=can), routes=args.routes)
            t6 = time.perf_counter()
            figure("read Parquet dataset (dictionary strings)", t5 - t4, "s", f"{disk.num_rows:,} rows")
            figure(f"cohorts + judge + {args.routes} routes, from disk", t6 - t5, "s", f"verdict {r.verdict}")
            figure("read + judge from disk", t6 - t4, "s", "what `meshctl analyze canary` spends after start-up")
    figure("peak RSS", peak_rss_mb(), "MiB")


if __name__ == "__main__":
    main()
