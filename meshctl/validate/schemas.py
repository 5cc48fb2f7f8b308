"""A schema store keyed by (apiVersion, kind), from a directory (`--schemas DIR`) or a live cluster.

    store = SchemaStore.from_dir("/path/to/schemas")      # JSON Schema files and/or CRD YAML files
    store = SchemaStore.from_cluster(kube)                 # CRDs read with meshctl.kube (read-only)
    problems = store.validate(obj)                         # -> [Problem(object, path, reason)]

A directory may hold JSON Schema files (optionally listed in an `index.json` of
{file, apiVersion, kind}), CRD YAML/JSON files (converted with `meshctl.validate.crd`), a MeshConfig
schema (used for IstioOperator-less places where mesh config lives: the `istio` ConfigMap's `mesh` key
and istiod Helm values), and Helm chart default values named `<chart>.values[.<version>].yaml`, used to
flag keys a chart does not have.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from meshctl.errors import InputError
from meshctl.validate.crd import crd_to_schemas
from meshctl.validate.problems import ERROR, WARNING, Problem, json_path, object_name

MESH_CONFIG = ("", "MeshConfig")

# Where mesh config sits in documents that are not Kubernetes resources of their own.
VALIDATE_AS = ("istiod-values", "mesh-config", "linkerd-control-plane-values", "linkerd-jaeger-values",
               "pod-template-patch")


class SchemaStore:
    def __init__(self) -> None:
        self.schemas: dict[tuple[str, str], dict[str, Any]] = {}
        self.sources: dict[tuple[str, str], str] = {}
        self.chart_values: dict[str, dict[str, Any]] = {}
        self._validators: dict[tuple[str, str], Any] = {}

    def __len__(self) -> int:
        return len(self.schemas)

    # ---- loading --------------------------------------------------------------------------------
    def add(self, schema: Mapping[str, Any], *, api_version: str | None = None, kind: str | None = None,
            source: str = "") -> None:
        props = schema.get("properties") or {}
        api_version = api_version if api_version is not None else (props.get("apiVersion") or {}).get("const")
        kind = kind or (props.get("kind") or {}).get("const")
        if not kind:
            ident = f"{schema.get('$id', '')} {schema.get('title', '')}"
            if "MeshConfig" in ident and "IstioOperator" not in ident:
                api_version, kind = "", "MeshConfig"
        if not kind:
            return
        key = (api_version or "", kind)
        self.schemas[key] = dict(schema)
        self.sources[key] = source
        self._validators.pop(key, None)

    def add_crd(self, crd: Mapping[str, Any], *, source: str = "") -> int:
        n = 0
        for schema in crd_to_schemas(crd, source=source):
            self.add(schema, source=source)
            n += 1
        return n

    @classmethod
    def from_dir(cls, directory: str | Path) -> SchemaStore:
        import yaml

        root = Path(directory)
        if not root.is_dir():
            raise InputError(f"schema directory not found: {root}", field="--schemas")
        store = cls()
        indexed: set[Path] = set()
        index = root / "index.json"
        if index.exists():
            for entry in json.loads(index.read_text(encoding="utf-8")):
                f = root / entry["file"]
                if f.exists():
                    store.add(json.loads(f.read_text(encoding="utf-8")), api_version=entry.get("apiVersion") or "",
                              kind=entry.get("kind"), source=str(f))
                    indexed.add(f.resolve())
        for f in sorted(root.rglob("*")):
            if not f.is_file() or f.resolve() in indexed or f.name == "index.json":
                continue
            try:
                if f.suffix == ".json":
                    doc = json.loads(f.read_text(encoding="utf-8"))
                    if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                        store.add_crd(doc, source=str(f))
                    elif isinstance(doc, dict):
                        store.add(doc, source=str(f))
                elif f.suffix in (".yaml", ".yml"):
                    if ".values" in f.name:
                        values = yaml.safe_load(f.read_text(encoding="utf-8"))
                        if isinstance(values, dict):
                            store.chart_values[f.name.split(".values")[0]] = values
                        continue
                    for doc in yaml.safe_load_all(f.read_text(encoding="utf-8")):
                        if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                            store.add_crd(doc, source=str(f))
            except (ValueError, yaml.YAMLError) as exc:
                raise InputError(f"unreadable schema file: {exc}", file=str(f)) from exc
        if not store.schemas:
            raise InputError(f"no schemas found in {root} (JSON Schema or CRD files)", field="--schemas")
        return store

    @classmethod
    def from_cluster(cls, kube: Any) -> SchemaStore:
        """CRDs from a cluster through a `meshctl.kube.KubeAPI` (read-only)."""
        store = cls()
        for crd in kube.list_crds():
            store.add_crd(crd, source="cluster CRD " + str((crd.get("metadata") or {}).get("name")))
        return store

    def merge(self, other: SchemaStore) -> SchemaStore:
        for key, schema in other.schemas.items():
            if key not in self.schemas:
                self.schemas[key] = schema
                self.sources[key] = other.sources.get(key, "")
        for chart, values in other.chart_values.items():
            self.chart_values.setdefault(chart, values)
        return self

    # ---- validation ----------------------------------------------------------------------------
    def _validator(self, key: tuple[str, str]) -> Any:
        v = self._validators.get(key)
        if v is None:
            import jsonschema

            v = jsonschema.Draft202012Validator(self.schemas[key])
            self._validators[key] = v
        return v

    def has(self, api_version: str, kind: str) -> bool:
        return (api_version, kind) in self.schemas

    def validate(self, obj: Any, *, validate_as: str | None = None, name: str | None = None) -> list[Problem]:
        """Problems of one document. `validate_as` names non-resource documents (see VALIDATE_AS)."""
        name = name or object_name(obj)
        if validate_as == "mesh-config":
            return self._validate_key(MESH_CONFIG, obj, name, [])
        if validate_as == "istiod-values":
            if not isinstance(obj, Mapping):
                return [Problem(name, "$", "Helm values must be a mapping", "schema")]
            return self._validate_key(MESH_CONFIG, obj.get("meshConfig") or {}, name, ["meshConfig"])
        if validate_as == "pod-template-patch":
            ann = ((((obj or {}).get("spec") or {}).get("template") or {}).get("metadata") or {}).get("annotations")
            if set(obj or {}) != {"spec"} or not isinstance(ann, Mapping):
                return [Problem(name, "$", "expected {spec: {template: {metadata: {annotations: ...}}}}", "schema")]
            return [Problem(name, json_path(["spec", "template", "metadata", "annotations", k]), "values must be strings",
                            "schema") for k, v in ann.items() if not isinstance(v, str)]
        if validate_as in ("linkerd-control-plane-values", "linkerd-jaeger-values"):
            chart = validate_as.removesuffix("-values")
            return self.check_chart_values(chart, obj, name)
        if not isinstance(obj, Mapping):
            return [Problem(name, "$", f"expected a mapping, got {type(obj).__name__}", "schema")]
        api_version, kind = str(obj.get("apiVersion") or ""), str(obj.get("kind") or "")
        if not api_version or not kind:
            return [Problem(name, "$", "apiVersion and kind are required", "schema")]
        if (api_version, kind) == ("v1", "ConfigMap"):
            return self._validate_configmap(obj, name)
        if (api_version, kind) == ("v1", "Namespace"):
            return _core_metadata(obj, name, namespaced=False)
        if (api_version, kind) == ("v1", "List"):
            out: list[Problem] = []
            for i, item in enumerate(obj.get("items") or []):
                out += [Problem(p.object, p.path.replace("$", f"$.items[{i}]", 1), p.reason, p.check, p.severity, p.source)
                        for p in self.validate(item)]
            return out
        key = (api_version, kind)
        if key not in self.schemas:
            others = sorted(v for v, k in self.schemas if k == kind)
            hint = f" (schemas exist for {', '.join(others)})" if others else ""
            return [Problem(name, "$.apiVersion", f"no schema for {api_version} {kind}{hint}", "schema", WARNING)]
        return self._validate_key(key, obj, name, [])

    def _validate_key(self, key: tuple[str, str], obj: Any, name: str, prefix: list[Any]) -> list[Problem]:
        if key not in self.schemas:
            return [Problem(name, json_path(prefix), f"no {key[1]} schema loaded; not validated", "schema", WARNING)]
        out = []
        for err in sorted(self._validator(key).iter_errors(obj), key=lambda e: list(map(str, e.absolute_path))):
            for leaf in leaf_errors(err):
                path = [*prefix, *leaf.absolute_path]
                if leaf.validator == "additionalProperties" and isinstance(leaf.instance, Mapping):
                    extra = sorted(set(leaf.instance) - set((leaf.schema.get("properties") or {}).keys()))
                    if len(extra) == 1:
                        path.append(extra[0])
                out.append(Problem(name, json_path(path), _reason(leaf), "schema", ERROR, self.sources.get(key)))
        return _dedupe(out)

    def _validate_configmap(self, obj: Mapping[str, Any], name: str) -> list[Problem]:
        import yaml

        from meshctl import goyaml

        out: list[Problem] = []
        data = obj.get("data") or {}
        if not isinstance(data, Mapping):
            return [Problem(name, "$.data", "data must be a mapping of strings", "schema")]
        for k, v in data.items():
            if not isinstance(v, str):
                out.append(Problem(name, json_path(["data", k]), f"ConfigMap values must be strings, got {type(v).__name__}", "schema"))
        meta = obj.get("metadata") or {}
        if str(meta.get("name", "")).startswith("istio") and isinstance(data.get("mesh"), str):
            try:
                mesh = goyaml.load(data["mesh"]) or {}  # as istiod reads it
            except yaml.YAMLError as exc:
                return [*out, Problem(name, "$.data.mesh", f"not valid YAML: {exc}", "schema")]
            out += self._validate_key(MESH_CONFIG, mesh, name, ["data", "mesh"])
        return out

    def check_chart_values(self, chart: str, values: Any, name: str) -> list[Problem]:
        """Keys that the chart's default values do not have (typos Helm would silently ignore)."""
        defaults = self.chart_values.get(chart)
        if defaults is None:
            return [Problem(name, "$", f"no default values of chart {chart} loaded; keys not checked", "schema", WARNING)]
        out: list[Problem] = []

        def free_form(d: Mapping[str, Any]) -> bool:
            return not d or any(("." in str(k) or "/" in str(k)) for k in d)

        def walk(v: Any, d: Any, path: list[Any]) -> None:
            if not isinstance(v, Mapping) or not isinstance(d, Mapping) or free_form(d):
                return
            for k, sub in v.items():
                if k not in d:
                    close = [x for x in d if str(x).lower() == str(k).lower()]
                    hint = f"; did you mean {close[0]!r}?" if close else ""
                    out.append(Problem(name, json_path([*path, k]), f"chart {chart} has no value {k!r}{hint}", "schema",
                                       ERROR, f"{chart} default values"))
                elif isinstance(d[k], Mapping):
                    walk(sub, d[k], [*path, k])

        walk(values, defaults, [])
        return out

    def validate_all(self, docs: Iterable[Any]) -> list[Problem]:
        out: list[Problem] = []
        for d in docs:
            out += self.validate(d)
        return out


def leaf_errors(err: Any) -> list[Any]:
    """The specific errors under anyOf/oneOf wrappers (nullable and name-alias schemas nest them).

    For each wrapper, the alternative whose errors reach deepest into the instance is taken (an
    alternative that only says "is not of type 'null'" loses), and all of its leaf errors are kept."""
    if not err.context:
        return [err]
    branches: dict[Any, list[Any]] = {}
    for c in err.context:
        branches.setdefault(c.relative_schema_path[0] if c.relative_schema_path else None, []).append(c)

    def null_only(errs: list[Any]) -> bool:
        return all(e.validator == "type" and e.validator_value in ("null", ["null"]) for e in errs)

    best: list[Any] = []
    best_rank = (-1, -1)
    for errs in branches.values():
        leaves = [leaf for e in errs for leaf in leaf_errors(e)]
        rank = (0 if null_only(leaves) else 1, max(len(e.absolute_path) for e in leaves))
        if rank > best_rank:
            best, best_rank = leaves, rank
    return best


def _reason(err: Any) -> str:
    if err.validator == "additionalProperties" and isinstance(err.instance, Mapping):
        known = set((err.schema.get("properties") or {}).keys())
        extra = sorted(set(err.instance) - known)
        if extra:
            return f"unknown field {', '.join(map(repr, extra))}"
    if err.validator == "enum":
        return f"{err.instance!r} is not one of {', '.join(map(str, err.validator_value))}"
    if err.validator == "const":
        return f"{err.instance!r} must be {err.validator_value!r}"
    return err.message


def _core_metadata(obj: Mapping[str, Any], name: str, *, namespaced: bool) -> list[Problem]:
    """Built-in checks for core kinds meshctl renders (no CRD schema exists for them)."""
    import re

    out = []
    meta = obj.get("metadata") or {}
    if not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", str(meta.get("name", ""))) or len(str(meta.get("name"))) > 63:
        out.append(Problem(name, "$.metadata.name", "must be a DNS-1123 label", "schema"))
    if not namespaced and "namespace" in meta:
        out.append(Problem(name, "$.metadata.namespace", "a cluster-scoped object has no namespace", "schema"))
    for key in ("labels", "annotations"):
        for k, v in (meta.get(key) or {}).items():
            if not isinstance(v, str):
                out.append(Problem(name, json_path(["metadata", key, k]), "values must be strings", "schema"))
    extra = sorted(set(obj) - {"apiVersion", "kind", "metadata", "spec", "status"})
    out += [Problem(name, json_path([k]), f"unknown field {k!r}", "schema") for k in extra]
    return out


def _dedupe(problems: list[Problem]) -> list[Problem]:
    seen, out = set(), []
    for p in problems:
        if (p.path, p.reason) not in seen:
            seen.add((p.path, p.reason))
            out.append(p)
    return out
