"""Rendering mesh configuration from templates, values as data.

- `meshctl.render.engine`: the sandboxed jinja2 engine (`render_documents(template, context)`), reusable by
  any command that renders its own templates from `templates/istio|linkerd`.
- `meshctl.render.istio.render_istio(values)` / `meshctl.render.linkerd.render_linkerd(values)`: the
  `meshctl render` library calls, returning a `RenderResult` (kubectl stream + side documents + notes).
- `meshctl.render.values`: the project's values-file JSON Schemas and their error messages.

Importing this package is cheap: jinja2 and yaml are imported only when something is rendered.
"""

from __future__ import annotations

from typing import Any

from meshctl.render.engine import Engine, TemplateError, encode_node, render_documents

__all__ = ["Engine", "TemplateError", "encode_node", "render_documents", "render_istio", "render_linkerd"]


def __getattr__(name: str) -> Any:
    if name == "render_istio":
        from meshctl.render.istio import render_istio

        return render_istio
    if name == "render_linkerd":
        from meshctl.render.linkerd import render_linkerd

        return render_linkerd
    raise AttributeError(name)
