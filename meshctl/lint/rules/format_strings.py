"""Access-log format strings with %...% operators Envoy rejects.

Checked wherever Istio passes a format string to Envoy: meshConfig.accessLogFormat, the logFormat
text and labels of envoyFileAccessLog / envoyOtelAls providers, and access loggers inside EnvoyFilter
patch values. A format Envoy rejects takes the whole listener update down with it (Envoy NACKs it).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from meshctl.lint import envoyformat
from meshctl.lint.context import LintContext, Rule, json_path, mapping, seq, strings
from meshctl.lint.loader import Path
from meshctl.lint.meshconfig import g, key_of, providers_of

_FORMAT_KEYS = {"inline_string", "inlineString", "text_format", "textFormat", "format", "string_value",
                "stringValue"}
_FORMAT_PARENTS = {"json_format", "jsonFormat", "typed_json_format", "typedJsonFormat", "labels"}


def _access_log_formats(value: Any, path: Path) -> Iterator[tuple[Path, str]]:
    """Format strings inside access_log entries of an EnvoyFilter patch value."""
    if isinstance(value, Mapping):
        for k, sub in value.items():
            if k in ("access_log", "accessLog", "upstream_log", "upstreamLog") and isinstance(sub, list):
                for i, entry in enumerate(sub):
                    for p, s in strings(entry, (*path, k, i)):
                        keys = {str(x) for x in p}
                        if p[-1] in _FORMAT_KEYS or keys & _FORMAT_PARENTS:
                            yield p, s
            else:
                yield from _access_log_formats(sub, (*path, k))
    elif isinstance(value, list):
        for i, sub in enumerate(value):
            yield from _access_log_formats(sub, (*path, i))


def _report(ctx: LintContext, text: str, *, doc=None, source=None, path: Path = ()) -> None:
    field = json_path(source.path(path) if source is not None else path)[2:]
    for p in envoyformat.check_format(text):
        if p.code == "MSH0401":
            guess = envoyformat.suggestion(p.operator or "")
            hint = f" (did you mean %{guess}%?)" if guess else ""
            ctx.report("MSH0401", doc, path, source=source, field=field, operator=p.operator, hint=hint)
        else:
            ctx.report("MSH0402", doc, path, source=source, field=field, problem=p.problem)


def check(ctx: LintContext) -> None:
    for src in ctx.mesh.sources:
        fmt = g(src.config, "accessLogFormat")
        if isinstance(fmt, str) and fmt:
            _report(ctx, fmt, source=src, path=(key_of(src.config, "accessLogFormat"),))
        for p in providers_of(src):
            if p.ptype not in ("envoyFileAccessLog", "envoyOtelAls"):
                continue
            log_format = g(p.settings, "logFormat")
            if not isinstance(log_format, Mapping):
                continue
            lf = key_of(p.settings, "logFormat")
            if isinstance(log_format.get("text"), str):
                _report(ctx, log_format["text"], source=src, path=p.sub(lf, "text"))
            for name, value in mapping(log_format.get("labels")).items():
                for sub, s in strings(value):
                    _report(ctx, s, source=src, path=p.sub(lf, "labels", name, *sub))
    for doc in ctx.istio("EnvoyFilter"):
        for i, cp in enumerate(seq(doc.spec.get("configPatches"))):
            value = mapping(mapping(cp).get("patch")).get("value")
            base = ("spec", "configPatches", i, "patch", "value")
            for p, s in _access_log_formats(value, base):
                _report(ctx, s, doc=doc, path=p)


RULE = Rule("accesslog.FormatOperators",
            "Checks %...% command operators in access-log formats (mesh config, providers, EnvoyFilter).",
            ("MeshConfig", "EnvoyFilter"), ("MSH0401", "MSH0402"), check)
