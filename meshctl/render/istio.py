"""`render_istio(values)`: OpenTelemetry tracing and access logging for Istio 1.24 .. 1.30.

Two modes:
- `telemetry` (default): a `Telemetry` resource (tracing: provider, randomSamplingPercentage, customTags;
  accessLogging: provider, CEL filter) plus the meshConfig `extensionProviders` it references
  (`opentelemetry` and `envoyOtelAls` / `envoyFileAccessLog`) and, mesh-wide, `defaultProviders`.
- `envoyfilter`: `EnvoyFilter`s that patch the OpenTelemetry tracer and access logger into every HTTP
  connection manager the way istiod would build them, for operators who need Envoy knobs the
  Telemetry API lacks. They bring their own collector cluster (CLUSTER ADD) unless `collectorCluster`
  names an existing one.

The mesh config never goes into the `kubectl apply` stream: since the in-cluster operator was removed
(2024) an IstioOperator is istioctl's input file. It is rendered as an IstioOperator (`istioctl install -f`),
istiod Helm values (`helm upgrade istiod ... -f`) or the `istio` ConfigMap (`data.mesh`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from meshctl.errors import InputError
from meshctl.render.common import (
    MANAGED_BY,
    Collector,
    Rendered,
    RenderResult,
    parse_collector,
    selector_name,
)
from meshctl.render.engine import render_documents
from meshctl.render.values import normalize_values, validate_values
from meshctl.render.versions import DEFAULT_ISTIO_VERSION, istio_feature_since, istio_has

DEFAULTS: dict[str, Any] = {
    "protocol": "grpc",
    "providerName": "otel",
    "tracing": True,
    "accessLog": "otlp",
    "rootNamespace": "istio-system",
    "istioVersion": DEFAULT_ISTIO_VERSION,
    "mode": "telemetry",
    "meshConfigFormat": "iop",
    "clusterDomain": "cluster.local",
    "httpPath": "/v1/traces",
}
DEFAULT_COLLECTOR_HOST = "opentelemetry-collector.observability.svc.cluster.local"
DEFAULT_HTTP_TIMEOUT = "10s"

# Istio's default access-log text format (pilot/pkg/model/telemetry_logging.go, 1.24+).
TEXT_FORMAT = (
    '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% '
    "%RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% "
    '"%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% '
    '%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" '
    '"%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER_RAW% %UPSTREAM_LOCAL_ADDRESS% '
    "%DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% %ROUTE_NAME%\n"
)

# Istio's default JSON access-log fields (EnvoyJSONLogFormatIstio), plus the trace context and the pod,
# which make the records joinable with spans and attributable without a k8s lookup.
JSON_FIELDS: dict[str, str] = {
    "start_time": "%START_TIME%",
    "route_name": "%ROUTE_NAME%",
    "method": "%REQ(:METHOD)%",
    "path": "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
    "protocol": "%PROTOCOL%",
    "response_code": "%RESPONSE_CODE%",
    "response_flags": "%RESPONSE_FLAGS%",
    "response_code_details": "%RESPONSE_CODE_DETAILS%",
    "connection_termination_details": "%CONNECTION_TERMINATION_DETAILS%",
    "bytes_received": "%BYTES_RECEIVED%",
    "bytes_sent": "%BYTES_SENT%",
    "duration": "%DURATION%",
    "upstream_service_time": "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%",
    "x_forwarded_for": "%REQ(X-FORWARDED-FOR)%",
    "user_agent": "%REQ(USER-AGENT)%",
    "request_id": "%REQ(X-REQUEST-ID)%",
    "authority": "%REQ(:AUTHORITY)%",
    "upstream_host": "%UPSTREAM_HOST%",
    "upstream_cluster": "%UPSTREAM_CLUSTER_RAW%",
    "upstream_local_address": "%UPSTREAM_LOCAL_ADDRESS%",
    "downstream_local_address": "%DOWNSTREAM_LOCAL_ADDRESS%",
    "downstream_remote_address": "%DOWNSTREAM_REMOTE_ADDRESS%",
    "requested_server_name": "%REQUESTED_SERVER_NAME%",
    "upstream_transport_failure_reason": "%UPSTREAM_TRANSPORT_FAILURE_REASON%",
    "traceparent": "%REQ(TRACEPARENT)%",
    "pod_name": "%ENVIRONMENT(POD_NAME)%",
    "pod_namespace": "%ENVIRONMENT(POD_NAMESPACE)%",
}
HCM = "envoy.filters.network.http_connection_manager"
ROUTE_TAGGER_HEADER = "x-meshctl-route"  # wasm/route-tagger's default header
ROUTE_TAG = "http.route"  # the OpenTelemetry attribute for a route template


def effective_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults under `values` (validated against the values schema first)."""
    values = normalize_values(values)
    validate_values(values, "istio")
    out = {**DEFAULTS, **{k: v for k, v in values.items() if v is not None or k == "namespace"}}
    if "collector" not in values or values.get("collector") is None:
        out["collector"] = f"{DEFAULT_COLLECTOR_HOST}:{4318 if out['protocol'] == 'http' else 4317}"
    return out


def _custom_tags(tags: Mapping[str, Any], version: str) -> dict[str, dict[str, Any]]:
    """Values-file custom tags -> Telemetry `customTags` entries."""
    out: dict[str, dict[str, Any]] = {}
    for name, spec in tags.items():
        kind, arg = next(iter(spec.items()))
        if kind == "literal":
            out[name] = {"literal": {"value": arg}}
        elif kind == "formatter":
            if not istio_has(version, "custom_tag_formatter"):
                raise InputError(
                    f"custom tag {name!r}: formatter tags need Istio >= {istio_feature_since('custom_tag_formatter')}"
                    f" (target is {version})", field=f"customTags.{name}")
            out[name] = {"formatter": {"value": arg}}
        else:
            entry = {"name": arg} if isinstance(arg, str) else dict(arg)
            out[name] = {kind: entry}
    return out


def _envoy_custom_tags(tags: Mapping[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Telemetry customTags -> Envoy `type.tracing.v3.CustomTag`s (sorted by tag, as istiod does)."""
    out = []
    for name in sorted(tags):
        kind, spec = next(iter(tags[name].items()))
        if kind == "literal":
            out.append({"tag": name, "literal": {"value": spec["value"]}})
        elif kind == "formatter":
            out.append({"tag": name, "value": spec["value"]})
        else:
            entry = {"name": spec["name"]}
            if spec.get("defaultValue"):
                entry["default_value"] = spec["defaultValue"]
            out.append({"tag": name, ("request_header" if kind == "header" else "environment"): entry})
    return out


def _headers(v: Mapping[str, Any], version: str) -> list[dict[str, str]]:
    headers = [{"name": k, "value": val} for k, val in (v.get("headers") or {}).items()]
    env = v.get("headersFromEnv") or {}
    if env and not istio_has(version, "header_env_name"):
        raise InputError(f"headersFromEnv needs Istio >= {istio_feature_since('header_env_name')} (target is {version})",
                         field="headersFromEnv")
    headers += [{"name": k, "envName": e} for k, e in env.items()]
    return headers


def build_context(v: Mapping[str, Any]) -> dict[str, Any]:
    """The template context for effective values `v` (pure: no I/O)."""
    version = v["istioVersion"]
    collector: Collector = parse_collector(v["collector"], cluster_domain=v["clusterDomain"])
    namespace = v.get("namespace")
    selector = dict(v.get("selector") or {})
    if selector and not namespace:
        raise InputError("--selector needs --namespace: a workload selector applies within one namespace",
                         field="selector", hint="add -n <namespace of the workloads>")
    scope_ns = namespace or v["rootNamespace"]
    mesh_wide = not namespace
    if "name" in v:
        name = v["name"]
    elif mesh_wide:
        name = "mesh-default"
    elif selector:
        name = f"{selector_name(selector)}-otel"
    else:
        name = "namespace-default"

    tracing = None
    if v["tracing"]:
        if v["protocol"] == "http":
            timeout = v.get("timeout") or DEFAULT_HTTP_TIMEOUT
        else:
            timeout = v.get("timeout")
            if (timeout or v.get("headers") or v.get("headersFromEnv")) and not istio_has(version, "otel_grpc_settings"):
                raise InputError("gRPC timeout/headers need Istio >= 1.24", field="timeout")
        tracing = {
            "provider": v["providerName"],
            "sampling": float(v["sampling"]) if v.get("sampling") is not None else None,
            "custom_tags": _custom_tags(v.get("customTags") or {}, version),
            "protocol": v["protocol"],
            "http_path": v["httpPath"],
            "timeout": timeout,
            "headers": _headers(v, version),
            "resource_detectors": list(v.get("resourceDetectors") or []),
            "max_tag_length": v.get("maxTagLength"),
        }
    elif v.get("customTags") or v.get("sampling") is not None:
        raise InputError("sampling/customTags given but tracing is off", field="tracing")

    access_log = None
    kind = v["accessLog"]
    if kind != "off":
        suffix = "als" if kind == "otlp" else "file"
        access_log = {
            "kind": kind,
            "provider": v.get("accessLogProviderName") or f"{v['providerName']}-{suffix}",
            "filter": v.get("accessLogFilter"),
            "labels": dict(JSON_FIELDS),
            "text": TEXT_FORMAT,
        }
    elif v.get("accessLogFilter"):
        raise InputError("accessLogFilter given but accessLog is off", field="accessLogFilter")
    route_tagger = None
    if v.get("routeTagger"):
        rt = v["routeTagger"]
        route_tagger = {"url": rt["url"], "sha256": rt.get("sha256"), "header": rt.get("header") or ROUTE_TAGGER_HEADER,
                        "image_pull_policy": rt.get("imagePullPolicy"), "match": rt.get("match") or "CLIENT_AND_SERVER"}
        if tracing is not None and ROUTE_TAG not in tracing["custom_tags"]:
            tracing["custom_tags"][ROUTE_TAG] = {"header": {"name": route_tagger["header"]}}
    if tracing is None and access_log is None:
        raise InputError("nothing to render: tracing is off and accessLog is off")
    if tracing and access_log and tracing["provider"] == access_log["provider"]:
        raise InputError(f"the tracing and access-log providers are both named {tracing['provider']!r}",
                         field="accessLogProviderName")

    als_collector = collector
    if access_log and kind == "otlp":
        if v.get("accessLogCollector"):
            als_collector = parse_collector(v["accessLogCollector"], cluster_domain=v["clusterDomain"],
                                            field_name="accessLogCollector")
        elif v["protocol"] == "http":
            if collector.port != 4318:
                raise InputError("the OpenTelemetry access logger speaks OTLP/gRPC only; with --protocol http give "
                                 "its gRPC endpoint", field="accessLogCollector",
                                 hint="--access-log-collector HOST:4317")
            als_collector = Collector(collector.host, 4317, collector.namespace)
    default_providers = v.get("defaultProviders")
    if default_providers is None:
        default_providers = mesh_wide
    return {
        "version": version,
        "api_version": "telemetry.istio.io/v1" if istio_has(version, "telemetry_v1") else "telemetry.istio.io/v1alpha1",
        "collector": collector,
        "als_collector": als_collector,
        "name": name,
        "namespace": scope_ns,
        "mesh_wide": mesh_wide,
        "selector": selector,
        "labels": dict(MANAGED_BY),
        "tracing": tracing,
        "access_log": access_log,
        "default_providers": bool(default_providers),
        "root_namespace": v["rootNamespace"],
        "revision": v.get("revision") or "",
        "mode": v["mode"],
        "mesh_config_format": v["meshConfigFormat"],
        "service_name": v.get("serviceName"),
        "collector_cluster": v.get("collectorCluster"),
        "route_tagger": route_tagger,
    }


# ---- mesh config ---------------------------------------------------------------------------------


def mesh_config(ctx: Mapping[str, Any]) -> dict[str, Any]:
    """meshConfig with the extension providers (and defaultProviders)."""
    return render_documents("istio/mesh-config.yaml.j2", ctx)[0]


def _mesh_config_doc(ctx: Mapping[str, Any], mesh: dict[str, Any]) -> Rendered:
    fmt = ctx["mesh_config_format"]
    revision = ctx["revision"]
    providers = ", ".join(p["name"] for p in mesh.get("extensionProviders", []))
    merge_note = ("lists are replaced, not merged: if your mesh config already has extensionProviders, "
                  "copy them into this file first")
    if fmt == "helm":
        obj = render_documents("istio/istiod-values.yaml.j2", {"mesh_config": mesh, "revision": revision})[0]
        release = f"istiod-{revision}" if revision else "istiod"
        return Rendered(obj, f"helm upgrade {release} istio/istiod -n {ctx['root_namespace']} --reuse-values -f FILE",
                        f"istiod Helm values defining extensionProviders {providers}; {merge_note}",
                        target="helm", filename="istiod-values.yaml")
    if fmt == "configmap":
        from meshctl.output import dump_yaml

        name = f"istio-{revision}" if revision else "istio"
        obj = render_documents("istio/mesh-configmap.yaml.j2", {
            "name": name, "namespace": ctx["root_namespace"], "labels": ctx["labels"], "mesh_text": dump_yaml(mesh),
        })[0]
        return Rendered(obj, "kubectl apply -f FILE",
                        f"the {name} ConfigMap's `mesh` key (istiod reloads it live); it REPLACES the whole mesh "
                        "config: merge it with `kubectl -n " + ctx["root_namespace"] + f" get cm {name} -o yaml` first",
                        target="kubectl", filename=f"{name}-configmap.yaml")
    obj = render_documents("istio/istio-operator.yaml.j2", {"mesh_config": mesh, "revision": revision})[0]
    return Rendered(obj, "istioctl install -f <your IstioOperator> -f FILE",
                    f"IstioOperator (istioctl's input file, not a cluster resource) defining extensionProviders "
                    f"{providers}; {merge_note}", target="istioctl", filename="istio-operator.yaml")


# ---- resources -------------------------------------------------------------------------------------


def _telemetry(ctx: Mapping[str, Any]) -> Rendered:
    obj = render_documents("istio/telemetry.yaml.j2", ctx)[0]
    scope = ("mesh-wide (root namespace; only one selector-less Telemetry per namespace takes effect)"
             if ctx["mesh_wide"] else f"namespace {ctx['namespace']}" + (" (workload selector)" if ctx["selector"] else ""))
    lines = [f"Telemetry, {scope}"]
    tr = ctx["tracing"]
    if tr and tr["sampling"] is None:
        lines.append("no randomSamplingPercentage: the mesh default applies (1% unless meshConfig says otherwise)")
    if ctx["access_log"] and ctx["access_log"]["filter"]:
        lines.append("accessLogging.filter is a CEL expression; istiod does not check it, Envoy rejects bad ones")
    return Rendered(obj, "kubectl apply -f -", "\n".join(lines), filename=f"telemetry-{obj['metadata']['name']}.yaml")


def _cluster(ctx: Mapping[str, Any], *, http2: bool, suffix: str, collector: Collector | None = None) -> dict[str, Any]:
    c: Collector = collector or ctx["collector"]
    return {"name": f"meshctl-{suffix}|{c.port}||{c.host}", "host": c.host, "port": c.port, "http2": http2}


def _cluster_contexts(ctx: Mapping[str, Any]) -> list[str]:
    # Clusters are generated once per proxy: SIDECAR_OUTBOUND for sidecars, GATEWAY for gateways.
    return [] if ctx["collector_cluster"] else ["SIDECAR_OUTBOUND", "GATEWAY"]


def _envoyfilters(ctx: Mapping[str, Any]) -> list[Rendered]:
    out: list[Rendered] = []
    c: Collector = ctx["collector"]
    base = ctx["name"] if ctx["name"] != "mesh-default" else "mesh"
    common = {"namespace": ctx["namespace"], "labels": ctx["labels"], "selector": ctx["selector"],
              "cluster_contexts": _cluster_contexts(ctx), "authority": c.host}
    tr = ctx["tracing"]
    if tr:
        cluster = _cluster(ctx, http2=tr["protocol"] == "grpc", suffix="otel")
        if ctx["collector_cluster"]:
            cluster = {**cluster, "name": ctx["collector_cluster"]}
        sampling = tr["sampling"] if tr["sampling"] is not None else 1.0
        path = tr["http_path"] if tr["http_path"].startswith("/") else "/" + tr["http_path"]
        obj = render_documents("istio/envoyfilter-tracing.yaml.j2", {
            **common, "name": f"{base}-otel-tracing", "priority": None, "cluster": cluster,
            "sampling": sampling, "max_tag_length": tr["max_tag_length"],
            "custom_tags": _envoy_custom_tags(tr["custom_tags"]),
            "service_name": ctx["service_name"], "protocol": tr["protocol"],
            "http_uri": f"http://{c.host}:{c.port}{path}", "timeout": tr["timeout"],
            "headers": [h for h in tr["headers"] if "value" in h],
            "resource_detectors": tr["resource_detectors"],
        })[0]
        notes = ["EnvoyFilter: OpenTelemetry tracer in every HTTP connection manager"]
        if tr["sampling"] is None:
            notes.append("random_sampling 1% (Istio's default); set --sampling to change it")
        if not ctx["service_name"]:
            notes.append("no service_name: spans carry service.name=unknown_service:envoy unless the collector "
                         "sets it (k8sattributes) or --service-name is given")
        if any("envName" in h for h in tr["headers"]):
            notes.append("headersFromEnv has no EnvoyFilter equivalent (istiod resolves it); those headers are omitted")
        notes.append("do not combine with a Telemetry tracing config for the same workloads (both set HCM tracing)")
        out.append(Rendered(obj, "kubectl apply -f -", "\n".join(notes), filename=f"envoyfilter-{base}-otel-tracing.yaml"))
    al = ctx["access_log"]
    if al:
        cluster = _cluster(ctx, http2=True, suffix="otel-als", collector=ctx["als_collector"])
        if ctx["collector_cluster"]:
            cluster = {**cluster, "name": ctx["collector_cluster"]}
        obj = render_documents("istio/envoyfilter-accesslog.yaml.j2", {
            **common, "cluster_contexts": common["cluster_contexts"] if al["kind"] == "otlp" else [],
            "name": f"{base}-otel-accesslog", "kind": al["kind"], "filter": al["filter"], "cluster": cluster,
            "authority": ctx["als_collector"].host, "log_name": "otel_envoy_accesslog", "text_format": TEXT_FORMAT,
            "log_labels": al["labels"],
        })[0]
        what = {"otlp": "OpenTelemetry access logger (OTLP/gRPC)", "file-json": "JSON access log on stdout",
                "file-text": "text access log on stdout"}[al["kind"]]
        out.append(Rendered(obj, "kubectl apply -f -", f"EnvoyFilter: {what} in every HTTP connection manager",
                            filename=f"envoyfilter-{base}-otel-accesslog.yaml"))
    return out


def _route_tagger(ctx: Mapping[str, Any]) -> Rendered:
    rt = ctx["route_tagger"]
    base = ctx["name"] if ctx["name"] != "mesh-default" else "mesh"
    obj = render_documents("istio/wasmplugin-route-tagger.yaml.j2", {
        **rt, "name": f"{base}-route-tagger", "namespace": ctx["namespace"], "labels": ctx["labels"],
        "selector": ctx["selector"],
    })[0]
    lines = [f"WasmPlugin: meshctl route-tagger sets {rt['header']} to the route template (/reviews/123 -> "
             "/reviews/{id})"]
    if ctx["tracing"]:
        lines.append(f"spans carry it as the {ROUTE_TAG} tag")
    if not rt["sha256"] and not rt["url"].startswith("oci://"):
        lines.append("no sha256: proxies run whatever the URL serves; pin it with routeTagger.sha256")
    return Rendered(obj, "kubectl apply -f -", "\n".join(lines), filename=f"wasmplugin-{base}-route-tagger.yaml")


def render_istio(values: Mapping[str, Any]) -> RenderResult:
    """Render Istio OTLP configuration for `values` (the values-file keys; see the values schema)."""
    v = effective_values(values)
    ctx = build_context(v)
    result = RenderResult(values=v)
    c: Collector = ctx["collector"]
    if c.expanded_from:
        result.notes.append(f"collector {c.expanded_from!r} expanded to {c.host!r}: istiod looks providers up by "
                            "exact service host name")
    if ctx["mode"] == "envoyfilter":
        result.resources.extend(_envoyfilters(ctx))
        if ctx["route_tagger"]:
            result.resources.append(_route_tagger(ctx))
        if ctx["collector_cluster"] is None:
            result.notes.append("the EnvoyFilters add their own plaintext collector cluster; pass --collector-cluster "
                                f"'outbound|{c.port}||{c.host}' to use Istio's (mTLS-aware) cluster instead")
        return result
    result.resources.append(_telemetry(ctx))
    if ctx["route_tagger"]:
        result.resources.append(_route_tagger(ctx))
    result.side.append(_mesh_config_doc(ctx, mesh_config(ctx)))
    if not ctx["mesh_wide"] and not v.get("defaultProviders"):
        result.notes.append("namespace scope: meshConfig.defaultProviders left unset so other namespaces are unchanged")
    return result
