"""`meshctl render istio|linkerd`: OTLP telemetry config, validated, on stdout (`| kubectl apply -f -`).

Options -> one library call (`meshctl.render.istio.render_istio` / `meshctl.render.linkerd.render_linkerd`)
-> validation (`meshctl.validate`) -> one writer. Only click and small meshctl modules are imported at
module level: `meshctl render --help` stays fast.
"""

from __future__ import annotations

from typing import Any

import click

from meshctl.errors import InputError, MeshctlError
from meshctl.options import Globals, _store, output_option

ISTIO_FLAGS = {
    "collector": "--collector", "protocol": "--protocol", "providerName": "--provider-name",
    "accessLogProviderName": "--access-log-provider-name", "httpPath": "--http-path", "timeout": "--timeout",
    "headers": "--header", "headersFromEnv": "--header-from-env", "sampling": "--sampling",
    "customTags": "--custom-tag", "tracing": "--tracing", "accessLog": "--access-log",
    "accessLogFilter": "--access-log-filter", "accessLogCollector": "--access-log-collector",
    "resourceDetectors": "--resource-detectors", "maxTagLength": "--max-tag-length", "namespace": "--namespace",
    "rootNamespace": "--root-namespace", "selector": "--selector", "name": "--name",
    "istioVersion": "--istio-version", "mode": "--mode", "meshConfigFormat": "--mesh-config-format",
    "defaultProviders": "--default-providers", "revision": "--revision", "clusterDomain": "--cluster-domain",
    "serviceName": "--service-name", "collectorCluster": "--collector-cluster", "routeTagger": "--route-tagger",
}
LINKERD_FLAGS = {
    "collector": "--collector", "protocol": "--protocol", "collectorServiceAccount": "--collector-service-account",
    "collectorNamespace": "--collector-namespace", "tracing": "--tracing", "traceServiceName": "--trace-service-name",
    "sampling": "--sampling", "customTags": "--custom-tag", "accessLog": "--access-log",
    "accessLogFilter": "--access-log-filter", "namespace": "--namespace", "workload": "--workload",
    "linkerdVersion": "--linkerd-version", "linkerdNamespace": "--linkerd-namespace",
    "clusterDomain": "--cluster-domain", "resourceAttributes": "--resource-attribute",
}


def _pairs(items: tuple[str, ...], option: str, sep: str = "=") -> dict[str, str] | None:
    """`k=v` options (repeatable, or comma-separated within one) -> dict."""
    if not items:
        return None
    out: dict[str, str] = {}
    for item in items:
        for part in item.split(",") if option == "--selector" else [item]:
            key, s, val = part.partition(sep)
            if not s or not key.strip():
                raise click.BadParameter(f"{part!r} is not KEY{sep}VALUE", param_hint=option)
            out[key.strip()] = val
    return out


def _custom_tags(items: tuple[str, ...]) -> dict[str, Any] | None:
    """`KEY=literal:V|header:H|env:E|formatter:F` -> values-file customTags."""
    if not items:
        return None
    kinds = {"literal": "literal", "header": "header", "env": "environment", "environment": "environment",
             "formatter": "formatter"}
    out: dict[str, Any] = {}
    for item in items:
        key, s, spec = item.partition("=")
        kind, s2, arg = spec.partition(":")
        if not s or not key or not s2 or kind not in kinds or not arg:
            raise click.BadParameter(f"{item!r} is not KEY=literal:VALUE, KEY=header:NAME, KEY=env:NAME or "
                                     "KEY=formatter:%OPERATOR%", param_hint="--custom-tag")
        out[key] = {kinds[kind]: arg}
    return out


def _load(values_file: str | None, kind: str) -> dict[str, Any]:
    from meshctl.render.values import load_values_file, validate_values

    if not values_file:
        return {}
    data, lines = load_values_file(values_file)
    validate_values(data, kind, source=values_file, lines=lines)
    return data


def _flag_hint(exc: MeshctlError, flags: dict[str, str]) -> MeshctlError:
    if exc.field and not exc.file:
        top = exc.field.split(".")[0]
        if top in flags and flags[top] not in exc.field:
            exc.field = f"{exc.field} ({flags[top]})"
    return exc


def _checks(validate: str | None, no_validate: bool, schemas: str | None) -> set[str]:
    if no_validate:
        return set()
    wanted = {c.strip() for c in (validate or "auto").split(",") if c.strip()}
    unknown = wanted - {"auto", "schemas", "cluster", "envoy", "types"}
    if unknown:
        raise click.BadParameter(f"unknown check(s) {', '.join(sorted(unknown))}; use auto, schemas, cluster, "
                                 "types, envoy (comma-separated)", param_hint="--validate")
    if "auto" in wanted:
        from meshctl.envoy import find_envoy

        wanted.discard("auto")
        wanted.add("types")
        if schemas:
            wanted.add("schemas")
        if find_envoy():
            wanted.add("envoy")
    if "schemas" in wanted and not schemas:
        raise click.UsageError("--validate=schemas needs --schemas DIR (or MESHCTL_SCHEMAS)")
    return wanted


def _validate(result: Any, checks: set[str], schemas_dir: str | None, g: Globals) -> None:
    """Validate every rendered document; problems to stderr; errors abort before anything is written."""
    if not checks:
        return
    from meshctl.validate import Validator, refuse_invalid

    store = None
    if "schemas" in checks or "cluster" in checks:
        from meshctl.validate.schemas import SchemaStore

        store = SchemaStore.from_dir(schemas_dir) if "schemas" in checks and schemas_dir else None
        if "cluster" in checks:
            from meshctl.kube import connect

            live = SchemaStore.from_cluster(connect(kubeconfig=g.kubeconfig, context=g.kube_context))
            store = live.merge(store) if store else live
    docs = [r.obj for r in result.resources + result.side]
    hints = [getattr(r, "validate_as", None) for r in result.resources + result.side]
    problems = Validator(schemas=store, envoy_types="types" in checks, envoy="envoy" in checks).validate(docs, hints)
    refuse_invalid(problems, hint="fix the values, or --no-validate to write it anyway")


def _emit(result: Any, *, output: str, everything: bool, side_out: str | None, output_dir: str | None,
          side_label: str, side_option: str) -> None:
    from pathlib import Path

    from meshctl.output import dump_json, dump_yaml_stream, write_text

    def text(items: list[Any]) -> str:
        if output == "json":
            objs = [r.obj for r in items]
            if len(objs) == 1 and items[0].target != "kubectl":
                return dump_json(objs[0])
            return dump_json({"apiVersion": "v1", "kind": "List", "items": objs})
        return dump_yaml_stream([r.obj for r in items], [r.comment_text() for r in items])

    main = list(result.resources) + (list(result.side) if everything else [])
    side = [] if everything else list(result.side)
    ext = "json" if output == "json" else "yaml"
    if output_dir and side_out:
        # --mesh-config-out / --values-out win over --output-dir for the side documents
        main = list(result.resources)
        _emit(result.__class__(side=side or list(result.side)), output=output, everything=False, side_out=side_out,
              output_dir=None, side_label=side_label, side_option=side_option)
        side = []
    elif output_dir:
        main = main + side
        side = []
    if output_dir:
        d = Path(output_dir)
        written = []
        for i, r in enumerate(main, start=1):
            name = f"{i:02d}-{r.filename or 'document.yaml'}"
            path = d / (name.rsplit(".", 1)[0] + "." + ext)
            write_text(text([r]), path)
            written.append(f"  {path}  ({r.apply.replace('FILE', str(path)).replace('-f -', '-f ' + str(path))})")
        click.echo(f"wrote {len(written)} file(s):\n" + "\n".join(written), err=True)
    else:
        if main:
            write_text(text(main))
        if side and side_out:
            # One file per document: a Helm values file must hold exactly one document.
            for i, r in enumerate(side):
                path = side_out if i == 0 else str(Path(side_out).parent / (r.filename or f"side-{i}.{ext}"))
                write_text(text([r]), path)
                label = side_label if i == 0 else r.filename
                click.echo(f"wrote {label} to {path}; apply it with: {r.apply.replace('FILE', path)}", err=True)
        elif side:
            names = ", ".join(sorted({r.target for r in side}))
            click.echo(f"note: not in this stream: the {side_label} ({names}); write it with {side_option} FILE, "
                       "or use --all for one GitOps stream", err=True)
    for n in result.notes:
        click.echo(f"note: {n}", err=True)


def _common_output_options(f: Any) -> Any:
    decorators = [
        click.option("-f", "--values", "values_file", metavar="FILE", help="Values file (YAML); options override it."),
        output_option("yaml", "json", default="yaml"),
        click.option("--output-dir", metavar="DIR", help="Write one file per document instead of stdout."),
        click.option("--all", "everything", is_flag=True, help="One stream with everything (GitOps), each document "
                     "commented with how it is applied."),
        click.option("--validate", "validate", metavar="CHECKS", help="auto (default), schemas, cluster, types, envoy; "
                     "comma-separated."),
        click.option("--no-validate", is_flag=True, help="Skip validation of the rendered output."),
        click.option("--schemas", "schemas_dir", metavar="DIR", envvar="MESHCTL_SCHEMAS",
                     help="CRD / JSON Schema files to validate against (env MESHCTL_SCHEMAS)."),
        click.option("--context", "kube_context", metavar="NAME", expose_value=False, callback=_store("kube_context"),
                     help="Kubernetes context for --validate=cluster."),
        click.option("--kubeconfig", metavar="FILE", expose_value=False, callback=_store("kubeconfig"),
                     help="kubeconfig for --validate=cluster."),
        click.option("-n", "--namespace", metavar="NS", expose_value=False, callback=_store("namespace"),
                     help="Scope to this namespace (default: mesh-wide)."),
    ]
    for d in reversed(decorators):
        f = d(f)
    return f


@click.group()
def render() -> None:
    """Render OpenTelemetry (OTLP) tracing and access-log config for Istio or Linkerd.

    \b
    Output is validated before it is written (--no-validate to skip) and is ready for:
      meshctl render istio --collector otel.observability:4317 --sampling 5 | kubectl apply -f -
    """


@render.command("istio")
@click.option("--collector", metavar="[NS/]HOST:PORT",
              help="OTLP collector (default opentelemetry-collector.observability.svc.cluster.local:4317).")
@click.option("--protocol", type=click.Choice(["grpc", "http"]), help="OTLP transport (default grpc).")
@click.option("--provider-name", metavar="NAME", help="Tracing extension provider name (default otel).")
@click.option("--access-log-provider-name", metavar="NAME", help="Access-log provider name (default <provider>-als).")
@click.option("--http-path", metavar="PATH", help="OTLP/HTTP path (default /v1/traces).")
@click.option("--timeout", metavar="DURATION", help="Export timeout, e.g. 5s (OTLP/HTTP default 10s).")
@click.option("--header", "headers", multiple=True, metavar="NAME=VALUE", help="Header / gRPC metadata (repeatable).")
@click.option("--header-from-env", "headers_env", multiple=True, metavar="NAME=ENVVAR",
              help="Header whose value istiod reads from its environment (Istio >= 1.26).")
@click.option("--sampling", type=float, metavar="PERCENT", help="Percent of requests traced, 0-100.")
@click.option("--custom-tag", "custom_tags", multiple=True, metavar="KEY=literal:V|header:H|env:E|formatter:F",
              help="Span tag (repeatable).")
@click.option("--tracing/--no-tracing", default=None, help="Render tracing (default on).")
@click.option("--access-log", type=click.Choice(["otlp", "file-json", "file-text", "off"]),
              help="Access logs: OTLP (default), JSON or text on stdout, or off.")
@click.option("--access-log-filter", metavar="CEL", help="Log only matching requests, e.g. 'response.code >= 400'.")
@click.option("--access-log-collector", metavar="HOST:PORT", help="OTLP/gRPC endpoint for access logs, if different.")
@click.option("--resource-detectors", metavar="LIST", help="OpenTelemetry resource detectors: environment,dynatrace.")
@click.option("--max-tag-length", type=int, metavar="N", help="Truncate the request-path span tag to N characters.")
@click.option("--root-namespace", metavar="NS", help="Istio root namespace (default istio-system).")
@click.option("--selector", multiple=True, metavar="K=V", help="Workload labels (needs -n).")
@click.option("--name", metavar="NAME", help="Resource name (default mesh-default / namespace-default / <app>-otel).")
@click.option("--istio-version", metavar="1.24..1.30", help="Target Istio minor version (default 1.30).")
@click.option("--mode", type=click.Choice(["telemetry", "envoyfilter"]), help="Telemetry API (default) or EnvoyFilters.")
@click.option("--mesh-config-format", type=click.Choice(["iop", "helm", "configmap"]),
              help="IstioOperator for istioctl (default), istiod Helm values, or the istio ConfigMap.")
@click.option("--mesh-config-out", metavar="FILE", help="Write the mesh config (extensionProviders) here.")
@click.option("--default-providers/--no-default-providers", default=None,
              help="Set meshConfig.defaultProviders (default: only mesh-wide).")
@click.option("--revision", metavar="REV", help="Istio revision (ConfigMap istio-REV, istiod-REV release).")
@click.option("--cluster-domain", metavar="DOMAIN", help="Kubernetes cluster domain (default cluster.local).")
@click.option("--service-name", metavar="NAME", help="envoyfilter mode: service.name of the spans.")
@click.option("--collector-cluster", metavar="CLUSTER", help="envoyfilter mode: use this Envoy cluster (no CLUSTER ADD).")
@click.option("--route-tagger", metavar="URL", help="Deploy the route-tagger Wasm plugin from URL (oci://, https://, "
              "file://); spans get an http.route tag (/reviews/{id}).")
@click.option("--route-tagger-sha256", metavar="HEX", help="sha256 of the route-tagger module (pins what proxies run).")
@_common_output_options
@click.pass_context
def istio(ctx: click.Context, values_file: str | None, output: str, output_dir: str | None, everything: bool,
          validate: str | None, no_validate: bool, schemas_dir: str | None, mesh_config_out: str | None,
          **opts: Any) -> None:
    """Istio 1.24-1.30: Telemetry (or EnvoyFilters) on stdout; meshConfig extensionProviders to a file.

    \b
    The mesh config never goes into the kubectl stream (IstioOperator is istioctl's input file): write it
    with --mesh-config-out FILE as an IstioOperator (istioctl install -f), istiod Helm values or the
    istio ConfigMap; stderr says which command applies it. Every option can come from -f values.yaml.
    """
    from meshctl.render.istio import render_istio
    from meshctl.render.values import merge

    g = ctx.ensure_object(Globals)
    cli = {
        "collector": opts["collector"], "protocol": opts["protocol"], "providerName": opts["provider_name"],
        "accessLogProviderName": opts["access_log_provider_name"], "httpPath": opts["http_path"],
        "timeout": opts["timeout"], "headers": _pairs(opts["headers"], "--header"),
        "headersFromEnv": _pairs(opts["headers_env"], "--header-from-env"), "sampling": opts["sampling"],
        "customTags": _custom_tags(opts["custom_tags"]), "tracing": opts["tracing"], "accessLog": opts["access_log"],
        "accessLogFilter": opts["access_log_filter"], "accessLogCollector": opts["access_log_collector"],
        "resourceDetectors": [d.strip() for d in opts["resource_detectors"].split(",") if d.strip()]
        if opts["resource_detectors"] else None,
        "maxTagLength": opts["max_tag_length"], "namespace": g.namespace, "rootNamespace": opts["root_namespace"],
        "selector": _pairs(opts["selector"], "--selector"), "name": opts["name"],
        "istioVersion": opts["istio_version"], "mode": opts["mode"], "meshConfigFormat": opts["mesh_config_format"],
        "defaultProviders": opts["default_providers"], "revision": opts["revision"],
        "clusterDomain": opts["cluster_domain"], "serviceName": opts["service_name"],
        "collectorCluster": opts["collector_cluster"],
        "routeTagger": {k: v for k, v in (("url", opts["route_tagger"]), ("sha256", opts["route_tagger_sha256"]))
                        if v} or None,
    }
    if cli["routeTagger"] and "url" not in cli["routeTagger"]:
        raise click.UsageError("--route-tagger-sha256 needs --route-tagger URL")
    try:
        values = merge(_load(values_file, "istio"), cli)
        result = render_istio(values)
    except InputError as exc:
        raise _flag_hint(exc, ISTIO_FLAGS) from None
    for r in result.side:
        r.validate_as = "istiod-values" if r.target == "helm" else None
    _validate(result, _checks(validate, no_validate, schemas_dir), schemas_dir, g)
    _emit(result, output=output, everything=everything, side_out=mesh_config_out, output_dir=output_dir,
          side_label="mesh config", side_option="--mesh-config-out")


@render.command("linkerd")
@click.option("--collector", metavar="HOST:PORT", help="OTLP/gRPC collector, inside the mesh "
              "(default opentelemetry-collector.observability:4317).")
@click.option("--protocol", type=click.Choice(["grpc", "http"]), help="Linkerd proxies export OTLP/gRPC only.")
@click.option("--collector-service-account", metavar="SA", help="Collector's service account (its mesh identity).")
@click.option("--collector-namespace", metavar="NS", help="Collector's namespace (default: from --collector).")
@click.option("--tracing/--no-tracing", default=None, help="Render tracing (default on).")
@click.option("--trace-service-name", metavar="NAME", help="service.name of proxy spans (default linkerd-proxy).")
@click.option("--sampling", type=float, metavar="PERCENT", help="Not supported by Linkerd proxies (reported).")
@click.option("--custom-tag", "custom_tags", multiple=True, metavar="KEY=literal:V", help="Not supported (reported).")
@click.option("--resource-attribute", "resource_attributes", multiple=True, metavar="K=V",
              help="Extra OpenTelemetry resource attribute on proxy spans (repeatable).")
@click.option("--access-log", type=click.Choice(["apache", "json", "off", "otlp", "file-json", "file-text"]),
              help="Proxy access log format: apache, json (default), or off.")
@click.option("--access-log-filter", metavar="CEL", help="Not supported by Linkerd proxies (reported).")
@click.option("--workload", metavar="KIND/NAME", help="Annotate this workload instead of the namespace.")
@click.option("--linkerd-version", metavar="VERSION", help="edge (default), edge-YY.M.N, or 2.14 .. 2.19.")
@click.option("--linkerd-namespace", metavar="NS", help="Linkerd control-plane namespace (default linkerd).")
@click.option("--cluster-domain", metavar="DOMAIN", help="Kubernetes cluster domain (default cluster.local).")
@click.option("--values-out", "values_out", metavar="FILE", help="Write the Helm values here.")
@_common_output_options
@click.pass_context
def linkerd(ctx: click.Context, values_file: str | None, output: str, output_dir: str | None, everything: bool,
            validate: str | None, no_validate: bool, schemas_dir: str | None, values_out: str | None,
            **opts: Any) -> None:
    """Linkerd: proxy.tracing Helm values (+ equivalent `linkerd install --set` flags) and proxy annotations.

    \b
    Current Linkerd (2.19+, edge since late 2025) has no linkerd-jaeger: tracing is proxy.tracing.* in the
    linkerd-control-plane chart, OTLP/gRPC only, no sampling knob. --linkerd-version 2.14..2.18 renders
    linkerd-jaeger values instead. Options Linkerd cannot honour are said so in the output's comments.
    """
    from meshctl.render.linkerd import render_linkerd
    from meshctl.render.values import merge

    g = ctx.ensure_object(Globals)
    cli = {
        "collector": opts["collector"], "protocol": opts["protocol"],
        "collectorServiceAccount": opts["collector_service_account"], "collectorNamespace": opts["collector_namespace"],
        "tracing": opts["tracing"], "traceServiceName": opts["trace_service_name"], "sampling": opts["sampling"],
        "customTags": _custom_tags(opts["custom_tags"]), "accessLog": opts["access_log"],
        "accessLogFilter": opts["access_log_filter"], "namespace": g.namespace, "workload": opts["workload"],
        "linkerdVersion": opts["linkerd_version"], "linkerdNamespace": opts["linkerd_namespace"],
        "clusterDomain": opts["cluster_domain"],
        "resourceAttributes": _pairs(opts["resource_attributes"], "--resource-attribute"),
    }
    try:
        values = merge(_load(values_file, "linkerd"), cli)
        result = render_linkerd(values)
    except InputError as exc:
        raise _flag_hint(exc, LINKERD_FLAGS) from None
    _validate(result, _checks(validate, no_validate, schemas_dir), schemas_dir, g)
    _emit(result, output=output, everything=everything, side_out=values_out, output_dir=output_dir,
          side_label="Helm values", side_option="--values-out")
