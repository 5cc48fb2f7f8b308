"""Access-log format registry and detection (`--format auto`).

Formats (each can be forced with `--format NAME`):

    istio-text      Istio's default TEXT format (meshConfig.accessLogEncoding: TEXT)
    envoy-text      Envoy's default format (no format configured), also Emissary/Contour
    envoy-format    any Envoy format string, given with --log-format-string '...'
                    (a JSON object of key → "%OPERATOR%" describes a json_format log)
    istio-json      Istio's JSON encoding and Envoy json_format logs using Istio's keys
    linkerd-apache  linkerd-proxy access log, config.linkerd.io/access-log: apache
    linkerd-json    linkerd-proxy access log, config.linkerd.io/access-log: json
    otlp-logs       OTLP log records (OpenTelemetry Collector file exporter JSON lines)

Detection scores every format on the first lines of a file (after any container envelope is
taken off) and keeps the one that reads the most of them.
"""

from __future__ import annotations

import json
import re
from typing import Any

from meshctl.errors import InputError

FORMAT_NAMES = ("istio-text", "envoy-text", "envoy-format", "istio-json", "linkerd-apache", "linkerd-json",
                "otlp-logs")
AUTO_ORDER = ("istio-text", "envoy-text", "istio-json", "linkerd-json", "linkerd-apache", "otlp-logs")
MIN_SCORE = 0.2

# Lines a proxy container writes besides its access log: they are not access-log records and not
# errors either, so they are counted as ignored.
_DIAGNOSTIC = re.compile(
    r"^(?:"
    r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z\t(?:debug|info|warn|warning|error|fatal|none)\t"  # pilot-agent / istio
    r"|\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}\]\[\d+\]\[(?:trace|debug|info|warning|error|critical)\]"  # envoy
    r"|\[\s*\d+\.\d+s\]\s+(?:TRACE|DEBUG|INFO|WARN|ERROR)\s"  # linkerd2-proxy
    r")"
)


def is_proxy_diagnostic(text: str) -> bool:
    if _DIAGNOSTIC.match(text):
        return True
    if text.startswith("{") and '"level"' in text:
        try:
            obj = json.loads(text)
        except ValueError:
            return False
        return isinstance(obj, dict) and "level" in obj and ("fields" in obj or "target" in obj or "msg" in obj)
    return False


def make_format(name: str, format_string: str | None = None) -> Any:
    """A fresh format object (formats keep per-file state, e.g. learnt JSON types)."""
    from meshctl.parsers import envoy_format as ef
    from meshctl.parsers import jsonlog, text
    from meshctl.parsers.otlp_logs import OtlpLogFormat

    if name == "istio-text":
        return text.EnvoyTextFormat(ef.istio_text())
    if name == "envoy-text":
        return text.EnvoyTextFormat(ef.envoy_text())
    if name == "envoy-format":
        if not format_string:
            raise InputError("--format envoy-format needs --log-format-string '...'", field="--format")
        spec = format_string.strip()
        if spec.startswith("{"):
            try:
                obj = json.loads(spec)
            except ValueError as exc:
                raise InputError(f"the JSON format is not valid JSON: {exc}", field="--log-format-string") from None
            if not isinstance(obj, dict):
                raise InputError("a JSON format must be an object", field="--log-format-string")
            return jsonlog.json_format_from_dict(obj)
        return text.EnvoyTextFormat(ef.compile_format(format_string, "envoy-format"))
    if name == "istio-json":
        return jsonlog.istio_json()
    if name == "linkerd-json":
        return jsonlog.linkerd_json()
    if name == "linkerd-apache":
        return text.linkerd_apache()
    if name == "otlp-logs":
        return OtlpLogFormat()
    raise InputError(f"unknown access-log format {name!r}", field="--format",
                     hint=f"one of: auto, {', '.join(FORMAT_NAMES)}")


_SCORERS: dict[str, Any] = {}


def score_formats(lines: list[str], candidates: tuple[str, ...] = AUTO_ORDER) -> list[tuple[float, str]]:
    scored = []
    for name in candidates:
        if name not in _SCORERS:  # scoring keeps no state: one instance per format will do
            _SCORERS[name] = make_format(name)
        scored.append((_SCORERS[name].score(lines), name))
    scored.sort(key=lambda x: -x[0])  # stable: AUTO_ORDER breaks ties
    return scored


def detect_format_name(lines: list[str]) -> str | None:
    lines = [ln for ln in lines if ln.strip() and not is_proxy_diagnostic(ln)]
    if not lines:
        return None
    best_score, best = score_formats(lines)[0]
    return best if best_score >= MIN_SCORE else None


def detect_line_format(lines: list[str]) -> Any:
    """A format object for these lines, or None."""
    name = detect_format_name(lines)
    return make_format(name) if name else None
