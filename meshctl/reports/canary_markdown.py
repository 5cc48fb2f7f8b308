"""Markdown report of a canary / blue-green judgment, sized for a pull-request comment."""

from __future__ import annotations

from typing import Any

from meshctl.reports import canary_format as f

_ICON = {"pass": "✅", "marginal": "🟡", "fail": "❌", "inconclusive": "⏸️"}


def md(text: Any) -> str:
    """A table cell: pipes and line breaks escaped, so a value cannot break the table."""
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", "<br>")


def render_markdown(result: Any) -> str:
    out: list[str] = []
    out.append(f"### {_ICON[result.verdict]} {md(f.title(result))}")
    out.append("")
    out.append(f"**Score {result.score:g}/100** ({result.score_classification}) · judge `{result.judge}` · "
               f"{f.VERDICT_MEANING[result.verdict]}")
    out.append("")
    if result.cohorts:
        for side in ("baseline", "canary"):
            out.append(f"- {md(f.cohort_line(result, side))}")
        out.append(f"- rows used: {md(result.cohorts.get('reporter'))}")
        out.append("")
    if result.reasons:
        out.append("**Why**")
        out.append("")
        out += [f"- {md(r)}" for r in result.reasons]
        out.append("")
    if result.metrics:
        out.append(f"| metric | result | {md(result.labels[0])} | {md(result.labels[1])} | effect | p-value | CI "
                   "| power |")
        out.append("|---|---|---|---|---|---|---|---|")
        for m in result.metrics:
            out.append(f"| `{md(m.name)}` | {f.MARK.get(m.classification, '')} {md(f.label(m))} | "
                       f"{md(f.value(m, 'baseline'))} | {md(f.value(m, 'canary'))} | {md(f.effect(m))} | "
                       f"{md(f.p_value(m))} | {md(f.ci(m))} | {md(f.power(m))} |")
        out.append("")
        confs = sorted({f"{m.confidence:.0%}" for m in result.metrics if m.confidence == m.confidence})
        out.append(f"<sub>Confidence {', '.join(confs)}. Intervals: rank metrics give the shift of the "
                   "canary against the baseline; rates and quantiles the difference of shares in percentage "
                   "points.</sub>")
        out.append("")
    if result.thresholds:
        out.append("| threshold | " + md(result.labels[1]) + " | " + md(result.labels[0]) + " | result |")
        out.append("|---|---|---|---|")
        for t in result.thresholds:
            res = "pass" if t.passed else ("**fail**: " + t.reason if t.passed is False else "no data")
            out.append(f"| {md(t.description)} | {md(f.num(t.value))} | {md(f.num(t.baseline_value))} | {md(res)} |")
        out.append("")
    if result.routes:
        out.append("<details><summary>Routes (report only)</summary>")
        out.append("")
        out.append(f"| route | requests ({md(result.labels[0])} / {md(result.labels[1])}) | errors | p99 ms "
                   "| errors test | latency test |")
        out.append("|---|---|---|---|---|---|")
        for r in result.routes:
            out.append(
                f"| `{md(r.route)}` | {f.num(r.baseline['requests'])} / {f.num(r.canary['requests'])} | "
                f"{f.pct(r.baseline['error_rate'])} / {f.pct(r.canary['error_rate'])} | "
                f"{f.num(r.baseline['latency_p99'])} / {f.num(r.canary['latency_p99'])} | "
                f"{r.error_rate.classification if r.error_rate else '–'} | "
                f"{r.latency.classification if r.latency else '–'} |")
        out.append("")
        out.append("</details>")
        out.append("")
    if result.notes:
        out += [f"> {md(n)}" for n in result.notes]
        out.append("")
    cfg = result.config
    out.append(f"<sub>meshctl analyze {result.kind if result.kind != 'metrics' else 'canary'} · confidence "
               f"{cfg.get('confidence')} · tolerance {cfg.get('tolerance')}"
               + (f" · power {cfg.get('power')}" if cfg.get("power") else "")
               + f" · pass ≥ {cfg['scoreThresholds']['pass']:g}, marginal ≥ {cfg['scoreThresholds']['marginal']:g}"
               + "</sub>")
    return "\n".join(out) + "\n"
