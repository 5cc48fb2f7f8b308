"""Documentation placeholders such as `<CLIENT-HEADER>` left in Istio or Linkerd configuration."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from meshctl.lint.context import LintContext, Rule, json_path
from meshctl.lint.loader import Document, Path

_PLACEHOLDER = re.compile(r"^<[A-Za-z][A-Za-z0-9 _.\-]*>$")
_MESH_GROUPS = ("istio.io", "linkerd.io")


def _walk(v: Any, path: Path):
    if isinstance(v, Mapping):
        for k, sub in v.items():
            yield from _walk(sub, (*path, k))
    elif isinstance(v, list):
        for i, sub in enumerate(v):
            yield from _walk(sub, (*path, i))
    elif isinstance(v, str) and _PLACEHOLDER.match(v.strip()):
        yield path, v


def _relevant(d: Document) -> bool:
    if d.is_resource:
        return d.group.endswith(_MESH_GROUPS) or (d.kind == "ConfigMap" and (d.name or "").startswith("istio"))
    return True  # values files and mesh config fragments


def check(ctx: LintContext) -> None:
    for d in ctx.documents:
        if not _relevant(d):
            continue
        for path, value in _walk(d.obj, ()):
            ctx.report("MSH0006", d, path, field=json_path(path)[2:], value=value)
    for src in ctx.mesh.sources:
        if src.inner is None:
            continue
        for path, value in _walk(src.config, ()):
            ctx.report("MSH0006", source=src, path=path, field=json_path(src.path(path))[2:], value=value)


RULE = Rule("input.Placeholder", "Reports documentation placeholders (<VALUE>) left in the configuration.",
            ("Istio/Linkerd resources", "values", "MeshConfig"), ("MSH0006",), check)
