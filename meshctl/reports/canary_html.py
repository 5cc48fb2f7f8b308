"""A canary / blue-green judgment as one self-contained HTML page (`meshctl analyze ... --html FILE`).

Written for the person who decides on the rollout: the verdict and score first (in colour), why, the
cohorts and which rows were used, the metrics table (classification, both cohorts' figures, effect
against what is allowed, interval, p-value, power and how many more requests an underpowered metric
needs), thresholds, group scores, the plot (canary_plot's SVG, inline), the per-route breakdown,
notes, the judge's settings and the command that reproduces the run.

Every figure comes from the result and is formatted by `canary_format`, as in the terminal, Markdown
and JUnit writers. Every value from the data or the config goes through `esc` (a service called
`<script>` is text). No network: CSS inline, pictures inline SVG, no external URL; the only script
is a copy button for the command, and the page reads the same without it.

The page shell (`page`), the verdict banner, `esc` and `inline_svg` are shared with the demo report
(demo_html.py).
"""

from __future__ import annotations

import html
import re
from typing import Any

from meshctl.reports import canary_format as f

# Verdict colours: white bold text on them stays readable (contrast >= 3:1 for large text).
VERDICT_COLOUR = {"pass": "#1e7e45", "fail": "#c62828", "marginal": "#a86a00", "inconclusive": "#a86a00",
                  None: "#616e7c"}
CLASS_TONE = {"Pass": "good", "High": "bad", "Low": "bad", "NodataFailMetric": "bad", "Error": "bad",
              "Nodata": "warn"}
REPORTER_TEXT = {
    "inbound": "inbound: the destination proxies' own rows, one per request",
    "outbound": "outbound: the callers' proxies' rows",
    "unknown": "rows without a reporter direction (e.g. spans)",
    "mixed": "mixed: the cohorts come from different sides; latencies are not directly comparable",
    "none": "none: no rows matched",
}
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def esc(value: Any) -> str:
    """Any value as HTML text: markup characters escaped (quotes too, so it is safe in attributes),
    control characters dropped, lone surrogates replaced (the page is written as UTF-8)."""
    text = str(value)
    if not text.isascii():
        text = text.encode("utf-8", "replace").decode("utf-8")
    return html.escape(_CONTROL.sub("", text), quote=True)


# ---- shared page pieces ---------------------------------------------------------------------------

def page(title: str, body: str, *, generator: str, extra_css: str = "") -> str:
    """The HTML document around `body` (already HTML): inline CSS, the copy-button script, no network."""
    from meshctl import __version__

    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f'<meta name="generator" content="{esc(generator)} (meshctl {esc(__version__)})">\n'
            f"<title>{esc(title)}</title>\n<style>{CSS}{extra_css}</style>\n</head>\n<body>\n{body}\n"
            f"<script>{_JS}</script>\n</body>\n</html>\n")


def verdict_banner(verdict: str | None, heading: str, lines: list[str], *, level: int = 1,
                   compact: bool = False) -> str:
    """The coloured verdict block. `heading` is text; `lines` are HTML (escape their values)."""
    colour = VERDICT_COLOUR.get(verdict, VERDICT_COLOUR[None])
    badge = f.VERDICT_TEXT.get(verdict or "", "NO VERDICT")
    cls = "verdict compact" if compact else "verdict"
    return (f'<div class="{cls}" data-verdict="{esc(verdict or "none")}" style="--vc:{colour}">'
            f'<div class="badge">{esc(badge)}</div><div class="vtext"><h{level}>{esc(heading)}</h{level}>'
            + "".join(f"<p>{line}</p>" for line in lines) + "</div></div>")


def table(headers: list[str], rows: list[list[str] | str], *, cls: str = "", numeric: set[int] | None = None,
          row_attrs: list[str] | None = None) -> str:
    """A table; `headers` are text, cells are HTML (escape their values); a row given as a string is
    already a whole `<tr>`. Columns in `numeric` align right."""
    numeric = numeric or set()
    attrs = row_attrs or [""] * len(rows)

    def td(i: int, cell: str, tag: str = "td") -> str:
        return f'<{tag} class="num">{cell}</{tag}>' if i in numeric else f"<{tag}>{cell}</{tag}>"

    head = "".join(td(i, esc(h), "th") for i, h in enumerate(headers))
    body = "".join(r if isinstance(r, str) else f"<tr{attrs[k]}>" + "".join(td(i, c) for i, c in enumerate(r)) + "</tr>"
                   for k, r in enumerate(rows))
    return f'<div class="tablewrap"><table class="{esc(cls)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody>' \
           "</table></div>"


def pill(text: str, tone: str, title: str | None = None) -> str:
    tip = f' title="{esc(title)}"' if title else ""
    return f'<span class="pill {esc(tone)}"{tip}>{esc(text)}</span>'


def inline_svg(svg: str, prefix: str) -> str:
    """An SVG file's text made fit to sit inside an HTML page beside other SVGs: the XML prolog,
    DOCTYPE, comments and metadata dropped; ids (and their references) prefixed so two pictures
    cannot clash; `<style>` rules scoped to this picture; width/height left to CSS (viewBox kept)."""
    start = svg.find("<svg")
    if start < 0:
        raise ValueError("not an SVG document")
    s = svg[start:]
    s = re.sub(r"<!--.*?-->", "", s, flags=re.S)
    s = re.sub(r"<metadata>.*?</metadata>", "", s, flags=re.S)
    s = re.sub(r'\bid="([^"]*)"', lambda m: f'id="{prefix}{m.group(1)}"', s)
    s = re.sub(r'(href)="#([^"]*)"', lambda m: f'{m.group(1)}="#{prefix}{m.group(2)}"', s)
    s = re.sub(r"url\(#([^)]*)\)", lambda m: f"url(#{prefix}{m.group(1)})", s)
    root_id = f"{prefix}svg"

    def scope(m: re.Match[str]) -> str:
        rules = re.sub(r"([^{}]+)\{", lambda r: ",".join(f"#{root_id} {sel.strip()}" for sel in r.group(1).split(","))
                       + "{", m.group(2))
        return m.group(1) + rules + m.group(3)

    s = re.sub(r"(<style[^>]*>)(.*?)(</style>)", scope, s, flags=re.S)
    head_end = s.index(">")
    head = re.sub(r'\s(width|height)="[^"]*"', "", s[:head_end])
    head = re.sub(r'\sid="[^"]*"', "", head)
    return f'{head} id="{root_id}" class="picture" role="img"{s[head_end:]}'


# ---- the canary report ----------------------------------------------------------------------------

def render_html(result: Any, *, command: str | None = None, exit_code: int | None = None,
                plot_svg: str | None = None) -> str:
    """The whole page. `plot_svg`: canary_plot's SVG text (see `plot_svg()`), or None for no picture."""
    body = ('<main class="report">' + canary_section(result, command=command, exit_code=exit_code,
                                                     plot_svg=plot_svg, level=1) + "</main>"
            + f'<footer>Generated by meshctl analyze {esc(_analysis(result))}. Every figure is in '
              "<code>-o json</code> too; <code>--markdown</code> and <code>--junit</code> write the same "
              "judgment for pull requests and CI.</footer>")
    return page(f.title(result), body, generator=f"meshctl analyze {_analysis(result)}")


def plot_svg(result: Any) -> str | None:
    """canary_plot's picture of the result as SVG text (None when the result has no samples to draw)."""
    import tempfile
    from pathlib import Path

    from meshctl.reports.canary_plot import plot

    if not result.samples:
        return None
    with tempfile.TemporaryDirectory(prefix="meshctl-plot-") as tmp:
        path = Path(tmp) / "plot.svg"
        plot(result, str(path))
        return path.read_text(encoding="utf-8")


def _analysis(result: Any) -> str:
    return "bluegreen" if result.kind == "bluegreen" else "canary"


def canary_section(result: Any, *, command: str | None = None, exit_code: int | None = None,
                   plot_svg: str | None = None, level: int = 2, id_prefix: str = "") -> str:
    """The report as an HTML fragment (the demo report embeds it). `level`: the heading level of the
    verdict; sections use the next one. `id_prefix` keeps element ids unique in a bigger page."""
    h = level + 1
    labels = tuple(result.labels)
    out = [_banner(result, exit_code, level)]
    parts = [
        ("why", "Why", _reasons(result)),
        ("cohorts", "Cohorts", _cohorts(result, labels)),
        ("metrics", "Metrics", _metrics(result, labels)),
        ("thresholds", "Thresholds (Flagger-style: any breach fails the run)", _thresholds(result, labels)),
        ("score", "Score", _groups(result)),
        ("plot", "Latency and errors, baseline beside canary", _plot(plot_svg, id_prefix + "plot-")),
        ("routes", "Routes (report only: not scored)", _routes(result, labels)),
        ("notes", "Notes", _notes(result)),
        ("settings", "Judge settings", _settings(result)),
        ("reproduce", "Reproduce", _reproduce(result, command)),
    ]
    for key, heading, content in parts:
        if content:
            out.append(f'<section id="{esc(id_prefix + key)}"><h{h}>{esc(heading)}</h{h}>{content}</section>')
    return "\n".join(out)


def _banner(result: Any, exit_code: int | None, level: int) -> str:
    heading = f.title(result).rsplit(": ", 1)[0]
    facts = [f"score <b>{esc(f'{result.score:g}')}/100</b> ({esc(result.score_classification)})",
             f"judge <b>{esc(result.judge)}</b>"]
    if exit_code is not None:
        facts.append(f"exit code <b>{esc(exit_code)}</b>")
    lines = [" · ".join(facts), esc(f.VERDICT_MEANING[result.verdict])]
    return verdict_banner(result.verdict, heading, lines, level=level, compact=level > 1)


def _reasons(result: Any) -> str:
    if not result.reasons:
        return ""
    return "<ul>" + "".join(f"<li>{esc(r)}</li>" for r in result.reasons) + "</ul>"


def _cohorts(result: Any, labels: tuple[str, ...]) -> str:
    c = result.cohorts
    if not c:
        return ""
    rows = []
    for i, side in enumerate(("baseline", "canary")):
        d = c.get(side) or {}
        sel = d.get("selector") or ("before the switch" if side == "baseline" else "after the switch")
        n = d.get("requests", 0)
        window = ""
        if d.get("first") and d.get("last"):
            window = f"{esc(_span(d['first'], d['last']))} ({esc(f.num(d.get('seconds')))} s)"
        rows.append([
            f'<span class="nowrap"><span class="swatch s{i}"></span><b>{esc(labels[i])}</b></span>',
            f"<code>{esc(sel)}</code>",
            esc(f.num(n)),
            f"{esc(f.pct(d.get('error_rate')))} ({esc(f.num(d.get('errors', 0)))})" if n else "–",
            esc(f.num(d.get("latency_p50"))) if n else "–",
            esc(f.num(d.get("latency_p99"))) if n else "–",
            esc(f.num(d.get("rps"))) if n else "–",
            esc(f.pct(d.get("traffic_share"))) if n else "–",
            esc(d.get("reporter", "")),
            window or "–",
        ])
    reporter = c.get("reporter")
    service = c.get("service")
    intro = (f"<p>Requests to <code>{esc(service)}</code> whose destination matches each selector. "
             f"Rows used: <b>{esc(REPORTER_TEXT.get(reporter, reporter))}</b> "
             "(one side per run, so no request is counted twice).</p>")
    return intro + table(["cohort", "selector", "requests", "errors", "p50 ms", "p99 ms", "rps", "traffic share",
                          "rows", "window (UTC)"], rows, numeric={2, 3, 4, 5, 6, 7})


def _span(first: str, last: str) -> str:
    """`first → last` of two ISO times, to the second, the end's date left out when it is the same day."""
    def short(t: str) -> str:
        return re.sub(r"(\d{2}:\d{2}:\d{2})\.\d+", r"\1", t).replace("T", " ").replace("+00:00", "")

    a, b = short(str(first)), short(str(last))
    if a[:10] == b[:10] and len(b) > 11:
        b = b[11:]
    return f"{a} → {b}"


def _allowed(m: Any) -> str:
    es = m.effect_size or {}
    parts = []
    if m.direction in ("increase", "either") and es.get("allowedIncrease") is not None:
        parts.append("up to " + ("+" if m.effect_measure == "difference" else "") + f.effect_value(m, es["allowedIncrease"]))
    if m.direction in ("decrease", "either") and es.get("allowedDecrease") is not None:
        parts.append("down to " + ("−" if m.effect_measure == "difference" else "") + f.effect_value(m, es["allowedDecrease"]))
    return "allowed " + ", ".join(parts) if parts else ""


def _power_cell(m: Any, labels: tuple[str, ...]) -> str:
    text = esc(f.power(m))
    if m.power_target is not None and not f.isnan(m.power_target) and m.power is not None and not f.isnan(m.power):
        text += f' <small>of {esc(f"{m.power_target:.0%}")}</small>'
    if m.more_needed:
        text += (f'<div class="need">needs ≈{esc(f.num(m.more_needed.get("canary", 0)))} more {esc(labels[1])} and '
                 f'{esc(f.num(m.more_needed.get("baseline", 0)))} more {esc(labels[0])} requests</div>')
    return text


def _metrics(result: Any, labels: tuple[str, ...]) -> str:
    if not result.metrics:
        return ""
    rows, attrs = [], []
    for m in result.metrics:
        tone = "mute" if m.muted else CLASS_TONE.get(m.classification, "warn")
        name = f"<code>{esc(m.name)}</code>"
        if m.description:
            name = f'<code title="{esc(m.description)}">{esc(m.name)}</code>'
        groups = f'<div class="sub">{esc(", ".join(m.groups))}</div>' if m.groups else ""
        p = esc(f.p_value(m)) + (f' <small>{esc(m.p_method)}</small>' if m.p_method and not f.isnan(m.p_value) else "")
        rows.append([
            f'<span class="nowrap">{name}</span>{groups}',
            pill(f"{f.MARK.get(m.classification, '')} {f.label(m)}", tone),
            esc(f.value(m, "baseline")),
            esc(f.value(m, "canary")),
            esc(f.effect(m)) + (f'<div class="sub">{esc(_allowed(m))}</div>' if _allowed(m) else ""),
            esc(f.ci(m)) + (f'<div class="sub">{esc(m.ci_of)}</div>' if m.ci_of and not f.isnan(m.ci[0]) else ""),
            p,
            _power_cell(m, labels),
        ])
        attrs.append(f' class="metric {tone}"')
        rows.append(f'<tr class="reasonrow"><td colspan="8">{esc(m.reason)}</td></tr>')
        attrs.append("")
    confs = sorted({f"{m.confidence:.0%}" for m in result.metrics if not f.isnan(m.confidence)})
    ci_head = f"{confs[0]} CI" if len(confs) == 1 else "CI"
    tbl = table(["metric", "result", labels[0], labels[1], "effect", ci_head, "p-value", "power"], rows,
                cls="metrics", row_attrs=attrs)
    return tbl + ('<p class="sub">Intervals: rank metrics give the shift of the canary against the baseline (in the '
                  "metric's unit); rates and quantiles the difference of shares in percentage points. A metric "
                  "that would pass on too little data is inconclusive (Nodata) and says how many more requests "
                  "its test needs.</p>")


def _threshold_value(figure: str, v: Any) -> str:
    if f.isnan(v):
        return "–"
    if figure in ("error_rate", "success_rate"):
        return f.pct(v)
    if figure.startswith("latency"):
        return f"{f.num(v)} ms"
    return f.num(v)


def _thresholds(result: Any, labels: tuple[str, ...]) -> str:
    if not result.thresholds:
        return ""
    rows = []
    for t in result.thresholds:
        if t.passed:
            res = pill("pass", "good")
        elif t.passed is False:
            res = pill("fail", "bad") + f" {esc(t.reason)}"
        else:
            res = pill("no data", "warn") + (f" {esc(t.reason)}" if t.reason else "")
        rows.append([f"<code>{esc(t.description)}</code>", esc(_threshold_value(t.figure, t.value)),
                     esc(_threshold_value(t.figure, t.baseline_value)), res])
    return table(["threshold", labels[1], labels[0], "result"], rows, numeric={1, 2})


def _groups(result: Any) -> str:
    cfg = result.config or {}
    st = cfg.get("scoreThresholds") or {}
    limits = ""
    if "pass" in st and "marginal" in st:
        limits = f" (pass ≥ {esc(_setting(st['pass']))}, marginal ≥ {esc(_setting(st['marginal']))})"
    intro = (f"<p>Score <b>{esc(f'{result.score:g}')}</b> of 100 → <b>{esc(result.score_classification)}</b>"
             f"{limits}.</p>")
    if not result.groups:
        return intro
    rows = []
    for g in result.groups:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(g.counts.items()))
        rows.append([esc(g.name), esc(f"{g.score:.4g}") + (" <small>(no data)</small>" if g.no_data else ""),
                     esc(f"{g.weight:.3g}%"), esc(counts or "–")])
    return intro + table(["group", "score", "weight", "metrics"], rows, cls="narrow", numeric={1, 2})


def _plot(svg: str | None, prefix: str) -> str:
    if not svg:
        return ""
    return (f'<figure class="plot">{inline_svg(svg, prefix)}<figcaption>Left: share of requests at or below each '
            "duration (dotted p50, dashed p90, dash-dot p99); middle: error rates with 95% Wilson intervals; "
            "right: latency quantiles.</figcaption></figure>")


def _routes(result: Any, labels: tuple[str, ...]) -> str:
    if not result.routes:
        return ""
    rows = []
    for r in result.routes:
        b, c = r.baseline, r.canary

        def test(m: Any) -> str:
            if m is None:
                return "–"
            return pill(m.classification, CLASS_TONE.get(m.classification, "warn")) + \
                f" <small>p {esc(f.p_value(m))}</small>"

        rows.append([f"<code>{esc(r.route)}</code>",
                     f"{esc(f.num(b.get('requests')))} / {esc(f.num(c.get('requests')))}",
                     f"{esc(f.pct(b.get('error_rate')))} / {esc(f.pct(c.get('error_rate')))}",
                     f"{esc(f.num(b.get('latency_p50')))} / {esc(f.num(c.get('latency_p50')))}",
                     f"{esc(f.num(b.get('latency_p99')))} / {esc(f.num(c.get('latency_p99')))}",
                     test(r.error_rate), test(r.latency)])
    pair = f"{labels[0]} / {labels[1]}"
    return (f'<details open><summary>{esc(len(result.routes))} busiest routes, {esc(pair)}. Many routes mean many '
            "tests: one failing by chance is not a reason to roll back.</summary>"
            + table(["route", "requests", "errors", "p50 ms", "p99 ms", "errors test", "latency test"], rows,
                    numeric={1, 2, 3, 4}) + "</details>")


def _notes(result: Any) -> str:
    if not result.notes:
        return ""
    return '<ul class="notes">' + "".join(f"<li>{esc(n)}</li>" for n in result.notes) + "</ul>"


def _setting(v: Any) -> str:
    if isinstance(v, dict):
        return ", ".join(f"{k}: {_setting(x)}" for k, x in v.items()) or "–"
    if isinstance(v, (list, tuple)):
        return "; ".join(_setting(x) for x in v) or "–"
    if isinstance(v, float):
        return f"{v:g}"
    return "–" if v is None else str(v)


def _settings(result: Any) -> str:
    cfg = result.config or {}
    if not cfg:
        return ""
    names = {"judge": "judge", "confidence": "confidence", "tolerance": "tolerance (Kayenta)",
             "power": "power wanted before passing", "interval_s": "per-interval bucket (s)",
             "groupWeights": "group weights", "scoreThresholds": "score thresholds", "thresholds": "thresholds"}
    items = [(names.get(k, k), _setting(v)) for k, v in cfg.items()]
    return '<dl class="settings">' + "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in items) + "</dl>"


def _reproduce(result: Any, command: str | None) -> str:
    if not command:
        return ""
    return ('<p>The same judgment from the same data (exit code 0 pass, 1 fail, 2 inconclusive, 3 usage error):</p>'
            f'<div class="cmd"><pre><code>{esc(command)}</code></pre>'
            '<button type="button" class="copy" hidden>copy</button></div>')


# ---- style and the one small script ---------------------------------------------------------------

CSS = """
:root { --fg:#1f2933; --muted:#616e7c; --line:#e4e7eb; --panel:#f5f7fa; --good:#1e7e45; --bad:#c62828; --warn:#a86a00; }
* { box-sizing:border-box; }
body { margin:0; font:14px/1.5 -apple-system,BlinkMacSystemFont,"Segoe UI",Helvetica,Arial,sans-serif; color:var(--fg); background:#fff; }
main.report, main.demo { max-width:1280px; margin:0 auto; padding:20px 28px 12px; }
.verdict { display:flex; gap:20px; align-items:center; background:var(--vc); color:#fff; border-radius:12px; padding:18px 24px; margin:0 0 18px; }
.verdict .badge { font-size:30px; font-weight:800; letter-spacing:.04em; padding:6px 18px; border:3px solid rgba(255,255,255,.85); border-radius:10px; white-space:nowrap; }
.verdict h1, .verdict h2, .verdict h3 { margin:0 0 4px; padding:0; border:none; font-size:22px; overflow-wrap:anywhere; }
.verdict p { margin:2px 0; }
.verdict.compact { padding:12px 18px; }
.verdict.compact .badge { font-size:20px; padding:3px 12px; }
.verdict.compact h2, .verdict.compact h3 { font-size:18px; }
section { margin:0 0 22px; }
section h2, section h3, section h4 { font-size:17px; margin:0 0 8px; padding-bottom:4px; border-bottom:1px solid var(--line); }
.tablewrap { overflow-x:auto; }
table { border-collapse:collapse; width:100%; font-size:13px; }
th, td { padding:5px 9px; border-bottom:1px solid var(--line); text-align:left; vertical-align:top; }
th { background:var(--panel); font-weight:600; white-space:nowrap; }
table.narrow { width:auto; min-width:420px; }
td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; white-space:nowrap; }
td code, li code, p code { overflow-wrap:break-word; }
.nowrap { white-space:nowrap; }
code, pre { font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace; font-size:12.5px; }
tr.metric td { border-bottom:none; }
tr.reasonrow td { padding-top:0; color:var(--muted); font-size:12px; }
tr.metric.bad td:first-child { box-shadow:inset 4px 0 var(--bad); }
tr.metric.warn td:first-child { box-shadow:inset 4px 0 var(--warn); }
tr.metric.good td:first-child { box-shadow:inset 4px 0 var(--good); }
.sub, small { color:var(--muted); font-size:11.5px; }
.need { color:var(--warn); font-size:12px; font-weight:600; }
.pill { display:inline-block; padding:1px 9px; border-radius:10px; font-size:12px; font-weight:600; white-space:nowrap; border:1px solid; }
.pill.good { color:var(--good); background:#e7f4ec; }
.pill.bad { color:var(--bad); background:#fdecea; }
.pill.warn { color:var(--warn); background:#fff4e0; }
.pill.mute { color:var(--muted); background:var(--panel); }
.swatch { display:inline-block; width:11px; height:11px; border-radius:2px; margin-right:6px; vertical-align:-1px; }
.swatch.s0 { background:#4c72b0; } .swatch.s1 { background:#dd8452; }
figure { margin:0; }
figure svg.picture { width:100%; height:auto; display:block; }
figcaption { color:var(--muted); font-size:12px; margin-top:4px; }
details summary { cursor:pointer; color:var(--muted); margin-bottom:6px; }
ul { margin:4px 0; padding-left:22px; }
ul.notes li { color:var(--muted); }
dl.settings { display:grid; grid-template-columns:max-content 1fr; gap:3px 18px; margin:0; }
dl.settings dt { color:var(--muted); }
dl.settings dd { margin:0; }
.cmd { position:relative; }
.cmd pre { background:#1f2933; color:#e4e7eb; padding:12px 74px 12px 14px; border-radius:8px; overflow-x:auto; white-space:pre-wrap; word-break:break-all; margin:0; }
.cmd button { position:absolute; top:8px; right:8px; border:1px solid #52606d; background:#323f4b; color:#e4e7eb; border-radius:6px; padding:2px 10px; cursor:pointer; }
footer { max-width:1280px; margin:0 auto; color:var(--muted); font-size:11.5px; padding:0 28px 22px; }
@media print { .cmd button { display:none; } .verdict { -webkit-print-color-adjust:exact; print-color-adjust:exact; } }
"""

# Progressive enhancement only: a copy button on commands (hidden when the clipboard is unavailable).
_JS = """
(function () {
  if (!navigator.clipboard) return;
  document.querySelectorAll('.cmd').forEach(function (box) {
    var b = box.querySelector('button.copy'), code = box.querySelector('code');
    if (!b || !code) return;
    b.hidden = false;
    b.addEventListener('click', function () {
      navigator.clipboard.writeText(code.textContent).then(function () { b.textContent = 'copied'; });
    });
  });
})();
"""
