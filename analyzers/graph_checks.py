"""Structure checks on a service graph: cycles, fan-out / fan-in, single-version edges, failing edges.

In the style of `istioctl analyze`: each check is one small function listed in CHECKS, findings carry
a stable code from CATALOG (severity + meaning), and the same codes appear in every output.

    from analyzers.graph_checks import check_graph
    report = check_graph(df, group_by="app")
    for f in report.findings: print(f.code, f.severity, f.subject, f.message)

Single-version edges need the rows (versions are below the app level), so check_graph takes the
table; the graph-only checks (cycles, fan_out, fan_in) are also usable on any DiGraph.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from analyzers.graph import aggregate, prepare

if TYPE_CHECKING:  # pragma: no cover
    import networkx as nx
    import pandas as pd

    from analyzers.graph import Prepared

SEVERITIES = ("info", "warning", "error")

# code -> (severity, check name, what it means)
CATALOG: dict[str, tuple[str, str, str]] = {
    "GRAPH001": ("warning", "cycle", "Services call each other in a cycle: retries can amplify and a slow member "
                                     "stalls the whole loop."),
    "GRAPH002": ("info", "fan-out", "A service calls many others: its latency is bounded by the slowest of them."),
    "GRAPH003": ("info", "fan-in", "Many services depend on this one: it is a shared point of failure."),
    "GRAPH004": ("info", "single-version-source", "Only one version of the calling app makes these calls "
                                                  "(a new or dropped dependency of a canary or an old version)."),
    "GRAPH005": ("info", "single-version-target", "Only one version of the called app receives these calls "
                                                  "while other versions of it receive traffic (routing)."),
    "GRAPH006": ("error", "failing-edge", "The edge's error rate is over the failing threshold."),
    "GRAPH007": ("info", "unknown-caller", "Requests reach this service from callers with no identity (outside "
                                           "the mesh, or a client without a sidecar)."),
}


@dataclass
class CheckConfig:
    fan_out: int = 8
    fan_in: int = 10
    failing_error_rate: float = 0.05
    min_requests: int = 20          # edges with fewer requests are not judged
    cycle_length: int = 8           # longest cycle reported
    max_cycles: int = 50


@dataclass
class Finding:
    code: str
    severity: str
    check: str
    subject: str
    message: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class CheckReport:
    findings: list[Finding]
    graph: nx.DiGraph | None = None

    def worst(self) -> str | None:
        return max((f.severity for f in self.findings), key=SEVERITIES.index, default=None)

    def to_dict(self) -> dict[str, Any]:
        return {"findings": [asdict(f) for f in self.findings],
                "summary": {s: sum(f.severity == s for f in self.findings) for s in SEVERITIES}}


def _finding(code: str, subject: str, message: str, **data: Any) -> Finding:
    severity, check, _ = CATALOG[code]
    return Finding(code, severity, check, subject, message, data)


# ---- graph-only checks ----------------------------------------------------------------------
def cycles(g: nx.DiGraph, *, length_bound: int = 8, limit: int = 50) -> list[list[str]]:
    """Simple cycles (self-loops included), shortest first, at most `limit`."""
    import networkx as nx

    found: list[list[str]] = []
    for comp in nx.strongly_connected_components(g):
        if len(comp) == 1:
            n = next(iter(comp))
            if g.has_edge(n, n):
                found.append([n])
            continue
        for cyc in nx.simple_cycles(g.subgraph(comp), length_bound=length_bound):
            found.append(_rotate(cyc))
            if len(found) >= limit * 4:
                break
    found.sort(key=lambda c: (len(c), c))
    return found[:limit]


def _rotate(cyc: list[str]) -> list[str]:
    i = cyc.index(min(cyc))
    return cyc[i:] + cyc[:i]


def fan_out(g: nx.DiGraph, threshold: int) -> list[tuple[str, int]]:
    """Nodes calling at least `threshold` distinct others, busiest first."""
    out = [(n, sum(1 for t in g.successors(n) if t != n)) for n in g.nodes]
    return sorted([x for x in out if x[1] >= threshold], key=lambda x: (-x[1], x[0]))


def fan_in(g: nx.DiGraph, threshold: int) -> list[tuple[str, int]]:
    """Nodes called by at least `threshold` distinct others."""
    out = [(n, sum(1 for s in g.predecessors(n) if s != n)) for n in g.nodes]
    return sorted([x for x in out if x[1] >= threshold], key=lambda x: (-x[1], x[0]))


def check_cycles(g: nx.DiGraph, prep: Prepared | None, cfg: CheckConfig) -> list[Finding]:
    res = []
    for cyc in cycles(g, length_bound=cfg.cycle_length, limit=cfg.max_cycles):
        path = " -> ".join([*cyc, cyc[0]])
        reqs = sum(g.edges[a, b]["requests"] for a, b in zip(cyc, [*cyc[1:], cyc[0]], strict=True))
        res.append(_finding("GRAPH001", path, f"call cycle of {len(cyc)} service(s): {path} ({reqs} requests on it)",
                            cycle=cyc, requests=reqs))
    return res


def check_fan(g: nx.DiGraph, prep: Prepared | None, cfg: CheckConfig) -> list[Finding]:
    res = []
    for n, k in fan_out(g, cfg.fan_out):
        res.append(_finding("GRAPH002", n, f"{n} calls {k} services", degree=k,
                            targets=sorted(t for t in g.successors(n) if t != n)))
    for n, k in fan_in(g, cfg.fan_in):
        res.append(_finding("GRAPH003", n, f"{k} services call {n}", degree=k,
                            sources=sorted(s for s in g.predecessors(n) if s != n)))
    return res


def check_failing(g: nx.DiGraph, prep: Prepared | None, cfg: CheckConfig) -> list[Finding]:
    res = []
    for s, t, a in sorted(g.edges(data=True), key=lambda e: -(e[2].get("error_rate") or 0)):
        if a.get("requests", 0) >= cfg.min_requests and (a.get("error_rate") or 0) >= cfg.failing_error_rate:
            flags = ", ".join(f"{k} x{v}" for k, v in sorted(a.get("flags", {}).items(), key=lambda kv: -kv[1]))
            res.append(_finding("GRAPH006", f"{s} -> {t}",
                                f"{a['errors']} of {a['requests']} requests fail ({a['error_rate']:.1%})"
                                + (f"; flags {flags}" if flags else ""),
                                errors=a["errors"], requests=a["requests"], error_rate=a["error_rate"]))
    return res


def check_unknown_callers(g: nx.DiGraph, prep: Prepared | None, cfg: CheckConfig) -> list[Finding]:
    res = []
    for s, t, a in g.edges(data=True):
        if g.nodes[s].get("kind") == "unknown" and a.get("requests", 0) >= cfg.min_requests:
            res.append(_finding("GRAPH007", t, f"{a['requests']} requests reach {t} from unidentified callers",
                                requests=a["requests"]))
    return res


# ---- row-level checks -----------------------------------------------------------------------
def version_mix(prep: Prepared) -> tuple[dict[tuple[int, int], tuple[set, set]], dict[int, set]]:
    """Per edge (src, dst): the caller versions and callee versions seen; per node: all versions seen."""
    import numpy as np

    sv, svals = prep.codes("source_version")
    if prep.callee_version is not None:
        dv, dvals = prep.callee_version, prep.callee_versions
    else:
        dv, dvals = prep.codes("destination_version")
    nn = len(prep.nodes)
    per_edge: dict[tuple[int, int], tuple[set, set]] = {}
    per_node: dict[int, set] = {}
    for codes, vals, node_arr, slot in ((sv, svals, prep.src, 0), (dv, dvals, prep.dst, 1)):
        has = codes >= 0
        if not has.any():
            continue
        nv = len(vals)
        trip = np.unique((prep.src[has] * nn + prep.dst[has]) * nv + codes[has])
        for key in trip.tolist():
            e, v = divmod(key, nv)
            pair = per_edge.setdefault(divmod(e, nn), (set(), set()))
            pair[slot].add(vals[v])
        for key in np.unique(node_arr[has] * nv + codes[has]).tolist():
            n, v = divmod(key, nv)
            per_node.setdefault(n, set()).add(vals[v])
    return per_edge, per_node


def check_single_version(g: nx.DiGraph, prep: Prepared | None, cfg: CheckConfig) -> list[Finding]:
    if prep is None or prep.group_by not in ("app", "service", "namespace"):
        return []  # with app-version / workload nodes, versions are separate nodes already
    per_edge, per_node = version_mix(prep)
    res = []
    for (s, d), (src_versions, dst_versions) in sorted(per_edge.items()):
        sid, did = prep.nodes[s].id, prep.nodes[d].id
        if not g.has_edge(sid, did) or g.edges[sid, did]["requests"] < cfg.min_requests:
            continue
        all_src = per_node.get(s, set())
        if len(src_versions) == 1 and len(all_src) > 1:
            v = next(iter(src_versions))
            res.append(_finding("GRAPH004", f"{sid} -> {did}",
                                f"only {sid} version {v} calls {did} (versions of {sid}: {', '.join(sorted(all_src))})",
                                version=v, versions=sorted(all_src)))
        all_dst = per_node.get(d, set())
        if len(dst_versions) == 1 and len(all_dst) > 1:
            v = next(iter(dst_versions))
            res.append(_finding("GRAPH005", f"{sid} -> {did}",
                                f"calls from {sid} reach only version {v} of {did} "
                                f"(versions of {did}: {', '.join(sorted(all_dst))})",
                                version=v, versions=sorted(all_dst)))
    return res


Check = Callable[["nx.DiGraph", "Prepared | None", CheckConfig], list[Finding]]
# The registry: every check, in report order.
CHECKS: list[tuple[str, Check]] = [
    ("failing-edge", check_failing),
    ("cycle", check_cycles),
    ("fan", check_fan),
    ("single-version", check_single_version),
    ("unknown-caller", check_unknown_callers),
]


def run_checks(g: nx.DiGraph, prep: Prepared | None = None, config: CheckConfig | None = None) -> CheckReport:
    cfg = config or CheckConfig()
    findings = [f for _, fn in CHECKS for f in fn(g, prep, cfg)]
    findings.sort(key=lambda f: (-SEVERITIES.index(f.severity), f.code, f.subject))
    return CheckReport(findings, g)


def check_graph(df: pd.DataFrame, *, group_by: str = "app", namespace: str | None = None, since: Any = None,
                until: Any = None, cluster: str | None = None, config: CheckConfig | None = None) -> CheckReport:
    prep = prepare(df, group_by=group_by, namespace=namespace, since=since, until=until, cluster=cluster)
    return run_checks(aggregate(prep), prep, config)
