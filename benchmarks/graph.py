"""Build the service graph from 1M request rows: seconds and peak RSS.

The rows model a mesh as Istio logs it: every in-mesh call is written twice (client sidecar,
direction=outbound, and server sidecar, direction=inbound, same x-request-id), so the graph has to
pair them; some callers are outside the mesh (server side only), a database is a virtual peer, and a
few percent of calls fail (5xx, UF/UH/URX/UO/NR/RL/DC flags). Generated with numpy, so it costs
nothing per row in Python. Target (issue 4): build <= 2 s on 2 cores.

    .venv/bin/python benchmarks/graph.py [--rows 1000000] [--runs 3] [--seed 7] [--store]

--store also times writing the rows to a Parquet dataset and reading back the graph's columns.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import figure, median, peak_rss_mb, timed


def synthetic_rows(n_rows: int, seed: int = 7):
    """About n_rows rows (pyarrow Table in the requests-table schema) from a 48-workload mesh."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    from analyzers import table as rt

    rng = np.random.default_rng(seed)
    namespaces = ["shop", "payments", "catalog", "identity"]
    apps = [f"svc{i:02d}" for i in range(24)]
    app_ns = {a: namespaces[i % len(namespaces)] for i, a in enumerate(apps)}
    # Each app calls 3 apps further down the list (a DAG), versions v1/v2 for half of them.
    edges = [(a, apps[j]) for i, a in enumerate(apps) for j in range(i + 1, min(i + 4, len(apps)))]
    n_calls = int(n_rows / 1.9) + 16  # ~1.94 rows per call; trimmed to n_rows below
    e = rng.integers(0, len(edges), n_calls)
    src_app = np.array([s for s, _ in edges], dtype=object)[e]
    dst_app = np.array([d for _, d in edges], dtype=object)[e]
    src_ver = np.where(rng.random(n_calls) < 0.8, "v1", "v2").astype(object)
    dst_ver = np.where(rng.random(n_calls) < 0.8, "v1", "v2").astype(object)
    ns_of = np.vectorize(app_ns.get, otypes=[object])
    src_ns, dst_ns = ns_of(src_app), ns_of(dst_app)
    src_wl = src_app + "-" + src_ver
    dst_wl = dst_app + "-" + dst_ver
    dst_svc = dst_app + "." + dst_ns + ".svc.cluster.local"
    # Outcomes: 2% 5xx, 1% flagged proxy failures, 1% 4xx.
    u = rng.random(n_calls)
    code = np.where(u < 0.02, 503, np.where(u < 0.03, 0, np.where(u < 0.04, 404, 200))).astype(np.int32)
    flag_pool = np.array(["UF", "UH", "URX,UF", "UO", "NR", "RL", "DC"], dtype=object)
    flags = np.where((u >= 0.02) & (u < 0.03), flag_pool[rng.integers(0, len(flag_pool), n_calls)], None)
    dur = rng.lognormal(3.0, 0.6, n_calls)
    ts0 = np.datetime64("2026-03-01T12:00:00", "us").astype(np.int64)
    ts = ts0 + np.sort(rng.integers(0, 3_600_000_000, n_calls))
    rid = pd.Series(rng.integers(0, 2**63 - 1, n_calls)).map("{:016x}".format).to_numpy(dtype=object)

    # Client rows for every call; server rows for all but the connection failures (which never
    # reached the server); 5% of server rows come from callers outside the mesh (no client row).
    reached = code != 0
    outside = rng.random(n_calls) < 0.05
    client_idx = np.flatnonzero(~outside)
    server_idx = np.flatnonzero(reached)

    def block(idx, direction):
        out = direction == "outbound"
        return {
            "timestamp": ts[idx],
            "duration_ms": dur[idx] if out else dur[idx] * 0.9,
            "response_code": code[idx],
            "response_flags": flags[idx],
            "protocol": np.full(len(idx), "HTTP/1.1", dtype=object),
            "bytes_received": np.full(len(idx), 120, dtype=np.int64),
            "bytes_sent": rng.integers(200, 4000, len(idx)),
            "source_workload": src_wl[idx] if out else np.where(outside[idx], None, src_wl[idx]),
            "source_namespace": src_ns[idx] if out else np.where(outside[idx], None, src_ns[idx]),
            "source_app": src_app[idx] if out else np.where(outside[idx], None, src_app[idx]),
            "source_version": src_ver[idx] if out else np.where(outside[idx], None, src_ver[idx]),
            "destination_service": dst_svc[idx],
            "destination_workload": np.where(code[idx] == 0, None, dst_wl[idx]),
            "destination_namespace": dst_ns[idx],
            "destination_app": np.where(code[idx] == 0, None, dst_app[idx]),
            "destination_version": np.where(code[idx] == 0, None, dst_ver[idx]),
            "direction": np.full(len(idx), direction, dtype=object),
            "reporter_workload": src_wl[idx] if out else dst_wl[idx],
            "request_id": rid[idx],
            "record_kind": np.full(len(idx), "access_log", dtype=object),
        }

    parts = [block(client_idx, "outbound"), block(server_idx, "inbound")]
    cols = {k: np.concatenate([p[k] for p in parts])[:n_rows] for k in parts[0]}
    schema = rt.arrow_schema()
    arrays = {}
    for k, v in cols.items():
        typ = schema.field(k).type
        if k == "timestamp":
            arrays[k] = pa.array(v, type=pa.int64()).cast(typ)
        else:
            arrays[k] = pa.array(v, type=typ, from_pandas=True)
    return rt.conform_arrow(pa.table(arrays))


def hwm_mb() -> float:
    """Peak resident set of this process image (VmHWM). ru_maxrss would do, but on Linux it carries
    over the parent's peak across fork+exec, and the parent just generated a million rows."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return peak_rss_mb()


def child(path: str, runs: int) -> None:
    """Read the rows from a Parquet file and build the graph: the figures of a fresh process."""
    import pyarrow.parquet as pq

    from analyzers import table as rt
    from analyzers.graph import GRAPH_COLUMNS, build_graph

    read_s, df = timed(lambda: rt.to_frame(pq.read_table(path, columns=GRAPH_COLUMNS)))
    rss_read = hwm_mb()
    build_graph(df.head(1000))  # warm imports (networkx, pandas paths) outside the timed runs
    rss_warm = hwm_mb()
    times, cpu = [], []
    g = None
    for _ in range(runs):
        c0 = time.process_time()
        t, g = timed(lambda: build_graph(df, group_by="app"))
        times.append(t)
        cpu.append(time.process_time() - c0)
    wl_s, gw = timed(lambda: build_graph(df, group_by="workload"))
    print(f"rows: {len(df):,} ({g.graph['rows_counted']:,} counted, {g.graph['rows_dropped_server']:,} "
          f"server-side duplicates dropped); app graph {g.number_of_nodes()} nodes / {g.number_of_edges()} edges, "
          f"workload graph {gw.number_of_nodes()} nodes / {gw.number_of_edges()} edges")
    figure("read Parquet (graph columns) -> DataFrame", read_s, "s")
    figure("build_graph, group_by=app (median)", median(times), "s", f"target <= 2 s; {runs} runs, min {min(times):.3f}")
    figure("build_graph, group_by=app: CPU time (median)", median(cpu), "s",
           "less sensitive than wall time to other work on the machine")
    figure("build_graph, group_by=workload", wl_s, "s")
    figure("throughput", len(df) / median(times) / 1e6, "Mrows/s")
    figure("peak RSS after reading the rows", rss_read, "MiB")
    figure("peak RSS after the builds", hwm_mb(), "MiB", f"the builds added {hwm_mb() - rss_warm:.0f} MiB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--store", action="store_true", help="also time the meshctl store round trip")
    ap.add_argument("--child", metavar="PARQUET", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.runs)
        return

    import pyarrow.parquet as pq

    with tempfile.TemporaryDirectory() as tmp:
        gen_s, table = timed(lambda: synthetic_rows(args.rows, args.seed))
        figure("generate rows (numpy, not part of the target)", gen_s, "s")
        path = str(Path(tmp) / "rows.parquet")
        pq.write_table(table, path)
        # The graph is built in a fresh process so that its peak RSS is the graph's, not the generator's.
        subprocess.run([sys.executable, __file__, "--child", path, "--runs", str(args.runs)], check=True)
        if args.store:
            from analyzers.graph import GRAPH_COLUMNS
            from meshctl.store import Dataset

            ds = Dataset(Path(tmp) / "data")
            w_s, _ = timed(lambda: ds.append([table]))
            r_s, _ = timed(lambda: ds.read(columns=GRAPH_COLUMNS))
            figure("store: append to a dataset (with dedup)", w_s, "s")
            figure("store: read the graph columns", r_s, "s")


if __name__ == "__main__":
    main()
