"""EnvoyFilter fields in the wrong place or no longer existing.

The EnvoyFilter CRD prunes unknown fields: a `listener:` (or `context`, `routeConfiguration`,
`cluster`, `proxy`, `waypoint`) written next to `patch:` instead of under `match:` disappears, and
the patch then matches *everything* of its applyTo type in every selected proxy. The pre-1.4 fields
`workloadLabels` and `filters` disappear the same way, leaving an EnvoyFilter that does nothing.
"""

from __future__ import annotations

from meshctl.lint.context import LintContext, Rule, mapping, seq

MATCH_KEYS = ("listener", "routeConfiguration", "cluster", "context", "proxy", "waypoint")
REMOVED = {"workloadLabels": "spec.workloadLabels (use workloadSelector.labels)",
           "filters": "spec.filters (use configPatches)"}


def check(ctx: LintContext) -> None:
    for doc in ctx.istio("EnvoyFilter"):
        for key, label in REMOVED.items():
            if key in doc.spec:
                ctx.report("MSH0507", doc, ("spec", key), field=label)
        for i, cp in enumerate(seq(doc.spec.get("configPatches"))):
            cp = mapping(cp)
            apply_to = cp.get("applyTo") or "object"
            for key in MATCH_KEYS:
                if key in cp:
                    ctx.report("MSH0501", doc, ("spec", "configPatches", i, key), index=i, key=key,
                               scope=f"{apply_to} of every proxy the EnvoyFilter selects")


RULE = Rule("envoyfilter.Structure", "Reports match fields placed outside match: and removed EnvoyFilter fields.",
            ("EnvoyFilter",), ("MSH0501", "MSH0507"), check)
