"""`meshctl demo`: the whole product on a real local Envoy mesh, in about a minute.

Options -> `meshctl.mesh.demo.run_demo` (one library call; each stage calls its own library) -> a
rich progress display per stage -> a terminal summary. The exit code follows the canary verdict
(0 pass, 1 fail, 2 inconclusive or no verdict).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click


@click.command()
@click.option("--out", "out_dir", default="meshctl-demo", show_default=True, metavar="DIR",
              type=click.Path(file_okay=False), help="Where the reports, pictures, logs and data go.")
@click.option("--healthy", is_flag=True, help="Run a healthy canary (default: reviews v2 answers 503 to 5% of requests).")
@click.option("--requests", "n_requests", type=click.IntRange(50, 100_000), default=1500, show_default=True,
              help="Requests to send through the ingress gateway.")
@click.option("--concurrency", type=click.IntRange(1, 64), default=8, show_default=True,
              help="Concurrent client connections.")
@click.option("--screenshots", is_flag=True,
              help="Also write DIR/screenshots/*.png (graph pages, canary plot, this summary) with headless Chromium.")
@click.option("--topology", type=click.Path(dir_okay=False, exists=True), default=None, metavar="FILE",
              help="Another mesh topology (e.g. examples/local-mesh/topology.yaml); it needs a `reviews` service "
                   "with versions v1 and v2 for the canary stage.")
@click.pass_context
def demo(ctx: click.Context, out_dir: str, healthy: bool, n_requests: int, concurrency: int, screenshots: bool,
         topology: str | None) -> None:
    """Run a real Envoy mesh on this machine and show render -> collect -> graph -> canary -> suggest.

    \b
    Starts an ingress gateway and Istio-like sidecars (real Envoy), a frontend -> reviews (v1 stable,
    v2 canary) -> ratings service chain with one call to an external host, and an OTLP receiver, all
    on 127.0.0.1; sends traffic; collects the access logs and spans into a requests table; writes the
    service graph, the canary report and suggested limits to DIR; prints the verdict.
    Every process it starts is stopped on exit, Ctrl-C or error.

    \b
    Examples:
      meshctl demo                      # faulty canary: exits 1 (fail)
      meshctl demo --healthy            # healthy canary: exits 0 (pass)
      meshctl demo --out /tmp/demo --requests 3000
    """
    from meshctl.mesh.demo import DemoOptions, run_demo
    from meshctl.mesh.runner import handle_sigterm

    opts = DemoOptions(out_dir=Path(out_dir), healthy=healthy, requests=n_requests, concurrency=concurrency,
                       topology=Path(topology) if topology else None)
    with handle_sigterm(), _ProgressReporter(opts) as reporter:
        result = run_demo(opts, reporter)
    from rich.console import Console

    con = Console(soft_wrap=False, record=screenshots, width=110 if screenshots else None)
    _print_summary(result, con)
    if screenshots:
        from meshctl.mesh.demo import take_screenshots

        shots, notes = take_screenshots(result, summary_svg=con.export_svg(title="meshctl demo"))
        for note in notes:
            click.echo(f"screenshots: {note}", err=True)
        if shots:
            click.echo("screenshots: " + ", ".join(str(p) for p in shots), err=True)
    ctx.exit(result.exit_code)


class _ProgressReporter:
    """One progress line per stage (rich, on stderr); the traffic stage has a bar."""

    def __init__(self, opts: Any) -> None:
        from meshctl.output import progress

        self.opts = opts
        self.progress = progress(transient=False)
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> _ProgressReporter:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)

    def stage_started(self, stage: Any) -> None:
        total = self.opts.requests if stage.name == "traffic" else 1
        self.tasks[stage.name] = self.progress.add_task(stage.title, total=total, detail="")

    def stage_finished(self, stage: Any) -> None:
        style = {"ok": "green", "missing": "yellow", "skipped": "yellow", "failed": "red"}.get(stage.status, "white")
        task = self.tasks.get(stage.name)
        if task is None:
            task = self.tasks[stage.name] = self.progress.add_task(stage.title, total=1, detail="")
        from rich.markup import escape

        detail = stage.detail if len(stage.detail) < 90 else stage.detail[:87] + "..."
        # A detail is data (an error may quote a path or an Envoy log line in brackets), never markup.
        label = f"[{style}]{stage.status}[/{style}] {escape(detail)}"
        total = self.progress.tasks[task].total or 1
        self.progress.update(task, completed=total, detail=label)
        self.progress.stop_task(task)

    def traffic(self, done: int, total: int, errors: int) -> None:
        task = self.tasks.get("traffic")
        if task is not None:
            self.progress.update(task, completed=done, detail=f"{errors} errors")


def _print_summary(result: Any, con: Any) -> None:
    from meshctl.output import print_table

    scenario = ("healthy canary" if result.healthy
                else "faulty canary: reviews v2 answers 503 to 5% of its requests")
    con.print(f"\n[bold]meshctl demo[/bold] - {scenario}")
    t = result.traffic
    if t is not None:
        codes = ", ".join(f"{c}: {n}" for c, n in sorted(t.by_code.items()))
        p50, p99 = t.percentile(50), t.percentile(99)
        con.print(f"traffic: {t.sent} requests through the ingress gateway in {t.seconds:.1f}s; {codes}"
                  + (f"; p50 {p50:.0f} ms, p99 {p99:.0f} ms" if p50 is not None and p99 is not None else ""),
                  highlight=False)
    if result.edges:
        rows = []
        for a, b, d in result.edges:
            rows.append((a, b, d.get("requests"), _pct(d.get("error_rate")), d.get("p99_ms")))
        print_table(["from", "to", "requests", "errors", "p99 ms"], rows, title="service graph", to=con)
    canary = result.canary
    if canary is not None:
        from meshctl.reports.canary_format import effect, label, p_value, short_value

        rows = [(m.name, label(m), short_value(m, "baseline"), short_value(m, "canary"), effect(m), p_value(m))
                for m in getattr(canary, "metrics", [])]
        if rows:
            print_table(["metric", "result", "v1 (baseline)", "v2 (canary)", "effect", "p-value"], rows,
                        title="canary: reviews v2 against v1", to=con)
        for t in getattr(canary, "thresholds", []) or []:
            verdict_t = {True: "[green]pass[/green]", False: "[red]fail[/red]", None: "no data"}[t.passed]
            con.print(f"threshold {t.description}: canary {t.value:.4g}, baseline {t.baseline_value:.4g}: {verdict_t}",
                      highlight=False)
    suggest = next((s for s in result.stages if s.name == "suggest"), None)
    if suggest is not None and suggest.status == "ok":
        con.print(f"suggestions (suggestions.yaml, with evidence): {suggest.detail}", highlight=False, markup=False)
    failed = [s for s in result.stages if s.status not in ("ok",)]
    if failed:
        print_table(["stage", "status", "detail"], [(s.name, s.status, s.detail) for s in failed],
                    title="stages not completed", to=con)
    out = Path(result.out_dir)
    names = sorted({str(Path(f).relative_to(out)) for s in result.stages if s.name not in ("mesh", "flush", "collect")
                    for f in s.files if Path(f).is_relative_to(out)})
    if names:
        con.print(f"written to {out}/: " + "  ".join(names) + "  (logs, spans, data: mesh/, data/)",
                  highlight=False, markup=False)
    if getattr(result, "report", None) is not None:
        con.print(f"report: {result.report} (one page: verdict, traffic, graph, canary, suggestions)", highlight=False,
                  markup=False)
    elif getattr(result, "report_error", None):
        from rich.markup import escape

        con.print(f"[yellow]no report.html[/yellow]: {escape(result.report_error)}", highlight=False)
    verdict = result.verdict or "no verdict"
    color = {"pass": "green", "fail": "red"}.get(result.verdict or "", "yellow")
    score = f", score {result.score:.0f}" if result.score is not None else ""
    con.print(f"[bold {color}]verdict: {verdict.upper()}{score}[/bold {color}] (exit {result.exit_code}) "
              f"in {result.seconds:.0f}s", highlight=False)


def _pct(v: Any) -> str | None:
    return None if v is None else f"{100 * float(v):.1f}%"
