"""`meshctl collect logs`: Envoy / Istio / Linkerd access logs into the requests table.

Options → sources (files or Kubernetes pods) → `meshctl.ingest.ingest` → summary (table or JSON).
"""

from __future__ import annotations

import click

from meshctl.commands.collect import collect_options, finish
from meshctl.options import Globals, data_option, kube_options, output_option, pass_globals

FORMATS = ("auto", "istio-text", "envoy-text", "envoy-format", "istio-json", "linkerd-apache", "linkerd-json",
           "otlp-logs")


@click.command()
@click.argument("paths", nargs=-1, metavar="[PATH|-]...")
@click.option("--k8s", "k8s", is_flag=True, help="Read the proxy containers' logs from the cluster (read-only).")
@click.option("-l", "--selector", metavar="SELECTOR", help="Label selector for --k8s pods (as kubectl -l).")
@click.option("--since", metavar="DURATION", help="--k8s: only log lines newer than this (30m, 2h, 1d).")
@click.option("--container", metavar="NAME",
              help="--k8s: the proxy container (default: istio-proxy or linkerd-proxy, detected per pod).")
@click.option("--max-parallel", type=click.IntRange(1, 64), default=8, show_default=True,
              help="--k8s: pod logs streamed at the same time.")
@click.option("--retries", type=click.IntRange(1, 20), default=5, show_default=True,
              help="--k8s: failures in a row (429, 5xx, timeout, dropped stream) before a pod is skipped.")
@click.option("--request-timeout", type=click.FloatRange(0.1, 3600), default=60.0, show_default=True,
              metavar="SECONDS", help="--k8s: a log stream silent this long counts as failed (and is retried).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="auto", show_default=True,
              help="Access-log format (auto detects it per file).")
@click.option("--log-format-string", metavar="FORMAT",
              help="The Envoy format string the proxies use (e.g. meshConfig.accessLogFormat), "
                   "or a JSON object of key → %OPERATOR% for json_format logs.")
@click.option("--workload", metavar="NAME",
              help="Files: the workload whose proxy wrote them (with -n NAMESPACE).")
@collect_options("Files")
@kube_options
@data_option
@output_option("table", "json", default="table")
@pass_globals
def logs(g: Globals, paths: tuple[str, ...], k8s: bool, selector: str | None, since: str | None,
         container: str | None, max_parallel: int, retries: int, request_timeout: float, fmt: str, log_format_string: str | None, workload: str | None,
         cluster_name: str | None, no_dedup: bool, workers: int, quiet: bool, data_dir: str, output: str) -> None:
    """Collect access logs from files, stdin or Kubernetes into the requests table (--data DIR).

    \b
    Files: paths, directories, globs, .gz, and - for stdin. A sidecar's log does not say whose it
    is: pass --workload NAME -n NS, or keep Kubernetes node log paths
    (/var/log/pods/<ns>_<pod>_<uid>/<container>/N.log), which name the pod.

    \b
    Examples:
      meshctl collect logs --k8s -n shop --since 30m
      meshctl collect logs --k8s -A -l app=reviews --container istio-proxy
      kubectl logs deploy/reviews-v2 -c istio-proxy | meshctl collect logs - --workload reviews-v2 -n shop
      meshctl collect logs /var/log/pods/ --format istio-json
      meshctl collect logs envoy.log --log-format-string '[%START_TIME%] %RESPONSE_CODE% %DURATION%'

    Exit codes: 0 collected; 1 some source failed as a whole (the rest was stored);
    3 bad usage, or nothing readable in the input.
    """
    from meshctl.errors import InputError
    from meshctl.identity import Identity
    from meshctl.ingest import file_sources, ingest
    from meshctl.parsers.accesslog import AccessLogParser
    from meshctl.store import Dataset

    parser = AccessLogParser(fmt, log_format_string)
    dataset = Dataset(data_dir)
    skipped = []
    if k8s:
        if paths:
            raise InputError("give either PATHs or --k8s, not both", field="--k8s")
        if workload:
            raise InputError("--workload is for files; with --k8s every pod names itself", field="--workload")
        from meshctl.identity import PodIndex
        from meshctl.kube import connect
        from meshctl.sources.kubernetes import PodLogSource, RetryPolicy, discover

        since_seconds = _since_seconds(since)
        api = connect(g.kubeconfig, g.kube_context)
        cluster = cluster_name or g.kube_context
        targets, skipped = discover(api, namespace=g.namespace, all_namespaces=g.all_namespaces,
                                    selector=selector, container=container, cluster=cluster)
        if not targets:
            where = "any namespace" if g.all_namespaces else f"namespace {g.namespace or 'default'}"
            raise InputError(f"no pod with a proxy container in {where}" + (f" matching {selector}" if selector else ""),
                             hint="check -n/-A/-l, or name the container with --container")
        namespaces = sorted({t.namespace for t in targets})
        identity = Identity(pods=PodIndex.from_kube(api, namespaces, cluster), cluster=cluster)
        policy = RetryPolicy(attempts=retries, timeout=request_timeout)
        sources = [PodLogSource(api, t, since_seconds=since_seconds, policy=policy) for t in targets]
        workers = max_parallel
    else:
        if since or selector or container:
            flag = "--since" if since else "-l" if selector else "--container"
            raise InputError(f"{flag} applies to --k8s (files carry no pod to select)", field=flag)
        if not paths:
            raise click.UsageError("give PATH... (or - for stdin), or --k8s")
        if workload and not g.namespace:
            raise InputError("--workload needs -n NAMESPACE", field="--workload")
        sources = file_sources(paths, workload=workload, namespace=g.namespace, cluster=cluster_name)
        if not sources:
            raise InputError("no input files found", file=" ".join(paths))
        identity = Identity(cluster=cluster_name)

    report = ingest(sources, parser, dataset, identity=identity, workers=workers, progress=not quiet,
                    dedup=not no_dedup, label="pods" if k8s else "files")
    finish(report, dataset, output,
           extra={"skipped_pods": [{"namespace": s.namespace, "pod": s.pod, "reason": s.reason} for s in skipped]},
           notes=[f"skipped {s.namespace}/{s.pod}: {s.reason}" for s in skipped],
           nothing="no line could be read as an access log",
           hint="see `meshctl dataset rejects`; pass --format or --log-format-string if the proxies use a custom format")


def _since_seconds(since: str | None) -> int | None:
    if not since:
        return None
    from meshctl.errors import InputError
    from meshctl.timewindow import parse_duration

    d = parse_duration(since)
    if d is None:
        raise InputError(f"{since!r} is not a duration (30m, 2h, 1d)", field="--since")
    return max(1, int(d.total_seconds()))
