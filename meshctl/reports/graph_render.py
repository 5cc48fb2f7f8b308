"""Service graph writers: rich table, JSON, Graphviz DOT, Mermaid, GraphML and SVG (graphviz `dot`).

All take the DiGraph of analyzers.graph.build_graph and compute nothing the analyzer did not; the
styling rules (colour by error rate, edge width by rate, node shape by kind) live here once and are
shared with the HTML writer (graph_html.py).

SVG calls Graphviz's `dot` binary (Debian package graphviz; scripts/setup.sh installs it). Graphs
with more than LARGE_NODES nodes or LARGE_EDGES edges are laid out with `sfdp` instead: `dot`'s
layered layout takes minutes on a thousand services.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from typing import TYPE_CHECKING, Any, TextIO

from meshctl.errors import MeshctlError

if TYPE_CHECKING:  # pragma: no cover
    import networkx as nx

FORMATS = ("table", "json", "dot", "mermaid", "graphml", "svg", "html")
LARGE_NODES = 150
LARGE_EDGES = 400
LABEL_EDGES_MAX = 60  # above this, edge figures go to tooltips only (labels would cover the picture)

# (upper bound of error rate, band name, colour). Kiali-like: healthy, degraded, failing.
ERROR_BANDS = (
    (0.001, "ok", "#2e8b57"),
    (0.05, "degraded", "#e08a00"),
    (math.inf, "failing", "#d62728"),
)
NO_DATA_COLOUR = "#8c8c8c"
# kind -> (dot shape, dot style, fill, mermaid opening, mermaid closing)
NODE_STYLE: dict[str, tuple[str, str, str, str, str]] = {
    "app": ("box", "rounded,filled", "#e8f0fe", "(", ")"),
    "versioned_app": ("box", "rounded,filled", "#dbe8fb", "(", ")"),
    "workload": ("ellipse", "filled", "#eef6ee", "([", "])"),
    "service": ("hexagon", "filled", "#f3eefa", "{{", "}}"),
    "namespace": ("folder", "filled", "#f6f6f6", "[/", "/]"),
    "gateway": ("invhouse", "filled", "#fff4d6", "[\\", "/]"),
    "user": ("egg", "filled", "#f0f0f0", "((", "))"),
    "unknown": ("ellipse", "dashed,filled", "#f5f5f5", "((", "))"),
    "external": ("octagon", "filled", "#fdeee6", "{{", "}}"),
    "database": ("cylinder", "filled", "#fff8e1", "[(", ")]"),
    "messaging": ("cds", "filled", "#e6f7f7", ">", "]"),
}
KIND_NAMES = {
    "app": "app", "versioned_app": "app version", "workload": "workload", "service": "service",
    "namespace": "namespace", "gateway": "gateway", "user": "outside caller", "unknown": "unknown",
    "external": "external host", "database": "database", "messaging": "messaging",
}


# ---- shared styling ---------------------------------------------------------------------------
def error_band(rate: float | None) -> tuple[str, str]:
    """(band name, colour) for an error rate; None (no data) is grey."""
    if rate is None or (isinstance(rate, float) and math.isnan(rate)):
        return "no data", NO_DATA_COLOUR
    for bound, name, colour in ERROR_BANDS:
        if rate < bound:
            return name, colour
    return ERROR_BANDS[-1][1], ERROR_BANDS[-1][2]


def traffic(a: dict[str, Any]) -> float:
    """The edge's traffic figure: rps when there is a window, else requests."""
    return float(a.get("rps") if a.get("rps") is not None else a.get("requests") or 0)


def edge_width(value: float, vmax: float, lo: float = 1.0, hi: float = 7.0) -> float:
    """Edge width on a log scale of traffic, so a 1000x busier edge is wider but not a wall."""
    if vmax <= 0 or value <= 0:
        return lo
    return round(lo + (hi - lo) * math.log1p(value) / math.log1p(vmax), 2)


def fmt_ms(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:.0f}ms" if v >= 100 else f"{v:.1f}ms" if v >= 1 else f"{v:.2f}ms"


def fmt_rate(a: dict[str, Any]) -> str:
    if a.get("rps") is not None:
        r = a["rps"]
        return f"{r:.0f} rps" if r >= 100 else f"{r:.1f} rps" if r >= 1 else f"{r:.3g} rps"
    return f"{a.get('requests', 0)} req"


def fmt_pct(rate: float | None) -> str:
    if rate is None:
        return "-"
    return "0%" if rate == 0 else f"{rate * 100:.2f}%" if rate < 0.1 else f"{rate * 100:.1f}%"


def edge_summary(a: dict[str, Any]) -> str:
    """One line of edge figures (labels, tooltips)."""
    parts = [fmt_rate(a), f"err {fmt_pct(a.get('error_rate'))}"]
    if a.get("p99_ms") is not None:
        parts.append(f"p99 {fmt_ms(a['p99_ms'])}")
    return " | ".join(parts)


def edge_tooltip(s: str, t: str, a: dict[str, Any]) -> str:
    lines = [f"{s} -> {t}", f"requests {a.get('requests', 0)} ({fmt_rate(a)})",
             f"errors {a.get('errors') if a.get('errors') is not None else '-'} ({fmt_pct(a.get('error_rate'))})"]
    if a.get("flags"):
        lines.append("flags " + " ".join(f"{k}:{v}" for k, v in sorted(a["flags"].items())))
    if a.get("p50_ms") is not None:
        lines.append(f"p50 {fmt_ms(a['p50_ms'])}  p90 {fmt_ms(a['p90_ms'])}  p99 {fmt_ms(a['p99_ms'])}  "
                     f"mean {fmt_ms(a.get('mean_ms'))}")
    if a.get("protocols"):
        lines.append("protocols " + ", ".join(a["protocols"]))
    if a.get("reporter"):
        lines.append(f"reporter {a['reporter']}")
    return "\n".join(lines)


def node_tooltip(n: str, a: dict[str, Any]) -> str:
    lines = [f"{n} ({KIND_NAMES.get(a.get('kind', ''), a.get('kind', ''))})"]
    for key in ("namespace", "app", "version", "workload", "service", "cluster"):
        if a.get(key):
            lines.append(f"{key} {a[key]}")
    lines.append(f"in {a.get('in_requests', 0)} req, errors {fmt_pct(a.get('in_error_rate'))}")
    lines.append(f"out {a.get('out_requests', 0)} req, errors {fmt_pct(a.get('out_error_rate'))}")
    return "\n".join(lines)


def node_label(n: str, a: dict[str, Any]) -> str:
    label = str(a.get("label") or n)
    if a.get("cluster"):
        label += f"\n@{a['cluster']}"
    return label


def describe(g: nx.DiGraph) -> str:
    """One line: what the graph covers (window, rows, how requests were counted)."""
    m = g.graph
    parts = [f"group by {m.get('group_by', '?')}"]
    if m.get("window_start") and m.get("window_end"):
        secs = m.get("window_seconds") or 0
        parts.append(f"{m['window_start'][:19]}Z .. {m['window_end'][:19]}Z ({_duration(secs)})")
    if "rows_selected" in m:
        parts.append(f"{m.get('rows_counted', 0):,} requests from {m['rows_selected']:,} rows")
        if m.get("rows_dropped_server"):
            parts.append(f"{m['rows_dropped_server']:,} server-side rows already seen by the client not counted")
        if m.get("rows_dropped_trace"):
            parts.append(f"{m['rows_dropped_trace']:,} trace rows covered by access logs not counted")
    return "; ".join(parts)


def _duration(secs: float) -> str:
    if secs >= 7200:
        return f"{secs / 3600:.1f} h"
    if secs >= 120:
        return f"{secs / 60:.1f} min"
    return f"{secs:.0f} s"


# ---- table ------------------------------------------------------------------------------------
def edge_rows(g: nx.DiGraph) -> list[list[Any]]:
    rows = []
    for s, t, a in sorted(g.edges(data=True), key=lambda e: (-e[2].get("requests", 0), e[0], e[1])):
        flags = " ".join(f"{k}:{v}" for k, v in sorted((a.get("flags") or {}).items(), key=lambda kv: -kv[1]))
        rows.append([s, t, a.get("requests", 0), a.get("rps"), a.get("errors"),
                     None if a.get("error_rate") is None else round(100 * a["error_rate"], 3),
                     a.get("p50_ms"), a.get("p90_ms"), a.get("p99_ms"), flags or None,
                     ",".join(a.get("protocols") or []) or None, a.get("reporter")])
    return rows


EDGE_COLUMNS = ["SOURCE", "TARGET", "REQUESTS", "RPS", "ERRORS", "ERR%", "P50 ms", "P90 ms", "P99 ms",
                "FLAGS", "PROTOCOL", "REPORTER"]


def print_graph_table(g: nx.DiGraph, file: TextIO | None = None) -> None:
    from meshctl.output import print_table

    caption = ("REPORTER: client = counted from client sidecars, server = only the server side saw them, "
               "trace = span pairs; " + describe(g))
    title = f"Service graph: {g.number_of_nodes()} nodes, {g.number_of_edges()} edges"
    print_table(EDGE_COLUMNS, edge_rows(g), title=title, caption=caption, file=file, width=table_width(file))


def table_width(file: TextIO | None = None) -> int | None:
    """rich's own guess on a terminal; wide when piped (a CI log or a file should not wrap at 80)."""
    import sys

    stream = file or sys.stdout
    return None if hasattr(stream, "isatty") and stream.isatty() else 220


def to_json(g: nx.DiGraph) -> str:
    from analyzers.graph import graph_to_dict
    from meshctl.output import dump_json

    return dump_json(graph_to_dict(g))


# ---- DOT --------------------------------------------------------------------------------------
def _q(s: Any) -> str:
    """A DOT double-quoted string (newlines become centred line breaks)."""
    text = str(s).replace("\\", "\\\\").replace('"', '\\"').replace("\r", "")
    return '"' + text.replace("\n", "\\n") + '"'


def _html(s: Any) -> str:
    return str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def is_large(g: nx.DiGraph) -> bool:
    return g.number_of_nodes() > LARGE_NODES or g.number_of_edges() > LARGE_EDGES


def to_dot(g: nx.DiGraph, *, title: str | None = None, legend: bool = True, edge_labels: bool | None = None,
           ids: bool = False, tooltips: bool = True) -> str:
    """Graphviz DOT: namespaces as boxes, node shape by kind, edge colour by error rate, width by rate.
    `ids=True` gives each node/edge an SVG id (n0.., e0..) that the HTML writer hooks onto;
    `tooltips` adds the figures as SVG tooltips (hover in a browser)."""
    large = is_large(g)
    if edge_labels is None:
        edge_labels = g.number_of_edges() <= LABEL_EDGES_MAX
    node_ids = {n: f"n{i}" for i, n in enumerate(g.nodes)}
    vmax = max((traffic(a) for _, _, a in g.edges(data=True)), default=0.0)
    out = ["digraph mesh {"]
    gattrs = {"rankdir": "LR", "fontname": "Helvetica", "fontsize": "11", "bgcolor": "white",
              "pad": "0.3", "nodesep": "0.35", "ranksep": "0.9", "newrank": "true"}
    if large:
        gattrs.update({"overlap": "prism", "splines": "false", "outputorder": "edgesfirst"})
    else:
        gattrs["splines"] = "true"
    if title:
        gattrs.update({"label": title, "labelloc": "t", "fontsize": "14"})
    out.append("  graph [" + ", ".join(f"{k}={_q(v)}" for k, v in gattrs.items()) + "];")
    out.append('  node [fontname="Helvetica", fontsize="10", penwidth="1.4", margin="0.12,0.05"];')
    out.append('  edge [fontname="Helvetica", fontsize="8", arrowsize="0.7"];')

    def node_line(n: str, a: dict[str, Any], indent: str) -> str:
        shape, style, fill, _, _ = NODE_STYLE.get(a.get("kind", "unknown"), NODE_STYLE["unknown"])
        rate = a.get("in_error_rate") if a.get("in_requests") else a.get("out_error_rate")
        _, colour = error_band(rate) if (a.get("in_requests") or a.get("out_requests")) else ("", NO_DATA_COLOUR)
        attrs = {"label": node_label(n, a), "shape": shape, "style": style, "fillcolor": fill, "color": colour}
        if tooltips:
            attrs["tooltip"] = node_tooltip(n, a)
        if ids:
            attrs["id"] = node_ids[n]
        return f"{indent}{_q(n)} [" + ", ".join(f"{k}={_q(v)}" for k, v in attrs.items()) + "];"

    # Namespaces as clusters (dot only: sfdp ignores clusters), unless the nodes are namespaces.
    by_ns: dict[str | None, list[str]] = {}
    for n, a in g.nodes(data=True):
        key = a.get("namespace") if a.get("kind") not in ("namespace",) and not large else None
        by_ns.setdefault(key, []).append(n)
    for i, (ns, members) in enumerate(sorted(by_ns.items(), key=lambda kv: (kv[0] is None, kv[0] or ""))):
        if ns is None:
            out.extend(node_line(n, g.nodes[n], "  ") for n in members)
            continue
        out.append(f"  subgraph cluster_ns{i} {{")
        out.append(f'    label={_q(ns)}; style="rounded,dashed"; color="#9aa5b1"; fontcolor="#52606d"; '
                   'fontsize="11"; labeljust="l";')
        out.extend(node_line(n, g.nodes[n], "    ") for n in members)
        out.append("  }")

    for i, (s, t, a) in enumerate(g.edges(data=True)):
        _, colour = error_band(a.get("error_rate") if a.get("requests") else None)
        attrs = {"color": colour, "penwidth": edge_width(traffic(a), vmax)}
        if tooltips:
            attrs["tooltip"] = edge_tooltip(s, t, a)
        if edge_labels:
            attrs["label"] = edge_summary(a).replace(" | ", "\n")
            attrs["fontcolor"] = colour if colour != ERROR_BANDS[0][2] else "#444444"
        if ids:
            attrs["id"] = f"e{i}"
        out.append(f"  {_q(s)} -> {_q(t)} [" + ", ".join(f"{k}={_q(v)}" for k, v in attrs.items()) + "];")

    if legend and not large:
        out.append(_legend(g))
    out.append("}")
    return "\n".join(out) + "\n"


def _legend(g: nx.DiGraph) -> str:
    kinds = sorted({a.get("kind", "unknown") for _, a in g.nodes(data=True)}, key=list(NODE_STYLE).index)
    rows = ['<TR><TD COLSPAN="2" ALIGN="LEFT"><B>Legend</B></TD></TR>']
    for _bound, name, colour in ERROR_BANDS:
        lo = {"ok": "< 0.1%", "degraded": "0.1% - 5%", "failing": ">= 5%"}[name]
        rows.append(f'<TR><TD><FONT COLOR="{colour}">&#9472;&#9472;&#9654;</FONT></TD>'
                    f'<TD ALIGN="LEFT">{name}: errors {_html(lo)}</TD></TR>')
    rows.append('<TR><TD>&#8660;</TD><TD ALIGN="LEFT">width: request rate (log)</TD></TR>')
    for k in kinds:
        rows.append(f'<TR><TD>{_html(NODE_STYLE.get(k, NODE_STYLE["unknown"])[0])}</TD>'
                    f'<TD ALIGN="LEFT">{_html(KIND_NAMES.get(k, k))}</TD></TR>')
    table = '<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="1" CELLPADDING="2">' + "".join(rows) + "</TABLE>"
    return ('  subgraph cluster_legend {\n    label=""; style="rounded"; color="#cbd2d9";\n'
            f'    legend [shape="plaintext", fontsize="9", label=<{table}>];\n  }}')


# ---- Mermaid ----------------------------------------------------------------------------------
def _mq(s: Any) -> str:
    """Text inside a Mermaid quoted label: no raw quotes, brackets or pipes."""
    text = str(s)
    for ch, ent in (("&", "#amp;"), ('"', "#quot;"), ("<", "#lt;"), (">", "#gt;"), ("|", "#124;")):
        text = text.replace(ch, ent)
    return text.replace("\n", "<br/>")


def to_mermaid(g: nx.DiGraph) -> str:
    """A Mermaid flowchart (renders in GitHub/GitLab Markdown); edge colour by error rate."""
    ids = {n: f"n{i}" for i, n in enumerate(g.nodes)}
    lines = ["flowchart LR"]
    for n, a in g.nodes(data=True):
        _, _, _, open_, close = NODE_STYLE.get(a.get("kind", "unknown"), NODE_STYLE["unknown"])
        lines.append(f'  {ids[n]}{open_}"{_mq(node_label(n, a))}"{close}')
    vmax = max((traffic(a) for _, _, a in g.edges(data=True)), default=0.0)
    styles = []
    for i, (s, t, a) in enumerate(g.edges(data=True)):
        lines.append(f'  {ids[s]} -->|"{_mq(edge_summary(a))}"| {ids[t]}')
        _, colour = error_band(a.get("error_rate") if a.get("requests") else None)
        styles.append(f"  linkStyle {i} stroke:{colour},stroke-width:{edge_width(traffic(a), vmax, 1, 5)}px")
    for kind, (_, _, fill, _, _) in NODE_STYLE.items():
        members = [ids[n] for n, a in g.nodes(data=True) if a.get("kind") == kind]
        if members:
            lines.append(f"  classDef {kind} fill:{fill},stroke:#52606d")
            lines.append(f"  class {','.join(members)} {kind}")
    return "\n".join(lines + styles) + "\n"


# ---- GraphML ----------------------------------------------------------------------------------
def to_graphml(g: nx.DiGraph) -> str:
    """GraphML (networkx writer) for Gephi/yEd/Cytoscape: lists become comma-separated strings,
    dicts JSON, and missing values are left out."""
    import networkx as nx

    h = nx.DiGraph()
    h.graph.update({k: _graphml_value(v) for k, v in g.graph.items() if _graphml_value(v) is not None})
    for n, a in g.nodes(data=True):
        h.add_node(n, **{k: _graphml_value(v) for k, v in a.items() if _graphml_value(v) is not None})
    for s, t, a in g.edges(data=True):
        h.add_edge(s, t, **{k: _graphml_value(v) for k, v in a.items() if _graphml_value(v) is not None})
    return "\n".join(nx.generate_graphml(h)) + "\n"


def _graphml_value(v: Any) -> Any:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, (list, tuple, set)):
        return ",".join(str(x) for x in v)
    if isinstance(v, dict):
        return json.dumps(v, sort_keys=True)
    if isinstance(v, (bool, int, float, str)):
        return v
    return str(v)


# ---- SVG (graphviz) ---------------------------------------------------------------------------
def graphviz_binary(engine: str) -> str:
    path = shutil.which(engine)
    if not path:
        raise MeshctlError(f"graphviz `{engine}` not found on PATH (needed for -o svg)",
                           hint="install graphviz (Debian/Ubuntu: apt-get install graphviz; macOS: brew install "
                                "graphviz), or use -o dot / -o html / -o mermaid")
    return path


def layout_engine(g: nx.DiGraph, layout: str = "auto") -> str:
    if layout == "auto":
        return "sfdp" if is_large(g) else "dot"
    if layout not in ("dot", "sfdp", "neato", "fdp", "circo", "twopi"):
        raise MeshctlError(f"unknown graphviz layout {layout!r}", field="--layout")
    return layout


def run_graphviz(dot_text: str, *, engine: str = "dot", fmt: str = "svg", timeout: float = 300.0) -> str:
    """Lay out and render DOT text with a graphviz binary; returns its output (text formats)."""
    binary = graphviz_binary(engine)
    try:
        proc = subprocess.run([binary, f"-T{fmt}"], input=dot_text.encode("utf-8"), capture_output=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise MeshctlError(f"graphviz {engine} took more than {timeout:.0f} s",
                           hint="try --layout sfdp, or narrow the graph with -n/--since") from None
    if proc.returncode != 0:
        raise MeshctlError(f"graphviz {engine} failed: {proc.stderr.decode('utf-8', 'replace').strip()[:500]}")
    return proc.stdout.decode("utf-8")


def to_svg(g: nx.DiGraph, *, layout: str = "auto", title: str | None = None, ids: bool = False) -> str:
    return run_graphviz(to_dot(g, title=title, ids=ids), engine=layout_engine(g, layout))
