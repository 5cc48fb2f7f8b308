"""`meshctl graph`: the service dependency graph of the stored requests table, and analyses on it.

    meshctl graph [show] [--group-by app] [-n NS] [--since 30m] [--cluster C] -o table|json|dot|mermaid|graphml|svg|html
    meshctl graph diff --before 2h..1h --after 1h          (windows of one dataset, or dataset dirs)
    meshctl graph why reviews                              (root-cause walk from a service)
    meshctl graph check                                    (cycles, fan-out/in, single-version edges)

`show` is the default subcommand, so `meshctl graph -o svg > mesh.svg` works. Each subcommand reads
options -> one analyzer call -> one writer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from meshctl.options import Globals, data_option, namespace_option, output_option, pass_globals

GROUP_BYS = ("app", "app-version", "workload", "service", "namespace")  # = analyzers.graph.GROUP_BYS
SHOW_FORMATS = ("table", "json", "dot", "mermaid", "graphml", "svg", "html")


class GraphGroup(click.Group):
    """A group whose subcommand defaults to `show` (options given directly go to `show`)."""

    default_command = "show"

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ("-h", "--help")):
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        show = self.commands[self.default_command]
        sub = click.Context(show, info_name=self.default_command, parent=ctx)
        records = [r for p in show.get_params(sub) if (r := p.get_help_record(sub))]
        with formatter.section("Options (of `graph show`, the default)"):
            formatter.write_dl(records)
        self.format_commands(ctx, formatter)


def window_options(f: Any) -> Any:
    f = click.option("--until", metavar="TIME|DURATION",
                     help="End of the window (exclusive): RFC 3339, epoch, or a duration before the newest row.")(f)
    return click.option("--since", metavar="TIME|DURATION",
                        help="Start of the window: RFC 3339, epoch, or a duration (30m) back from the newest row.")(f)


def selection_options(f: Any) -> Any:
    f = click.option("--cluster", metavar="NAME", help="Only requests to or from this cluster.")(f)
    f = click.option("--group-by", type=click.Choice(GROUP_BYS), default="app", show_default=True,
                     help="Node granularity.")(f)
    return window_options(namespace_option(f))


@click.group(cls=GraphGroup)
def graph() -> None:
    """Service dependency graph with per-edge rate, errors and latency, from the requests table.

    \b
    Examples:
      meshctl graph                                   # rich table of edges
      meshctl graph -o svg > mesh.svg                 # picture (graphviz)
      meshctl graph -o html > mesh.html               # one self-contained page: hover for figures
      meshctl graph --group-by app-version -n shop --since 30m -o json
      meshctl graph diff --before 2h..1h --after 1h   # what changed between two windows
      meshctl graph why reviews                       # where the errors of reviews come from

    Each request is counted once: rows the server sidecar logged for a request its client sidecar
    logged too are paired by x-request-id and dropped (the REPORTER column says what was counted).
    """


def load_frame(data_dir: str, since: str | None, until: str | None, columns: list[str]):
    """Rows of the window (durations anchored at the newest stored row) and the resolved bounds."""
    from meshctl.store import Dataset
    from meshctl.timewindow import resolve_window

    ds = Dataset(data_dir).require()
    start = end = None
    if since or until:
        tr = ds.time_range()
        start, end = resolve_window(since, until, anchor=tr[1] if tr else None)
    return ds.read(columns=columns, since=start, until=end), start, end


def _build(data_dir: str, namespace: str | None, group_by: str, since: str | None, until: str | None,
           cluster: str | None):
    from analyzers.graph import GRAPH_COLUMNS, build_graph

    frame, start, end = load_frame(data_dir, since, until, GRAPH_COLUMNS)
    return build_graph(frame, group_by=group_by, namespace=namespace, since=start, until=end, cluster=cluster)


@graph.command("show")
@selection_options
@data_option
@output_option(*SHOW_FORMATS, default="table")
@click.option("--layout", type=click.Choice(["auto", "dot", "sfdp", "neato", "fdp"]), default="auto",
              show_default=True, help="Graphviz layout for svg/html (auto: dot, sfdp for large graphs).")
@click.option("--title", metavar="TEXT", help="Title of the svg/html picture.")
@pass_globals
def show(g: Globals, group_by: str, since: str | None, until: str | None, cluster: str | None, data_dir: str,
         output: str, layout: str, title: str | None) -> None:
    """The service graph (default subcommand)."""
    from meshctl.output import write_text
    from meshctl.reports import graph_render as gr

    graph_ = _build(data_dir, g.namespace, group_by, since, until, cluster)
    title = title or default_title(graph_, g.namespace, cluster)
    if output == "table":
        gr.print_graph_table(graph_)
    elif output == "json":
        write_text(gr.to_json(graph_))
    elif output == "dot":
        write_text(gr.to_dot(graph_, title=title))
    elif output == "mermaid":
        write_text(gr.to_mermaid(graph_))
    elif output == "graphml":
        write_text(gr.to_graphml(graph_))
    elif output == "svg":
        write_text(gr.to_svg(graph_, layout=layout, title=title))
    else:
        from meshctl.reports.graph_html import to_html

        write_text(to_html(graph_, title=title, layout=layout))


def default_title(graph_: Any, namespace: str | None, cluster: str | None) -> str:
    m = graph_.graph
    parts = [f"by {m.get('group_by')}"]
    if namespace:
        parts.append(f"namespace {namespace}")
    if cluster:
        parts.append(f"cluster {cluster}")
    if m.get("window_start") and m.get("window_end"):
        parts.append(f"{m['window_start'][:16].replace('T', ' ')} - {m['window_end'][:16].replace('T', ' ')} UTC")
    return "Service graph (" + ", ".join(parts) + ")"


# ---- diff ------------------------------------------------------------------------------------
def parse_side(spec: str, default_data: str) -> tuple[str, str | None, str | None]:
    """`--before/--after` value -> (dataset dir, since, until).

    DIR (a dataset directory: all of it), DIR@WINDOW, or WINDOW over --data, where WINDOW is
    `SINCE..UNTIL` (either side may be empty) or `SINCE`; durations count back from the newest row.
    """
    data, window = default_data, spec
    if "@" in spec and Path(spec.split("@", 1)[0]).is_dir():
        data, window = spec.split("@", 1)
    elif Path(spec).is_dir():
        return spec, None, None
    if ".." in window:
        since, until = window.split("..", 1)
        return data, since or None, until or None
    return data, window or None, None


@graph.command("diff")
@click.option("--before", required=True, metavar="WINDOW|DATASET",
              help="Before: a window of --data (2h..1h, 2026-03-01T10:00Z..2026-03-01T11:00Z), a dataset dir, "
                   "or DIR@WINDOW.")
@click.option("--after", required=True, metavar="WINDOW|DATASET", help="After: same forms as --before.")
@click.option("--group-by", type=click.Choice(GROUP_BYS), default="app", show_default=True, help="Node granularity.")
@namespace_option
@click.option("--cluster", metavar="NAME", help="Only requests to or from this cluster.")
@click.option("--error-rate-delta", type=float, default=0.01, show_default=True,
              help="Error-rate rise (absolute, 0.01 = 1 point) that counts as a regression.")
@click.option("--p99-ratio", type=float, default=1.25, show_default=True, help="p99 growth factor that counts.")
@click.option("--p99-delta-ms", type=float, default=5.0, show_default=True, help="...and by at least this much.")
@click.option("--min-requests", type=int, default=20, show_default=True,
              help="Edges with fewer requests on a side are compared for presence only.")
@click.option("--alpha", type=float, default=0.05, show_default=True,
              help="Significance of an error-rate rise (one-sided two-proportion z-test).")
@click.option("--exit-code", is_flag=True, help="Exit 1 when an edge regressed (for CI).")
@data_option
@output_option("table", "json", default="table")
@pass_globals
def diff(g: Globals, before: str, after: str, group_by: str, cluster: str | None, error_rate_delta: float,
         p99_ratio: float, p99_delta_ms: float, min_requests: int, alpha: float, exit_code: bool, data_dir: str,
         output: str) -> None:
    """New and vanished edges, and edges whose error rate or p99 regressed."""
    from analyzers.graph_diff import DiffThresholds, diff_graphs
    from meshctl.output import dump_json, write_text

    graphs = []
    for spec in (before, after):
        data, since, until = parse_side(spec, data_dir)
        graphs.append(_build(data, g.namespace, group_by, since, until, cluster))
    result = diff_graphs(*graphs, DiffThresholds(error_rate_delta=error_rate_delta, alpha=alpha, p99_ratio=p99_ratio,
                                                 p99_delta_ms=p99_delta_ms, min_requests=min_requests))
    if output == "json":
        write_text(dump_json(result.to_dict()))
    else:
        _print_diff(result)
    if exit_code and result.has_regressions:
        raise click.exceptions.Exit(1)


def _print_diff(result: Any) -> None:
    from meshctl.output import print_table
    from meshctl.reports.graph_render import fmt_ms, fmt_pct, table_width

    def fig(f: dict[str, Any] | None) -> str:
        if not f:
            return "-"
        return f"{f['requests']} req, {fmt_pct(f['error_rate'])} err, p99 {fmt_ms(f['p99_ms'])}"

    rows = [[c.change, c.source, c.target, fig(c.before), fig(c.after), "; ".join(c.reasons)] for c in result.changes]
    s = result.to_dict()["summary"]
    b, a = result.before_window, result.after_window
    caption = (f"before {str(b.get('window_start'))[:19]}..{str(b.get('window_end'))[:19]} "
               f"({b.get('rows_counted')} requests); after {str(a.get('window_start'))[:19]}.."
               f"{str(a.get('window_end'))[:19]} ({a.get('rows_counted')} requests); {s['compared']} edges compared, "
               f"{s['too_few_requests']} with too few requests to judge")
    title = (f"Graph diff: {s['regressed']} regressed, {s['new']} new, {s['vanished']} vanished, "
             f"{s['improved']} improved")
    print_table(["CHANGE", "SOURCE", "TARGET", "BEFORE", "AFTER", "WHY"], rows, title=title, caption=caption,
                width=table_width())


# ---- why -------------------------------------------------------------------------------------
@graph.command("why")
@click.argument("service")
@selection_options
@click.option("--error-rate", "error_rate", type=float, default=0.01, show_default=True,
              help="Error rate from which a service counts as failing.")
@click.option("--p99-ms", type=float, help="p99 (ms) from which a service counts as slow.")
@data_option
@output_option("table", "json", default="table")
@pass_globals
def why_cmd(g: Globals, service: str, group_by: str, since: str | None, until: str | None, cluster: str | None,
            error_rate: float, p99_ms: float | None, data_dir: str, output: str) -> None:
    """Follow SERVICE's failing calls to where the errors start; show where its time goes."""
    from analyzers.graph import GRAPH_COLUMNS, TRACE_COLUMNS
    from analyzers.graph_why import ServiceNotFound, why
    from meshctl.errors import InputError
    from meshctl.output import dump_json, write_text

    frame, start, end = load_frame(data_dir, since, until, GRAPH_COLUMNS + TRACE_COLUMNS)
    try:
        result = why(frame, service, group_by=group_by, namespace=g.namespace, since=start, until=end,
                     cluster=cluster, error_rate_threshold=error_rate, p99_threshold_ms=p99_ms)
    except ServiceNotFound as exc:
        shown = ", ".join(exc.candidates[:15]) + (" ..." if len(exc.candidates) > 15 else "")
        raise InputError(f"no service {service!r} in the graph", field="SERVICE",
                         hint=f"nodes: {shown or 'none (no requests in the selection)'}") from None
    if output == "json":
        write_text(dump_json(result.to_dict()))
    else:
        _print_why(result)


def _print_why(r: Any) -> None:
    from meshctl.output import console, print_table
    from meshctl.reports.graph_render import fmt_pct, table_width

    out = console(width=table_width())
    out.print(f"[bold]{r.service}[/bold]: {r.in_requests} inbound requests, {r.in_errors} errors "
              f"({fmt_pct(r.error_rate)})" + (f", candidates {', '.join(r.candidates)}" if len(r.candidates) > 1 else ""),
              highlight=False, markup=True)
    if r.error_path:
        rows = [[i + 1, h.source, h.target, h.requests, h.errors, round(100 * h.error_rate, 2),
                 " ".join(f"{k}:{v}" for k, v in sorted(h.flags.items(), key=lambda kv: -kv[1])) or None,
                 h.proxy_errors, f"{h.explained}/{h.errors} by {h.matched_by}", h.verdict]
                for i, h in enumerate(r.error_path)]
        print_table(["HOP", "SOURCE", "TARGET", "REQUESTS", "ERRORS", "ERR%", "FLAGS", "BY PROXY", "EXPLAINED BELOW",
                     "VERDICT"], rows, title="Error path", width=table_width())
    out.print(f"[bold]errors:[/bold] {r.verdict}", highlight=False, markup=True)
    if r.latency_path:
        rows = [[s.node, s.total_ms, s.own_ms, ", ".join(f"{n} {ms:.1f}" for n, ms in s.waits[:4]) or None]
                for s in r.latency_path]
        print_table(["SERVICE", "TIME ms", "OWN ms", "WAITING ON (ms)"], rows,
                    title=f"Latency path - {r.latency_method}", width=table_width())
    out.print(f"[bold]latency:[/bold] {r.latency_verdict}", highlight=False, markup=True)


# ---- check -----------------------------------------------------------------------------------
@graph.command("check")
@selection_options
@click.option("--fan-out", type=int, default=8, show_default=True, help="Report services calling this many others.")
@click.option("--fan-in", type=int, default=10, show_default=True, help="Report services called by this many.")
@click.option("--failing-error-rate", type=float, default=0.05, show_default=True, help="Failing-edge threshold.")
@click.option("--min-requests", type=int, default=20, show_default=True, help="Edges with fewer are not judged.")
@click.option("--failure-threshold", type=click.Choice(["info", "warning", "error", "never"]), default="error",
              show_default=True, help="Exit 1 when a finding of this severity or worse exists.")
@data_option
@output_option("table", "json", default="table")
@pass_globals
def check(g: Globals, group_by: str, since: str | None, until: str | None, cluster: str | None, fan_out: int,
          fan_in: int, failing_error_rate: float, min_requests: int, failure_threshold: str, data_dir: str,
          output: str) -> None:
    """Cycles, fan-out/fan-in, edges from or to one version only, failing edges (codes GRAPH0xx)."""
    from analyzers.graph import GRAPH_COLUMNS
    from analyzers.graph_checks import SEVERITIES, CheckConfig, check_graph
    from meshctl.output import dump_json, print_table, write_text
    from meshctl.reports.graph_render import table_width

    frame, start, end = load_frame(data_dir, since, until, GRAPH_COLUMNS)
    report = check_graph(frame, group_by=group_by, namespace=g.namespace, since=start, until=end, cluster=cluster,
                         config=CheckConfig(fan_out=fan_out, fan_in=fan_in, failing_error_rate=failing_error_rate,
                                            min_requests=min_requests))
    if output == "json":
        write_text(dump_json(report.to_dict()))
    else:
        print_table(["CODE", "SEVERITY", "SUBJECT", "MESSAGE"],
                    [[f.code, f.severity, f.subject, f.message] for f in report.findings],
                    title=f"Graph checks: {len(report.findings)} findings", width=table_width())
    worst = report.worst()
    if failure_threshold != "never" and worst and SEVERITIES.index(worst) >= SEVERITIES.index(failure_threshold):
        raise click.exceptions.Exit(1)
