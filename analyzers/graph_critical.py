"""Critical path of traces: a service's own time versus its wait on the services it calls.

Trace-derived request rows (meshctl/parsers/spans.py) form one tree per trace on
(trace_id, parent_span_id) -> span_id: a row is a call, its children are the calls its callee made
while serving it. Walking back from the end of each root call, the child that finished last before
the cursor is on the critical path, its own critical path is walked the same way, and the cursor
moves to that child's start; time not covered by a critical child is the callee's own time (as in
Jaeger's critical-path view). Overlapping (parallel) children that finished earlier are off the path.

    cp = critical_path(prep)            # prep: analyzers.graph.Prepared over span rows
    cp.own_ms[node_index]               # time on critical paths spent in that node itself
    cp.wait_ms[(src, dst)]              # time on critical paths spent waiting for dst, on src's calls

This walks a Python loop over spans (traces are sampled and small); the rest of the graph code is
vectorized.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from analyzers.graph import Prepared


@dataclass
class CriticalPath:
    traces: int = 0                                   # traces walked
    rows: int = 0                                     # span rows in them
    self_ms: np.ndarray | None = None                 # per prepared row: own time on the critical path
    crit_ms: np.ndarray | None = None                 # per prepared row: the call's time on the critical path
    own_ms: dict[int, float] = field(default_factory=dict)               # node -> own critical time
    total_ms: dict[int, float] = field(default_factory=dict)             # node -> critical time of calls into it
    wait_ms: dict[tuple[int, int], float] = field(default_factory=dict)  # (src, dst) -> critical time


def critical_path(prep: Prepared) -> CriticalPath:
    """Critical-path shares of the prepared rows that carry trace_id/span_id (others are ignored)."""
    import numpy as np

    out = CriticalPath()
    n = len(prep.src)
    out.self_ms = np.zeros(n)
    out.crit_ms = np.zeros(n)
    if n == 0 or "span_id" not in prep.selected.columns or "trace_id" not in prep.selected.columns:
        return out
    tcodes, _ = prep.codes("trace_id")
    scodes, svals = prep.codes("span_id")
    if "parent_span_id" in prep.selected.columns:
        from analyzers.graph import _col

        parent = _col(prep.selected, "parent_span_id")
        index = {v: i for i, v in enumerate(svals)}
        pvals = parent.to_numpy(dtype=object, na_value=None)[prep.keep]
        pcodes = np.array([index.get(v, -1) if v is not None else -1 for v in pvals], dtype=np.int64)
    else:
        pcodes = np.full(n, -1, dtype=np.int64)
    start = _start_ms(prep)
    dur = np.nan_to_num(prep.floats("duration_ms"))
    end = start + dur
    usable = (tcodes >= 0) & (scodes >= 0) & ~np.isnan(start)
    rows = np.flatnonzero(usable)
    if len(rows) == 0:
        return out
    order = rows[np.argsort(tcodes[rows], kind="stable")]
    bounds = np.flatnonzero(np.diff(tcodes[order])) + 1
    self_ms, crit_ms = out.self_ms, out.crit_ms

    def walk(i: int, limit: float, children: dict[int, list[int]]) -> None:
        s, e = start[i], min(end[i], limit)
        if e <= s:
            return
        crit_ms[i] += e - s
        cursor = e
        for k in sorted(children.get(i, ()), key=lambda k: end[k], reverse=True):
            if cursor <= s:
                break
            if start[k] >= cursor:
                continue  # started after the cursor: ran in parallel with a later critical child
            k_end = min(end[k], cursor)
            self_ms[i] += cursor - k_end
            walk(k, k_end, children)
            cursor = max(start[k], s)
        self_ms[i] += max(0.0, cursor - s)

    for trace_rows in np.split(order, bounds):
        by_span: dict[int, int] = {}
        for i in trace_rows.tolist():
            by_span.setdefault(int(scodes[i]), i)
        children: dict[int, list[int]] = {}
        roots = []
        for i in trace_rows.tolist():
            p = by_span.get(int(pcodes[i]), -1) if pcodes[i] >= 0 else -1
            if p >= 0 and p != i:
                children.setdefault(p, []).append(i)
            else:
                roots.append(i)
        try:
            for r in roots:
                walk(r, end[r], children)
        except RecursionError:  # a pathological (cyclic or absurdly deep) trace: leave it out
            continue
        out.traces += 1
        out.rows += len(trace_rows)

    src, dst = prep.src, prep.dst
    nn = len(prep.nodes)
    own = np.bincount(dst, weights=self_ms, minlength=nn)
    total = np.bincount(dst, weights=crit_ms, minlength=nn)
    out.own_ms = {i: float(v) for i, v in enumerate(own) if total[i] > 0}
    out.total_ms = {i: float(v) for i, v in enumerate(total) if v > 0}
    on_path = crit_ms > 0
    if on_path.any():
        keys, inv = np.unique(src[on_path] * nn + dst[on_path], return_inverse=True)
        sums = np.bincount(inv, weights=crit_ms[on_path])
        out.wait_ms = {(int(k) // nn, int(k) % nn): float(v) for k, v in zip(keys, sums, strict=True)}
    return out


def _start_ms(prep: Prepared) -> np.ndarray:
    """Row start times in milliseconds since the earliest row (NaN when unknown): relative, so that
    float64 keeps sub-microsecond precision (epoch milliseconds would not)."""
    import numpy as np

    from analyzers.graph import _epoch_us

    us = _epoch_us(prep.selected)[prep.keep]
    missing = us == np.iinfo(np.int64).min
    base = us[~missing].min() if (~missing).any() else 0
    out = (us - base).astype(np.float64) / 1000.0
    out[missing] = np.nan
    return out
