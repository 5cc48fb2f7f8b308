"""Terminal report of a canary / blue-green judgment (`-o table`)."""

from __future__ import annotations

from typing import Any, TextIO

from meshctl.reports import canary_format as f

_STYLE = {"pass": "bold green", "marginal": "bold yellow", "fail": "bold red", "inconclusive": "bold yellow"}


def print_result(result: Any, file: TextIO | None = None) -> None:
    from meshctl.output import console, print_table

    con = console(file=file)
    con.print(f"[{_STYLE[result.verdict]}]{f.title(result)}[/]  score {result.score:g}/100 "
              f"({result.score_classification}), judge {result.judge}", highlight=False)
    con.print(f"  {f.VERDICT_MEANING[result.verdict]}", highlight=False)
    if result.cohorts:
        for side in ("baseline", "canary"):
            con.print(f"  {f.cohort_line(result, side)}", highlight=False)
        con.print(f"  rows used: {result.cohorts.get('reporter')}", highlight=False)
    if result.metrics:
        conf = {m.confidence for m in result.metrics}
        ci_head = f"{conf.pop():.0%} CI" if len(conf) == 1 else "CI"
        rows = []
        for m in result.metrics:
            rows.append((f"{m.name}", f"{f.MARK.get(m.classification, '')} {f.label(m)}",
                         f.short_value(m, "baseline"), f.short_value(m, "canary"), f.effect(m), f.p_value(m),
                         f.ci(m), f.power(m)))
        print_table(["metric", "result", result.labels[0], result.labels[1], "effect", "p-value", ci_head,
                     "power"], rows, file=file,
                    caption="baseline/canary: rate, mean, or the quantile; details in -o json or --markdown")
    if result.thresholds:
        print_table(["threshold", result.labels[1], result.labels[0], "result"],
                    [(t.description, f.num(t.value), f.num(t.baseline_value),
                      "pass" if t.passed else ("fail: " + t.reason if t.passed is False else "no data"))
                     for t in result.thresholds], title="thresholds", file=file)
    if result.groups:
        con.print("  groups: " + ", ".join(f"{g.name} {g.score:.4g}"
                                            f"{' (no data)' if g.no_data else ''} × {g.weight:.3g}%"
                                            for g in result.groups), highlight=False)
    if result.reasons:
        con.print("[bold]why[/bold]")
        for r in result.reasons:
            con.print(f"  - {r}", highlight=False, markup=False)
    if result.routes:
        rows = []
        for r in result.routes:
            rows.append((r.route, f"{f.num(r.baseline['requests'])} / {f.num(r.canary['requests'])}",
                         f"{f.pct(r.baseline['error_rate'])} / {f.pct(r.canary['error_rate'])}",
                         f"{f.num(r.baseline['latency_p99'])} / {f.num(r.canary['latency_p99'])}",
                         r.error_rate.classification if r.error_rate else "–",
                         r.latency.classification if r.latency else "–"))
        print_table(["route", "requests", "errors", "p99 ms", "errors test", "latency test"], rows,
                    title=f"routes ({result.labels[0]} / {result.labels[1]}; report only)", file=file)
    for n in result.notes:
        con.print(f"  note: {n}", highlight=False, markup=False)
