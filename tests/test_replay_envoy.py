"""The replay against a real Envoy: record traffic through an unlimited proxy, suggest, scale the
suggestion down, predict with the replay, then run the same traffic through Envoy with those limits.

Agreement is asserted within a stated tolerance (TOLERANCE below): thread start-up on a loaded
2-core machine spreads a "simultaneous" burst over a few milliseconds, which can move a request
or two across a limit.

The backend is the local mesh's fault-injectable app (meshctl.mesh.BackendApp); the DestinationRule
trafficPolicy becomes Envoy cluster settings exactly as istiod sets them
(meshctl.mesh.bootstrap.destination_rule_cluster_settings); the rate-limit EnvoyFilter is applied to a
sidecar-like bootstrap with meshctl.envoyfilter.apply_envoyfilters. The proxies write Istio's default
TEXT access log, read back with meshctl's own access-log parser and identity layer (the reporting
workload named as `meshctl collect logs --workload` would), so the suggestion sees exactly what a
collection from a real sidecar gives it.
"""

from __future__ import annotations

import copy
import http.client
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from analyzers.suggest import SuggestConfig, analyze
from analyzers.suggest.model import ConnectionPool, TokenBucket
from analyzers.suggest.resources import resources
from meshctl.envoy import EnvoyProcess
from meshctl.mesh import BackendApp, Faults
from meshctl.mesh.bootstrap import destination_rule_cluster_settings
from meshctl.render.engine import render_documents

pytestmark = [pytest.mark.envoy, pytest.mark.slow]

TOLERANCE = {"abs": 2, "rel": 0.10}  # |envoy - replay| <= max(abs, rel * replay)
SERVICE = "reviews.shop.svc.cluster.local"
CLUSTER = "outbound|9080||" + SERVICE
ROUTER = {"name": "envoy.filters.http.router",
          "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}


def agree(envoy: int, predicted: int) -> bool:
    return abs(envoy - predicted) <= max(TOLERANCE["abs"], TOLERANCE["rel"] * predicted)


def access_log(path: Path) -> dict:
    """Istio's default TEXT access log, as a sidecar writes it."""
    from meshctl.render.istio import TEXT_FORMAT

    return {"name": "envoy.access_loggers.file", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
        "path": str(path), "log_format": {"text_format_source": {"inline_string": TEXT_FORMAT}}}}


def read_log(path: Path, reporter: str) -> pd.DataFrame:
    """The log through meshctl's parser and identity layer, `reporter` being the proxy's workload."""
    import pyarrow as pa

    from analyzers.table import to_frame
    from meshctl.identity import Identity, workload_of
    from meshctl.parsers.accesslog import AccessLogParser

    with open(path, "rb") as f:
        results = list(AccessLogParser().parse_stream(f, file=str(path)))
    assert not any(r.rejects for r in results), [str(x) for r in results for x in r.rejects]
    table = pa.concat_tables([r.table for r in results if r.rows], promote_options="default")
    df = to_frame(Identity(reporter=workload_of(reporter, "shop")).enrich(table))
    return df.sort_values("record_line", kind="stable").reset_index(drop=True)


def wait_for_lines(path: Path, n: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and len(path.read_text().splitlines()) >= n:
            return
        time.sleep(0.05)


def get(port: int, path: str = "/") -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        r.read()
        return r.status
    finally:
        conn.close()


def bursts(port: int, *, count: int, size: int, gap_s: float, path: str = "/") -> list[int]:
    """`count` bursts of `size` concurrent requests (one connection each, released together)."""
    codes: list[int] = []
    lock = threading.Lock()
    for _ in range(count):
        barrier = threading.Barrier(size)

        def one(barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            c = get(port, path)
            with lock:
                codes.append(c)

        threads = [threading.Thread(target=one) for _ in range(size)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        time.sleep(gap_s)
    return codes


def outbound_bootstrap(backend_port: int, log: Path, policy: dict | None) -> dict:
    cluster = {"name": CLUSTER, "type": "STATIC", "connect_timeout": "2s",
               "load_assignment": {"cluster_name": CLUSTER, "endpoints": [{"lb_endpoints": [{"endpoint": {
                   "address": {"socket_address": {"address": "127.0.0.1", "port_value": backend_port}}}}]}]}}
    cluster.update(destination_rule_cluster_settings(policy, where=CLUSTER))
    hcm = {"@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
           "stat_prefix": "outbound_9080", "access_log": [access_log(log)],
           "route_config": {"name": "9080", "virtual_hosts": [{"name": "reviews", "domains": ["*"], "routes": [
               {"name": "default", "match": {"prefix": "/"}, "route": {"cluster": CLUSTER, "timeout": "30s"}}]}]},
           "http_filters": [ROUTER]}
    return {"admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
            "static_resources": {"clusters": [cluster], "listeners": [{
                "name": "outbound", "traffic_direction": "OUTBOUND",
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
                "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                                                "typed_config": hcm}]}]}]}}


def scaled_policy(doc: dict, pool: ConnectionPool) -> dict:
    policy = copy.deepcopy(doc["spec"]["trafficPolicy"])
    policy.pop("outlierDetection", None)
    policy["connectionPool"]["tcp"]["maxConnections"] = pool.max_connections
    policy["connectionPool"]["http"]["http1MaxPendingRequests"] = pool.http1_max_pending_requests
    policy["connectionPool"]["http"]["http2MaxRequests"] = pool.http2_max_requests
    return policy


@pytest.fixture(scope="module")
def recorded_bursts(tmp_path_factory):
    """Three bursts of 24 requests (250 ms each) through an Envoy with Istio's default (unlimited) pool.

    A first burst warms the pool and is left out: a cold pool connects to the backend gradually, which
    stretches the first requests well beyond the backend's latency (the replay models a warm pool).
    """
    tmp = tmp_path_factory.mktemp("cb-record")
    log = tmp / "access.log"
    with BackendApp("reviews", faults=Faults(latency_ms=250)) as app, \
            EnvoyProcess(outbound_bootstrap(app.port, log, None), workdir=tmp, name="record") as envoy:
        port = envoy.listener_port("outbound")
        bursts(port, count=1, size=24, gap_s=0.3, path="/warm")
        codes = bursts(port, count=3, size=24, gap_s=0.6)
        assert codes.count(200) == 72
        wait_for_lines(log, 96)
    df = read_log(log, "productpage")
    assert (df["direction"] == "outbound").all() and (df["destination_service"] == SERVICE).all()
    return df[df["path"] != "/warm"].reset_index(drop=True)


@pytest.mark.parametrize("scenario", ["pending", "active"])
def test_circuit_breaker_overflow_matches_envoy(recorded_bursts, tmp_path, scenario):
    result = analyze("circuit-breaker", recorded_bursts, SuggestConfig(headroom=2.0))
    (s,) = result.suggestions
    assert s.figures["inflight_peak"] >= 20  # the bursts overlap inside one calling proxy
    assert s.replay["suggested"].rejected_overflow == 0  # headroom 2: the recording passes
    pool = s.limits.connection_pool
    # scale the suggestion down so the bursts overflow: the queue ("pending") or max requests ("active")
    if scenario == "pending":
        scaled = ConnectionPool(max(1, pool.max_connections // 8), max(1, pool.http1_max_pending_requests // 8),
                                max(1, pool.http2_max_requests // 8))
    else:
        scaled = ConnectionPool(max(2, pool.max_connections // 6), max(1, pool.http1_max_pending_requests // 8),
                                max(1, pool.http2_max_requests // 12))
    doc = render_documents(*_dr_template(result))[0]
    re_run = analyze("circuit-breaker", recorded_bursts, SuggestConfig(headroom=2.0), replay=False)
    (s2,) = re_run.suggestions
    s2.limits.connection_pool = scaled
    s2.limits.outlier_detection = None
    from analyzers.suggest.registry import REGISTRY

    REGISTRY["circuit-breaker"].replay(_traffic(recorded_bursts), s2, SuggestConfig(), [])
    predicted = s2.replay["suggested"]
    assert predicted.rejected_overflow > 0

    log = tmp_path / "access.log"
    with BackendApp("reviews", faults=Faults(latency_ms=250)) as app, \
            EnvoyProcess(outbound_bootstrap(app.port, log, scaled_policy(doc, scaled)), workdir=tmp_path,
                         name="limited") as envoy:
        port = envoy.listener_port("outbound")
        # warm the pool: open min(maxConnections, maxRequests) connections one at a time, as a
        # long-running proxy has them (the replay models a warm pool)
        warm = [threading.Thread(target=get, args=(port,)) for _ in range(min(scaled.max_connections,
                                                                               scaled.http2_max_requests))]
        for t in warm:
            t.start()
            time.sleep(0.03)
        for t in warm:
            t.join()
        stat = f"cluster.{CLUSTER}.upstream_rq_"
        before = envoy.stats()
        codes = bursts(port, count=3, size=24, gap_s=0.6)
        wait_for_lines(log, len(warm) + 72)
        after = envoy.stats()
    overflow_stats = sum(after.get(stat + k, 0) - before.get(stat + k, 0)
                         for k in ("pending_overflow", "active_overflow"))
    got = read_log(log, "productpage").iloc[len(warm):]
    uo = int(got["response_flags"].fillna("").str.contains("UO").sum())
    assert codes.count(503) == uo
    assert overflow_stats == uo
    print(f"\n{scenario}: limits {scaled}: replay predicts {predicted.rejected_overflow} 503 UO "
          f"(pending {predicted.pending_overflow}, active {predicted.active_overflow}); Envoy: {uo} UO, "
          f"stats pending {after.get(stat + 'pending_overflow', 0) - before.get(stat + 'pending_overflow', 0)} "
          f"active {after.get(stat + 'active_overflow', 0) - before.get(stat + 'active_overflow', 0)}")
    assert agree(uo, predicted.rejected_overflow), (uo, predicted.rejected_overflow)


def _traffic(df):
    from analyzers.suggest.traffic import Traffic

    return Traffic(df, prefer="client")


def _dr_template(result):
    (res,) = resources(result, "istio").resources
    return res.template, res.context


# ---- local rate limit ---------------------------------------------------------------------------
def inbound_bootstrap(backend_port: int, log: Path) -> dict:
    cluster = "inbound|9080||"
    hcm = {"@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
           "stat_prefix": "inbound_9080", "access_log": [access_log(log)],
           "route_config": {"name": "inbound|9080||", "virtual_hosts": [{"name": "inbound|http|9080", "domains": ["*"],
                                                                         "routes": [{"name": "default", "match": {"prefix": "/"},
                                                                                     "route": {"cluster": cluster}}]}]},
           "http_filters": [ROUTER]}
    return {"admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
            "static_resources": {
                "clusters": [{"name": cluster, "type": "STATIC", "connect_timeout": "2s",
                              "load_assignment": {"cluster_name": cluster, "endpoints": [{"lb_endpoints": [{"endpoint": {
                                  "address": {"socket_address": {"address": "127.0.0.1",
                                                                 "port_value": backend_port}}}}]}]}}],
                "listeners": [{"name": "virtualInbound", "traffic_direction": "INBOUND",
                               "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
                               "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                                                               "typed_config": hcm}]}]}]}}


def paced(port: int, *, rps: float, seconds: float) -> list[int]:
    codes = []
    t0 = time.monotonic()
    for i in range(int(rps * seconds)):
        target = t0 + i / rps
        while (d := target - time.monotonic()) > 0:
            time.sleep(min(d, 0.002))
        codes.append(get(port))
    return codes


def test_local_rate_limit_matches_envoy(tmp_path):
    from meshctl.envoyfilter import apply_envoyfilters

    rec_log = tmp_path / "record.log"
    with BackendApp("reviews") as app:
        with EnvoyProcess(inbound_bootstrap(app.port, rec_log), workdir=tmp_path, name="record") as envoy:
            codes = paced(envoy.listener_port("virtualInbound"), rps=40, seconds=3)
            assert set(codes) == {200}
            wait_for_lines(rec_log, len(codes))
        recorded = read_log(rec_log, "reviews")
        assert (recorded["direction"] == "inbound").all() and (recorded["destination_service"] == SERVICE).all()
        result = analyze("rate-limit", recorded, SuggestConfig(headroom=2.0))
        (s,) = result.suggestions
        assert s.replay["suggested"].rate_limited == 0
        # scale the suggested bucket down to a quarter: the same traffic now overflows it
        b = s.limits
        scaled = TokenBucket(max(1, b.max_tokens // 4), max(1, b.tokens_per_fill // 4), b.fill_interval_s)
        s.limits = scaled
        from analyzers.suggest.registry import REGISTRY

        REGISTRY["rate-limit"].replay(_traffic_server(recorded), s, SuggestConfig(), [])
        predicted = s.replay["suggested"].rate_limited
        assert predicted > 0
        # the rendered EnvoyFilter, with the scaled bucket, applied as istiod would
        (res,) = resources(result, "istio").resources
        (ef,) = render_documents(res.template, res.context)
        assert ef["spec"]["configPatches"][0]["match"]["listener"]  # listener: under match:
        bucket = ef["spec"]["configPatches"][0]["patch"]["value"]["typed_config"]["token_bucket"]
        assert bucket["max_tokens"] == scaled.max_tokens and bucket["tokens_per_fill"] == scaled.tokens_per_fill
        log = tmp_path / "limited.log"
        applied = apply_envoyfilters(inbound_bootstrap(app.port, log), [ef], labels={"app": "reviews"})
        assert len(applied.applied) == 1, applied.skipped
        with EnvoyProcess(applied.bootstrap, workdir=tmp_path, name="limited") as envoy:
            codes = paced(envoy.listener_port("virtualInbound"), rps=40, seconds=3)
            wait_for_lines(log, len(codes))
            stats = envoy.stats("rate_limit")
    got = read_log(log, "reviews")
    rl = int(got["response_flags"].fillna("").str.contains("RL").sum())
    assert codes.count(429) == rl
    assert stats.get("http_local_rate_limiter.http_local_rate_limit.rate_limited") == rl
    print(f"\nbucket {scaled}: replay predicts {predicted} 429 RL of {len(codes)}; Envoy: {rl}")
    assert agree(rl, predicted), (rl, predicted)


def _traffic_server(df):
    from analyzers.suggest.traffic import Traffic

    return Traffic(df, prefer="server")
