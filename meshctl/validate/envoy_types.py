"""Type checks of EnvoyFilter patch values against the Envoy API protos (envoy-data-plane).

Every `patch.value` is checked as the message its `applyTo` patches (CLUSTER -> config.cluster.v3.Cluster,
NETWORK_FILTER -> config.listener.v3.Filter, ...), following `typed_config` / `Any` values into the message
their `@type` names. Unknown fields, wrong JSON types, unknown enum names, two members of one oneof,
malformed Durations (proto JSON wants `"5s"`, not `"5m"`) and unknown `@type`s are errors naming the
EnvoyFilter, the JSON path and the proto message:

    check_envoyfilter(doc) -> [Problem(object="EnvoyFilter istio-system/x",
                                       path="$.spec.configPatches[1].patch.value.typed_config.tracing.providr",
                                       reason="unknown field 'providr' in envoy...HttpConnectionManager.Tracing")]

The walk uses the generated classes' field metadata rather than `from_dict`, which stops at the first
error without a path and cannot parse `consecutive_5xx`. What it cannot know (range rules, required
fields, cross references such as cluster names) is left to `envoy --mode validate`
(`meshctl.validate.envoy_check`). envoy-data-plane is imported lazily (0.4-0.8 s).
"""

from __future__ import annotations

import importlib
import re
import warnings
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from meshctl.validate.problems import ERROR, Problem, json_path, object_name

APPLY_TO_TYPE = {
    "LISTENER": "envoy.config.listener.v3.Listener",
    "FILTER_CHAIN": "envoy.config.listener.v3.FilterChain",
    "NETWORK_FILTER": "envoy.config.listener.v3.Filter",
    "HTTP_FILTER": "envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter",
    "LISTENER_FILTER": "envoy.config.listener.v3.ListenerFilter",
    "ROUTE_CONFIGURATION": "envoy.config.route.v3.RouteConfiguration",
    "VIRTUAL_HOST": "envoy.config.route.v3.VirtualHost",
    "HTTP_ROUTE": "envoy.config.route.v3.Route",
    "CLUSTER": "envoy.config.cluster.v3.Cluster",
    "EXTENSION_CONFIG": "envoy.config.core.v3.TypedExtensionConfig",
    "BOOTSTRAP": "envoy.config.bootstrap.v3.Bootstrap",
}

# Untyped configs: Envoy converts `value` (a Struct) to the message named by `type_url`.
TYPED_STRUCTS = {"udpa.type.v1.TypedStruct", "xds.type.v3.TypedStruct"}
_INT_TYPES = {"int32", "int64", "uint32", "uint64", "sint32", "sint64", "fixed32", "fixed64", "sfixed32", "sfixed64"}
_DURATION = re.compile(r"^-?\d+(\.\d{1,9})?s$")
# istiod decodes patch values with legacy jsonpb, which reads Durations with Go's time.ParseDuration.
_GO_DURATION = re.compile(r"^([-+]?)((?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|\u00b5s|\u03bcs|ms|s|m|h))+)$")
_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "\u00b5s": 1e-6, "\u03bcs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def go_duration_seconds(text: str) -> float | None:
    """Seconds in a Go duration string (`1m30s`, `500ms`), None when it is not one."""
    m = _GO_DURATION.match(text.strip())
    if not m:
        return None
    total = sum(float(n) * _GO_UNITS[u] for n, u in re.findall(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)", m.group(2)))
    return -total if m.group(1) == "-" else total


def proto_duration(seconds: float) -> str:
    """Seconds as a protobuf JSON Duration (`0.5s`)."""
    text = f"{seconds:.9f}".rstrip("0").rstrip(".")
    return f"{text}s"
_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
_WRAPPERS = {
    "BoolValue": "bool", "StringValue": "string", "BytesValue": "bytes", "DoubleValue": "double",
    "FloatValue": "float", "Int32Value": "int32", "Int64Value": "int64", "UInt32Value": "uint32",
    "UInt64Value": "uint64",
}


def _norm(name: str) -> str:
    return name.replace("_", "").lower()


def _proto_name(cls: type) -> str:
    """`envoy.config.trace.v3.OpenTelemetryConfig` for a generated class (from the message pool)."""
    from envoy_data_plane.message_pool import default_message_pool

    url = default_message_pool.type_to_url.get(cls)
    return url.split("/", 1)[1] if url else cls.__name__


@lru_cache(maxsize=2048)
def resolve_type(full_name: str) -> type | None:
    """The envoy-data-plane class for a proto full name, importing its module on demand."""
    from envoy_data_plane.message_pool import default_message_pool

    url = "type.googleapis.com/" + full_name
    if url in default_message_pool.url_to_type:
        return default_message_pool.url_to_type[url]
    parts = full_name.split(".")
    # package = leading lower-case parts; the message (possibly nested) = the rest, concatenated.
    i = next((n for n, p in enumerate(parts) if p[:1].isupper()), len(parts))
    package, msg = parts[:i], parts[i:]
    if not package or not msg:
        return None
    try:
        with warnings.catch_warnings():
            # some generated modules trip pydantic deprecation warnings on import; not ours to fix
            warnings.simplefilter("ignore", DeprecationWarning)
            module = importlib.import_module("envoy_data_plane." + ".".join(package))
    except ImportError:
        return None
    return default_message_pool.url_to_type.get(url) or getattr(module, "".join(msg), None)


class _Checker:
    def __init__(self, *, go_durations: bool = True) -> None:
        self.errors: list[tuple[list[Any], str]] = []
        self.go_durations = go_durations
        self.fixes: list[tuple[list[Any], str]] = []  # Go durations -> proto JSON, for feeding Envoy

    def err(self, path: list[Any], reason: str) -> None:
        self.errors.append((list(path), reason))

    # -- entry points ------------------------------------------------------------------------------
    def message(self, cls: type, value: Any, path: list[Any]) -> None:
        wkt = self._wkt(cls, value, path)
        if wkt:
            return
        if not isinstance(value, Mapping):
            self.err(path, f"expected an object ({_proto_name(cls)}), got {type(value).__name__}")
            return
        meta = cls._betterproto  # type: ignore[attr-defined]
        fields = meta.meta_by_field_name
        by_norm: dict[str, str] = {}
        for fname in fields:
            by_norm.setdefault(_norm(fname.rstrip("_")), fname)
        groups: dict[str, list[str]] = {}
        for key, sub in value.items():
            if key == "@type":
                self.err([*path, key], f"'@type' is only allowed in a google.protobuf.Any, not in {_proto_name(cls)}")
                continue
            fname = key if key in fields else by_norm.get(_norm(str(key)))
            if fname is None:
                self.err([*path, key], f"unknown field {key!r} in {_proto_name(cls)}")
                continue
            fm = fields[fname]
            if fm.group:
                groups.setdefault(fm.group, []).append(str(key))
            if sub is None:
                continue  # JSON null: the field's default
            self.field(cls, fname, fm, sub, [*path, key])
        for group, members in groups.items():
            if len(members) > 1:
                self.err(path, f"{' and '.join(map(repr, members))} are alternatives (oneof {group}) in "
                               f"{_proto_name(cls)}: set only one")

    def field(self, owner: type, fname: str, fm: Any, value: Any, path: list[Any]) -> None:
        cls_by_field = owner._betterproto.cls_by_field  # type: ignore[attr-defined]
        if fm.proto_type == "map":
            if not isinstance(value, Mapping):
                self.err(path, f"expected a map, got {type(value).__name__}")
                return
            vmeta = fm.map_meta[1]
            vcls = cls_by_field.get(fname + ".value")
            for k, v in value.items():
                self.single(vmeta.proto_type, vcls, vmeta.unwrap, v, [*path, k])
            return
        if fm.repeated:
            if not isinstance(value, list):
                self.err(path, f"expected a list, got {type(value).__name__}")
                return
            for i, item in enumerate(value):
                self.single(fm.proto_type, cls_by_field.get(fname), fm.unwrap, item, [*path, i])
            return
        self.single(fm.proto_type, cls_by_field.get(fname), fm.unwrap, value, path)

    def single(self, proto_type: str, cls: Any, unwrap: Any, value: Any, path: list[Any]) -> None:
        if unwrap is not None:
            self.message(unwrap(), value, path)
            return
        if proto_type == "message":
            self.message(cls, value, path)
        elif proto_type == "enum":
            self.enum(cls, value, path)
        else:
            self.scalar(proto_type, value, path)

    def scalar(self, proto_type: str, value: Any, path: list[Any]) -> None:
        ok = True
        if proto_type == "string" or proto_type == "bytes":
            ok = isinstance(value, str)
        elif proto_type == "bool":
            ok = isinstance(value, bool)
        elif proto_type in _INT_TYPES:
            if isinstance(value, bool):
                ok = False
            elif isinstance(value, int):
                ok = not (proto_type.startswith(("uint", "fixed")) and value < 0)
            elif isinstance(value, float):
                ok = value.is_integer()
            elif isinstance(value, str):
                ok = bool(re.fullmatch(r"-?\d+", value.strip()))
            else:
                ok = False
        elif proto_type in ("double", "float"):
            ok = (isinstance(value, (int, float)) and not isinstance(value, bool)) or value in ("NaN", "Infinity", "-Infinity")
        if not ok:
            self.err(path, f"expected {proto_type}, got {type(value).__name__} {value!r}")

    def enum(self, cls: Any, value: Any, path: list[Any]) -> None:
        if isinstance(value, bool):
            self.err(path, f"expected an enum name of {cls.__name__}, got {value!r}")
            return
        if isinstance(value, int):
            return
        names = [m.name for m in cls]
        if not isinstance(value, str) or not any(value == n or value.endswith("_" + n) for n in names):
            self.err(path, f"{value!r} is not a value of {cls.__name__}; allowed: {', '.join(names)}")

    def _wkt(self, cls: type, value: Any, path: list[Any]) -> bool:
        """Well-known types have their own JSON forms. True when `cls` was one (and was checked)."""
        if not cls.__module__.endswith("google.protobuf"):
            return False
        name = cls.__name__
        if name in _WRAPPERS:
            self.scalar(_WRAPPERS[name], value, path)
        elif name == "Duration":
            if isinstance(value, str) and _DURATION.match(value):
                pass
            elif self.go_durations and isinstance(value, str) and go_duration_seconds(value) is not None:
                self.fixes.append((list(path), proto_duration(go_duration_seconds(value) or 0.0)))
            else:
                form = "\"5s\", \"500ms\" or \"1m30s\"" if self.go_durations else "\"5s\" or \"0.25s\" (seconds with an 's')"
                self.err(path, f"expected a Duration such as {form}, got {value!r}")
        elif name == "Timestamp":
            if not (isinstance(value, str) and _TIMESTAMP.match(value)):
                self.err(path, f"expected an RFC 3339 timestamp, got {value!r}")
        elif name == "Struct":
            if not isinstance(value, Mapping):
                self.err(path, f"expected an object (google.protobuf.Struct), got {type(value).__name__}")
        elif name == "ListValue":
            if not isinstance(value, list):
                self.err(path, f"expected a list (google.protobuf.ListValue), got {type(value).__name__}")
        elif name == "Value":
            pass
        elif name == "Empty":
            if value != {}:
                self.err(path, "expected {} (google.protobuf.Empty)")
        elif name == "FieldMask":
            if not isinstance(value, str):
                self.err(path, f"expected a field mask string, got {value!r}")
        elif name == "Any":
            self.any(value, path)
        else:
            return False
        return True

    def any(self, value: Any, path: list[Any]) -> None:
        if not isinstance(value, Mapping):
            self.err(path, f"expected an object with '@type' (google.protobuf.Any), got {type(value).__name__}")
            return
        url = value.get("@type")
        if not isinstance(url, str) or "/" not in url:
            self.err([*path, "@type"], "a google.protobuf.Any needs '@type': type.googleapis.com/<message>")
            return
        full = url.rsplit("/", 1)[1]
        if full in TYPED_STRUCTS:
            # {"@type": TypedStruct, "type_url": <message url>, "value": <that message as JSON>}
            extra = sorted(set(value) - {"@type", "type_url", "typeUrl", "value"})
            for k in extra:
                self.err([*path, k], f"unknown field {k!r} in {full}")
            inner = value.get("type_url", value.get("typeUrl"))
            if not isinstance(inner, str) or "/" not in inner:
                self.err([*path, "type_url"], f"{full} needs type_url: type.googleapis.com/<message>")
                return
            cls = resolve_type(inner.rsplit("/", 1)[1])
            if cls is None:
                self.err([*path, "type_url"], f"unknown type {inner.rsplit('/', 1)[1]!r} (not in the Envoy API)")
                return
            self.message(cls, value.get("value") or {}, [*path, "value"])
            return
        cls = resolve_type(full)
        if cls is None:
            self.err([*path, "@type"], f"unknown type {full!r} (not in the Envoy API)")
            return
        body = {k: v for k, v in value.items() if k != "@type"}
        if cls.__module__.endswith("google.protobuf") and cls.__name__ in (*_WRAPPERS, "Duration", "Timestamp", "Value", "FieldMask"):
            # Any of a well-known scalar type: {"@type": ..., "value": <json>}
            self._wkt(cls, body.get("value"), [*path, "value"])
            return
        self.message(cls, body, path)


def _walk(type_name: str, value: Any, path: list[Any], go_durations: bool) -> _Checker | None:
    cls = resolve_type(type_name)
    if cls is None:
        return None
    c = _Checker(go_durations=go_durations)
    c.message(cls, value, list(path))
    return c


def check_value(type_name: str, value: Any, path: list[Any] | None = None, *,
                go_durations: bool = True) -> list[tuple[str, str]]:
    """Check `value` as message `type_name`; [(json path, reason)].

    `go_durations`: accept Go duration strings (`500ms`), as istiod does for EnvoyFilter patch values;
    False for configuration fed to Envoy directly (protobuf JSON: seconds with an `s` only)."""
    c = _walk(type_name, value, list(path or []), go_durations)
    if c is None:
        return [(json_path(path or []), f"unknown message type {type_name}")]
    return [(json_path(p), r) for p, r in c.errors]


def envoy_json(type_name: str, value: Any) -> Any:
    """A copy of `value` as Envoy reads it: Go-style durations rewritten to protobuf JSON (`500ms` -> `0.5s`)."""
    import copy

    c = _walk(type_name, value, [], True)
    out = copy.deepcopy(value)
    for path, new in (c.fixes if c else []):
        cur = out
        for p in path[:-1]:
            cur = cur[p]
        cur[path[-1]] = new
    return out


def check_envoyfilter(doc: Mapping[str, Any]) -> list[Problem]:
    """Type-check every configPatches[].patch.value of an EnvoyFilter."""
    name = object_name(doc)
    out: list[Problem] = []
    patches = ((doc.get("spec") or {}).get("configPatches")) or []
    for i, patch in enumerate(patches):
        if not isinstance(patch, Mapping):
            continue
        apply_to = patch.get("applyTo")
        value = (patch.get("patch") or {}).get("value")
        type_name = APPLY_TO_TYPE.get(str(apply_to))
        if value is None or type_name is None:
            continue
        base = ["spec", "configPatches", i, "patch", "value"]
        for path, reason in check_value(type_name, value, base):
            out.append(Problem(name, path, reason, "envoy-types", ERROR, "envoy-data-plane"))
    return out
