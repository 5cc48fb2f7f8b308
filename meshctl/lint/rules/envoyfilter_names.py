"""EnvoyFilter patches that match filter names which do not exist.

istiod matches `filterChain.filter.name` / `subFilter.name` (and `listenerFilter`) against the
filters of the generated config by exact name (deprecated aliases still work, with a warning). A
name that matches nothing is skipped silently. Known names: Envoy's filters, the filters istiod
generates, names added by any EnvoyFilter patch in the input, and WasmPlugins (`<namespace>.<name>`).
Names outside the `envoy.`/`istio.` namespaces may come from objects not in the input: they are
reported as not checked.
"""

from __future__ import annotations

from meshctl.lint import filternames
from meshctl.lint.context import LintContext, Rule, mapping, seq


def _added_names(ctx: LintContext) -> set[str]:
    out: set[str] = set()
    for doc in ctx.istio("EnvoyFilter"):
        for cp in seq(doc.spec.get("configPatches")):
            value = mapping(mapping(mapping(cp).get("patch")).get("value"))
            name = value.get("name")
            if isinstance(name, str):
                out.add(name)
            for f in seq(value.get("filters")) + seq(value.get("http_filters")) + seq(value.get("httpFilters")):
                if isinstance(mapping(f).get("name"), str):
                    out.add(mapping(f)["name"])
    for doc in ctx.istio("WasmPlugin"):
        out.add(f"{doc.namespace}.{doc.name}")
    return out


def _targets(cp: dict):
    """(path-in-configPatch, name, level) of every filter name a patch matches on."""
    match = mapping(cp.get("match"))
    for top in ("listener", "waypoint"):
        block = mapping(match.get(top))
        fc = mapping(block.get("filterChain")) if top == "listener" else block
        f = mapping(fc.get("filter"))
        base = ("match", top, "filterChain", "filter") if top == "listener" else ("match", top, "filter")
        if isinstance(f.get("name"), str):
            yield (*base, "name"), f["name"], "network"
        sub = mapping(f.get("subFilter"))
        if isinstance(sub.get("name"), str):
            yield (*base, "subFilter", "name"), sub["name"], "http"
        if top == "listener" and isinstance(block.get("listenerFilter"), str):
            yield ("match", "listener", "listenerFilter"), block["listenerFilter"], "listener"


def check(ctx: LintContext) -> None:
    added = _added_names(ctx)
    for doc in ctx.istio("EnvoyFilter"):
        for i, cp in enumerate(seq(doc.spec.get("configPatches"))):
            cp = mapping(cp)
            for sub, name, level in _targets(cp):
                path = ("spec", "configPatches", i, *sub)
                if name in filternames.REVERSE_DEPRECATED:
                    ctx.report("MSH0503", doc, path, index=i, filter=name,
                               canonical=filternames.REVERSE_DEPRECATED[name])
                elif not filternames.known(name) and name not in added:
                    if name.startswith(("envoy.", "istio.", "istio_")):
                        guess = filternames.close_match(name)
                        hint = f" (did you mean {guess!r}?)" if guess else ""
                        ctx.report("MSH0502", doc, path, index=i, filter=name, hint=hint)
                    else:
                        ctx.report("MSH0008", doc, path,
                                   what=f"configPatches[{i}] filter name {name!r} not checked",
                                   why="it is not an Envoy or Istio filter, so it must be added by an EnvoyFilter "
                                       "or WasmPlugin that is not in the input")
                if (level == "network" and cp.get("applyTo") == "HTTP_FILTER" and
                        filternames.network_filter(name) and name != filternames.HCM and
                        filternames.REVERSE_DEPRECATED.get(name) != filternames.HCM):
                    ctx.report("MSH0504", doc, path, index=i, filter=name)


RULE = Rule("envoyfilter.FilterNames",
            "Checks the filter names EnvoyFilter patches match (unknown, deprecated, HTTP filter outside the HCM).",
            ("EnvoyFilter", "WasmPlugin"), ("MSH0502", "MSH0503", "MSH0504", "MSH0008"), check)
