"""Tracing custom tags that can never carry a value.

A `header` tag reads a request header: its name must be an HTTP token (RFC 9110), and Envoy lowercases
names, so a tag on a name with spaces or brackets never matches anything. `literal` tags need a value,
`environment` tags a variable name. Placeholders (`<CLIENT-HEADER>`) are left to input.Placeholder.
"""

from __future__ import annotations

import re

from meshctl.lint.context import LintContext, Rule, mapping, seq

_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_PLACEHOLDER = re.compile(r"^<[^<>]+>$")


def _problem(tag: dict) -> tuple[str, str] | None:
    header = mapping(tag.get("header"))
    if "header" in tag:
        name = header.get("name")
        if not isinstance(name, str) or not name:
            return "header", "header tag without a header name"
        if _PLACEHOLDER.match(name):
            return None
        if name.startswith(":") and _TOKEN.match(name[1:]):
            return None  # pseudo-headers (:authority, :path) are valid request header names in Envoy
        if not _TOKEN.match(name):
            return "header", f"header name {name!r} is not a valid HTTP header name; the tag never gets a value"
    if "literal" in tag:
        value = mapping(tag.get("literal")).get("value")
        if value is None or value == "":
            return "literal", "literal tag without a value"
    if "environment" in tag:
        name = mapping(tag.get("environment")).get("name")
        if not isinstance(name, str) or not name:
            return "environment", "environment tag without a variable name"
    return None


def check(ctx: LintContext) -> None:
    for doc in ctx.istio("Telemetry"):
        for i, entry in enumerate(seq(doc.spec.get("tracing"))):
            tags = mapping(mapping(entry).get("customTags"))
            for tag_name, tag in tags.items():
                found = _problem(mapping(tag))
                if found:
                    sub, problem = found
                    ctx.report("MSH0304", doc, ("spec", "tracing", i, "customTags", tag_name, sub),
                               section=f"tracing[{i}].customTags.{tag_name}", problem=problem)


RULE = Rule("telemetry.CustomTags", "Checks tracing custom tags (header names, literal values, env names).",
            ("Telemetry",), ("MSH0304",), check)
