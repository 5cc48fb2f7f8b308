"""Root-cause walk: `why(df, "reviews")` follows a service's failing (or slow) calls to where it starts.

Errors. From the service's failing outbound edges, take the one with the most errors and ask where
its errors come from:
  * mostly errors the caller's proxy produced (response flags UF, UH, UO, NR, URX, ...): the callee
    never answered; the origin is that **edge** (connectivity, overload, routing);
  * the callee's own calls failed for the same requests (same trace_id, else same x-request-id; with
    neither, by counts): the errors propagate; walk on into the callee;
  * otherwise the callee returns errors its own calls do not explain: the origin is that **service**.
The path lists every hop with its evidence: requests, errors, flags, how many errors were matched
further down the same requests.

Latency. With traces (span rows with trace/span/parent ids), the critical path of each trace splits
the time of calls into the service into its own time and its waits on each callee
(analyzers/graph_critical.py); the walk descends into the callee that holds most of the critical
time, and stops where the service's own time dominates. Without traces it estimates the same from
access logs: calls per inbound request x mean latency of each outbound edge (assumes sequential calls).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from analyzers.graph import FLAG_NAMES, PROXY_FLAGS, aggregate, prepare, row_outcomes

if TYPE_CHECKING:  # pragma: no cover
    import networkx as nx
    import numpy as np
    import pandas as pd

    from analyzers.graph import Prepared


class ServiceNotFound(LookupError):
    def __init__(self, name: str, candidates: list[str]) -> None:
        super().__init__(name)
        self.name = name
        self.candidates = candidates


@dataclass
class Hop:
    source: str
    target: str
    requests: int
    errors: int
    error_rate: float
    flags: dict[str, int] = field(default_factory=dict)
    proxy_errors: int = 0          # errors the caller's proxy produced (callee never answered)
    explained: int = 0             # errors matched by failures further down the same requests
    matched_by: str = "counts"     # trace_id | request_id | counts
    verdict: str = ""              # propagates | origin-edge | origin-service


@dataclass
class LatencyStep:
    """Milliseconds per call into the node (for a root: per trace / per outbound call)."""

    node: str
    total_ms: float                # critical-path (or estimated) time of a call into the node
    own_ms: float                  # of which the node itself
    waits: list[tuple[str, float]] = field(default_factory=list)  # (callee, ms) waited on, largest first


@dataclass
class WhyResult:
    service: str
    candidates: list[str]
    in_requests: int
    in_errors: int
    error_rate: float | None
    p99_ms: float | None
    symptoms: list[str]              # errors (rate over the threshold), latency (p99 over the threshold)
    error_path: list[Hop] = field(default_factory=list)
    origin: str | None = None
    origin_kind: str | None = None   # edge | service
    verdict: str = ""
    latency_method: str = ""         # critical path (N traces) | estimate from access logs | none
    latency_path: list[LatencyStep] = field(default_factory=list)
    latency_verdict: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def resolve_service(g: nx.DiGraph, name: str) -> tuple[str, list[str]]:
    """Node id for a user-typed name: an exact id, else nodes whose label/app/service/workload is the
    name (the busiest failing one when several match, e.g. the versions of an app)."""
    if name in g:
        return name, [name]
    hits = [n for n, a in g.nodes(data=True)
            if name in (a.get("label"), a.get("app"), a.get("service"), a.get("workload"))
            or n.split("/")[-1].split("@")[0] == name]
    if not hits:
        raise ServiceNotFound(name, sorted(g.nodes))
    hits.sort(key=lambda n: (-g.nodes[n].get("in_errors", 0), -g.nodes[n].get("in_requests", 0), n))
    return hits[0], hits


def why(df: pd.DataFrame, service: str, *, group_by: str = "app", namespace: str | None = None,
        since: Any = None, until: Any = None, cluster: str | None = None, error_rate_threshold: float = 0.01,
        p99_threshold_ms: float | None = None, explain_share: float = 0.5, max_depth: int = 12) -> WhyResult:
    """Walk from `service` to where its errors start, and show where its time goes. The latency
    breakdown is always given; `p99_threshold_ms` only decides whether slowness is called a symptom."""
    prep = prepare(df, group_by=group_by, namespace=namespace, since=since, until=until, cluster=cluster)
    g = aggregate(prep)
    start, candidates = resolve_service(g, service)
    a = g.nodes[start]
    in_p99 = max((d.get("p99_ms") or 0 for _, _, d in g.in_edges(start, data=True)), default=None)
    res = WhyResult(service=start, candidates=candidates, in_requests=a["in_requests"], in_errors=a["in_errors"],
                    error_rate=a.get("in_error_rate"), p99_ms=in_p99 or None, symptoms=[])
    rate = a.get("in_error_rate") if a["in_requests"] else a.get("out_error_rate")
    if rate is not None and rate >= error_rate_threshold:
        res.symptoms.append("errors")
        _walk_errors(prep, g, start, res, explain_share, max_depth)
    else:
        res.verdict = (f"{start}: error rate {_pct(rate)} is below the {_pct(error_rate_threshold)} threshold; "
                       "nothing to trace")
    if p99_threshold_ms is not None and in_p99 is not None and in_p99 >= p99_threshold_ms:
        res.symptoms.append("latency")
    _walk_latency(prep, g, start, res, max_depth)
    return res


# ---- errors --------------------------------------------------------------------------------
def _correlation(prep: Prepared) -> tuple[np.ndarray, str]:
    """Per row, an id shared by the rows of one request (trace_id, else request_id); -1 if none."""
    import numpy as np

    t, _ = prep.codes("trace_id") if "trace_id" in prep.selected.columns else (np.full(len(prep.src), -1), [])
    r, _ = prep.codes("request_id") if "request_id" in prep.selected.columns else (np.full(len(prep.src), -1), [])
    if (t >= 0).any():
        return t, "trace_id"
    if (r >= 0).any():
        return r, "request_id"
    return np.full(len(prep.src), -1, dtype=np.int64), "counts"


def _walk_errors(prep: Prepared, g: nx.DiGraph, start: str, res: WhyResult, explain_share: float,
                 max_depth: int) -> None:
    import numpy as np

    idx = {nd.id: i for i, nd in enumerate(prep.nodes)}
    out = row_outcomes(prep)
    err, proxy = out["is_error"], out["proxy_error"]
    corr, method = _correlation(prep)
    fail_rows = np.flatnonzero(err)
    f_src, f_dst, f_corr, f_proxy = prep.src[fail_rows], prep.dst[fail_rows], corr[fail_rows], proxy[fail_rows]

    def ids_on(s: int, d: int | None = None) -> np.ndarray:
        m = f_src == s if d is None else (f_src == s) & (f_dst == d)
        c = f_corr[m]
        return c[c >= 0]

    node = start
    seen = {start}
    upstream_ids: np.ndarray | None = None  # failing request ids of the edge we came along
    for _ in range(max_depth):
        s = idx[node]
        outs = [(t, d) for _, t, d in g.out_edges(node, data=True) if d["errors"] > 0 and t not in seen]
        if not outs:
            res.origin, res.origin_kind = node, "service"
            if res.error_path:
                res.verdict = (f"{node} returns the errors: {res.error_path[-1].errors} failed calls into it, and "
                               "its own outbound calls do not fail")
            else:
                res.verdict = f"{node} fails on its own: none of its outbound calls fail"
            return

        def weight(td: tuple[str, dict], s: int = s, ups: np.ndarray | None = upstream_ids) -> tuple:
            t, d = td
            if ups is not None and len(ups) and method != "counts":
                return (int(np.isin(ids_on(s, idx[t]), ups).sum()), d["errors"])
            return (d["errors"], d["error_rate"])

        target, d = max(outs, key=weight)
        t = idx[target]
        m = (f_src == s) & (f_dst == t)
        hop = Hop(node, target, d["requests"], d["errors"], d["error_rate"], dict(d.get("flags") or {}),
                  proxy_errors=int(f_proxy[m].sum()), matched_by=method)
        below = [(tt, dd) for _, tt, dd in g.out_edges(target, data=True) if dd["errors"] > 0 and tt not in seen]
        if method != "counts":
            mine = f_corr[m]
            mine = mine[mine >= 0]
            hop.explained = int(np.isin(mine, ids_on(t)).sum()) if below else 0
        else:
            hop.explained = min(d["errors"], sum(dd["errors"] for _, dd in below))
        res.error_path.append(hop)
        seen.add(target)
        if hop.proxy_errors >= explain_share * hop.errors:
            hop.verdict = "origin-edge"
            res.origin, res.origin_kind = f"{node} -> {target}", "edge"
            top = sorted(((k, v) for k, v in hop.flags.items() if k in PROXY_FLAGS), key=lambda kv: -kv[1])
            why_text = ", ".join(f"{k} ({FLAG_NAMES.get(k, k)}) x{v}" for k, v in top[:3])
            res.verdict = (f"{target} did not answer {node}: {hop.proxy_errors} of {hop.errors} failed calls were "
                           f"failed by {node}'s proxy [{why_text}] - look at {target}'s availability, endpoints, "
                           "circuit breakers and routes")
            return
        if below and hop.explained >= explain_share * hop.errors:
            hop.verdict = "propagates"
            upstream_ids = f_corr[m]
            node = target
            continue
        hop.verdict = "origin-service"
        res.origin, res.origin_kind = target, "service"
        share = f"{hop.explained} of {hop.errors}" if below else "none"
        res.verdict = (f"{target} returns errors to {node} ({hop.errors} of {hop.requests} calls, "
                       f"{_pct(hop.error_rate)}); failures of its own calls explain {share} of them "
                       f"(matched by {method})")
        return
    res.verdict = f"stopped after {max_depth} hops at {node}"


# ---- latency -------------------------------------------------------------------------------
def _trace_rows(prep: Prepared) -> Prepared | None:
    """The selection's trace-derived rows prepared on their own: the graph counts access logs where
    both exist, but the critical path needs the spans' parent/child structure."""
    from analyzers.graph import _col

    kinds = _col(prep.selected, "record_kind")
    span = (kinds == "span").fillna(False).to_numpy(dtype=bool)
    if not span.any():
        return None
    if span.all() and prep.keep.all():
        return prep
    return prepare(prep.selected.loc[span], group_by=prep.group_by)  # filters were applied already


def _walk_latency(prep: Prepared, g: nx.DiGraph, start: str, res: WhyResult, max_depth: int) -> None:
    from analyzers.graph_critical import critical_path

    tp = _trace_rows(prep)
    cp = critical_path(tp) if tp is not None else None
    tidx = {nd.id: i for i, nd in enumerate(tp.nodes)} if tp is not None else {}
    si = tidx.get(start)
    if cp is not None and cp.traces and si is not None and (si in cp.total_ms or any(s == si for s, _ in cp.wait_ms)):
        import numpy as np

        res.latency_method = f"critical path ({cp.traces} traces)"
        calls_into = np.bincount(tp.dst, minlength=len(tp.nodes))

        def step(node: str) -> LatencyStep | None:
            i = tidx.get(node)
            if i is None or i not in cp.total_ms:
                return None
            n = max(1, int(calls_into[i]))  # per call into the node, like the estimate
            waits = sorted(((tp.nodes[d].id, ms / n) for (s, d), ms in cp.wait_ms.items() if s == i and ms > 0),
                           key=lambda w: -w[1])
            return LatencyStep(node, round(cp.total_ms[i] / n, 3), round(cp.own_ms.get(i, 0.0) / n, 3),
                               [(m, round(ms, 3)) for m, ms in waits])

        def root_waits(node: str) -> list[tuple[str, float]]:
            i = tidx[node]
            return [(tp.nodes[d].id, ms / max(1, cp.traces)) for (s, d), ms in cp.wait_ms.items() if s == i]
    else:
        res.latency_method = "estimate from access logs (calls per request x mean latency)"

        def step(node: str) -> LatencyStep | None:
            ins = [d for _, _, d in g.in_edges(node, data=True) if d.get("mean_ms") is not None]
            n_in = sum(d["requests"] for d in ins)
            if not n_in:
                return None
            total = sum(d["mean_ms"] * d["requests"] for d in ins) / n_in
            waits = sorted(((t, d["requests"] / n_in * d["mean_ms"]) for _, t, d in g.out_edges(node, data=True)
                            if d.get("mean_ms") is not None), key=lambda w: -w[1])
            own = max(0.0, total - sum(w for _, w in waits))
            return LatencyStep(node, round(total, 3), round(own, 3), [(n, round(ms, 3)) for n, ms in waits])

        def root_waits(node: str) -> list[tuple[str, float]]:
            n_out = max(1, g.nodes[node]["out_requests"])
            return [(t, (d.get("mean_ms") or 0.0) * d["requests"] / n_out) for _, t, d in g.out_edges(node, data=True)]

    def first_step(node: str) -> LatencyStep | None:
        st = step(node)
        if st is None and g.out_degree(node):
            # A root (its callers are not in the data): what its own calls cost is still known.
            waits = sorted(((t, round(ms, 3)) for t, ms in root_waits(node)), key=lambda w: -w[1])
            st = LatencyStep(node, round(sum(w for _, w in waits), 3), 0.0, waits)
        return st

    node, seen = start, {start}
    for depth in range(max_depth):
        st = first_step(node) if depth == 0 else step(node)
        if st is None:
            break
        res.latency_path.append(st)
        nxt = next(((n, ms) for n, ms in st.waits if n not in seen), None)
        if nxt is None or nxt[1] <= st.own_ms:
            break
        node = nxt[0]
        seen.add(node)
    if not res.latency_path:
        res.latency_method = "none"
        res.latency_verdict = f"no latency figures for calls into {start}"
        return
    last = res.latency_path[-1]
    first = res.latency_path[0]
    if len(res.latency_path) == 1:
        res.latency_verdict = (f"{start} spends most of its time itself: {last.own_ms:.1f} of {last.total_ms:.1f} ms "
                               f"({_share(last.own_ms, last.total_ms)})")
    else:
        res.latency_verdict = (f"{start}'s time ({first.total_ms:.1f} ms) goes mostly to "
                               f"{' -> '.join(s.node for s in res.latency_path[1:])}; {last.node} spends "
                               f"{last.own_ms:.1f} of its {last.total_ms:.1f} ms itself "
                               f"({_share(last.own_ms, last.total_ms)})")


def _pct(r: float | None) -> str:
    return "-" if r is None else f"{r:.2%}"


def _share(part: float, total: float) -> str:
    return f"{part / total:.0%}" if total else "-"
