"""Several namespace-wide Telemetry resources in one namespace.

istiod takes, per namespace, the *oldest* Telemetry without selector and targetRef(s) as the
namespace-wide one (in the root namespace: the mesh-wide one) and silently ignores the others.
"""

from __future__ import annotations

from meshctl.lint.context import LintContext, Rule, mapping, seq
from meshctl.lint.loader import Document


def namespace_wide(doc: Document) -> bool:
    spec = doc.spec
    labels = mapping(mapping(spec.get("selector")).get("matchLabels"))
    return not labels and not seq(spec.get("targetRefs")) and not mapping(spec.get("targetRef"))


def check(ctx: LintContext) -> None:
    by_ns: dict[str, list[Document]] = {}
    seen: set[tuple[str, str | None]] = set()
    for doc in ctx.istio("Telemetry"):
        if not namespace_wide(doc) or (doc.namespace, doc.name) in seen:
            continue  # the same object twice is input.DuplicateObject's concern
        seen.add((doc.namespace, doc.name))
        by_ns.setdefault(doc.namespace, []).append(doc)
    root = ctx.mesh.root_namespace
    for ns, docs in by_ns.items():
        if len(docs) < 2:
            continue
        names = ", ".join(str(d.name) for d in docs)
        code = "MSH0301" if ns == root else "MSH0302"
        for d in docs:
            ctx.report(code, d, ("metadata", "name"), count=len(docs), namespace=ns, names=names)


RULE = Rule("telemetry.NamespaceWide",
            "Reports several selector-less Telemetry resources in one namespace (mesh-wide in the root namespace).",
            ("Telemetry", "MeshConfig"), ("MSH0301", "MSH0302"), check)
