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
@click.option("--topology", type=click.Path(dir_okay=False, exists=True), default=None, metavar="FILE",
              help="Another mesh topology (e.g. examples/local-mesh/topology.yaml); it needs a `reviews` service "
                   "with versions v1 and v2 for the canary stage.")
@click.pass_context
def demo(ctx: click.Context, out_dir: str, healthy: bool, n_requests: int, concurrency: int,
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
    _print_summary(result)
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
        detail = stage.detail if len(stage.detail) < 90 else stage.detail[:87] + "..."
        label = f"[{style}]{stage.status}[/{style}] {detail}".replace("[", "[", 1)
        total = self.progress.tasks[task].total or 1
        self.progress.update(task, completed=total, detail=label)
        self.progress.stop_task(task)

    def traffic(self, done: int, total: int, errors: int) -> None:
        task = self.tasks.get("traffic")
        if task is not None:
            self.progress.update(task, completed=done, detail=f"{errors} errors")


def _print_summary(result: Any) -> None:
    from meshctl.output import console, print_table

    con = console()
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
        print_table(["from", "to", "requests", "errors", "p99 ms"], rows, title="service graph")
    canary = result.canary
    if canary is not None:
        rows = []
        for m in getattr(canary, "metrics", []):
            rows.append((m.name, m.classification, _num(getattr(m, "p_value", None))))
        if rows:
            print_table(["metric", "classification", "p-value"], rows, title="canary reviews v1 -> v2")
    failed = [s for s in result.stages if s.status not in ("ok",)]
    if failed:
        print_table(["stage", "status", "detail"], [(s.name, s.status, s.detail) for s in failed],
                    title="stages not completed")
    files = [f for s in result.stages for f in s.files if Path(f).suffix in (".svg", ".html", ".md", ".yaml", ".json")
             and "mesh" not in Path(f).parts[-3:-1]]
    if files:
        con.print("written: " + ", ".join(str(f) for f in files), highlight=False)
    verdict = result.verdict or "no verdict"
    color = {"pass": "green", "fail": "red"}.get(result.verdict or "", "yellow")
    score = f", score {result.score:.0f}" if result.score is not None else ""
    con.print(f"[bold {color}]verdict: {verdict.upper()}{score}[/bold {color}] (exit {result.exit_code}) "
              f"in {result.seconds:.0f}s", highlight=False)


def _pct(v: Any) -> str | None:
    return None if v is None else f"{100 * float(v):.1f}%"


def _num(v: Any) -> str | None:
    return None if v is None else f"{float(v):.3g}"
