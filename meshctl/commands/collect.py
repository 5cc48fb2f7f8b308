"""`meshctl collect logs|traces`: raw telemetry into the requests table.

The group only dispatches; `collect logs` lives in collect_logs.py and `collect traces` in
collect_traces.py, each imported only when used. What both subcommands share (a few options, the
summary and the exit code) is here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from meshctl.lazy import LazyGroup

if TYPE_CHECKING:  # pragma: no cover
    from meshctl.ingest import IngestReport
    from meshctl.store import Dataset

F = TypeVar("F", bound=Callable[..., Any])

SUBCOMMANDS = {
    "logs": ("meshctl.commands.collect_logs", "logs", "Envoy / Istio / Linkerd access logs (files, stdin, Kubernetes)."),
    "traces": ("meshctl.commands.collect_traces", "traces",
               "Traces: OTLP, Jaeger, Zipkin files, or Jaeger/Zipkin/Tempo query APIs."),
}


@click.group(cls=LazyGroup, lazy_commands=SUBCOMMANDS)
def collect() -> None:
    """Collect access logs and traces into the requests table (a Parquet dataset, --data DIR)."""


def collect_options(what: str) -> Callable[[F], F]:
    """--cluster, --no-dedup, --workers (`what` is read that many at a time) and --quiet."""
    options = [
        click.option("--cluster", "cluster_name", metavar="NAME",
                     help="Cluster name to record on the rows (multi-cluster)."),
        click.option("--no-dedup", is_flag=True, help="Keep rows already stored (default: skip duplicates)."),
        click.option("--workers", type=click.IntRange(1, 32), default=2, show_default=True,
                     help=f"{what} read at the same time."),
        click.option("--quiet", "-q", is_flag=True, help="No progress bar."),
    ]

    def decorator(f: F) -> F:
        for option in reversed(options):
            f = option(f)
        return f

    return decorator


def finish(report: IngestReport, dataset: Dataset, output: str, *, extra: dict[str, Any],
           notes: Iterable[str] = (), nothing: str, hint: str) -> None:
    """The end of a collection: the summary (a table, with `notes` on stderr first; or JSON with the
    `extra` keys), then the exit code: 1 when a source failed as a whole, 3 (`nothing`, `hint`) when
    not one record could be read."""
    import sys

    from meshctl.errors import MeshctlError
    from meshctl.ingest import print_summary
    from meshctl.output import dump_json, write_text

    if output == "json":
        doc = report.to_dict()
        doc["data"] = str(dataset.path)
        doc.update(extra)
        write_text(dump_json(doc))
    else:
        for note in notes:
            click.echo(note, err=True)
        print_summary(report, file=sys.stdout, title=f"collected into {dataset.path}")
    if report.failed:
        raise click.exceptions.Exit(1)
    if report.parsed == 0 and report.rejected > 0:
        raise MeshctlError(f"{nothing} ({report.rejected:,} rejected)", hint=hint)
