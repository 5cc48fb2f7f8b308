"""The configuration of a suggestion run: plain data (JSON-able), defaults documented in docs/suggest.md."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class SuggestConfig:
    headroom: float = 2.0  # limits = headroom × the observed peak
    services: list[str] = field(default_factory=list)  # only these destination services (short or FQDN)
    namespace: str | None = None  # only destinations (sidecar: callers) in this namespace
    # circuit breaker
    min_consecutive: int = 5  # floor for consecutive5xxErrors / consecutiveGatewayErrors (Envoy's default)
    failing_error_rate: float = 0.5  # a host failing this share of its requests is "failing", not "healthy"
    outage_s: float = 5.0  # errors without a break for this long are an outage (the host is failing)
    recycle_s: float = 300.0  # maxRequestsPerConnection recycles a kept-alive connection about this often
    # rate limit
    per_route: bool = False  # also one bucket per Envoy route name
    per_instance: bool = True  # size the bucket on the busiest serving instance (the bucket is per proxy)
    # sidecar
    by: str = "workload"  # workload | namespace
    rare_requests: int = 5  # a callee seen fewer times than this gets a warning
    # all
    min_requests: int = 100  # below this a target's figures are flagged as weak

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def service_matches(service: str, wanted: list[str]) -> bool:
    """`reviews` matches `reviews`, `reviews.bookinfo`, `reviews.bookinfo.svc.cluster.local`."""
    if not wanted:
        return True
    return any(service == w or service.startswith(w + ".") for w in wanted)


def service_namespace(service: str, fallback: str | None) -> str | None:
    """`name.ns.svc.cluster.local` → ns; else the recorded destination namespace."""
    parts = service.split(".")
    if len(parts) >= 3 and parts[2] == "svc":
        return parts[1]
    return fallback


def service_short(service: str) -> str:
    return service.split(".")[0]
