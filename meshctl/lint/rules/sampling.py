"""Trace sampling percentages that istiod or Envoy read differently from what was written.

- `defaultConfig.tracing.sampling` (also per workload in the `proxy.istio.io/config` annotation)
  above 100 is silently replaced by 1% (istiod's
  proxyConfigSamplingValue); 0 means "unset", so PILOT_TRACE_SAMPLING (default 1%) applies; a
  negative value reaches Envoy, whose Percent type rejects it.
- PILOT_TRACE_SAMPLING (`pilot.traceSampling`, or the istiod env) outside 0..100 is replaced by 1%.
- Telemetry `randomSamplingPercentage` outside 0..100 is refused by the API server.
- A provider with a custom OpenTelemetry sampler makes Istio ignore randomSamplingPercentage.
"""

from __future__ import annotations

from typing import Any

from meshctl.lint.context import LintContext, Rule, mapping, seq
from meshctl.lint.meshconfig import g, key_of


def _number(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v.strip())
        except ValueError:
            return None
    return None


def _fmt(v: float) -> str:
    return f"{v:g}"


def _check_proxy_sampling(ctx: LintContext) -> None:
    for src in ctx.mesh.sources:
        dc = g(src.config, "defaultConfig")
        tracing = g(dc, "tracing")
        if not isinstance(tracing, dict) or "sampling" not in tracing:
            continue
        path = (key_of(src.config, "defaultConfig"), key_of(dc, "tracing"), "sampling")
        _report_proxy_sampling(ctx, tracing.get("sampling"), "defaultConfig.tracing.sampling", source=src, path=path)


def _report_proxy_sampling(ctx: LintContext, value: Any, field: str, **where: Any) -> None:
    """ProxyConfig tracing.sampling (mesh-wide or per workload): above 100, negative or 0."""
    v = _number(value)
    if v is None:
        return
    if v > 100:
        ctx.report("MSH0201", field=field, value=_fmt(v), **where)
    elif v < 0:
        ctx.report("MSH0202", field=field, value=_fmt(v),
                   consequence="; Envoy rejects the negative percentage and with it the listener update", **where)
    elif v == 0:
        ctx.report("MSH0203", field=field, **where)


PROXY_CONFIG_ANNOTATION = "proxy.istio.io/config"


def _check_proxy_config_annotations(ctx: LintContext) -> None:
    """The per-workload ProxyConfig (`proxy.istio.io/config` annotation) overrides defaultConfig, with
    the same sampling rules."""
    from meshctl.lint.loader import block_scalar_offset, parse_text

    for doc in ctx.documents:
        if not doc.is_resource:
            continue
        spots = [("metadata", "annotations"), ("spec", "template", "metadata", "annotations")]
        for base in spots:
            ann = doc.get(base)
            if not isinstance(ann, dict) or not isinstance(ann.get(PROXY_CONFIG_ANNOTATION), str):
                continue
            path = (*base, PROXY_CONFIG_ANNOTATION)
            text = ann[PROXY_CONFIG_ANNOTATION]
            offset = block_scalar_offset(ctx.texts.get(doc.file, ""), doc, path)
            loaded = parse_text(text, doc.file, line_offset=offset if offset is not None else 0)
            if not loaded.documents or not isinstance(loaded.documents[0].obj, dict):
                continue
            inner = loaded.documents[0]
            tracing = mapping(inner.obj.get("tracing"))
            if "sampling" not in tracing:
                continue
            line = inner.line_of(("tracing", "sampling")) if offset is not None else doc.line_of(path)
            _report_proxy_sampling(ctx, tracing["sampling"], f"annotation {PROXY_CONFIG_ANNOTATION} tracing.sampling",
                                   doc=doc, path=path, line=line)


def _check_pilot_env(ctx: LintContext) -> None:
    seen: set[tuple[int, tuple[Any, ...]]] = set()
    for src in ctx.mesh.sources:
        found: list[tuple[Any, tuple[Any, ...], str]] = []
        if src.trace_sampling is not None:
            value, path = src.trace_sampling
            found.append((value, path, "pilot.traceSampling"))
        doc = src.doc
        if doc.kind == "IstioOperator":
            for i, e in enumerate(seq(doc.get(("spec", "components", "pilot", "k8s", "env")))):
                if mapping(e).get("name") == "PILOT_TRACE_SAMPLING":
                    found.append((mapping(e).get("value"), ("spec", "components", "pilot", "k8s", "env", i, "value"),
                                  "PILOT_TRACE_SAMPLING"))
        elif not doc.is_resource:
            base = ("values",) if isinstance(doc.get(("values",)), dict) else ()
            env = doc.get((*base, "pilot", "env"))
            if isinstance(env, dict) and "PILOT_TRACE_SAMPLING" in env:
                found.append((env["PILOT_TRACE_SAMPLING"], (*base, "pilot", "env", "PILOT_TRACE_SAMPLING"),
                              "PILOT_TRACE_SAMPLING"))
        for value, path, label in found:
            if (id(doc), path) in seen:
                continue
            seen.add((id(doc), path))
            v = _number(value)
            if v is None:
                ctx.report("MSH0202", doc, path, field=label, value=repr(value),
                           consequence="; istiod falls back to its default (1%)")
            elif not 0 <= v <= 100:
                ctx.report("MSH0202", doc, path, field=label, value=_fmt(v),
                           consequence="; istiod ignores it and samples 1%")


def _check_telemetry(ctx: LintContext) -> None:
    mesh = ctx.mesh
    default_tracing = mesh.default_names("tracing")
    for doc in ctx.istio("Telemetry"):
        for i, entry in enumerate(seq(doc.spec.get("tracing"))):
            entry = mapping(entry)
            if "randomSamplingPercentage" not in entry:
                continue
            raw = entry.get("randomSamplingPercentage")
            v = _number(raw)
            path = ("spec", "tracing", i, "randomSamplingPercentage")
            if v is None:
                continue
            if not 0 <= v <= 100:
                ctx.report("MSH0202", doc, path, field=f"tracing[{i}].randomSamplingPercentage", value=_fmt(v),
                           consequence="; the API server rejects the Telemetry")
                continue
            names = [mapping(p).get("name") for p in seq(entry.get("providers"))] or default_tracing[:1]
            p = mesh.provider(str(names[0])) if names and mesh.known else None
            if p is not None and p.ptype == "opentelemetry" and g(p.settings, "dynatraceSampler") is not None:
                ctx.report("MSH0115", doc, path, section=f"tracing[{i}]", value=_fmt(v), provider=p.name,
                           sampler="Dynatrace sampler")


def check(ctx: LintContext) -> None:
    _check_proxy_sampling(ctx)
    _check_proxy_config_annotations(ctx)
    _check_pilot_env(ctx)
    _check_telemetry(ctx)


RULE = Rule("tracing.Sampling",
            "Checks sampling percentages: defaultConfig.tracing.sampling, PILOT_TRACE_SAMPLING, Telemetry "
            "randomSamplingPercentage, and custom samplers that override them.",
            ("MeshConfig", "IstioOperator", "Telemetry", "proxy.istio.io/config"), ("MSH0201", "MSH0202", "MSH0203", "MSH0115"), check)
