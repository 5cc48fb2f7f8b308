"""Documentation placeholders such as `<CLIENT-HEADER>` left in Istio or Linkerd configuration."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from meshctl.lint.context import LintContext, Rule, json_path, strings
from meshctl.lint.loader import Document, Path

_PLACEHOLDER = re.compile(r"^<[A-Za-z][A-Za-z0-9 _.\-]*>$")
_MESH_GROUPS = ("istio.io", "linkerd.io")


def _placeholders(v: Any) -> Iterator[tuple[Path, str]]:
    return ((path, s) for path, s in strings(v) if _PLACEHOLDER.match(s.strip()))


def _relevant(d: Document) -> bool:
    if d.is_resource:
        return d.group.endswith(_MESH_GROUPS) or (d.kind == "ConfigMap" and (d.name or "").startswith("istio"))
    return True  # values files and mesh config fragments


def check(ctx: LintContext) -> None:
    for d in ctx.documents:
        if not _relevant(d):
            continue
        for path, value in _placeholders(d.obj):
            ctx.report("MSH0006", d, path, field=json_path(path)[2:], value=value)
    for src in ctx.mesh.sources:
        if src.inner is None:
            continue
        for path, value in _placeholders(src.config):
            ctx.report("MSH0006", source=src, path=path, field=json_path(src.path(path))[2:], value=value)


RULE = Rule("input.Placeholder", "Reports documentation placeholders (<VALUE>) left in the configuration.",
            ("Istio/Linkerd resources", "values", "MeshConfig"), ("MSH0006",), check)
