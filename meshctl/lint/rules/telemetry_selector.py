"""Telemetry selectors that select none of the input's Pods (only when the input has Pods there)."""

from __future__ import annotations

from meshctl.lint.context import LintContext, Rule, mapping


def check(ctx: LintContext) -> None:
    pods: dict[str, list[dict]] = {}
    for d in ctx.of_kind("Pod"):
        pods.setdefault(d.namespace, []).append(dict(mapping(d.metadata.get("labels"))))
    for kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
        for d in ctx.of_kind(kind):
            labels = mapping(mapping(mapping(d.spec.get("template")).get("metadata")).get("labels"))
            pods.setdefault(d.namespace, []).append(dict(labels))
    if not pods:
        return
    for doc in ctx.istio("Telemetry"):
        labels = mapping(mapping(doc.spec.get("selector")).get("matchLabels"))
        if not labels or doc.namespace not in pods or doc.namespace == ctx.mesh.root_namespace:
            continue
        candidates = pods[doc.namespace]
        if not any(all(p.get(k) == v for k, v in labels.items()) for p in candidates):
            sel = ", ".join(f"{k}={v}" for k, v in labels.items())
            ctx.report("MSH0306", doc, ("spec", "selector", "matchLabels"), selector=sel, count=len(candidates),
                       namespace=doc.namespace)


RULE = Rule("telemetry.Selector",
            "Reports Telemetry selectors that match none of the input's Pods or workload templates.",
            ("Telemetry", "Pod", "Deployment", "StatefulSet", "DaemonSet"), ("MSH0306",), check)
