"""Compare two service graphs (before / after a change): new and vanished edges, regressions.

    from analyzers.graph_diff import diff_graphs, DiffThresholds
    d = diff_graphs(build_graph(before_df), build_graph(after_df), DiffThresholds(p99_ratio=1.5))
    d.regressed  # [EdgeChange(source, target, change="regressed", reasons=[...], before={...}, after={...})]

An edge regressed when, with at least `min_requests` on both sides,
  * its error rate rose by at least `error_rate_delta` (absolute, 0.01 = one percentage point) and a
    two-proportion z-test says the rise is unlikely to be chance (one-sided p < `alpha`), or
  * its p99 latency grew by at least `p99_ratio` times and by at least `p99_delta_ms`.
The mirror conditions mark an edge improved. Edges seen on one side only are new / vanished; an edge
with fewer than `min_requests` on either side is compared for presence only.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import networkx as nx

FIGURES = ("requests", "rps", "errors", "error_rate", "p50_ms", "p90_ms", "p99_ms", "mean_ms")


@dataclass
class DiffThresholds:
    error_rate_delta: float = 0.01
    alpha: float = 0.05
    p99_ratio: float = 1.25
    p99_delta_ms: float = 5.0
    min_requests: int = 20


@dataclass
class EdgeChange:
    source: str
    target: str
    change: str  # new | vanished | regressed | improved
    reasons: list[str] = field(default_factory=list)
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None

    @property
    def error_rate_delta(self) -> float | None:
        if not self.before or not self.after:
            return None
        return (self.after.get("error_rate") or 0.0) - (self.before.get("error_rate") or 0.0)


@dataclass
class GraphDiff:
    thresholds: DiffThresholds
    new: list[EdgeChange] = field(default_factory=list)
    vanished: list[EdgeChange] = field(default_factory=list)
    regressed: list[EdgeChange] = field(default_factory=list)
    improved: list[EdgeChange] = field(default_factory=list)
    compared: int = 0          # edges present on both sides
    too_few_requests: int = 0  # of those, with fewer than min_requests on a side
    before_window: dict[str, Any] = field(default_factory=dict)
    after_window: dict[str, Any] = field(default_factory=dict)

    @property
    def changes(self) -> list[EdgeChange]:
        return self.regressed + self.new + self.vanished + self.improved

    @property
    def has_regressions(self) -> bool:
        return bool(self.regressed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "thresholds": asdict(self.thresholds),
            "before": self.before_window,
            "after": self.after_window,
            "summary": {"new": len(self.new), "vanished": len(self.vanished), "regressed": len(self.regressed),
                        "improved": len(self.improved), "compared": self.compared,
                        "too_few_requests": self.too_few_requests},
            "changes": [asdict(c) for c in self.changes],
        }


def _figures(a: dict[str, Any]) -> dict[str, Any]:
    out = {k: a.get(k) for k in FIGURES}
    if a.get("flags"):
        out["flags"] = dict(a["flags"])
    return out


def proportion_rise_p(err0: int, n0: int, err1: int, n1: int) -> float:
    """One-sided p-value that the after-rate (err1/n1) is not above the before-rate (two-proportion
    z-test with pooled variance). 1.0 when it cannot be judged."""
    if n0 <= 0 or n1 <= 0:
        return 1.0
    p0, p1 = err0 / n0, err1 / n1
    pooled = (err0 + err1) / (n0 + n1)
    var = pooled * (1 - pooled) * (1 / n0 + 1 / n1)
    if var <= 0:
        return 0.0 if p1 > p0 else 1.0
    z = (p1 - p0) / math.sqrt(var)
    return 0.5 * math.erfc(z / math.sqrt(2))


def diff_graphs(before: nx.DiGraph, after: nx.DiGraph, thresholds: DiffThresholds | None = None) -> GraphDiff:
    th = thresholds or DiffThresholds()
    win = ("window_start", "window_end", "window_seconds", "rows_counted", "group_by")
    out = GraphDiff(th, before_window={k: before.graph.get(k) for k in win},
                    after_window={k: after.graph.get(k) for k in win})
    b_edges = {(s, t): a for s, t, a in before.edges(data=True)}
    a_edges = {(s, t): a for s, t, a in after.edges(data=True)}
    for key in sorted(a_edges.keys() - b_edges.keys()):
        a = a_edges[key]
        out.new.append(EdgeChange(*key, "new", [f"new edge: {a.get('requests', 0)} requests"], None, _figures(a)))
    for key in sorted(b_edges.keys() - a_edges.keys()):
        b = b_edges[key]
        out.vanished.append(EdgeChange(*key, "vanished", [f"no requests any more (before: {b.get('requests', 0)})"],
                                       _figures(b), None))
    for key in sorted(a_edges.keys() & b_edges.keys()):
        b, a = b_edges[key], a_edges[key]
        out.compared += 1
        nb, na = b.get("requests", 0), a.get("requests", 0)
        if nb < th.min_requests or na < th.min_requests:
            out.too_few_requests += 1
            continue
        worse, better = _compare(b, a, th)
        if worse:
            out.regressed.append(EdgeChange(*key, "regressed", worse, _figures(b), _figures(a)))
        elif better:
            out.improved.append(EdgeChange(*key, "improved", better, _figures(b), _figures(a)))
    out.regressed.sort(key=lambda c: -(c.error_rate_delta or 0))
    return out


def _compare(b: dict[str, Any], a: dict[str, Any], th: DiffThresholds) -> tuple[list[str], list[str]]:
    worse: list[str] = []
    better: list[str] = []
    eb, ea = b.get("errors") or 0, a.get("errors") or 0
    nb, na = b.get("requests", 0), a.get("requests", 0)
    rb, ra = eb / nb, ea / na
    if ra - rb >= th.error_rate_delta:
        p = proportion_rise_p(eb, nb, ea, na)
        if p < th.alpha:
            worse.append(f"error rate {rb:.2%} -> {ra:.2%} (+{(ra - rb) * 100:.2f} pp, p={p:.2g})"
                         + _new_flags(b, a))
    elif rb - ra >= th.error_rate_delta and proportion_rise_p(ea, na, eb, nb) < th.alpha:
        better.append(f"error rate {rb:.2%} -> {ra:.2%}")
    pb, pa = b.get("p99_ms"), a.get("p99_ms")
    if pb is not None and pa is not None:
        if pa >= pb * th.p99_ratio and pa - pb >= th.p99_delta_ms:
            worse.append(f"p99 {pb:.1f} ms -> {pa:.1f} ms (x{pa / pb if pb else math.inf:.2f})")
        elif pb >= pa * th.p99_ratio and pb - pa >= th.p99_delta_ms:
            better.append(f"p99 {pb:.1f} ms -> {pa:.1f} ms")
    return worse, better


def _new_flags(b: dict[str, Any], a: dict[str, Any]) -> str:
    fb, fa = b.get("flags") or {}, a.get("flags") or {}
    grown = {k: v for k, v in fa.items() if v > fb.get(k, 0)}
    if not grown:
        return ""
    return "; flags " + ", ".join(f"{k} {fb.get(k, 0)}->{v}" for k, v in sorted(grown.items(), key=lambda kv: -kv[1]))
