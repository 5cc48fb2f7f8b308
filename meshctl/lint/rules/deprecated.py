"""Deprecated fields whose behaviour surprises, and custom resource kinds Istio removed.

- DestinationRule `outlierDetection.consecutiveErrors`: istiod maps it to consecutive *gateway*
  errors (502, 503, 504 only), so a host returning 500s is never ejected.
- VirtualService `fault.delay.percent`: replaced by `percentage`.
- Sidecar `outboundTrafficPolicy.egressProxy`: ignored.
"""

from __future__ import annotations

from collections.abc import Iterator

from meshctl.lint.context import LintContext, Rule, mapping, seq
from meshctl.lint.loader import Path

REMOVED_GROUPS = {"rbac.istio.io", "config.istio.io", "authentication.istio.io"}


def _traffic_policies(spec: dict) -> Iterator[tuple[Path, dict]]:
    tp = mapping(spec.get("trafficPolicy"))
    if tp:
        yield ("spec", "trafficPolicy"), tp
    for j, pl in enumerate(seq(tp.get("portLevelSettings"))):
        yield ("spec", "trafficPolicy", "portLevelSettings", j), mapping(pl)
    for i, subset in enumerate(seq(spec.get("subsets"))):
        stp = mapping(mapping(subset).get("trafficPolicy"))
        if stp:
            yield ("spec", "subsets", i, "trafficPolicy"), stp
        for j, pl in enumerate(seq(stp.get("portLevelSettings"))):
            yield ("spec", "subsets", i, "trafficPolicy", "portLevelSettings", j), mapping(pl)


def check(ctx: LintContext) -> None:
    for doc in ctx.istio("DestinationRule"):
        for path, tp in _traffic_policies(dict(doc.spec)):
            od = mapping(tp.get("outlierDetection"))
            if "consecutiveErrors" in od:
                detail = ("istiod maps it to consecutiveGatewayErrors, which counts only 502, 503 and 504, so hosts "
                          "answering 500 are never ejected; use consecutive5xxErrors (or consecutiveGatewayErrors "
                          "if that is what you mean)")
                ctx.report("MSH0601", doc, (*path, "outlierDetection", "consecutiveErrors"),
                           field="outlierDetection.consecutiveErrors", detail=detail)
    for doc in ctx.istio("VirtualService"):
        for i, route in enumerate(seq(doc.spec.get("http"))):
            delay = mapping(mapping(mapping(route).get("fault")).get("delay"))
            if "percent" in delay:
                ctx.report("MSH0601", doc, ("spec", "http", i, "fault", "delay", "percent"),
                           field=f"http[{i}].fault.delay.percent", detail="use percentage: {value: N}")
    for doc in ctx.istio("Sidecar"):
        if "egressProxy" in mapping(doc.spec.get("outboundTrafficPolicy")):
            ctx.report("MSH0601", doc, ("spec", "outboundTrafficPolicy", "egressProxy"),
                       field="outboundTrafficPolicy.egressProxy", detail="istiod ignores it")
    for doc in ctx.documents:
        if doc.is_resource and doc.group in REMOVED_GROUPS:
            ctx.report("MSH0602", doc, ("apiVersion",), api_version=doc.api_version, kind=doc.kind)


RULE = Rule("deprecation.Fields",
            "Reports deprecated fields with surprising behaviour and removed Istio kinds.",
            ("DestinationRule", "VirtualService", "Sidecar"), ("MSH0601", "MSH0602"), check)
