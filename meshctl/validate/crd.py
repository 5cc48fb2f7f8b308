"""CustomResourceDefinition `openAPIV3Schema` -> JSON Schema (draft 2020-12), at run time.

The rules are those the shared schemas were built with (see ../shared/schemas/README.md), so a CRD read
from a live cluster (`--validate=cluster`) or a CRD YAML file (`--schemas DIR`) validates the same way
as the pre-converted files:
- `nullable: true` adds `null` to `type` (or to `anyOf`); without it `null` is rejected;
- an object with `properties` and no `x-kubernetes-preserve-unknown-fields` gets
  `additionalProperties: false` (pruning + `kubectl apply --validate=strict`); so does an object with
  neither properties nor additionalProperties;
- `x-kubernetes-preserve-unknown-fields: true` stays open;
- `x-kubernetes-int-or-string` -> `anyOf: [integer, string]`; `x-kubernetes-list-type: set` -> uniqueItems;
- CEL (`x-kubernetes-validations`), list-map keys, `format` and `default` are kept as annotations only;
- root: `apiVersion` and `kind` become consts and a light ObjectMeta check is added.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

_OBJECT_META = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 253,
                 "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"},
        "generateName": {"type": "string"},
        "namespace": {"type": "string", "maxLength": 63, "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
    "anyOf": [{"required": ["name"]}, {"required": ["generateName"]}],
    "x-meshctl-added": True,
}

_SUBSCHEMA_LISTS = ("allOf", "anyOf", "oneOf")


def convert_schema(node: Any) -> Any:
    """Convert one openAPIV3Schema node (recursively)."""
    if not isinstance(node, Mapping):
        return node
    s: dict[str, Any] = {k: v for k, v in node.items()}
    if "properties" in s and isinstance(s["properties"], Mapping):
        s["properties"] = {k: convert_schema(v) for k, v in s["properties"].items()}
    if isinstance(s.get("items"), Mapping):
        s["items"] = convert_schema(s["items"])
    if isinstance(s.get("additionalProperties"), Mapping):
        s["additionalProperties"] = convert_schema(s["additionalProperties"])
    for key in _SUBSCHEMA_LISTS:
        if isinstance(s.get(key), list):
            s[key] = [convert_schema(x) for x in s[key]]
    if isinstance(s.get("not"), Mapping):
        s["not"] = convert_schema(s["not"])

    if s.pop("x-kubernetes-int-or-string", False):
        s.pop("type", None)
        s.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if s.get("x-kubernetes-list-type") == "set":
        s["uniqueItems"] = True
    preserve = bool(s.get("x-kubernetes-preserve-unknown-fields"))
    if s.get("type") == "object" and not preserve and "additionalProperties" not in s:
        s["additionalProperties"] = False
    if s.pop("nullable", False):
        s["x-kubernetes-nullable"] = True
        t = s.get("type")
        if isinstance(t, str):
            s["type"] = [t, "null"]
        elif isinstance(t, list) and "null" not in t:
            s["type"] = [*t, "null"]
        elif "anyOf" in s:
            s["anyOf"] = [*s["anyOf"], {"type": "null"}]
    return s


def crd_to_schemas(crd: Mapping[str, Any], *, source: str | None = None) -> list[dict[str, Any]]:
    """One JSON Schema per version of a CRD that has an openAPIV3Schema."""
    spec = crd.get("spec") or {}
    group = spec.get("group")
    kind = (spec.get("names") or {}).get("kind")
    out = []
    for ver in spec.get("versions") or []:
        raw = ((ver.get("schema") or {}).get("openAPIV3Schema"))
        if not isinstance(raw, Mapping) or not group or not kind:
            continue
        api_version = f"{group}/{ver.get('name')}"
        schema = convert_schema(copy.deepcopy(dict(raw)))
        props = dict(schema.get("properties") or {})
        props["apiVersion"] = {"const": api_version}
        props["kind"] = {"const": kind}
        props["metadata"] = copy.deepcopy(_OBJECT_META)
        schema["properties"] = props
        schema["type"] = "object"
        schema["required"] = sorted({*schema.get("required", []), "apiVersion", "kind"})
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["title"] = f"{kind} ({api_version})"
        schema["x-meshctl-source"] = {
            "crd": (crd.get("metadata") or {}).get("name"), "served": ver.get("served"),
            "storage": ver.get("storage"), "deprecated": bool(ver.get("deprecated")), "from": source,
        }
        out.append(schema)
    return out
