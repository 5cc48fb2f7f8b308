"""Telemetry and defaultProviders references to extension providers.

istiod looks providers up by name (case-insensitively) in meshConfig.extensionProviders plus its
built-ins (prometheus, stackdriver, envoy). A name it cannot find is skipped without any error: a
Telemetry whose tracing provider is unknown turns tracing *off* for the workloads it selects. A
provider of the wrong type is skipped the same way (only opentelemetry, zipkin, datadog and
skywalking build a tracer; only the envoy* log providers write access logs; only prometheus
produces metrics).
"""

from __future__ import annotations

from meshctl.lint.context import LintContext, Rule, mapping, seq
from meshctl.lint.meshconfig import BUILTIN_PROVIDERS, SIGNALS, Provider, key_of

EFFECT = {
    "tracing": "tracing is turned off for the workloads it selects",
    "accessLogging": "no access log is written through it",
    "metrics": "no metrics are reported through it",
}
DEFAULT_EFFECT = {
    "tracing": "workloads without a Telemetry tracing provider get no tracing",
    "accessLogging": "workloads without a Telemetry access-log provider get no access log from it",
    "metrics": "workloads without a Telemetry metrics provider get no metrics from it",
}
SIGNAL_WORD = {"tracing": "tracing", "accessLogging": "access logging", "metrics": "metrics"}


def _why(p: Provider, signal: str) -> str:
    info = p.type_info
    if info is None:
        return "is not a provider type Istio knows"
    if info.status:
        return info.status
    serves = ", ".join(SIGNAL_WORD[s] for s in sorted(info.signals)) or "no telemetry"
    return f"cannot serve {SIGNAL_WORD[signal]} (it serves {serves})"


def check(ctx: LintContext) -> None:
    mesh = ctx.mesh
    for doc in ctx.istio("Telemetry"):
        unchecked: list[str] = []
        for signal in SIGNALS:
            for i, entry in enumerate(seq(doc.spec.get(signal))):
                for j, ref in enumerate(seq(mapping(entry).get("providers"))):
                    name = mapping(ref).get("name")
                    if not isinstance(name, str) or not name:
                        continue  # the CRD schema requires a name; the schema rule reports it
                    path = ("spec", signal, i, "providers", j, "name")
                    section = f"{signal}[{i}]"
                    p = mesh.provider(name)
                    if not mesh.known and name.lower() not in BUILTIN_PROVIDERS:
                        unchecked.append(name)
                        continue
                    if p is None:
                        ctx.report("MSH0101", doc, path, section=section, provider=name,
                                   defined=mesh.defined_names(), effect=EFFECT[signal])
                    elif p.type_info is None or signal not in p.type_info.signals:
                        ctx.report("MSH0103", doc, path, section=section, provider=name,
                                   ptype=p.ptype or "malformed", why=_why(p, signal), effect=EFFECT[signal])
        if unchecked:
            names = ", ".join(sorted(set(unchecked)))
            ctx.report("MSH0008", doc, ("spec",), what=f"provider reference(s) {names} not checked",
                       why="the input has no mesh config (add the IstioOperator, istiod Helm values or istio "
                           "ConfigMap to the input, or pass --mesh-config FILE)")
    for signal, (names, src) in mesh.defaults.items():
        dp_key = key_of(src.config, "defaultProviders")
        for j, name in enumerate(names):
            path = (dp_key, signal, j)
            p = mesh.provider(name)
            if p is None:
                ctx.report("MSH0102", source=src, path=path, section=signal, provider=name,
                           defined=mesh.defined_names(), effect=DEFAULT_EFFECT[signal])
            elif p.type_info is None or signal not in p.type_info.signals:
                ctx.report("MSH0103", source=src, path=path, section=f"defaultProviders.{signal}", provider=name,
                           ptype=p.ptype or "malformed", why=_why(p, signal), effect=DEFAULT_EFFECT[signal])


RULE = Rule("telemetry.ProviderReferences",
            "Checks that Telemetry and defaultProviders name defined providers of a type that serves the signal.",
            ("Telemetry", "MeshConfig"), ("MSH0101", "MSH0102", "MSH0103", "MSH0008"), check)
