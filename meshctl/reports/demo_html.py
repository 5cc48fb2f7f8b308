"""`meshctl demo`'s report.html: the whole run on one self-contained page.

The verdict first, then the traffic the gateway saw, the service graph by version (the graph SVG
inline, its edges in a table), the canary section (the very renderer of `analyze --html`,
canary_html.canary_section), the suggested limits (kind, target, key values, findings, replay) with
how Envoy judged them, every stage, and links to the other files of the output folder (relative, so
the folder can be moved or zipped). Nothing is computed here: the figures are the demo's results.
No network, no required script (the canary page's copy button is the only one).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from meshctl.reports import canary_format as f
from meshctl.reports.canary_html import canary_section, esc, inline_svg, page, pill, table, verdict_banner

STATUS_TONE = {"ok": "good", "failed": "bad", "missing": "warn", "skipped": "warn", "pending": "mute",
               "running": "mute"}
# What each output file is, for the links section (others are listed without a description).
FILE_TEXT = {
    "summary.json": "verdict, exit code, traffic, edges, every stage with time and files",
    "rendered/envoyfilters.yaml": "the telemetry EnvoyFilters the proxies ran",
    "rendered/telemetry.yaml": "the same telemetry through the Telemetry API",
    "rendered/istio-operator.yaml": "its meshConfig extension provider",
    "graph.html": "service graph by app, interactive",
    "graph.svg": "service graph by app",
    "graph.json": "service graph by app, every figure",
    "graph-versions.html": "service graph by version, interactive",
    "graph-versions.svg": "service graph by version",
    "graph-versions.json": "service graph by version, every figure",
    "canary.md": "the canary report for a pull-request comment",
    "canary.json": "the canary judgment, every figure (meshctl analyze -o json)",
    "canary.svg": "the canary plot",
    "canary-config.yaml": "the canary config the demo judged with (meshctl analyze --config)",
    "suggestions.yaml": "suggested DestinationRules, rate-limit EnvoyFilters and Sidecars",
    "suggestions.json": "the suggestions with their evidence and replays",
    "suggestions-validation.json": "each suggestion applied to the demo's proxies and checked by Envoy",
    "data": "the requests table (Parquet): meshctl graph/analyze/suggest --data",
    "mesh": "raw access logs, spans, each proxy's bootstrap and log",
}
_CSS = """
nav.toc { display:flex; flex-wrap:wrap; gap:6px 16px; margin:0 0 18px; font-size:13px; }
nav.toc a, .files a { color:#1f5fbf; text-decoration:none; }
nav.toc a:hover, .files a:hover { text-decoration:underline; }
.tiles { display:flex; flex-wrap:wrap; gap:12px; margin:0 0 10px; }
.tile { background:var(--panel); border-radius:10px; padding:10px 16px; min-width:130px; }
.tile b { display:block; font-size:20px; }
.tile span { color:var(--muted); font-size:12px; }
figure.graph { border:1px solid var(--line); border-radius:10px; padding:8px; margin-bottom:10px; }
section.canary-part { border-top:3px solid var(--line); padding-top:16px; }
ul.files { columns:2; column-gap:36px; }
ul.files li { break-inside:avoid; }
.kv { display:inline-block; margin:0 16px 2px 0; }
.kv code { color:var(--muted); }
"""


def render_demo_html(result: Any, *, graph: Any = None, graph_svg: str | None = None, canary_svg: str | None = None,
                     checks: list[dict[str, Any]] | None = None, canary_command: str | None = None,
                     files: list[str] | None = None) -> str:
    """The page. `result` is a `meshctl.mesh.demo.DemoResult`; `graph` the by-version service graph
    (networkx) and `graph_svg` its SVG (None: the graph HTML page's built-in layout draws it);
    `canary_svg` the canary plot; `checks` the Envoy validation of the suggestions; `files` the
    output files to link, relative to the output folder."""
    scenario = ("healthy canary" if result.healthy
                else "faulty canary: reviews v2 answers 503 to 5% of its requests")
    title = f"meshctl demo: {f.VERDICT_TEXT.get(result.verdict or '', 'NO VERDICT')}"
    parts = [
        ("traffic", "Traffic", _traffic(result)),
        ("graph", "Service graph by version", _graph(result, graph, graph_svg)),
        ("canary", "Canary: reviews v2 against v1", _canary(result, canary_svg, canary_command)),
        ("suggestions", "Suggested limits", _suggestions(result, checks)),
        ("stages", "Stages", _stages(result)),
        ("files", "Files", _files(files or [])),
    ]
    parts = [(k, h, c) for k, h, c in parts if c]
    body = ['<main class="demo">', _banner(result, scenario),
            '<nav class="toc">' + "".join(f'<a href="#{k}">{esc(h)}</a>' for k, h, _ in parts) + "</nav>"]
    for key, heading, content in parts:
        cls = ' class="canary-part"' if key == "canary" else ""
        body.append(f'<section id="{key}"{cls}><h2>{esc(heading)}</h2>{content}</section>')
    body.append("</main>")
    body.append("<footer>Generated by meshctl demo: real Envoy proxies on 127.0.0.1, their access logs and spans "
                "collected into a requests table, and every part of meshctl run on it. <code>meshctl graph</code>, "
                "<code>analyze</code> and <code>suggest</code> read the same table with <code>--data DIR/data</code> "
                "(the canary section has the exact command).</footer>")
    return page(title, "\n".join(body), generator="meshctl demo", extra_css=_CSS)


def _banner(result: Any, scenario: str) -> str:
    facts = []
    if result.score is not None:
        facts.append(f"canary score <b>{esc(f'{result.score:g}')}/100</b>")
    facts.append(f"exit code <b>{esc(result.exit_code)}</b>")
    facts.append(f"{esc(f'{result.seconds:.0f}')} s end to end")
    lines = [esc(scenario), " · ".join(facts)]
    if result.verdict in f.VERDICT_MEANING:
        lines.append(esc(f"reviews v2: {f.VERDICT_MEANING[result.verdict]}"))
    else:
        failed = [s for s in result.stages if s.status not in ("ok",)]
        lines.append(esc("no verdict: " + "; ".join(f"{s.name} {s.status}" + (f" ({s.detail})" if s.detail else "")
                                                   for s in failed)))
    return verdict_banner(result.verdict, "meshctl demo", lines, level=1)


def _traffic(result: Any) -> str:
    t = result.traffic
    if t is None:
        return ""
    p50, p99 = t.percentile(50), t.percentile(99)
    tiles = [("requests through the gateway", f.num(t.sent)), ("seconds", f"{t.seconds:.1f}"),
             ("requests per second", f"{t.rps:.0f}"),
             ("5xx or no answer", f"{f.num(t.errors)} ({f.pct(t.errors / t.sent if t.sent else None)})"),
             ("client p50 / p99", "–" if p50 is None or p99 is None else f"{p50:.0f} / {p99:.0f} ms")]
    out = '<div class="tiles">' + "".join(f"<div class=\"tile\"><b>{esc(v)}</b><span>{esc(k)}</span></div>"
                                          for k, v in tiles) + "</div>"
    codes = sorted(t.by_code.items())
    rows = [[esc(code), esc(f.num(n)), esc(f.pct(n / t.sent if t.sent else None))] for code, n in codes]
    if t.failures:
        rows.append(["no response", esc(f.num(t.failures)), esc(f.pct(t.failures / t.sent))])
    return out + table(["status", "requests", "share"], rows, cls="narrow", numeric={1, 2}) + \
        '<p class="sub">As the traffic client saw them at the ingress gateway (its own clock).</p>'


def _graph(result: Any, graph: Any, svg: str | None) -> str:
    from meshctl.reports import graph_render as gr

    if graph is None and not result.edges:
        return ""
    out = []
    if svg is None and graph is not None and graph.number_of_nodes():
        from meshctl.reports.graph_html import builtin_svg

        svg = builtin_svg(graph)
    if svg:
        out.append(f'<figure class="graph">{inline_svg(svg, "graph-")}<figcaption>Edge colour by error rate '
                   "(green under 0.1%, orange under 5%, red 5% or more), width by request rate. Hover, zoom and "
                   'pan in <a href="graph-versions.html">graph-versions.html</a>; by app: '
                   '<a href="graph.html">graph.html</a>.</figcaption></figure>')
    edges = list(graph.edges(data=True)) if graph is not None else list(result.edges)
    rows = []
    for a, b, d in sorted(edges, key=lambda e: -(e[2].get("requests") or 0)):
        band, _ = gr.error_band(d.get("error_rate") if d.get("requests") else None)
        tone = {"ok": "good", "degraded": "warn", "failing": "bad"}.get(band, "mute")
        rows.append([f"<code>{esc(a)}</code>", f"<code>{esc(b)}</code>", esc(f.num(d.get("requests"))),
                     f'{esc(f.num(d.get("errors")))} {pill(f.pct(d.get("error_rate")), tone)}',
                     esc(f.num(d.get("p50_ms"))), esc(f.num(d.get("p99_ms"))), esc(d.get("reporter") or "–")])
    out.append(table(["from", "to", "requests", "errors", "p50 ms", "p99 ms", "counted from"], rows,
                     numeric={2, 3, 4, 5}))
    return "".join(out)


def _canary(result: Any, svg: str | None, command: str | None) -> str:
    if result.canary is None:
        return ""
    return canary_section(result.canary, command=command, exit_code=result.exit_code, plot_svg=svg, level=3,
                          id_prefix="canary-")


def _key_values(s: Any) -> str:
    items = []
    for st in s.settings:
        name = st.field.rsplit(".", 1)[-1]
        value = ", ".join(map(str, st.value)) if isinstance(st.value, (list, tuple)) else st.value
        items.append(f'<span class="kv" title="{esc(st.field + ": " + st.rule)}"><code>{esc(name)}</code> '
                     f"<b>{esc(value)}</b></span>")
    return "".join(items) or "–"


_REPLAY_FIGURES = (("rejected_overflow", "rejected (overflow)"), ("rate_limited", "rate-limited"),
                   ("outside_scope", "outside the Sidecar scope"), ("ejections", "ejections"),
                   ("errors_avoided", "errors avoided"), ("queued", "queued"))


def _replay(s: Any) -> str:
    rep = (s.replay or {}).get("suggested")
    if rep is None:
        return "–"
    hits = [f"{f.num(getattr(rep, k, 0))} {text}" for k, text in _REPLAY_FIGURES if getattr(rep, k, 0)]
    return esc(f"{f.num(rep.requests)} requests: " + (", ".join(hits) if hits else "none rejected"))


def _suggestions(result: Any, checks: list[dict[str, Any]] | None) -> str:
    results = result.suggestions or {}
    if not results and not checks:
        return ""
    rows = []
    for kind, res in results.items():
        for s in res.suggestions:
            msgs = " ".join(pill(m.code, "warn" if m.level == "warning" else "mute", title=m.text)
                            for m in s.messages)
            rows.append([f'<span class="nowrap">{esc(kind)}</span>', f"<code>{esc(s.target.label())}</code>", _key_values(s), _replay(s), msgs or "–"])
    out = ["<p>Derived from the observed traffic; each value's rule and evidence are in "
           '<a href="suggestions.json">suggestions.json</a> (hover a value for its rule), the resources in '
           '<a href="suggestions.yaml">suggestions.yaml</a>. The replay runs the recorded requests through '
           "the suggested limits.</p>"]
    if rows:
        out.append(table(["kind", "target", "key values", "replay", "findings"], rows))
    if checks:
        crow = []
        for c in checks:
            if not c.get("ok"):
                status = pill("invalid", "bad")
            elif not c.get("proxies") and str(c.get("check", "")).startswith("envoy"):
                status = pill("not applied", "mute")  # no proxy of the demo mesh it concerns: nothing to check
            else:
                status = pill("valid", "good")
            crow.append([f"<code>{esc(c.get('object'))}</code>", esc(c.get("check")), status,
                         esc(f.num(c.get("proxies"))), esc(c.get("message") or "")])
        bad = sum(1 for c in checks if not c.get("ok"))
        out.append(f"<p><b>Checked by Envoy:</b> every suggestion applied to the configuration of the demo's proxies "
                   f"it concerns and run through <code>envoy --mode validate</code>: "
                   f"{esc(f'{bad} failed' if bad else 'all valid')}.</p>")
        out.append(table(["object", "check", "result", "proxy configs", "message"], crow, numeric={3}))
    return "".join(out)


def _stages(result: Any) -> str:
    rows = [[esc(s.title), pill(s.status, STATUS_TONE.get(s.status, "mute")), esc(f"{s.seconds:.1f}"),
             esc(s.detail), f"<small>{esc(s.owner)}</small>"] for s in result.stages]
    return table(["stage", "status", "seconds", "detail", "library"], rows, numeric={2})


def _files(files: list[str]) -> str:
    if not files:
        return ""
    items = []
    for name in files:
        href = quote(name.replace("\\", "/")) + ("/" if name in ("data", "mesh") else "")
        text = FILE_TEXT.get(name, "")
        items.append(f'<li><a href="{esc(href)}"><code>{esc(name)}</code></a>'
                     + (f" <small>{esc(text)}</small>" if text else "") + "</li>")
    return '<ul class="files">' + "".join(items) + "</ul>"


def output_files(result: Any) -> list[str]:
    """The files this run wrote (the stages' files), relative to the output folder: whole folders for
    the logs and the data, the report's neighbours first."""
    out = Path(result.out_dir)
    names: set[str] = {"summary.json"}
    for s in result.stages:
        for p in s.files:
            p = Path(p)
            if not p.is_relative_to(out):
                continue
            rel = p.relative_to(out)
            top = rel.parts[0] if rel.parts else ""
            names.add(top if top in ("data", "mesh") else rel.as_posix())
    order = list(FILE_TEXT)
    return sorted(names, key=lambda n: (order.index(n) if n in order else len(order), n))
