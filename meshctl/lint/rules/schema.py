"""Structural checks from meshctl.validate: CRD / MeshConfig / chart-values schemas (`--schemas DIR`
or the cluster's CRDs), Envoy API types of EnvoyFilter patch values (envoy-data-plane), and, on
request, `envoy --mode validate` of each EnvoyFilter patched into a stub bootstrap.

Istio drops what its schemas do not know without a word (the API server prunes unknown CR fields,
istiod decodes mesh config and EnvoyFilter patch values leniently), so a structural error here is
usually a setting that silently does nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from meshctl.lint.context import LintContext, Rule
from meshctl.lint.loader import Document, parse_path

_GROUPS = ("istio.io", "linkerd.io", "gateway.networking.k8s.io")


def _hint(doc: Document) -> str | None:
    """How meshctl.validate should read a document that is not a Kubernetes resource."""
    obj = doc.obj
    if doc.is_resource or not isinstance(obj, Mapping):
        return None
    if isinstance(obj.get("meshConfig"), Mapping):
        return "istiod-values"
    return None


def _targets(ctx: LintContext, store: Any) -> list[tuple[Document, str | None]]:
    out: list[tuple[Document, str | None]] = []
    bare_mesh = {id(s.doc) for s in ctx.mesh.sources if s.form == "MeshConfig"}
    for d in ctx.documents:
        if d.is_resource:
            if d.kind == "IstioOperator" or d.group.endswith(_GROUPS) or (
                    d.kind == "ConfigMap" and (d.name == "istio" or (d.name or "").startswith("istio-"))):
                out.append((d, None))
        elif id(d) in bare_mesh:
            out.append((d, "mesh-config"))
        elif _hint(d):
            out.append((d, _hint(d)))
        elif store is not None and isinstance(d.obj, Mapping) and "proxy" in d.obj and \
                "linkerd-control-plane" in getattr(store, "chart_values", {}):
            out.append((d, "linkerd-control-plane-values"))
    return out


def _line(ctx: LintContext, doc: Document, path: tuple[Any, ...]) -> int:
    if path[:2] == ("data", "mesh"):
        for s in ctx.mesh.sources:
            if s.doc is doc and s.inner is not None:
                return s.line_of(path[2:])
    return doc.line_of(path)


def check(ctx: LintContext) -> None:
    store = ctx.options.get("schemas")
    envoy_types = bool(ctx.options.get("envoy_types"))
    envoy = bool(ctx.options.get("envoy"))
    if store is None and not envoy_types and not envoy:
        return
    from meshctl.validate import ERROR, Validator

    validator = Validator(schemas=store, envoy_types=envoy_types, envoy=envoy)
    for doc, hint in _targets(ctx, store):
        if store is not None and doc.is_resource and doc.kind not in ("ConfigMap",) and \
                not store.has(doc.api_version, doc.kind or ""):
            others = sorted(v for v, k in store.schemas if k == doc.kind)
            if others:
                ctx.report("MSH0007", doc, ("apiVersion",), api_version=doc.api_version, kind=doc.kind,
                           hint=f" (schemas exist for {', '.join(others)})")
            if doc.kind != "EnvoyFilter" or not (envoy_types or envoy):
                continue
            problems = Validator(schemas=None, envoy_types=envoy_types, envoy=envoy).validate([doc.obj])
        else:
            if store is None and doc.kind != "EnvoyFilter":
                continue
            problems = validator.validate([doc.obj], [hint])
        for p in problems:
            if p.severity != ERROR:
                continue
            path = parse_path(p.path)
            origin = f"; {p.source}" if p.source and p.check != "schema" else ""
            ctx.report("MSH0004", doc, path, line=_line(ctx, doc, path), reason=f"{p.path[2:] or '(document)'}: {p.reason}",
                       check=p.check, origin=origin)


RULE = Rule("schema.Structure",
            "Validates documents against CRD/MeshConfig/chart-values schemas (--schemas DIR or cluster CRDs) and "
            "EnvoyFilter patch values against the Envoy API (meshctl.validate).",
            ("Istio/Linkerd/Gateway API resources", "IstioOperator", "MeshConfig", "values"),
            ("MSH0004", "MSH0007"), check)
