"""Several tracing providers where Istio uses only the first one."""

from __future__ import annotations

from meshctl.lint.context import LintContext, Rule, mapping, seq
from meshctl.lint.meshconfig import key_of


def check(ctx: LintContext) -> None:
    for signal, (names, src) in ctx.mesh.defaults.items():
        if signal == "tracing" and len(names) > 1:
            dp_key = key_of(src.config, "defaultProviders")
            ctx.report("MSH0104", source=src, path=(dp_key, "tracing"), count=len(names),
                       names=", ".join(names), first=names[0])
    for doc in ctx.istio("Telemetry"):
        for i, entry in enumerate(seq(doc.spec.get("tracing"))):
            names = [str(mapping(p).get("name")) for p in seq(mapping(entry).get("providers"))]
            if len(names) > 1:
                ctx.report("MSH0105", doc, ("spec", "tracing", i, "providers"), section=f"tracing[{i}]",
                           count=len(names), names=", ".join(names), first=names[0])


RULE = Rule("telemetry.SingleTracingProvider",
            "Reports lists of tracing providers of which Istio uses only the first.",
            ("Telemetry", "MeshConfig"), ("MSH0104", "MSH0105"), check)
