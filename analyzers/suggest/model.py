"""Result dataclasses of `analyzers.suggest`: evidence, settings, limits and replay counts.

Every suggested value is a `Setting` that carries the `Evidence` it was derived from and the rule
that turned the evidence into the value, so `-o table` can explain it and `-o json` can carry it.
`Limits` are the machine form of a suggestion (or of an existing DestinationRule / EnvoyFilter /
Sidecar): the replay runs recorded traffic through them and the templates render them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

UNLIMITED = 2**32 - 1  # Istio's default for every connection-pool threshold


@dataclass
class Evidence:
    """One observed figure: what, how much, where and when."""

    name: str
    value: Any
    unit: str = ""
    scope: str | None = None  # "caller 10.0.0.5", "host 10.1.2.3:8080", "service"
    at: str | None = None  # ISO time of the peak / burst, when there is one
    note: str | None = None

    def text(self) -> str:
        v = f"{self.value:.4g}" if isinstance(self.value, float) else str(self.value)
        out = f"{self.name} {v}{(' ' + self.unit) if self.unit else ''}"
        if self.scope:
            out += f" ({self.scope})"
        if self.at:
            out += f" at {self.at}"
        return out


@dataclass
class Setting:
    """One suggested field of a resource, with the rule and the evidence behind it."""

    field: str  # dotted path inside the resource spec: connectionPool.http.http2MaxRequests
    value: Any
    rule: str
    evidence: list[Evidence] = field(default_factory=list)


@dataclass
class Message:
    """A finding from the message catalog (analyzers/suggest/messages.py)."""

    code: str
    level: str  # info | warning
    text: str


@dataclass
class Target:
    """What a suggestion is for: a service (optionally a subset or route), a workload or a namespace."""

    service: str | None = None
    namespace: str | None = None
    subset: str | None = None
    version: str | None = None
    route: str | None = None
    workload: str | None = None
    app: str | None = None

    def label(self) -> str:
        if self.service:
            out = self.service
            if self.subset or self.version:
                out += f" [{self.subset or self.version}]"
            if self.route:
                out += f" route={self.route}"
            return out
        if self.workload:
            return f"{self.workload}.{self.namespace}" if self.namespace else self.workload
        return f"namespace {self.namespace}"


# ---- limits (what Envoy enforces) ------------------------------------------------------------
@dataclass
class ConnectionPool:
    """DestinationRule connectionPool; None = not set (Istio's default: unlimited)."""

    max_connections: int | None = None
    http1_max_pending_requests: int | None = None
    http2_max_requests: int | None = None
    max_requests_per_connection: int | None = None
    idle_timeout_s: float | None = None

    def effective(self) -> tuple[int, int, int]:
        """(max connections, max pending, max requests) with unset fields at Istio's default."""
        return (self.max_connections or UNLIMITED, self.http1_max_pending_requests or UNLIMITED,
                self.http2_max_requests or UNLIMITED)


@dataclass
class OutlierDetection:
    """DestinationRule outlierDetection (consecutive-error ejection, as Envoy implements it)."""

    consecutive_5xx: int | None = None  # None or 0 = not enforced
    consecutive_gateway: int | None = None
    interval_s: float = 10.0
    base_ejection_s: float = 30.0
    max_ejection_percent: int = 10
    min_health_percent: int = 0


@dataclass
class TrafficPolicy:
    connection_pool: ConnectionPool | None = None
    outlier_detection: OutlierDetection | None = None


@dataclass
class TokenBucket:
    """Envoy local rate limit bucket. Envoy 1.40 refills continuously at tokens_per_fill/fill_interval."""

    max_tokens: int
    tokens_per_fill: int
    fill_interval_s: float

    @property
    def rate(self) -> float:
        return self.tokens_per_fill / self.fill_interval_s


@dataclass
class ReplayResult:
    """What the recorded requests would have met under one set of limits."""

    label: str  # suggested | current:<file>
    requests: int = 0
    rejected_overflow: int = 0  # 503 UO (pending + active overflow)
    pending_overflow: int = 0  # upstream_rq_pending_overflow
    active_overflow: int = 0  # upstream_rq_active_overflow
    queued: int = 0  # waited in the pending queue, then were sent
    max_queue_wait_ms: float = 0.0
    rate_limited: int = 0  # 429 RL
    sent_to_ejected: int = 0  # recorded against a host the model had ejected (would go elsewhere)
    errors_avoided: int = 0  # ... of which the recorded response was a 5xx
    no_healthy_upstream: int = 0  # 503 UH: every host ejected
    ejections: int = 0
    outside_scope: int = 0  # sidecar: calls to hosts the egress scope does not list
    details: list[dict[str, Any]] = field(default_factory=list)

    def add(self, other: ReplayResult) -> None:
        for name in ("requests", "rejected_overflow", "pending_overflow", "active_overflow", "queued",
                     "rate_limited", "sent_to_ejected", "errors_avoided", "no_healthy_upstream",
                     "ejections", "outside_scope"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.max_queue_wait_ms = max(self.max_queue_wait_ms, other.max_queue_wait_ms)
        self.details.extend(other.details)


@dataclass
class Suggestion:
    """One suggested resource part (a DestinationRule policy, a rate-limit bucket, a Sidecar scope)."""

    kind: str  # circuit-breaker | rate-limit | sidecar
    target: Target
    settings: list[Setting] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    messages: list[Message] = field(default_factory=list)
    # machine form, by kind: TrafficPolicy | TokenBucket | list[str] (egress hosts)
    limits: Any = None
    replay: dict[str, ReplayResult] = field(default_factory=dict)

    def setting(self, name: str) -> Setting | None:
        return next((s for s in self.settings if s.field == name), None)


@dataclass
class SuggestResult:
    kind: str
    config: dict[str, Any]
    rows: int  # rows read
    used_rows: int  # rows the suggestion is based on (one perspective per request)
    window: tuple[str, str] | None
    suggestions: list[Suggestion] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
