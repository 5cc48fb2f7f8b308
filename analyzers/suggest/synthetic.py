"""Generated requests-table traffic with known truth, for tests, benchmarks and notebooks.

`generate([ServiceTraffic(...), ...])` returns a frame in the requests-table schema: arrivals at a
steady rate (evenly spaced with jitter, or Poisson), log-normal latencies around a median, hosts
round-robin, callers drawn at random, and optionally hosts that fail (a share of their answers are
503s from the upstream) during a time span.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd


@dataclass
class ServiceTraffic:
    service: str = "reviews"
    namespace: str = "shop"
    rps: float = 100.0
    seconds: float = 60.0
    latency_ms: float = 50.0
    latency_sigma: float = 0.2  # log-normal shape
    hosts: int = 3
    callers: list[str] = field(default_factory=lambda: ["productpage"])
    caller_pods: int = 1  # pods per caller workload (each its own calling proxy)
    poisson: bool = False
    failing_hosts: dict[int, float] = field(default_factory=dict)  # host index -> share of 503s
    fail_from: float = 0.0  # seconds after start
    fail_until: float | None = None
    direction: str = "outbound"
    protocol: str = "HTTP/1.1"
    routes: list[str] = field(default_factory=lambda: ["default"])
    version: str | None = None
    start: str = "2026-01-01T00:00:00Z"


def generate(specs: list[ServiceTraffic], seed: int = 7) -> pd.DataFrame:
    import numpy as np
    import pandas as pd

    from analyzers.table import conform_frame

    rng = np.random.default_rng(seed)
    frames = []
    for k, sp in enumerate(specs):
        n = round(sp.rps * sp.seconds)
        if sp.poisson:
            t = np.sort(rng.uniform(0, sp.seconds, n))
        else:
            t = (np.arange(n) + rng.uniform(0.0, 0.5, n)) / sp.rps
        dur = sp.latency_ms * np.exp(rng.normal(0, sp.latency_sigma, n))
        host_i = np.arange(n) % sp.hosts
        code = np.full(n, 200, dtype=np.int32)
        until = sp.seconds if sp.fail_until is None else sp.fail_until
        for hi, share in sp.failing_hosts.items():
            m = (host_i == hi) & (t >= sp.fail_from) & (t < until) & (rng.uniform(0, 1, n) < share)
            code[m] = 503
            dur[m] = np.minimum(dur[m], 5.0)
        caller_w = rng.integers(0, len(sp.callers), n)
        pod = rng.integers(0, sp.caller_pods, n)
        fqdn = f"{sp.service}.{sp.namespace}.svc.cluster.local"
        hosts = np.array([f"10.{k % 250}.{i // 250}.{i % 250 + 1}:9080" for i in range(sp.hosts)])
        callers = np.array(sp.callers)
        caller_ip = np.array([f"10.200.{w}.{p + 1}" for w in range(len(sp.callers)) for p in range(sp.caller_pods)])
        ip = caller_ip[caller_w * sp.caller_pods + pod]
        port = rng.integers(30000, 60000, n).astype(str)
        subset = sp.version or ""
        frames.append(pd.DataFrame({
            "timestamp": pd.Timestamp(sp.start) + pd.to_timedelta(np.round(t * 1e6), unit="us"),
            "duration_ms": np.round(dur, 3),
            "upstream_service_time_ms": np.round(dur * 0.95, 3),
            "response_code": code,
            "response_flags": None,
            "method": "GET",
            "path": "/",
            "protocol": sp.protocol,
            "route_name": np.array(sp.routes)[rng.integers(0, len(sp.routes), n)],
            "source_workload": callers[caller_w],
            "source_namespace": sp.namespace,
            "downstream_remote_address": np.char.add(np.char.add(ip, ":"), port),
            "destination_service": fqdn,
            "destination_namespace": sp.namespace,
            "destination_app": sp.service,
            "destination_workload": f"{sp.service}-{sp.version}" if sp.version else sp.service,
            "destination_version": sp.version,
            "upstream_host": hosts[host_i],
            "upstream_cluster": f"outbound|9080|{subset}|{fqdn}",
            "direction": sp.direction,
            "reporter_workload": callers[caller_w] if sp.direction == "outbound" else sp.service,
            "reporter_namespace": sp.namespace,
            "request_id": [f"{k}-{i}" for i in range(n)] if n < 200_000 else None,
            "record_kind": "access_log",
            "record_format": "synthetic",
        }))
    df = pd.concat(frames, ignore_index=True).sort_values("timestamp", kind="stable", ignore_index=True)
    return conform_frame(df)
