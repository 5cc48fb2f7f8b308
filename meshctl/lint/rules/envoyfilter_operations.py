"""Patch operations that istiod ignores for their applyTo, and order-dependent operations.

ADD and REMOVE are ignored for ROUTE_CONFIGURATION and HTTP_ROUTE; REPLACE does nothing for
CLUSTER, LISTENER, ROUTE_CONFIGURATION and BOOTSTRAP. INSERT_BEFORE/INSERT_AFTER, REPLACE and
REMOVE are relative to other filters: without `spec.priority`, the result depends on the creation
order of all EnvoyFilters that touch the same filters.
"""

from __future__ import annotations

from meshctl.lint.context import LintContext, Rule, mapping, seq

IGNORED = {
    "ADD": {"ROUTE_CONFIGURATION", "HTTP_ROUTE"},
    "REMOVE": {"ROUTE_CONFIGURATION", "HTTP_ROUTE"},
    "REPLACE": {"CLUSTER", "LISTENER", "ROUTE_CONFIGURATION", "BOOTSTRAP"},
}
RELATIVE = {"INSERT_BEFORE", "INSERT_AFTER", "REPLACE", "REMOVE"}


def check(ctx: LintContext) -> None:
    for doc in ctx.istio("EnvoyFilter"):
        priority = doc.spec.get("priority")
        for i, cp in enumerate(seq(doc.spec.get("configPatches"))):
            cp = mapping(cp)
            patch = mapping(cp.get("patch"))
            op, apply_to = patch.get("operation"), cp.get("applyTo")
            if not isinstance(op, str):
                continue
            path = ("spec", "configPatches", i, "patch", "operation")
            if apply_to in IGNORED.get(op, ()):
                ctx.report("MSH0506", doc, path, index=i, operation=op, apply_to=apply_to)
                continue
            if op in RELATIVE and not priority:
                extra = ""
                if mapping(mapping(cp.get("match")).get("proxy")).get("proxyVersion"):
                    extra = ", and match.proxy.proxyVersion limits it to some proxy versions only"
                ctx.report("MSH0505", doc, path, index=i, operation=op, extra=extra)


RULE = Rule("envoyfilter.Operations",
            "Reports patch operations ignored for their applyTo and relative operations without a priority.",
            ("EnvoyFilter",), ("MSH0505", "MSH0506"), check)
