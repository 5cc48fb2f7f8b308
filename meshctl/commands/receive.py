"""`meshctl receive --out DIR`: a lightweight OTLP receiver (gRPC + HTTP) that writes OTLP JSON lines.

Options -> `meshctl.receiver.OTLPReceiver` -> run until Ctrl-C / SIGTERM (or `--duration`) -> a summary.
The files it writes are what `meshctl collect traces DIR/traces.jsonl` and
`meshctl collect logs DIR/logs.jsonl` read.
"""

from __future__ import annotations

import time

import click


@click.command()
@click.option("--out", "out_dir", required=True, metavar="DIR", type=click.Path(file_okay=False),
              help="Directory for traces.jsonl, logs.jsonl, metrics.jsonl (appended to).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0 to accept from other machines).")
@click.option("--grpc-port", default="4317", show_default=True, metavar="PORT|off",
              help="OTLP/gRPC port; 0 picks a free port, 'off' disables gRPC.")
@click.option("--http-port", default="4318", show_default=True, metavar="PORT|off",
              help="OTLP/HTTP port (/v1/traces, /v1/logs, /v1/metrics); 0 picks a free port, 'off' disables HTTP.")
@click.option("--duration", type=click.FloatRange(min=0, min_open=True), default=None, metavar="SECONDS",
              help="Stop after SECONDS (default: run until Ctrl-C or SIGTERM).")
def receive(out_dir: str, host: str, grpc_port: str, http_port: str, duration: float | None) -> None:
    """Receive OTLP traces, logs and metrics over gRPC and HTTP and append them to files as OTLP JSON lines.

    \b
    Bodies may be protobuf or JSON, gzip-compressed, with Content-Length or chunked (as Envoy sends).
    The files use the OpenTelemetry Collector file exporter's format, one export request per line.

    \b
    Examples:
      meshctl receive --out ./otlp                       # gRPC :4317, HTTP :4318 on 127.0.0.1
      meshctl receive --out ./otlp --grpc-port off --http-port 0
      meshctl collect traces ./otlp/traces.jsonl
    """
    from meshctl.mesh.runner import handle_sigterm
    from meshctl.receiver import OTLPReceiver, parse_port

    rx = OTLPReceiver(out_dir, host=host, grpc_port=parse_port(grpc_port, "--grpc-port"),
                      http_port=parse_port(http_port, "--http-port"))
    with handle_sigterm(), rx:
        parts = []
        if rx.grpc_port is not None:
            parts.append(f"gRPC {host}:{rx.grpc_port}")
        if rx.http_port is not None:
            parts.append(f"HTTP {host}:{rx.http_port}")
        click.echo(f"OTLP receiver listening on {', '.join(parts)}; writing to {rx.out_dir}/", err=True)
        deadline = time.monotonic() + duration if duration else None
        try:
            while deadline is None or time.monotonic() < deadline:
                time.sleep(0.2 if deadline is None else max(0.0, min(0.2, deadline - time.monotonic())))
        except KeyboardInterrupt:
            pass
    for signal, what in (("traces", "spans"), ("logs", "log records"), ("metrics", "metrics")):
        c = getattr(rx.stats, signal)
        if c.requests or c.rejected:
            rejected = f", {c.rejected} rejected" if c.rejected else ""
            click.echo(f"{signal}: {c.requests} requests, {c.items} {what}{rejected} -> {rx.path(signal)}", err=True)
    if not any(getattr(rx.stats, s).requests for s in ("traces", "logs", "metrics")):
        click.echo("nothing received", err=True)
