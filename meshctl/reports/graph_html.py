"""The service graph as one self-contained HTML page (no CDN, no network: CSS, JS, SVG and data inline).

The picture is Graphviz's layout (graph_render.to_dot with element ids) when `dot` is installed, or a
built-in layered layout otherwise. Hovering an edge or a node shows its figures (from a JSON blob
embedded in the page); hovering a node dims everything not connected to it; the wheel zooms and a
drag pans; a sortable, filterable table of edges sits under the picture. `#node=ID` or
`#edge=SRC->DST` in the URL pins that element's figures on load (links to a problem in a chat).
"""

from __future__ import annotations

import html
import math
import shutil
from typing import TYPE_CHECKING, Any

from meshctl.reports import graph_render as gr

if TYPE_CHECKING:  # pragma: no cover
    import networkx as nx


def to_html(g: nx.DiGraph, *, title: str = "Service graph", layout: str = "auto") -> str:
    from analyzers.graph import graph_to_dict

    engine = gr.layout_engine(g, layout)
    if g.number_of_nodes() == 0:
        svg, layout_note = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 400 80"><text x="20" y="45">' \
                           "no requests in the selection</text></svg>", "empty"
    elif graphviz_available(engine):
        svg = gr.run_graphviz(gr.to_dot(g, ids=True, legend=False, tooltips=False), engine=engine)
        svg = svg[svg.index("<svg"):]
        layout_note = f"layout: graphviz {engine}"
    else:
        svg, layout_note = builtin_svg(g), "layout: built-in (graphviz not installed)"

    data = graph_to_dict(g)
    node_key = {n: f"n{i}" for i, n in enumerate(g.nodes)}
    payload = {
        "graph": data["graph"],
        "nodes": {node_key[n["id"]]: n for n in data["nodes"]},
        "edges": {f"e{i}": {**e, "sourceKey": node_key[e["source"]], "targetKey": node_key[e["target"]]}
                  for i, e in enumerate(data["edges"])},
        "bands": [{"name": name, "colour": colour, "below": None if math.isinf(b) else b}
                  for b, name, colour in gr.ERROR_BANDS],
    }
    total_req = sum(a.get("requests", 0) for _, _, a in g.edges(data=True))
    known = [a for _, _, a in g.edges(data=True) if a.get("errors") is not None]
    total_err = sum(a["errors"] for a in known)
    known_req = sum(a.get("requests", 0) for a in known)
    stats = [("nodes", f"{g.number_of_nodes():,}"), ("edges", f"{g.number_of_edges():,}"),
             ("requests", f"{total_req:,}"), ("error rate", gr.fmt_pct(total_err / known_req if known_req else None))]
    kinds = sorted({a.get("kind", "unknown") for _, a in g.nodes(data=True)}, key=list(gr.NODE_STYLE).index)
    legend_kinds = "".join(
        f'<span class="kind"><span class="swatch" style="background:{gr.NODE_STYLE[k][2]}"></span>'
        f"{html.escape(gr.KIND_NAMES.get(k, k))} <small>({html.escape(gr.NODE_STYLE[k][0])})</small></span>"
        for k in kinds if k in gr.NODE_STYLE)
    legend_bands = "".join(
        f'<span class="band"><span class="line" style="background:{c}"></span>{html.escape(n)} '
        f"<small>{html.escape(r)}</small></span>"
        for (_, n, c), r in zip(gr.ERROR_BANDS, ("errors < 0.1%", "0.1% to 5%", "5% or more"), strict=True))
    return _PAGE.format(
        title=html.escape(title),
        subtitle=html.escape(gr.describe(g)),
        stats="".join(f'<div class="stat"><b>{html.escape(v)}</b><span>{html.escape(k)}</span></div>'
                      for k, v in stats),
        legend_bands=legend_bands,
        legend_kinds=legend_kinds,
        layout_note=html.escape(layout_note),
        policy=html.escape(str(g.graph.get("dedup_policy", ""))),
        svg=svg,
        data=_script_json(payload),
        css=_CSS,
        js=_JS,
    )


def graphviz_available(engine: str) -> bool:
    return shutil.which(engine) is not None


def _script_json(obj: Any) -> str:
    """JSON safe inside <script>: no `</script>`, no HTML comment openers."""
    from meshctl.output import dump_json

    return dump_json(obj, indent=None).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


# ---- built-in layout (no graphviz) ----------------------------------------------------------
def builtin_layout(g: nx.DiGraph) -> dict[str, tuple[int, int]]:
    """(layer, position) per node: layers by longest path over the condensation (cycles collapse into
    one layer), order within a layer by a few barycenter sweeps to reduce crossings."""
    import networkx as nx

    cond = nx.condensation(g)
    layer_of_comp: dict[int, int] = {}
    for c in nx.topological_sort(cond):
        preds = list(cond.predecessors(c))
        layer_of_comp[c] = 1 + max((layer_of_comp[p] for p in preds), default=-1)
    layer = {n: layer_of_comp[cond.graph["mapping"][n]] for n in g.nodes}
    layers: dict[int, list[str]] = {}
    for n in sorted(g.nodes, key=lambda n: (-g.nodes[n].get("in_requests", 0) - g.nodes[n].get("out_requests", 0), n)):
        layers.setdefault(layer[n], []).append(n)
    order = {n: i for members in layers.values() for i, n in enumerate(members)}
    for sweep in range(4):
        rng = sorted(layers) if sweep % 2 == 0 else sorted(layers, reverse=True)
        for li in rng:
            def bary(n: str, sweep: int = sweep) -> float:
                nbrs = list(g.predecessors(n)) if sweep % 2 == 0 else list(g.successors(n))
                nbrs = [m for m in nbrs if layer[m] != layer[n]]
                return sum(order[m] for m in nbrs) / len(nbrs) if nbrs else order[n]
            layers[li].sort(key=bary)
            for i, n in enumerate(layers[li]):
                order[n] = i
    return {n: (layer[n], order[n]) for n in g.nodes}


def builtin_svg(g: nx.DiGraph) -> str:
    pos = builtin_layout(g)
    longest = max((len(gr.node_label(n, a).split("\n")[0]) for n, a in g.nodes(data=True)), default=10)
    box_w = min(260, max(150, 7 * min(longest, 34) + 24))
    col_w, row_h, box_h, pad = box_w + 80, 64, 34, 30
    height_rows = max((p[1] for p in pos.values()), default=0) + 1
    n_layers = max((p[0] for p in pos.values()), default=0) + 1
    width, height = pad * 2 + n_layers * col_w, pad * 2 + height_rows * row_h
    xy = {n: (pad + lay * col_w + box_w / 2, pad + i * row_h + box_h / 2) for n, (lay, i) in pos.items()}
    node_key = {n: f"n{i}" for i, n in enumerate(g.nodes)}
    vmax = max((gr.traffic(a) for _, _, a in g.edges(data=True)), default=0.0)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}pt" '
             f'height="{height}pt"><defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" '
             'markerUnits="userSpaceOnUse" markerWidth="11" markerHeight="11" orient="auto-start-reverse">'
             '<path d="M0,0L10,5L0,10z" fill="context-stroke"/></marker></defs><g class="graph">']
    for i, (s, t, a) in enumerate(g.edges(data=True)):
        (x1, y1), (x2, y2) = xy[s], xy[t]
        _, colour = gr.error_band(a.get("error_rate") if a.get("requests") else None)
        w = gr.edge_width(gr.traffic(a), vmax)
        if s == t:
            d = f"M{x1 + box_w / 2},{y1} c40,-40 40,40 0,{box_h / 4}"
        else:
            sx = x1 + (box_w / 2 if x2 >= x1 else -box_w / 2)
            ex = x2 - (box_w / 2 if x2 >= x1 else -box_w / 2)
            bend = 0 if x2 > x1 else 60
            d = f"M{sx},{y1} C{(sx + ex) / 2},{y1 - bend} {(sx + ex) / 2},{y2 - bend} {ex},{y2}"
        parts.append(f'<g id="e{i}" class="edge"><path d="{d}" fill="none" stroke="{colour}" '
                     f'stroke-width="{w}" marker-end="url(#arrow)"/></g>')
    for n, a in g.nodes(data=True):
        x, y = xy[n]
        _, _, fill, _, _ = gr.NODE_STYLE.get(a.get("kind", "unknown"), gr.NODE_STYLE["unknown"])
        rate = a.get("in_error_rate") if a.get("in_requests") else a.get("out_error_rate")
        _, colour = gr.error_band(rate)
        label = html.escape(gr.node_label(n, a).split("\n")[0][:34])
        parts.append(f'<g id="{node_key[n]}" class="node"><rect x="{x - box_w / 2}" y="{y - box_h / 2}" '
                     f'width="{box_w}" height="{box_h}" rx="8" fill="{fill}" stroke="{colour}" stroke-width="1.6"/>'
                     f'<text x="{x}" y="{y + 4}" text-anchor="middle" font-family="Helvetica,Arial,sans-serif" '
                     f'font-size="12">{label}</text></g>')
    parts.append("</g></svg>")
    return "".join(parts)


_CSS = """
:root { --fg:#1f2933; --muted:#616e7c; --line:#e4e7eb; --bg:#ffffff; --panel:#f8f9fb; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 -apple-system,BlinkMacSystemFont,"Segoe UI",Helvetica,Arial,sans-serif; color:var(--fg); background:var(--bg); }
header { padding:16px 24px 8px; border-bottom:1px solid var(--line); }
h1 { font-size:20px; margin:0 0 2px; }
.sub { color:var(--muted); font-size:12.5px; }
.stats { display:flex; gap:22px; margin-top:10px; flex-wrap:wrap; }
.stat b { display:block; font-size:18px; }
.stat span { color:var(--muted); font-size:12px; }
.legend { display:flex; flex-wrap:wrap; gap:14px; align-items:center; padding:8px 24px; font-size:12.5px; background:var(--panel); border-bottom:1px solid var(--line); }
.legend .line { display:inline-block; width:26px; height:4px; border-radius:2px; margin-right:6px; vertical-align:middle; }
.legend .swatch { display:inline-block; width:14px; height:14px; border:1px solid #9aa5b1; border-radius:3px; margin-right:5px; vertical-align:middle; }
.legend small { color:var(--muted); }
#stage { position:relative; height:68vh; min-height:420px; overflow:hidden; border-bottom:1px solid var(--line); cursor:grab; background:#fff; }
#stage.dragging { cursor:grabbing; }
#stage svg { width:100%; height:100%; display:block; }
#stage .edge, #stage .node { transition: opacity .12s; }
#stage .dim { opacity:.12; }
#stage .hl path, #stage .hl polygon, #stage .hl ellipse, #stage .hl rect { stroke-width:2.5; }
.controls { position:absolute; right:12px; top:10px; display:flex; gap:6px; }
.controls button { border:1px solid #cbd2d9; background:#fff; border-radius:6px; padding:3px 9px; cursor:pointer; font-size:13px; }
#tip { position:fixed; pointer-events:none; display:none; background:#1f2933; color:#fff; padding:9px 11px; border-radius:8px; font-size:12.5px; max-width:420px; box-shadow:0 6px 18px rgba(0,0,0,.25); z-index:10; }
#tip.pinned { display:block; pointer-events:auto; }
#tip h3 { margin:0 0 4px; font-size:13px; word-break:break-all; }
#tip table { border-collapse:collapse; }
#tip td { padding:1px 10px 1px 0; vertical-align:top; }
#tip td:first-child { color:#bcccdc; }
.bad { color:#ff8a80; font-weight:600; }
.warn { color:#ffcc80; font-weight:600; }
main { padding:12px 24px 28px; }
.tablebar { display:flex; justify-content:space-between; align-items:center; margin-bottom:6px; gap:12px; }
.tablebar input { padding:5px 9px; border:1px solid #cbd2d9; border-radius:6px; width:280px; }
table.edges { border-collapse:collapse; width:100%; font-size:12.5px; }
table.edges th, table.edges td { padding:4px 8px; border-bottom:1px solid var(--line); text-align:right; white-space:nowrap; }
table.edges th { cursor:pointer; background:var(--panel); position:sticky; top:0; user-select:none; }
table.edges td.t, table.edges th.t { text-align:left; }
table.edges tr:hover td { background:#f0f4f8; }
.pill { display:inline-block; width:9px; height:9px; border-radius:50%; margin-right:6px; }
footer { color:var(--muted); font-size:11.5px; padding:0 24px 18px; }
"""

_JS = r"""
(function () {
  const data = JSON.parse(document.getElementById('graph-data').textContent);
  const stage = document.getElementById('stage');
  const svg = stage.querySelector('svg');
  const tip = document.getElementById('tip');
  svg.querySelectorAll('title').forEach(t => t.remove());  // no native tooltips on top of ours
  svg.removeAttribute('width'); svg.removeAttribute('height');

  const pct = r => r == null ? '-' : (r === 0 ? '0%' : (r < 0.1 ? (r * 100).toFixed(2) : (r * 100).toFixed(1)) + '%');
  const ms = v => v == null ? '-' : (v >= 100 ? v.toFixed(0) : v >= 1 ? v.toFixed(1) : v.toFixed(2)) + ' ms';
  const num = v => v == null ? '-' : Number(v).toLocaleString();
  const esc = s => String(s).replace(/[&<>"]/g, c => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;'}[c]));
  const cls = r => r == null ? '' : r >= 0.05 ? 'bad' : r >= 0.001 ? 'warn' : '';
  function rows(pairs) {
    return '<table>' + pairs.filter(p => p[1] !== undefined).map(p =>
      '<tr><td>' + esc(p[0]) + '</td><td>' + p[1] + '</td></tr>').join('') + '</table>';
  }
  function edgeHtml(e) {
    const flags = Object.entries(e.flags || {}).map(([k, v]) => esc(k) + ':' + v).join(' ');
    return '<h3>' + esc(e.source) + ' &rarr; ' + esc(e.target) + '</h3>' + rows([
      ['requests', num(e.requests) + (e.rps != null ? ' (' + e.rps.toFixed(e.rps >= 10 ? 1 : 3) + ' rps)' : '')],
      ['errors', '<span class="' + cls(e.error_rate) + '">' + num(e.errors) + ' (' + pct(e.error_rate) + ')</span>'],
      ['5xx / gRPC / no resp', (e.errors_5xx ?? '-') + ' / ' + (e.errors_grpc ?? '-') + ' / ' + (e.errors_no_response ?? '-')],
      ['4xx', e.errors_4xx == null ? undefined : num(e.errors_4xx)],
      ['flags', flags || undefined],
      ['latency p50', ms(e.p50_ms)], ['p90', ms(e.p90_ms)], ['p99', ms(e.p99_ms)], ['mean', ms(e.mean_ms)],
      ['bytes in / out', e.bytes_received == null ? undefined : num(e.bytes_received) + ' / ' + num(e.bytes_sent)],
      ['protocols', (e.protocols || []).join(', ') || undefined],
      ['counted from', esc(e.reporter || '-') + (e.paired_server_rows ? ' (' + num(e.paired_server_rows) + ' server rows paired)' : '')],
    ]);
  }
  function nodeHtml(n) {
    return '<h3>' + esc(n.id) + '</h3>' + rows([
      ['kind', esc(n.kind)], ['namespace', n.namespace ? esc(n.namespace) : undefined],
      ['app', n.app ? esc(n.app) + (n.version ? ' ' + esc(n.version) : '') : undefined],
      ['workload', n.workload ? esc(n.workload) : undefined], ['cluster', n.cluster ? esc(n.cluster) : undefined],
      ['inbound', num(n.in_requests) + ' req, <span class="' + cls(n.in_error_rate) + '">' + pct(n.in_error_rate) + ' errors</span>'],
      ['outbound', num(n.out_requests) + ' req, <span class="' + cls(n.out_error_rate) + '">' + pct(n.out_error_rate) + ' errors</span>'],
      ['calls / callers', Object.values(data.edges).filter(e => e.source === n.id).length + ' / ' +
                          Object.values(data.edges).filter(e => e.target === n.id).length],
    ]);
  }
  function place(ev) {
    const pad = 14, w = tip.offsetWidth, h = tip.offsetHeight;
    let x = ev.clientX + pad, y = ev.clientY + pad;
    if (x + w > window.innerWidth) x = ev.clientX - w - pad;
    if (y + h > window.innerHeight) y = ev.clientY - h - pad;
    tip.style.left = Math.max(4, x) + 'px'; tip.style.top = Math.max(4, y) + 'px';
  }
  function focusNode(key) {
    const keep = new Set([key]);
    for (const [ek, e] of Object.entries(data.edges)) {
      if (e.sourceKey === key || e.targetKey === key) { keep.add(ek); keep.add(e.sourceKey); keep.add(e.targetKey); }
    }
    svg.querySelectorAll('g.node, g.edge').forEach(el => el.classList.toggle('dim', !keep.has(el.id)));
  }
  function clearFocus() { svg.querySelectorAll('.dim, .hl').forEach(el => el.classList.remove('dim', 'hl')); }
  function show(el, ev) {
    const e = data.edges[el.id], n = data.nodes[el.id];
    if (!e && !n) return;
    tip.innerHTML = e ? edgeHtml(e) : nodeHtml(n);
    tip.style.display = 'block';
    if (ev) place(ev);
    if (n) focusNode(el.id); else el.classList.add('hl');
  }
  svg.querySelectorAll('g.edge, g.node').forEach(el => {
    el.addEventListener('mouseenter', ev => { if (!tip.classList.contains('pinned')) show(el, ev); });
    el.addEventListener('mousemove', ev => { if (!tip.classList.contains('pinned')) place(ev); });
    el.addEventListener('mouseleave', () => { if (!tip.classList.contains('pinned')) { tip.style.display = 'none'; clearFocus(); } });
    el.addEventListener('click', ev => { tip.classList.remove('pinned'); show(el, ev); tip.classList.add('pinned'); ev.stopPropagation(); });
  });
  stage.addEventListener('click', () => { tip.classList.remove('pinned'); tip.style.display = 'none'; clearFocus(); });

  // Zoom (wheel) and pan (drag) by moving the viewBox.
  const vb0 = svg.viewBox.baseVal ? [svg.viewBox.baseVal.x, svg.viewBox.baseVal.y, svg.viewBox.baseVal.width, svg.viewBox.baseVal.height] : null;
  let vb = vb0 ? vb0.slice() : null;
  const apply = () => { if (vb) svg.setAttribute('viewBox', vb.join(' ')); };
  function zoom(f, cx, cy) {
    if (!vb) return;
    const r = svg.getBoundingClientRect();
    const px = vb[0] + (cx - r.left) / r.width * vb[2], py = vb[1] + (cy - r.top) / r.height * vb[3];
    vb = [px - (px - vb[0]) * f, py - (py - vb[1]) * f, vb[2] * f, vb[3] * f]; apply();
  }
  stage.addEventListener('wheel', ev => { ev.preventDefault(); zoom(ev.deltaY > 0 ? 1.15 : 1 / 1.15, ev.clientX, ev.clientY); }, {passive: false});
  let drag = null;
  stage.addEventListener('mousedown', ev => { drag = [ev.clientX, ev.clientY, vb && vb.slice()]; stage.classList.add('dragging'); });
  window.addEventListener('mouseup', () => { drag = null; stage.classList.remove('dragging'); });
  window.addEventListener('mousemove', ev => {
    if (!drag || !vb) return;
    const r = svg.getBoundingClientRect(), s = Math.max(drag[2][2] / r.width, drag[2][3] / r.height);
    vb = [drag[2][0] - (ev.clientX - drag[0]) * s, drag[2][1] - (ev.clientY - drag[1]) * s, vb[2], vb[3]]; apply();
  });
  document.getElementById('zin').onclick = ev => { ev.stopPropagation(); const r = svg.getBoundingClientRect(); zoom(1 / 1.3, r.left + r.width / 2, r.top + r.height / 2); };
  document.getElementById('zout').onclick = ev => { ev.stopPropagation(); const r = svg.getBoundingClientRect(); zoom(1.3, r.left + r.width / 2, r.top + r.height / 2); };
  document.getElementById('zfit').onclick = ev => { ev.stopPropagation(); vb = vb0 && vb0.slice(); apply(); };

  // Edge table: sortable, filterable; a row click pins that edge.
  const cols = [['source', 't'], ['target', 't'], ['requests'], ['rps'], ['errors'], ['error_rate'], ['p50_ms'], ['p90_ms'], ['p99_ms'], ['reporter', 't']];
  const tbody = document.querySelector('table.edges tbody');
  let sortKey = 'requests', sortDir = -1;
  function fmt(k, v) { return k === 'error_rate' ? pct(v) : k.endsWith('_ms') ? ms(v) : k === 'rps' ? (v == null ? '-' : v.toFixed(3)) : (typeof v === 'number' ? num(v) : esc(v ?? '-')); }
  function render() {
    const q = document.getElementById('filter').value.toLowerCase();
    const list = Object.entries(data.edges).filter(([, e]) => !q || (e.source + ' ' + e.target).toLowerCase().includes(q));
    list.sort(([, a], [, b]) => { const x = a[sortKey], y = b[sortKey]; return (x == null) - (y == null) || (x < y ? -1 : x > y ? 1 : 0) * sortDir; });
    tbody.innerHTML = list.map(([k, e]) => {
      const band = data.bands.find(b => b.below == null || (e.error_rate ?? 0) < b.below);
      return '<tr data-k="' + k + '">' + cols.map(([c, t]) => '<td class="' + (t || '') + '">' +
        (c === 'source' ? '<span class="pill" style="background:' + band.colour + '"></span>' : '') + fmt(c, e[c]) + '</td>').join('') + '</tr>';
    }).join('');
    document.getElementById('count').textContent = list.length + ' of ' + Object.keys(data.edges).length + ' edges';
  }
  document.querySelectorAll('table.edges th').forEach((th, i) => th.addEventListener('click', () => {
    const k = cols[i][0]; sortDir = sortKey === k ? -sortDir : (cols[i][1] ? 1 : -1); sortKey = k; render();
  }));
  document.getElementById('filter').addEventListener('input', render);
  tbody.addEventListener('click', ev => {
    const tr = ev.target.closest('tr'); if (!tr) return;
    const el = document.getElementById(tr.dataset.k); if (!el) return;
    clearFocus(); tip.classList.remove('pinned'); show(el, null);
    const r = stage.getBoundingClientRect(); tip.style.left = (r.left + 16) + 'px'; tip.style.top = (r.top + 16) + 'px';
    tip.classList.add('pinned'); stage.scrollIntoView({behavior: 'smooth'});
  });
  render();

  // #node=ID or #edge=SRC->DST pins that element on load.
  const h = decodeURIComponent(location.hash.slice(1));
  let key = null;
  if (h.startsWith('node=')) key = Object.keys(data.nodes).find(k => data.nodes[k].id === h.slice(5));
  if (h.startsWith('edge=')) key = Object.keys(data.edges).find(k => data.edges[k].source + '->' + data.edges[k].target === h.slice(5));
  if (key && document.getElementById(key)) {
    show(document.getElementById(key), null);
    const r = stage.getBoundingClientRect(); tip.style.left = (r.left + 16) + 'px'; tip.style.top = (r.top + 16) + 'px';
    tip.classList.add('pinned');
  }
  document.body.dataset.ready = '1';
})();
"""

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="meshctl graph">
<title>{title}</title>
<style>{css}</style>
</head>
<body>
<header>
<h1>{title}</h1>
<div class="sub">{subtitle}</div>
<div class="stats">{stats}</div>
</header>
<div class="legend"><b>Edges</b> {legend_bands} <span class="band">width: request rate (log scale)</span>
<b>Nodes</b> {legend_kinds} <span class="band">border: inbound error rate</span></div>
<div id="stage">
<div class="controls"><button id="zin" title="zoom in">+</button><button id="zout" title="zoom out">&minus;</button><button id="zfit" title="fit">fit</button></div>
{svg}
</div>
<div id="tip"></div>
<main>
<div class="tablebar"><b id="count"></b><input id="filter" type="search" placeholder="filter edges by service name"></div>
<table class="edges"><thead><tr><th class="t">source</th><th class="t">target</th><th>requests</th><th>rps</th><th>errors</th><th>error rate</th><th>p50</th><th>p90</th><th>p99</th><th class="t">counted from</th></tr></thead><tbody></tbody></table>
</main>
<footer>Hover an edge or node for its figures, click to pin; wheel to zoom, drag to pan. {layout_note}. Counting: {policy}. Generated by meshctl graph.</footer>
<script type="application/json" id="graph-data">{data}</script>
<script>{js}</script>
</body>
</html>
"""
