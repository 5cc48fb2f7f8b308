"""`meshctl collect logs|traces`: raw telemetry into the requests table.

The group only dispatches; `collect logs` lives in collect_logs.py and `collect traces` in
collect_traces.py, each imported only when used.
"""

from __future__ import annotations

import click

from meshctl.lazy import LazyGroup

SUBCOMMANDS = {
    "logs": ("meshctl.commands.collect_logs", "logs", "Envoy / Istio / Linkerd access logs (files, stdin, Kubernetes)."),
    "traces": ("meshctl.commands.collect_traces", "traces",
               "Traces: OTLP, Jaeger, Zipkin files, or Jaeger/Zipkin/Tempo query APIs."),
}


@click.group(cls=LazyGroup, lazy_commands=SUBCOMMANDS)
def collect() -> None:
    """Collect access logs and traces into the requests table (a Parquet dataset, --data DIR)."""
