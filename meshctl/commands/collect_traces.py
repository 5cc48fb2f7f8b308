"""`meshctl collect traces`: trace files or trace query APIs into the requests table.

Options → sources (files, or Jaeger/Zipkin/Tempo queries) → `meshctl.trace_ingest.ingest_traces`
→ summary (table or JSON).
"""

from __future__ import annotations

import click

from meshctl.commands.collect import collect_options, finish
from meshctl.options import data_option, output_option

FORMATS = ("auto", "otlp-json", "otlp-proto", "jaeger", "zipkin", "tempo")
# Files taken when walking a directory (files named on the command line are always read).
TRACE_SUFFIXES = (".json", ".jsonl", ".ndjson", ".pb", ".binpb", ".proto", ".otlp", ".bin")


@click.command()
@click.argument("paths", nargs=-1, metavar="[PATH|-]...")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="auto", show_default=True,
              help="Trace file format (auto detects it per file; tempo = OTLP JSON).")
@click.option("--jaeger", metavar="URL", help="Jaeger query service (http://jaeger-query:16686).")
@click.option("--zipkin", metavar="URL", help="Zipkin server (http://zipkin:9411).")
@click.option("--tempo", metavar="URL", help="Tempo query frontend (http://tempo:3200).")
@click.option("--service", metavar="NAME",
              help="API: traces of this service (Jaeger without it: every service it knows).")
@click.option("--since", metavar="WHEN", help="API: from this long ago (30m, 2h) or this time (RFC 3339); "
                                               "default 1h.")
@click.option("--until", metavar="WHEN", help="API: up to this long ago or this time (default now).")
@click.option("--limit", type=click.IntRange(1, 100_000), default=100, show_default=True,
              help="API: at most this many traces per query.")
@click.option("--timeout", type=click.FloatRange(0.1, 600), default=30.0, show_default=True,
              help="API: seconds per HTTP request.")
@click.option("--retries", type=click.IntRange(0, 20), default=4, show_default=True,
              help="API: retries on 429/5xx/timeouts, with exponential backoff.")
@collect_options("Sources")
@data_option
@output_option("table", "json", default="table")
def traces(paths: tuple[str, ...], fmt: str, jaeger: str | None, zipkin: str | None, tempo: str | None,
           service: str | None, since: str | None, until: str | None, limit: int, timeout: float, retries: int,
           cluster_name: str | None, no_dedup: bool, workers: int, quiet: bool, data_dir: str, output: str) -> None:
    """Collect traces (files or a trace query API) into the requests table (--data DIR).

    Spans become one row per call: a client span and the server span of the same call are paired
    (as the OpenTelemetry Collector's servicegraph connector does); a call to something that left no
    span (a database, a broker, an external host) keeps a virtual callee; a request that entered the
    traced system from outside has a `user` caller.

    \b
    Files: OTLP JSON (one document, or the Collector file exporter's JSON lines), OTLP protobuf,
    Jaeger JSON (UI download, /api/traces answers), Zipkin v2 JSON; paths, directories, globs, .gz,
    and - for stdin (in directories: *.json, *.jsonl, *.ndjson, *.pb, *.binpb, *.proto, *.otlp, *.bin and
    their .gz).
    Spans of one call in different files still pair.

    \b
    Examples:
      meshctl collect traces otel-traces.jsonl
      meshctl collect traces exports/ --format jaeger
      meshctl collect traces --jaeger http://jaeger-query:16686 --service frontend --since 30m
      meshctl collect traces --zipkin http://zipkin:9411 --limit 500
      meshctl collect traces --tempo http://tempo:3200 --service checkout --since 2h --until 1h

    Exit codes: 0 collected; 1 some source failed as a whole (the rest was stored);
    3 bad usage, or nothing readable in the input.
    """
    from meshctl.errors import InputError
    from meshctl.identity import Identity
    from meshctl.ingest import file_sources
    from meshctl.store import Dataset
    from meshctl.trace_ingest import ingest_traces

    apis = [(name, url) for name, url in (("jaeger", jaeger), ("zipkin", zipkin), ("tempo", tempo)) if url]
    if apis and paths:
        raise InputError("give either PATHs or a trace API (--jaeger/--zipkin/--tempo), not both", field="--jaeger")
    if len(apis) > 1:
        raise InputError("give one trace API per run", field=f"--{apis[1][0]}")
    if apis:
        if fmt != "auto":
            raise InputError("--format applies to files; the API decides its own format", field="--format")
        from meshctl.sources.trace_apis import HttpClient, api_sources

        name, url = apis[0]
        client = HttpClient(timeout=timeout, attempts=retries + 1)
        sources = api_sources(name, url, service=service, since=since, until=until, limit=limit, client=client)
        if not sources:
            raise InputError(f"{name} at {url} knows no service yet", hint="send some traffic, or pass --service")
    else:
        if service or since or until:
            raise InputError("--service, --since and --until apply to --jaeger/--zipkin/--tempo", field="--service")
        if not paths:
            raise click.UsageError("give PATH... (or - for stdin), or --jaeger/--zipkin/--tempo URL")
        sources = file_sources(paths, cluster=cluster_name, suffixes=TRACE_SUFFIXES)
        if not sources:
            raise InputError("no input files found", file=" ".join(paths))

    dataset = Dataset(data_dir)
    report = ingest_traces(sources, dataset, fmt=fmt, identity=Identity(cluster=cluster_name), workers=workers,
                           progress=not quiet, dedup=not no_dedup)
    finish(report, dataset, output, extra={"spans": report.lines}, nothing="no span could be read",
           hint="see `meshctl dataset rejects`; pass --format if detection guessed wrong")
