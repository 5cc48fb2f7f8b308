"""extensionProviders entries that istiod rejects or that cannot work.

istiod validates the whole mesh config (pkg/config/validation/agent): a provider without a name,
with a duplicate name, without provider settings, with a bad service or port, or an OpenTelemetry
provider with both grpc and http makes it refuse the mesh config. Other mistakes pass validation
and fail later: an OTLP/HTTP exporter without a timeout (Envoy's HttpUri requires one, istiod passes
it through unset), a Dynatrace sampler with nowhere to fetch its configuration from, provider types
Istio no longer implements.
"""

from __future__ import annotations

from collections import Counter

from meshctl.lint.context import LintContext, Rule, mapping
from meshctl.lint.hosts import provider_service_problem
from meshctl.lint.meshconfig import SERVICE_PROVIDERS, g, key_of, providers_of


def _port_problem(port: object) -> str | None:
    if port is None:
        return "port is not set"
    try:
        n = int(str(port))
    except ValueError:
        return f"port {port!r} is not a number"
    if not 1 <= n <= 65535:
        return f"port {n} is not between 1 and 65535"
    return None


def check(ctx: LintContext) -> None:
    for src in ctx.mesh.sources:
        providers = providers_of(src)
        counts = Counter(p.name for p in providers if p.name)
        reported_dup: set[str] = set()
        for p in providers:
            base = p.sub()
            name = p.name or f"#{p.index}"
            if p.name and counts[p.name] > 1 and p.name not in reported_dup:
                reported_dup.add(p.name)
                ctx.report("MSH0111", source=src, path=(*base, "name"), provider=p.name, count=counts[p.name])
            if not p.name:
                ctx.report("MSH0112", source=src, path=base, provider=name, problem="it has no name")
            if p.ptype is None:
                ctx.report("MSH0112", source=src, path=base, provider=name,
                           problem="it has no provider settings (a provider key with no value, such as "
                                   "`prometheus:` alone, is no provider)")
                continue
            if len(p.types) > 1:
                ctx.report("MSH0112", source=src, path=base, provider=name,
                           problem=f"it sets several provider types ({', '.join(p.types)}); only one is allowed")
            info = p.type_info
            if info is not None and info.status:
                ctx.report("MSH0114", source=src, path=p.sub(), provider=name, ptype=p.ptype, status=info.status)
            settings = mapping(p.settings)
            if p.ptype in SERVICE_PROVIDERS:
                service = g(settings, "service")
                reason = provider_service_problem(service)
                if reason:
                    ctx.report("MSH0107", source=src, path=p.sub("service"), provider=name,
                               service=service if isinstance(service, str) else "", reason=reason)
                port_problem = _port_problem(g(settings, "port"))
                if port_problem:
                    ctx.report("MSH0112", source=src, path=p.sub("port"), provider=name, problem=port_problem)
            if p.ptype == "opentelemetry":
                http, grpc = g(settings, "http"), g(settings, "grpc")
                if http is not None and grpc is not None:
                    ctx.report("MSH0113", source=src, path=p.sub(), provider=name)
                no_timeout = isinstance(http, dict) and g(http, "timeout") in (None, "")
                if no_timeout or (http is not None and not isinstance(http, dict)):
                    ctx.report("MSH0106", source=src, path=p.sub(key_of(settings, "http")), provider=name)
                dyn = g(settings, "dynatraceSampler")
                if dyn is not None:
                    dyn_key = key_of(settings, "dynatraceSampler")
                    api = g(dyn, "httpService")
                    if api is None and http is None:
                        ctx.report("MSH0116", source=src, path=p.sub(dyn_key), provider=name)
                    api_http = g(api, "http")
                    if isinstance(api, dict) and (not isinstance(api_http, dict) or g(api_http, "timeout") in (None, "")):
                        ctx.report("MSH0106", source=src, path=p.sub(dyn_key, key_of(dyn, "httpService")),
                                   provider=f"{name} (dynatrace_sampler.http_service)")


RULE = Rule("meshconfig.ProviderDefinitions",
            "Checks extensionProviders entries: names, provider settings, service and port, OTLP/HTTP timeout, "
            "samplers, deprecated types.",
            ("MeshConfig",), ("MSH0106", "MSH0107", "MSH0111", "MSH0112", "MSH0113", "MSH0114", "MSH0116"), check)
