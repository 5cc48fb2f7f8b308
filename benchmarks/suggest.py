"""`meshctl suggest`: suggestion plus replay on 1M generated requests; prints seconds.

Traffic: 10 services, 1,000,000 requests over 100 s (one with a failing host, several Poisson-bursty,
several calling workloads and pods). For each kind: the suggestion with its replay (the suggested
limits pass the recording, so the replay is mostly vectorized), then the circuit-breaker replay
with limits scaled down so that every burst overflows (the event simulation runs), against a naive
event-by-event simulation of the same limits as the baseline.

    .venv/bin/python benchmarks/suggest.py [--requests N]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import figure, peak_rss_mb, timed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=1_000_000)
    args = ap.parse_args()
    import numpy as np

    from analyzers.suggest import SuggestConfig, analyze
    from analyzers.suggest.circuit_breaker import impute_durations
    from analyzers.suggest.model import ConnectionPool
    from analyzers.suggest.replay import replay_cluster_pool
    from analyzers.suggest.synthetic import ServiceTraffic, generate
    from analyzers.suggest.traffic import Traffic
    from tests.test_replay import naive_pool  # the test's reference simulation is the baseline

    def naive_rejected(start, duration, n):
        pending_overflow, active_overflow, _queued = naive_pool(start, duration, n, n, n)
        return pending_overflow + active_overflow

    per = args.requests // 10
    seconds = 100.0
    specs = [ServiceTraffic(service=f"svc{i}", rps=per / seconds, seconds=seconds, hosts=3 + i % 5,
                            callers=[f"caller{j}" for j in range(1 + i % 3)], caller_pods=2, poisson=i % 2 == 0,
                            latency_ms=20 + 10 * i, failing_hosts={1: 1.0} if i == 3 else {}, fail_from=30,
                            fail_until=60, routes=["a", "b", "c"]) for i in range(10)]
    gen_s, df = timed(lambda: generate(specs))
    print(f"requests: {len(df):,} generated in {gen_s:.1f} s (not counted)")
    for kind, cfg in (("circuit-breaker", SuggestConfig()), ("rate-limit", SuggestConfig(per_route=True)),
                      ("sidecar", SuggestConfig())):
        s_only, _ = timed(lambda k=kind, c=cfg: analyze(k, df, c, replay=False))
        both, res = timed(lambda k=kind, c=cfg: analyze(k, df, c, replay=True))
        figure(f"suggest {kind}", s_only, "s", f"{len(res.suggestions)} suggestions")
        figure(f"suggest {kind} + replay", both, "s",
               f"replay {both - s_only:.2f} s; rejected {sum(s.replay['suggested'].rejected_overflow + s.replay['suggested'].rate_limited for s in res.suggestions)}")

    # the event simulation at work: svc9's limits scaled to half the suggestion (overflow in its peaks
    # only: the simulation jumps between them) and to 2 (nearly everything overflows)
    tr = Traffic(df, prefer="client")
    rows = np.flatnonzero(tr.service.codes == tr.service.labels.index("svc9.shop.svc.cluster.local"))
    durations, _ = impute_durations(tr, rows)
    callers = tr.caller.codes[rows]
    (svc9,) = analyze("circuit-breaker", df, SuggestConfig(services=["svc9"]), replay=False).suggestions
    half = max(1, svc9.limits.connection_pool.max_connections // 2)
    for name, n in (("half the suggestion", half), ("2", 2)):
        pool = ConnectionPool(n, n, n)
        sim_s, res = timed(lambda pool=pool: replay_cluster_pool(tr, rows, durations, pool, h2=False))
        base_s, naive = timed(lambda n=n: sum(naive_rejected(tr.start[rows[callers == c]], durations[callers == c], n)
                                              for c in np.unique(callers)))
        assert naive == res.rejected_overflow, (naive, res.rejected_overflow)
        figure(f"replay pool, limits {name} ({n})", sim_s, "s",
               f"{len(rows):,} requests, {res.rejected_overflow:,} 503 UO")
        figure("  naive event simulation (baseline)", base_s, "s")
        figure("  ratio naive / replay", base_s / sim_s, "x")
    figure("peak RSS", peak_rss_mb(), "MiB")


if __name__ == "__main__":
    main()
