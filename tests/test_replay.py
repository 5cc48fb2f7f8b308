"""The replay models against hand-worked cases and against a naive reference simulation."""

from __future__ import annotations

import heapq

import numpy as np
import pytest

from analyzers.suggest.model import ConnectionPool, OutlierDetection, TokenBucket
from analyzers.suggest.replay import bucket_depth_needed, replay_bucket, replay_pool


def naive_pool(start, duration, c, p, r, h2=False):
    """Event-by-event from the first request, no shortcuts: the reference for replay_pool, and the
    baseline benchmarks/suggest.py times it against. (pending overflows, active overflows, queued)"""
    heap, queue = [], []
    active = pend_of = act_of = queued = 0
    for i, t in enumerate(np.asarray(start).tolist()):
        while heap and heap[0] <= t:
            e = heapq.heappop(heap)
            active -= 1
            while queue and active < min(c, r):
                q = queue.pop(0)
                active += 1
                heapq.heappush(heap, e + duration[q])
        if h2 or (active < c and not queue):
            if active < r:
                active += 1
                heapq.heappush(heap, t + duration[i])
            else:
                act_of += 1
        elif len(queue) < p:
            queue.append(i)
            queued += 1
        else:
            pend_of += 1
    return pend_of, act_of, queued


def test_burst_beyond_connections_and_queue():
    start = np.zeros(10)
    dur = np.full(10, 0.3)
    res = replay_pool(start, dur, ConnectionPool(max_connections=2, http1_max_pending_requests=1,
                                                 http2_max_requests=100))
    assert (res.pending_overflow, res.active_overflow, res.queued) == (7, 0, 1)
    assert res.rejected_overflow == 7
    assert res.max_queue_wait_ms == pytest.approx(300)


def test_burst_beyond_max_requests_is_active_overflow():
    res = replay_pool(np.zeros(10), np.full(10, 0.3), ConnectionPool(100, 100, 3))
    assert (res.pending_overflow, res.active_overflow, res.queued) == (0, 7, 0)


def test_http2_only_max_requests_applies():
    res = replay_pool(np.zeros(10), np.full(10, 0.3), ConnectionPool(1, 1, 4), h2=True)
    assert (res.active_overflow, res.pending_overflow, res.queued) == (6, 0, 0)


def test_unset_limits_reject_nothing():
    rng = np.random.default_rng(1)
    start = np.sort(rng.uniform(0, 10, 5000))
    res = replay_pool(start, rng.exponential(0.5, 5000), ConnectionPool())
    assert res.rejected_overflow == 0 and res.queued == 0


@pytest.mark.parametrize("seed", range(12))
def test_matches_naive_simulation(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(50, 3000))
    # bursty arrivals: quiet stretches and spikes, so the fast path and the simulation both run
    start = np.sort(np.concatenate([rng.uniform(0, 20, n // 2), rng.normal(7, 0.05, n // 4),
                                    rng.normal(15, 0.02, n - n // 2 - n // 4)]))
    dur = rng.lognormal(np.log(0.05), 0.6, n)
    c, p, r = int(rng.integers(1, 12)), int(rng.integers(0, 8)), int(rng.integers(1, 15))
    h2 = bool(seed % 4 == 3)
    got = replay_pool(start, dur, ConnectionPool(c, p, r), h2=h2)
    assert (got.pending_overflow, got.active_overflow, got.queued) == naive_pool(start, dur, c, p, r, h2)


def naive_bucket(times, b: TokenBucket):
    tokens, last, limited = float(b.max_tokens), times[0], 0
    for t in times:
        tokens = min(b.max_tokens, tokens + (t - last) * b.rate)
        last = t
        if tokens >= 1 - 1e-9:
            tokens -= 1
        else:
            limited += 1
    return limited


def test_bucket_continuous_refill_as_envoy_1_40():
    # Measured on Envoy 1.40: 5 tokens, 5 per 1 s, a request every 50 ms for 4 s -> 24 pass
    times = np.arange(80) * 0.05
    res = replay_bucket(times, TokenBucket(5, 5, 1.0))
    assert res.requests - res.rate_limited == 24


@pytest.mark.parametrize("seed", range(8))
def test_bucket_matches_naive_and_depth_is_tight(seed):
    rng = np.random.default_rng(100 + seed)
    times = np.sort(rng.uniform(0, 10, int(rng.integers(20, 2000))))
    rate = float(rng.uniform(5, 150))
    b = TokenBucket(int(rng.integers(1, 40)), max(1, int(rate)), 1.0)
    assert replay_bucket(times, b).rate_limited == naive_bucket(times, b)
    depth = bucket_depth_needed(times, b.rate)
    ok = TokenBucket(int(np.ceil(depth - 1e-9)), b.tokens_per_fill, 1.0)
    assert naive_bucket(times, ok) == 0
    if ok.max_tokens > 1:
        assert naive_bucket(times, TokenBucket(ok.max_tokens - 1, b.tokens_per_fill, 1.0)) > 0


def _outlier_traffic(codes_by_host: dict[str, list[int]], spacing=0.01):
    import pandas as pd

    from analyzers.suggest.traffic import Traffic
    from analyzers.table import conform_frame

    rows = []
    n = max(len(v) for v in codes_by_host.values())
    k = 0
    for i in range(n):
        for host, codes in codes_by_host.items():
            if i < len(codes):
                rows.append({"timestamp": pd.Timestamp("2026-01-01T00:00:00Z") + pd.Timedelta(seconds=k * spacing),
                             "duration_ms": 5.0, "response_code": codes[i], "upstream_host": host,
                             "destination_service": "svc", "direction": "outbound"})
                k += 1
    return Traffic(conform_frame(pd.DataFrame(rows)))


def test_outlier_ejects_at_threshold_and_counts_avoided_errors():
    from analyzers.suggest.replay import replay_outlier

    tr = _outlier_traffic({"a:1": [200] * 100, "b:1": [503] * 100, "c:1": [200] * 100})
    od = OutlierDetection(consecutive_5xx=5, interval_s=1, base_ejection_s=30, max_ejection_percent=50)
    res = replay_outlier(tr, np.arange(tr.n), od)
    assert res.ejections == 1
    assert res.sent_to_ejected == 95 and res.errors_avoided == 95


def test_outlier_healthy_burst_below_threshold_not_ejected():
    from analyzers.suggest.replay import replay_outlier

    codes = ([200] * 10 + [500] * 4) * 5
    tr = _outlier_traffic({"a:1": codes, "b:1": [200] * len(codes)})
    res = replay_outlier(tr, np.arange(tr.n), OutlierDetection(consecutive_5xx=5, max_ejection_percent=50))
    assert res.ejections == 0 and res.sent_to_ejected == 0


def test_outlier_max_ejection_percent_and_no_healthy_upstream():
    from analyzers.suggest.replay import replay_outlier

    tr = _outlier_traffic({"a:1": [503] * 50, "b:1": [503] * 50})
    # 10%: the first ejection is allowed (0% ejected < 10%), the second is not
    res = replay_outlier(tr, np.arange(tr.n), OutlierDetection(consecutive_5xx=5, max_ejection_percent=10))
    assert res.ejections == 1 and res.no_healthy_upstream == 0
    res = replay_outlier(tr, np.arange(tr.n), OutlierDetection(consecutive_5xx=5, max_ejection_percent=100))
    assert res.ejections == 2 and res.no_healthy_upstream > 0


def test_outlier_host_returns_after_base_ejection_time():
    from analyzers.suggest.replay import replay_outlier

    # 0.1 s apart; 5 errors then successes: ejected at ~0.4 s for 1 s, back at the sweep after 1.4 s
    tr = _outlier_traffic({"a:1": [503] * 5 + [200] * 45, "b:1": [200] * 50}, spacing=0.05)
    res = replay_outlier(tr, np.arange(tr.n), OutlierDetection(consecutive_5xx=5, interval_s=0.5,
                                                                base_ejection_s=1.0, max_ejection_percent=50))
    assert res.ejections == 1
    # host a gets one request per 0.1 s: ejected from 0.4 s to the 1.5 s sweep -> about 10 requests avoided
    assert 9 <= res.sent_to_ejected <= 11 and res.errors_avoided == 0
