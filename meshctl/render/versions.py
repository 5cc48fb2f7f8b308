"""What differs between the Istio and Linkerd releases `meshctl render` targets.

Each fact was checked against the projects' release notes / sources (see docs/render.md):
- Istio 1.22 promoted Telemetry to `telemetry.istio.io/v1`; every release 1.24..1.30 serves v1 and v1alpha1
  with the same schema (v1alpha1 is still the storage version in 1.30). `accessLogging.filter` is in the v1
  schema but was not declared stable when v1 was cut.
- Istio 1.24 changed its default access-log format to `%UPSTREAM_CLUSTER_RAW%` (Envoy >= 1.32 operator).
- OpenTelemetry provider `grpc` (timeout, initialMetadata): 1.24. Header values from istiod env (`envName`)
  and `envoyFileAccessLog.omitEmptyValues`: 1.26. Telemetry custom tag `formatter`: 1.29.
  `serviceAttributeEnrichment` and Telemetry `disableContextPropagation`: 1.30.
- Linkerd 2.19 (edge-25.10+) removed the linkerd-jaeger extension; tracing is `proxy.tracing.*` in the
  linkerd-control-plane chart. 2.14..2.18 use linkerd-jaeger's `webhook.collectorSvcAddr` etc.
"""

from __future__ import annotations

import re

ISTIO_VERSIONS = ("1.24", "1.25", "1.26", "1.27", "1.28", "1.29", "1.30")
DEFAULT_ISTIO_VERSION = "1.30"

# feature -> first Istio minor that has it
_ISTIO_FEATURES = {
    "telemetry_v1": (1, 22),
    "upstream_cluster_raw": (1, 24),
    "otel_grpc_settings": (1, 24),
    "header_env_name": (1, 26),
    "custom_tag_formatter": (1, 29),
    "service_attribute_enrichment": (1, 30),
}


def parse_istio_version(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"v?(\d+)\.(\d+)(?:\.\d+)?(?:[-+].*)?", text.strip())
    if not m:
        raise ValueError(f"not an Istio version: {text!r} (expected e.g. 1.28 or 1.28.2)")
    return int(m.group(1)), int(m.group(2))


def istio_has(version: str, feature: str) -> bool:
    return parse_istio_version(version) >= _ISTIO_FEATURES[feature]


def istio_feature_since(feature: str) -> str:
    major, minor = _ISTIO_FEATURES[feature]
    return f"{major}.{minor}"


LINKERD_CURRENT = "edge"
LINKERD_LEGACY_VERSIONS = ("2.14", "2.15", "2.16", "2.17", "2.18")


def linkerd_uses_jaeger_extension(version: str) -> bool:
    """True for stable releases that still need linkerd-jaeger (2.14..2.18); edge/2.19+ use proxy.tracing."""
    v = version.strip().lower()
    if v in ("edge", "latest", "current"):
        return False
    m = re.fullmatch(r"edge-(\d+)\.(\d+)\.(\d+)", v)
    if m:
        # edge-25.10.x is where #14558 (removal of linkerd-jaeger) first shipped.
        return (int(m.group(1)), int(m.group(2))) < (25, 10)
    m = re.fullmatch(r"(?:stable-)?v?2\.(\d+)(?:\.\d+)?", v)
    if not m:
        raise ValueError(f"not a Linkerd version: {version!r} (expected edge, edge-YY.M.N or 2.14 .. 2.19)")
    minor = int(m.group(1))
    if minor < 14:
        raise ValueError(f"Linkerd {version} is not supported (2.14 or newer; older releases have no OpenTelemetry)")
    return minor < 19
