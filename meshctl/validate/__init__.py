"""Validation of rendered or user-supplied mesh configuration. One entry point for render, lint, suggest:

    from meshctl.validate import Validator
    v = Validator(schemas=SchemaStore.from_dir(dir), envoy_types=True, envoy=False)
    problems = v.validate(docs)                       # list[Problem], each: object, path, reason, check
    problems = v.validate(docs, validate_as=[None, "istiod-values"])   # per-document hint for non-resources

Checks (each optional):
- `schemas`: JSON Schema of the document's apiVersion/kind, from `--schemas DIR` (`SchemaStore.from_dir`)
  or from the cluster's CRDs (`SchemaStore.from_cluster(kube)`), CRDs converted at run time
  (`meshctl.validate.crd`). Mesh config is validated where it lives (IstioOperator spec.meshConfig,
  istiod Helm values `meshConfig`, the `istio` ConfigMap's `data.mesh`).
- `envoy_types`: EnvoyFilter patch values against the Envoy API protos (`meshctl.validate.envoy_types`).
- `envoy`: EnvoyFilters patched into a stub bootstrap and checked by `envoy --mode validate`
  (`meshctl.validate.envoy_check`).

Nothing heavy is imported until a check runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from meshctl.validate.problems import (
    ERROR,
    WARNING,
    Problem,
    has_errors,
    json_path,
    object_name,
    refuse_invalid,
)

__all__ = ["ERROR", "WARNING", "Problem", "SchemaStore", "Validator", "has_errors", "json_path", "object_name",
           "refuse_invalid"]


def __getattr__(name: str) -> Any:
    if name == "SchemaStore":
        from meshctl.validate.schemas import SchemaStore

        return SchemaStore
    raise AttributeError(name)


class Validator:
    def __init__(self, *, schemas: Any = None, envoy_types: bool = True, envoy: bool = False) -> None:
        self.schemas = schemas
        self.envoy_types = envoy_types
        self.envoy = envoy

    def validate(self, docs: Iterable[Any], validate_as: Sequence[str | None] | None = None) -> list[Problem]:
        docs = list(docs)
        hints = list(validate_as or []) + [None] * (len(docs) - len(validate_as or []))
        out: list[Problem] = []
        for doc, hint in zip(docs, hints, strict=False):
            if self.schemas is not None:
                out += self.schemas.validate(doc, validate_as=hint)
            is_ef = isinstance(doc, Mapping) and doc.get("kind") == "EnvoyFilter"
            if is_ef and self.envoy_types:
                from meshctl.validate.envoy_types import check_envoyfilter

                out += check_envoyfilter(doc)
            if is_ef and self.envoy:
                from meshctl.validate.envoy_check import check_envoyfilter_with_envoy

                out += check_envoyfilter_with_envoy(doc)
        return out
