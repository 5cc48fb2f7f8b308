"""Every suggestion kind in one place: metadata + one suggest function + one replay function."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from analyzers.suggest import circuit_breaker, rate_limit, sidecar
from analyzers.suggest.config import service_namespace
from analyzers.suggest.model import ReplayResult, Suggestion

if TYPE_CHECKING:  # pragma: no cover
    from analyzers.suggest.config import SuggestConfig
    from analyzers.suggest.limits import CurrentConfig
    from analyzers.suggest.traffic import Traffic


@dataclass(frozen=True)
class SuggestionKind:
    name: str
    description: str
    produces: tuple[str, ...]  # resource kinds rendered by -o yaml
    prefer: str  # perspective: client (outbound rows) | server (inbound rows)
    suggest: Callable[[Traffic, SuggestConfig], list[Suggestion]]
    replay: Callable[[Traffic, Suggestion, SuggestConfig, list[CurrentConfig]], None]


# ---- replay per kind ------------------------------------------------------------------------------
def _replay_circuit_breaker(tr: Traffic, s: Suggestion, cfg: SuggestConfig, current: list[CurrentConfig]) -> None:
    from analyzers.suggest import replay as rp

    rows = s._rows  # type: ignore[attr-defined]
    durations, median = circuit_breaker.impute_durations(tr, rows)
    h2 = s.figures.get("protocol") == "HTTP/2"

    def run(policy, label: str) -> ReplayResult:
        res = ReplayResult(label=label)
        res.requests = len(rows)
        if policy is not None and policy.connection_pool is not None and median is not None:
            pool = rp.replay_cluster_pool(tr, rows, durations, policy.connection_pool, h2=h2)
            pool.requests = 0
            res.add(pool)
        if policy is not None and policy.outlier_detection is not None:
            od = rp.replay_outlier(tr, rows, policy.outlier_detection)
            od.requests = 0
            res.add(od)
        return res

    s.replay["suggested"] = run(s.limits, "suggested")
    for cur in current:
        dr = cur.destination_rule(s.target.service or "")
        label = f"current {cur.source}" + ("" if dr else " (no rule: Istio defaults)")
        s.replay[label] = run(dr.policy_for(s.target.subset, s.target.version) if dr else None, label)


def _replay_rate_limit(tr: Traffic, s: Suggestion, cfg: SuggestConfig, current: list[CurrentConfig]) -> None:
    import numpy as np

    from analyzers.suggest import replay as rp

    rows = s._rows  # type: ignore[attr-defined]
    siblings = getattr(s, "_route_buckets", {})
    inst = rate_limit.instance_keys(tr, rows) if cfg.per_instance else np.full(len(rows), -1)
    routes = tr.route.codes[rows]

    def run(bucket_for: Callable[[str | None], object], label: str) -> ReplayResult:
        res = ReplayResult(label=label, requests=len(rows))
        for rc in np.unique(routes):
            bucket = bucket_for(tr.route.label(int(rc)))
            if bucket is None:
                continue
            for ic in np.unique(inst):
                part = rows[(routes == rc) & (inst == ic)]
                r = rp.replay_bucket(tr.start[part], bucket)
                r.requests = 0
                res.add(r)
        return res

    if s.target.route is not None:
        s.replay["suggested"] = run(lambda _r: s.limits, "suggested")
    else:
        s.replay["suggested"] = run(lambda r: siblings.get(r, s.limits), "suggested")
    for cur in current:
        rl = cur.rate_limit(s.target.app, s.target.namespace)
        label = f"current {cur.source}" + ("" if rl else " (no local rate limit)")
        if rl is None:
            s.replay[label] = ReplayResult(label=label, requests=len(rows))
        elif s.target.route is not None:
            s.replay[label] = run(lambda _r, rl=rl: rl.bucket_for(s.target.route), label)
        else:
            s.replay[label] = run(rl.bucket_for, label)


def _replay_sidecar(tr: Traffic, s: Suggestion, cfg: SuggestConfig, current: list[CurrentConfig]) -> None:
    from analyzers.suggest.limits import SidecarScope

    hosts = s.figures.get("hosts", [])
    total = sum(h["requests"] for h in hosts)

    def run(scope: SidecarScope | None, label: str) -> ReplayResult:
        res = ReplayResult(label=label, requests=total)
        if scope is None:
            return res
        for h in hosts:
            ns = service_namespace(h["service"], h["host"].split("/")[0] if not h["host"].startswith("*") else None)
            if not scope.allows(h["service"], ns):
                res.outside_scope += h["requests"]
                res.details.append({"host": h["host"], "requests": h["requests"]})
        return res

    s.replay["suggested"] = run(SidecarScope("suggested", s.target.namespace, {}, list(s.limits)), "suggested")
    for cur in current:
        sc = cur.sidecar(s.target.app, s.target.namespace)
        label = f"current {cur.source}" + ("" if sc else " (no Sidecar: every host)")
        s.replay[label] = run(sc, label)


REGISTRY: dict[str, SuggestionKind] = {
    k.name: k
    for k in (
        SuggestionKind("circuit-breaker", "DestinationRule connectionPool and outlierDetection per service",
                       ("DestinationRule",), circuit_breaker.PREFER, circuit_breaker.suggest,
                       _replay_circuit_breaker),
        SuggestionKind("rate-limit", "Envoy local rate limit token bucket per service (and route)",
                       ("EnvoyFilter",), rate_limit.PREFER, rate_limit.suggest, _replay_rate_limit),
        SuggestionKind("sidecar", "Sidecar egress scope from the services each workload calls",
                       ("Sidecar",), sidecar.PREFER, sidecar.suggest, _replay_sidecar),
    )
}
