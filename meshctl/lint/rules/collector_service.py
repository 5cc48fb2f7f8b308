"""Collector addresses (`service`/`port` of extension providers) that name no Service.

istiod resolves `service` by the exact hostname of a Kubernetes Service
(`<name>.<namespace>.svc.<cluster domain>`) or a ServiceEntry host, and builds the cluster from that
hostname and `port`. When the lookup fails, it logs a warning and the telemetry is silently not
configured; when the port is not a port of the Service, the proxies send to a cluster that does not
exist. Checked against the Services and ServiceEntries of the input and, with --context/--kubeconfig,
the cluster's Services. Without any, short names (`otel.observability`) are still flagged: they can
never match a Kubernetes Service hostname.
"""

from __future__ import annotations

from meshctl.lint.context import LintContext, Rule, mapping
from meshctl.lint.hosts import provider_service_problem, short_name_fqdn
from meshctl.lint.meshconfig import SERVICE_PROVIDERS, g, providers_of

EFFECT = {
    "opentelemetry": "tracing is turned off", "zipkin": "tracing is turned off", "datadog": "tracing is turned off",
    "skywalking": "tracing is turned off", "lightstep": "tracing is turned off", "opencensus": "tracing is turned off",
    "envoyOtelAls": "no access log is exported", "envoyHttpAls": "no access log is exported",
    "envoyTcpAls": "no access log is exported", "envoyExtAuthzHttp": "CUSTOM authorization fails",
    "envoyExtAuthzGrpc": "CUSTOM authorization fails",
}


def _namespace_hint(service: str, domain: str) -> str | None:
    """The namespace a service string points into, when it says so."""
    if "/" in service:
        return service.partition("/")[0]
    parts = service.split(".")
    if len(parts) >= 3 and parts[2] == "svc":
        return parts[1]
    if len(parts) == 2:
        return parts[1]
    return None


def check(ctx: LintContext) -> None:
    services = ctx.services
    domain = ctx.mesh.cluster_domain
    for src in ctx.mesh.sources:
        for p in providers_of(src):
            if p.ptype not in SERVICE_PROVIDERS or not p.name:
                continue
            settings = mapping(p.settings)
            service = g(settings, "service")
            if not isinstance(service, str) or provider_service_problem(service):
                continue  # reported by meshconfig.ProviderDefinitions
            port = g(settings, "port")
            host = service.partition("/")[2] if "/" in service else service
            k8s_host = host.endswith(f".svc.{domain}")
            short = short_name_fqdn(service, domain)
            if short is None and "." not in host:
                short = f"{host}.<namespace>.svc.{domain}"
            ns = _namespace_hint(service, domain)
            checkable = services.known and (services.from_cluster or (ns is not None and ns in services.namespaces))
            if short is not None and not checkable:
                ctx.report("MSH0110", source=src, path=p.sub("service"), provider=p.name, service=service,
                           suggestion=short)
                continue
            if not services.known:
                continue
            found, why = services.lookup(service)
            if found is None:
                if not checkable and k8s_host:
                    ctx.report("MSH0117", source=src, path=p.sub("service"), provider=p.name, service=service,
                               why=f"the input has no Service in namespace {ns!r} (use --context to check a cluster)")
                    continue
                if not services.from_cluster and not k8s_host and short is None and why == "not found":
                    ctx.report("MSH0117", source=src, path=p.sub("service"), provider=p.name, service=service,
                               why="it is not a Kubernetes Service hostname and the input has no ServiceEntry for it "
                                   "(an external collector needs one)")
                    continue
                searched = "Service or ServiceEntry host in the input" + (" or the cluster" if services.from_cluster else "")
                hint = ""
                if why and why != "not found":
                    hint = f" ({why})"
                else:
                    resolvable = short if short and "<" not in short and services.lookup(short)[0] else None
                    guess = services.suggest(service) or resolvable
                    if guess and guess != service:
                        hint = f" (did you mean {guess!r}?)"
                ctx.report("MSH0108", source=src, path=p.sub("service"), provider=p.name, service=service,
                           searched=searched, hint=hint, effect=EFFECT.get(p.ptype or "", "it is not configured"))
                continue
            try:
                port_n = int(str(port))
            except ValueError:
                continue
            if found.ports and port_n not in found.ports:
                ctx.report("MSH0109", source=src, path=p.sub("port"), provider=p.name, port=port_n,
                           host=f"{found.hostname} ({found.origin})",
                           ports=", ".join(str(x) for x in sorted(found.ports)))


RULE = Rule("meshconfig.CollectorService",
            "Checks that each provider's service/port names a Service or ServiceEntry (input or cluster).",
            ("MeshConfig", "Service", "ServiceEntry"), ("MSH0108", "MSH0109", "MSH0110", "MSH0117"), check)
