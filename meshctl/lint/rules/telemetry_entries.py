"""Telemetry tracing/accessLogging entries without providers whose settings do nothing.

An entry without `providers` inherits them: from earlier entries of the same Telemetry, from the
namespace-wide and mesh-wide Telemetry above it, and finally from meshConfig.defaultProviders. When
nothing is inherited the entry has no effect (tracing stays off). An access-log `filter` on an entry
without providers is never applied: istiod attaches filters only to the providers named in the same
entry.
"""

from __future__ import annotations

from meshctl.lint.context import LintContext, Rule, mapping, seq
from meshctl.lint.loader import Document
from meshctl.lint.rules.telemetry_scope import namespace_wide


def _named(doc: Document | None, signal: str, upto: int | None = None) -> bool:
    if doc is None:
        return False
    entries = seq(doc.spec.get(signal))
    if upto is not None:
        entries = entries[:upto]
    return any(seq(mapping(e).get("providers")) for e in entries)


def check(ctx: LintContext) -> None:
    mesh = ctx.mesh
    root = mesh.root_namespace
    telemetries = list(ctx.istio("Telemetry"))
    wide: dict[str, Document] = {}
    for d in telemetries:
        if namespace_wide(d):
            wide.setdefault(d.namespace, d)
    for doc in telemetries:
        chain: list[Document | None] = []
        if doc.namespace != root or not namespace_wide(doc):
            chain.append(wide.get(root))
        if not namespace_wide(doc) and doc.namespace != root:
            chain.append(wide.get(doc.namespace))
        for signal, kind_word in (("tracing", "tracing"), ("accessLogging", "accessLogging")):
            for i, entry in enumerate(seq(doc.spec.get(signal))):
                entry = mapping(entry)
                if seq(entry.get("providers")):
                    continue
                section = f"{signal}[{i}]"
                path = ("spec", signal, i)
                if signal == "accessLogging" and mapping(entry.get("filter")).get("expression"):
                    ctx.report("MSH0303", doc, (*path, "filter"), section=section,
                               why="Istio applies an access-log filter only to the providers named in the same entry",
                               effect="the filter is ignored")
                    continue
                if entry.get("disabled") is True or entry.get("disableSpanReporting") is True:
                    continue  # turning inherited providers off is what a provider-less entry is for
                inherited = any(_named(t, signal) for t in chain if t is not doc) or _named(doc, signal, i)
                if inherited or not mesh.known or mesh.default_names(signal):
                    continue
                ctx.report("MSH0303", doc, path, section=section,
                           why=f"nothing provides one (meshConfig.defaultProviders.{kind_word} is empty and no "
                               "broader Telemetry in the input names one)",
                           effect="tracing stays off" if signal == "tracing" else "the entry has no effect")


RULE = Rule("telemetry.EntriesWithoutProvider",
            "Reports Telemetry entries without providers whose filter is ignored or that inherit no provider.",
            ("Telemetry", "MeshConfig"), ("MSH0303",), check)
