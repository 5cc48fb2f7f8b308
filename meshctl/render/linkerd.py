"""`render_linkerd(values)`: Linkerd proxy tracing and access logging.

Current Linkerd (2.19 / edge-25.10 and later) removed the linkerd-jaeger extension: proxies export
OTLP/gRPC spans themselves, configured by `proxy.tracing.{enabled, collector.endpoint,
collector.meshIdentity.{serviceAccountName, namespace}}` in the linkerd-control-plane chart (keys checked
against the chart's default values and `install_tracing.golden`). The collector must be meshed: the proxy
talks to it with mTLS and checks the identity given in `meshIdentity`.

Older stable releases (2.14 .. 2.18, `linkerdVersion`) need the linkerd-jaeger extension: its webhook
(`webhook.collectorSvcAddr`, `collectorSvcAccount`, `collectorTraceProtocol`) configures the proxies;
its bundled collector and Jaeger are turned off in favour of yours.

Access logs are per namespace / workload: `config.linkerd.io/access-log: apache|json` (written to the
proxy's stdout). Requests Linkerd cannot honour (sampling, span tags, OTLP/HTTP, log filters, OTLP log
export) are reported in the output's comments rather than silently dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from meshctl.errors import InputError
from meshctl.render.common import Rendered, RenderResult
from meshctl.render.engine import render_documents
from meshctl.render.values import validate_values
from meshctl.render.versions import linkerd_uses_jaeger_extension

DEFAULTS: dict[str, Any] = {
    "collector": "opentelemetry-collector.observability:4317",
    "protocol": "grpc",
    "tracing": True,
    "accessLog": "json",
    "linkerdVersion": "edge",
    "linkerdNamespace": "linkerd",
    "clusterDomain": "cluster.local",
}
ACCESS_LOG_ANNOTATION = "config.linkerd.io/access-log"
TRACE_COLLECTOR_ANNOTATION = "config.linkerd.io/trace-collector"
TRACE_SA_ANNOTATION = "config.alpha.linkerd.io/trace-collector-service-account"


def _set_path(key: str) -> str:
    # Helm --set splits keys on dots: label keys such as k8s.pod.ip need them escaped.
    return key.replace("\\", "\\\\").replace(".", "\\.").replace(",", "\\,").replace("=", "\\=")


def _set_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).replace("\\", "\\\\").replace(",", "\\,")


def set_flags(values: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> list[str]:
    """Helm values -> `--set`, `a.b=c` arguments (dots and commas in keys and values escaped)."""
    out: list[str] = []
    for k, v in values.items():
        if isinstance(v, Mapping):
            out += set_flags(v, (*prefix, _set_path(str(k))))
        else:
            flag = "--set-string" if isinstance(v, str) and v.lower() in ("true", "false") else "--set"
            out += [flag, f"{'.'.join((*prefix, _set_path(str(k))))}={_set_value(v)}"]
    return out


def _set_command(values: Mapping[str, Any]) -> str:
    """The `--set` arguments for `values`, quoted for a shell."""
    import shlex

    return shlex.join(set_flags(values))


def render_linkerd(values: Mapping[str, Any]) -> RenderResult:
    validate_values(values, "linkerd")
    v = {**DEFAULTS, **{k: x for k, x in values.items() if x is not None or k == "namespace"}}
    result = RenderResult(values=v)
    try:
        legacy = linkerd_uses_jaeger_extension(v["linkerdVersion"])
    except ValueError as exc:
        raise InputError(str(exc), field="linkerdVersion") from exc
    unsupported: list[str] = []

    host, sep, port = str(v["collector"]).rpartition(":")
    if not sep or not port.isdigit() or not 1 <= int(port) <= 65535 or not host:
        raise InputError(f"{v['collector']!r} is not HOST:PORT", field="collector")
    labels = host.split(".")
    collector_ns = v.get("collectorNamespace") or (labels[1] if len(labels) >= 2 else None)
    if not collector_ns:
        raise InputError(f"cannot tell the collector's namespace from {host!r}", field="collectorNamespace",
                         hint="write the collector as <service>.<namespace>:4317 or pass --collector-namespace")
    sa = v.get("collectorServiceAccount")
    if not sa:
        sa = labels[0]
        unsupported.append(f"assumed the collector runs as service account {sa!r} in {collector_ns!r} (its mesh "
                           "identity); pass --collector-service-account if it does not")

    if v["protocol"] == "http":
        unsupported.append("--protocol http: Linkerd proxies export OTLP/gRPC only; rendered for gRPC, so --collector "
                           "must be the collector's OTLP/gRPC port (usually 4317)")
    if v.get("sampling") is not None:
        unsupported.append(f"--sampling {v['sampling']}: Linkerd proxies have no sampling setting; they follow the "
                           "sampled flag of incoming trace context. Sample in your apps or in the collector "
                           "(probabilistic_sampler / tail_sampling processors)")
    if v.get("customTags"):
        unsupported.append("--custom-tag: Linkerd has no per-span tags; use --resource-attribute (resource "
                           "attributes on every proxy span) or the collector's attributes processor")
    if v.get("accessLogFilter"):
        unsupported.append("--access-log-filter: Linkerd's proxy access log has no filter; filter in your log pipeline")

    log_format = {"apache": "apache", "json": "json", "off": None, "file-json": "json", "file-text": "apache",
                  "otlp": "json"}[v["accessLog"]]
    if v["accessLog"] == "otlp":
        unsupported.append("--access-log otlp: Linkerd proxies cannot export logs over OTLP; JSON access logs go "
                           "to the proxy's stdout instead (collect them with `meshctl collect logs` or a log agent)")

    tracing = {
        "enabled": True,
        "endpoint": f"{host}:{port}",
        "service_account": sa,
        "collector_namespace": collector_ns,
        "service_name": v.get("traceServiceName"),
        "labels": dict(v.get("resourceAttributes") or {}),
    }
    if legacy and tracing["labels"]:
        unsupported.append("--resource-attribute: needs Linkerd 2.19+ (proxy.tracing.labels); not rendered")
    ns = v.get("namespace")
    comments = "\n".join(f"NOT SUPPORTED BY LINKERD: {u}" if not u.startswith("assumed") else u for u in unsupported)

    if v["tracing"]:
        if legacy:
            obj = render_documents("linkerd/jaeger-values.yaml.j2", {"tracing": tracing})[0]
            apply = "helm upgrade --install linkerd-jaeger linkerd/linkerd-jaeger -n linkerd-jaeger --create-namespace -f FILE"
            comment = (f"linkerd-jaeger values for Linkerd {v['linkerdVersion']} (the extension's webhook configures "
                       f"the proxies; its bundled collector and Jaeger are off)\nor: linkerd jaeger install {_set_command(obj)} "
                       "| kubectl apply -f -")
            side = Rendered(obj, apply, "\n".join(x for x in (comment, comments) if x), target="helm",
                            filename="linkerd-jaeger-values.yaml", validate_as="linkerd-jaeger-values")
        else:
            obj = render_documents("linkerd/control-plane-values.yaml.j2", {"tracing": tracing})[0]
            apply = (f"helm upgrade linkerd-control-plane linkerd-edge/linkerd-control-plane -n {v['linkerdNamespace']} "
                     "--reuse-values -f FILE")
            comment = (f"linkerd-control-plane values (Linkerd {v['linkerdVersion']}: proxy tracing, no linkerd-jaeger); "
                       "meshed pods pick it up when they restart\n"
                       f"or: linkerd upgrade {_set_command(obj)} | kubectl apply -f -")
            side = Rendered(obj, apply, "\n".join(x for x in (comment, comments) if x), target="helm",
                            filename="linkerd-control-plane-values.yaml", validate_as="linkerd-control-plane-values")
        result.side.append(side)
    elif unsupported:
        result.notes.extend(unsupported)

    annotations: dict[str, str] = {}
    if log_format:
        annotations[ACCESS_LOG_ANNOTATION] = log_format
    if legacy and v["tracing"]:
        annotations[TRACE_COLLECTOR_ANNOTATION] = tracing["endpoint"]
        annotations[TRACE_SA_ANNOTATION] = sa
    if annotations and ns:
        workload = v.get("workload")
        if workload:
            kind, _, name = workload.rpartition("/")
            kind = kind or "deployment"
            obj = render_documents("linkerd/workload-annotations.yaml.j2", {"annotations": annotations})[0]
            result.side.append(Rendered(
                obj, f"kubectl -n {ns} patch {kind}/{name} --type merge --patch-file FILE",
                "proxy annotations on the pod template (the patch restarts the workload's pods)" +
                ("\n" + comments if comments and not v["tracing"] else ""),
                target="kubectl-patch", filename=f"{name}-annotations-patch.yaml", validate_as="pod-template-patch"))
        else:
            obj = render_documents("linkerd/namespace-annotations.yaml.j2", {"namespace": ns, "annotations": annotations})[0]
            result.resources.append(Rendered(
                obj, "kubectl apply -f -",
                f"proxy annotations for namespace {ns}: new pods get them; restart existing ones with "
                f"`kubectl -n {ns} rollout restart deploy`" + (f"\n{comments}" if comments and not v["tracing"] else ""),
                filename=f"namespace-{ns}.yaml"))
    elif annotations:
        result.notes.append("access logs are enabled per namespace or workload in Linkerd: pass -n NAMESPACE "
                            "(and --workload KIND/NAME) to render the config.linkerd.io/access-log annotation")
    if not result.side and not result.resources:
        raise InputError("nothing to render: tracing is off and there is no namespace to annotate")
    return result
