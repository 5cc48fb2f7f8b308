"""Every lint rule, in the order they run (like istioctl's analyzers/all.go)."""

from __future__ import annotations

from meshctl.lint.context import Rule
from meshctl.lint.rules import (
    access_log_filter,
    collector_service,
    custom_tags,
    deprecated,
    duplicate_keys,
    duplicate_objects,
    envoyfilter_names,
    envoyfilter_operations,
    envoyfilter_structure,
    format_strings,
    linkerd,
    placeholders,
    provider_definitions,
    provider_refs,
    sampling,
    schema,
    syntax,
    telemetry_entries,
    telemetry_scope,
    telemetry_selector,
    tracing_providers,
)

RULES: list[Rule] = [
    syntax.RULE,
    duplicate_keys.RULE,
    duplicate_objects.RULE,
    placeholders.RULE,
    schema.RULE,
    provider_definitions.RULE,
    provider_refs.RULE,
    tracing_providers.RULE,
    collector_service.RULE,
    sampling.RULE,
    telemetry_scope.RULE,
    telemetry_entries.RULE,
    custom_tags.RULE,
    access_log_filter.RULE,
    telemetry_selector.RULE,
    format_strings.RULE,
    envoyfilter_structure.RULE,
    envoyfilter_names.RULE,
    envoyfilter_operations.RULE,
    deprecated.RULE,
    linkerd.RULE,
]
