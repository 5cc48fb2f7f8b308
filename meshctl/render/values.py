"""Values for `meshctl render`: a YAML file (`-f values.yaml`) merged under command-line options, checked
against a JSON Schema the project owns (`meshctl/render/schemas/*-values.schema.json`).

Errors name the file, the line, the key and, for closed sets, the allowed values:

    values.yaml:4: accessLog: 'otlpp' is not allowed; allowed values: otlp, file-json, file-text, off
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from meshctl.errors import InputError
from meshctl.yamlpath import line_index

SCHEMAS_DIR = Path(__file__).resolve().parent / "schemas"


@lru_cache(maxsize=4)
def values_schema(kind: str) -> dict[str, Any]:
    """The JSON Schema of `kind` ('istio' or 'linkerd') values."""
    return json.loads((SCHEMAS_DIR / f"{kind}-values.schema.json").read_text(encoding="utf-8"))


def load_values_file(path: str) -> tuple[dict[str, Any], dict[tuple[str, ...], int]]:
    """Read a values file (`-` is stdin): the mapping and its key -> line index."""
    import sys

    import yaml

    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read values file: {exc.strerror or exc}", file=path) from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise InputError(f"not valid YAML: {getattr(exc, 'problem', None) or exc}", file=path,
                         line=(mark.line + 1) if mark else None) from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InputError(f"a values file must be a mapping of option names to values, not {type(data).__name__}", file=path)
    return data, line_index(text)


def _describe(error: Any) -> str:
    """A short reason for a jsonschema error, naming the allowed values of enums."""
    v = error.validator
    if v == "enum":
        allowed = ", ".join(str(x) for x in error.validator_value)
        return f"{error.instance!r} is not allowed; allowed values: {allowed}"
    if v == "additionalProperties" and isinstance(error.instance, dict):
        known = sorted((error.schema.get("properties") or {}).keys())
        extra = sorted(set(error.instance) - set(known))
        hint = f"; known keys: {', '.join(known)}" if known else ""
        return f"unknown key{'s' if len(extra) > 1 else ''} {', '.join(map(repr, extra))}{hint}"
    if v in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        lo, hi = error.schema.get("minimum"), error.schema.get("maximum")
        if lo is not None and hi is not None:
            return f"{error.instance!r} is out of range; allowed: {lo} to {hi}"
    if v == "type":
        return f"{error.instance!r} has the wrong type; expected {error.validator_value}"
    if v == "pattern":
        return f"{error.instance!r} does not match the required form {error.validator_value}"
    return error.message


def validate_values(
    values: Mapping[str, Any],
    kind: str,
    *,
    source: str | None = None,
    lines: Mapping[tuple[str, ...], int] | None = None,
) -> None:
    """Raise `InputError` for the first problem (sorted by position), naming the key and allowed values."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(values_schema(kind))
    errors = sorted(validator.iter_errors(normalize_values(values)), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    if not errors:
        return
    err = errors[0]
    # Descend into oneOf/anyOf to the most specific reason.
    while err.context:
        err = min(err.context, key=lambda e: (-len(e.absolute_path), e.validator == "type"))
    path = tuple(str(p) for p in err.absolute_path)
    key = ".".join(path) if path else None
    if err.validator == "additionalProperties" and isinstance(err.instance, dict):
        extra = sorted(set(err.instance) - set((err.schema.get("properties") or {}).keys()))
        if extra:
            path = (*path, str(extra[0]))
            key = ".".join(path)
    line = None
    if lines:
        for n in range(len(path), 0, -1):
            if path[:n] in lines:
                line = lines[path[:n]]
                break
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    raise InputError(_describe(err) + more, file=source, line=line if source else None, field=key)


def normalize_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """Accept patch releases where a minor version is asked for (`1.28.3` -> `1.28`, `v1.30` -> `1.30`)."""
    import re

    out = dict(values)
    v = out.get("istioVersion")
    if isinstance(v, (str, float)):
        m = re.fullmatch(r"v?(\d+)\.(\d+)(?:\.\d+)?", str(v).strip())
        if m:
            out["istioVersion"] = f"{m.group(1)}.{m.group(2)}"
    return out


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """`override` on top of `base`; mappings merge key by key, everything else is replaced; None is 'not given'."""
    out = dict(base)
    for k, v in override.items():
        if v is None:
            continue
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = merge(out[k], v)
        else:
            out[k] = v
    return out
