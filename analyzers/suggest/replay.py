"""What-if replay: recorded requests, in time order, through a model of Envoy's limits.

Three models, each following what Envoy does (and checked against a real Envoy in
tests/test_replay_envoy.py):

Connection pool (per calling proxy and Envoy cluster; DestinationRule connectionPool)
  HTTP/1.1: a request is sent when fewer than maxConnections requests are active (a warm pool
  has an idle connection) and fewer than http2MaxRequests are active, else rejected 503 UO
  (upstream_rq_active_overflow); when every connection is busy it waits in the pending queue
  (at most http1MaxPendingRequests, else 503 UO, upstream_rq_pending_overflow) and starts, in
  FIFO order, when an active request ends. HTTP/2: only http2MaxRequests applies.
  A request occupies the pool for its recorded duration; the time it waited is added.
Local rate limit (per serving proxy; EnvoyFilter envoy.filters.http.local_ratelimit)
  a token bucket that starts full at max_tokens and refills continuously at
  tokens_per_fill / fill_interval (Envoy ≥ 1.30 has no refill timer); a request without a whole
  token is answered 429 RL.
Outlier detection (per upstream host of a cluster; DestinationRule outlierDetection)
  consecutive 5xx (and 502/503/504) counters; reaching a threshold ejects the host at once if
  fewer than maxEjectionPercent of the hosts are ejected (the counter resets either way). An
  ejected host returns at the first interval sweep after baseEjectionTime × (times ejected); the
  multiplier drops by one per sweep the host spends in service. Requests recorded against an
  ejected host would have gone to another host ("sent to an ejected host"; "errors avoided" when
  the recorded answer was a 5xx); with every host ejected they get 503 UH.

Vectorized where the answer is known without simulating: a group whose unconstrained in-flight
count never exceeds the limit, or whose arrivals fit the bucket's (rate, depth) envelope, or a host
that never reaches the threshold, costs only numpy work. Only the stretches that overflow are
simulated event by event, and the simulation jumps ahead as soon as it is back in step with the
recording.
"""

from __future__ import annotations

import heapq
import itertools
import math
from typing import TYPE_CHECKING

from analyzers.suggest.model import ConnectionPool, OutlierDetection, ReplayResult, TokenBucket

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from analyzers.suggest.traffic import Traffic


# ---- connection pool ----------------------------------------------------------------------------
def replay_pool(start: np.ndarray, duration: np.ndarray, pool: ConnectionPool, *, h2: bool = False) -> ReplayResult:
    """One calling proxy's requests to one cluster (sorted by start; durations in seconds, no NaN)."""
    import numpy as np

    res = ReplayResult(label="", requests=len(start))
    n = len(start)
    if not n:
        return res
    c, p, r = pool.effective()
    limit = r if h2 else min(c, r)
    end = start + duration
    ends_sorted = np.sort(end)
    inflight = np.arange(1, n + 1) - np.searchsorted(ends_sorted, start, side="right")
    violations = np.flatnonzero(inflight > limit)
    if not len(violations):
        return res
    max_dur = float(duration.max())
    S, D, E = start.tolist(), duration.tolist(), end.tolist()  # plain floats: the loop runs in Python
    heap: list[tuple[float, bool]] = []  # (end, delayed)
    queue: list[int] = []  # FIFO of waiting request indices
    qhead = 0
    delayed_active = 0
    rejected_until = -math.inf
    active = 0
    vi = 0
    i = int(violations[0])

    def rebuild(at: int) -> tuple[list[tuple[float, bool]], int]:
        lo = int(np.searchsorted(start, start[at] - max_dur - 1e-9, side="left"))
        window = end[lo:at]
        live = window[window > start[at]]
        h = [(float(e), False) for e in live]
        heapq.heapify(h)
        return h, len(h)

    heap, active = rebuild(i)
    while i < n:
        t = S[i]
        # requests that end by t free their slot; the head of the queue takes it
        while heap and heap[0][0] <= t:
            e, delayed = heapq.heappop(heap)
            active -= 1
            if delayed:
                delayed_active -= 1
            while qhead < len(queue) and active < min(c, r):
                q = queue[qhead]
                qhead += 1
                active += 1
                wait = e - S[q]
                res.max_queue_wait_ms = max(res.max_queue_wait_ms, wait * 1000)
                heapq.heappush(heap, (e + D[q], wait > 0))
                delayed_active += wait > 0
        waiting = len(queue) - qhead
        if h2 or (active < c and waiting == 0):
            if active < r:
                active += 1
                heapq.heappush(heap, (E[i], False))
            else:
                res.active_overflow += 1
                rejected_until = max(rejected_until, E[i])
        elif waiting < p:
            queue.append(i)
            res.queued += 1
        else:
            res.pending_overflow += 1
            rejected_until = max(rejected_until, E[i])
        if qhead == len(queue):
            queue, qhead = [], 0
        i += 1
        if i >= n:
            break
        # back in step with the recording? then jump to the next overflow of the recorded traffic
        if not queue and delayed_active == 0 and rejected_until <= S[i]:
            while vi < len(violations) and violations[vi] < i:
                vi += 1
            if vi == len(violations):
                break
            if violations[vi] > i:
                i = int(violations[vi])
                heap, active = rebuild(i)
    # drain: queued requests still get served (their waits count)
    while qhead < len(queue) and heap:
        e, _ = heapq.heappop(heap)
        active -= 1
        while qhead < len(queue) and active < min(c, r):
            q = queue[qhead]
            qhead += 1
            active += 1
            res.max_queue_wait_ms = max(res.max_queue_wait_ms, (e - S[q]) * 1000)
            heapq.heappush(heap, (e + D[q], True))
    res.rejected_overflow = res.pending_overflow + res.active_overflow
    return res


def replay_cluster_pool(tr: Traffic, rows: np.ndarray, durations: np.ndarray, pool: ConnectionPool,
                        *, h2: bool) -> ReplayResult:
    """The pool model for every calling proxy of one cluster (each proxy enforces its own limits)."""
    import numpy as np

    total = ReplayResult(label="")
    callers = tr.caller.codes[rows]
    order = np.argsort(callers, kind="stable")
    bounds = np.r_[0, np.flatnonzero(np.diff(callers[order])) + 1, len(rows)]
    for a, b in itertools.pairwise(bounds):
        part = order[a:b]
        res = replay_pool(tr.start[rows[part]], durations[part], pool, h2=h2)
        if res.rejected_overflow or res.queued:
            res.details.append({"caller": tr.caller.labels[int(callers[part[0]])], "requests": len(part),
                                "rejected_overflow": res.rejected_overflow, "queued": res.queued})
        total.add(res)
    return total


# ---- token bucket -------------------------------------------------------------------------------
def bucket_depth_needed(times: np.ndarray, rate: float) -> float:
    """The smallest bucket (max_tokens) that passes every arrival at refill `rate`:
    max over i ≤ j of (j − i + 1) − rate × (t_j − t_i)."""
    import numpy as np

    if not len(times):
        return 0.0
    k = np.arange(len(times), dtype=np.float64)
    a = k - rate * times
    return float(np.max(a + 1 - np.minimum.accumulate(a)))


def replay_bucket(times: np.ndarray, bucket: TokenBucket) -> ReplayResult:
    """One bucket (one serving proxy, one route or the whole listener): how many get 429 RL."""
    res = ReplayResult(label="", requests=len(times))
    if not len(times) or bucket_depth_needed(times, bucket.rate) <= bucket.max_tokens + 1e-9:
        return res
    cap, rate = float(bucket.max_tokens), bucket.rate
    tokens, last = cap, float(times[0])
    limited = 0
    for t in times.tolist():
        tokens = min(cap, tokens + (t - last) * rate)
        last = t
        if tokens >= 1.0 - 1e-9:
            tokens -= 1.0
        else:
            limited += 1
    res.rate_limited = limited
    return res


# ---- outlier detection --------------------------------------------------------------------------
def replay_outlier(tr: Traffic, rows: np.ndarray, od: OutlierDetection) -> ReplayResult:
    """Consecutive-error ejection per upstream host over one cluster's rows (time order)."""
    import numpy as np

    res = ReplayResult(label="")
    rows = rows[(tr.host.codes[rows] >= 0) & ~tr.local_reject[rows]]
    res.requests = len(rows)
    t5 = od.consecutive_5xx or 0
    tg = od.consecutive_gateway or 0
    if not len(rows) or (t5 <= 0 and tg <= 0):
        return res
    hosts = tr.host.codes[rows]
    n_hosts = len(np.unique(hosts))
    # Only hosts with a long enough error run can ever be ejected: simulate just their rows.
    threshold = min(x for x in (t5, tg) if x > 0)
    candidates = []
    for h in np.unique(hosts[tr.error5xx[rows]]):
        e = tr.error5xx[rows[hosts == h]]
        padded = np.r_[False, e, False].astype(np.int8)
        d = np.diff(padded)
        if (np.flatnonzero(d == -1) - np.flatnonzero(d == 1)).max() >= threshold:
            candidates.append(h)
    if not candidates:
        return res
    sel = rows[np.isin(hosts, candidates)]
    origin = float(tr.start[rows[0]])
    interval, base = od.interval_s, od.base_ejection_s
    max_ejection_time = max(300.0, base)  # Envoy's default max_ejection_time
    c5: dict[int, int] = {}
    cg: dict[int, int] = {}
    ejected_until: dict[int, float] = {}  # host -> unejection sweep time
    mult: dict[int, int] = {}
    back_at: dict[int, float] = {}  # host -> time it came back (for multiplier decay)

    def sweep_after(t: float) -> float:
        k = math.ceil((t - origin) / interval - 1e-12)
        return origin + max(k, 0) * interval

    def ejected_now(t: float) -> int:
        for h, until in list(ejected_until.items()):
            if until <= t:
                del ejected_until[h]
                back_at[h] = until
        return len(ejected_until)

    def eject(h: int, t: float) -> None:
        count = ejected_now(t)
        if 100.0 * count / n_hosts >= od.max_ejection_percent or h in ejected_until:
            return
        m = mult.get(h, 0)
        if h in back_at:  # one step of decay per sweep spent in service
            m = max(0, m - int((t - back_at[h]) // interval))
        m += 1
        mult[h] = m
        duration = min(base * m, max_ejection_time)
        ejected_until[h] = sweep_after(t + duration)
        res.ejections += 1
        res.details.append({"host": tr.host.labels[h], "ejected_at": tr.iso(t),
                            "until": tr.iso(ejected_until[h])})

    codes5 = tr.error5xx[sel]
    codesg = tr.gateway_error[sel]
    st = tr.start[sel]
    hs = tr.host.codes[sel]
    for k in range(len(sel)):
        t = float(st[k])
        h = int(hs[k])
        n_ejected = ejected_now(t)
        if h in ejected_until:
            healthy = n_hosts - n_ejected
            panic = od.min_health_percent > 0 and 100.0 * healthy / n_hosts < od.min_health_percent
            if panic:
                pass  # Envoy's panic mode: traffic goes to every host, ejected or not
            elif healthy <= 0:
                res.no_healthy_upstream += 1
                continue
            else:
                res.sent_to_ejected += 1
                res.errors_avoided += bool(codes5[k])
                continue
        if codes5[k]:
            if codesg[k]:
                cg[h] = cg.get(h, 0) + 1
                if tg > 0 and cg[h] == tg:
                    cg[h] = 0
                    eject(h, t)
            else:
                cg[h] = 0
            c5[h] = c5.get(h, 0) + 1
            if t5 > 0 and c5[h] == t5:
                c5[h] = 0
                eject(h, t)
        else:
            c5[h] = 0
            cg[h] = 0
    return res
