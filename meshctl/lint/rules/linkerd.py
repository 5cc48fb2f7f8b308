"""Linkerd tracing and access-log settings that do not do what they say.

Current Linkerd (2.19+, edge releases since late 2025) configures tracing in the
linkerd-control-plane chart: `proxy.tracing.{enabled, collector.endpoint, collector.meshIdentity}`;
the proxies export OTLP over gRPC only, to a collector inside the mesh. The linkerd-jaeger extension
is gone. The proxy access log annotation takes `apache` or `json`.
"""

from __future__ import annotations

import re

from meshctl.lint.context import LintContext, Rule, mapping
from meshctl.lint.loader import Document

_HOSTPORT = re.compile(r"^(?P<host>\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(?P<port>\d{1,5})$")
JAEGER_KEYS = {"webhook", "collector", "jaeger"}
ACCESS_LOG = "config.linkerd.io/access-log"


def _values_docs(ctx: LintContext):
    for d in ctx.documents:
        if d.is_resource or not isinstance(d.obj, dict):
            continue
        yield d


def _check_tracing(ctx: LintContext, d: Document, owner: str) -> None:
    tracing = mapping(mapping(d.obj.get(owner)).get("tracing"))
    if not tracing:
        return
    base = (owner, "tracing")
    collector = mapping(tracing.get("collector"))
    endpoint = collector.get("endpoint")
    if owner == "controller" and not endpoint and d.get(("proxy", "tracing", "collector", "endpoint")):
        return  # the controllers reuse proxy.tracing.collector.endpoint when theirs is unset
    if tracing.get("enabled") is True and not endpoint:
        ctx.report("MSH0701", d, base, field=f"{owner}.tracing")
        return
    if not endpoint:
        return
    field = f"{owner}.tracing.collector.endpoint"
    path = (*base, "collector", "endpoint")
    text = str(endpoint)
    scheme = re.match(r"^[a-z]+://", text)
    bare = text[scheme.end():] if scheme else text
    m = _HOSTPORT.match(bare)
    if scheme and scheme.group(0).startswith("http"):
        ctx.report("MSH0703", d, path, field=field, value=text)
    elif scheme or not m:
        ctx.report("MSH0702", d, path, field=field, value=text,
                   problem="is not host:port (Linkerd expects e.g. collector.tracing:4317, no scheme)")
        return
    if m is None:
        return
    port = int(m.group("port"))
    if not 1 <= port <= 65535:
        ctx.report("MSH0702", d, path, field=field, value=text, problem=f"has port {port}, outside 1..65535")
        return
    if port == 4318 and not scheme:
        ctx.report("MSH0703", d, path, field=field, value=text)
    if owner == "proxy" and tracing.get("enabled") is True and \
            not mapping(collector.get("meshIdentity")).get("serviceAccountName"):
        ctx.report("MSH0707", d, (*base, "collector"))
    _check_service(ctx, d, path, field, text, m.group("host"), port)


def _check_service(ctx: LintContext, d: Document, path: tuple, field: str, value: str, host: str, port: int) -> None:
    services = ctx.services
    if not services.known:
        return
    parts = host.split(".")
    domain = ctx.mesh.cluster_domain
    if len(parts) == 2:
        fqdn = f"{host}.svc.{domain}"
    elif len(parts) == 3 and parts[2] == "svc":
        fqdn = f"{host}.{domain}"
    elif host.endswith(f".svc.{domain}"):
        fqdn = host
    else:
        return  # an external or unqualified name: resolved by DNS, not checkable here
    ns = fqdn.split(".")[1]
    if not services.from_cluster and ns not in services.namespaces:
        return
    found, _ = services.lookup(fqdn)
    searched = "Service in the input" + (" or the cluster" if services.from_cluster else "")
    if found is None:
        ctx.report("MSH0706", d, path, field=field, value=value, searched=searched)
    elif found.ports and port not in found.ports:
        ctx.report("MSH0706", d, path, field=field, value=value,
                   searched=f"port of {found.hostname} (it exposes {', '.join(map(str, sorted(found.ports)))})")


def check(ctx: LintContext) -> None:
    for d in _values_docs(ctx):
        _check_tracing(ctx, d, "proxy")
        _check_tracing(ctx, d, "controller")
        jaeger = sorted(k for k in JAEGER_KEYS if k in d.obj)
        webhook = mapping(d.obj.get("webhook"))
        if ("collectorSvcAddr" in webhook or "collectorSvcAccount" in webhook
                or (jaeger and {"jaeger", "collector"} <= set(d.obj))):
            ctx.report("MSH0704", d, (jaeger[0],) if jaeger else (), keys=", ".join(jaeger))
    for d in ctx.documents:
        if not d.is_resource:
            continue
        spots = [(("metadata", "annotations"), mapping(d.metadata.get("annotations")))]
        tmpl = mapping(mapping(d.spec.get("template")).get("metadata"))
        spots.append((("spec", "template", "metadata", "annotations"), mapping(tmpl.get("annotations"))))
        for path, ann in spots:
            if ACCESS_LOG in ann and str(ann[ACCESS_LOG]) not in ("apache", "json"):
                ctx.report("MSH0705", d, (*path, ACCESS_LOG), value=str(ann[ACCESS_LOG]))


RULE = Rule("linkerd.Telemetry",
            "Checks Linkerd proxy.tracing values, linkerd-jaeger leftovers and the access-log annotation.",
            ("linkerd-control-plane values", "linkerd-jaeger values", "annotations"),
            ("MSH0701", "MSH0702", "MSH0703", "MSH0704", "MSH0705", "MSH0706", "MSH0707"), check)
