"""The local-mesh primitives: topology loading, bootstraps Envoy accepts, and real traffic through them."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from meshctl.errors import InputError, MeshctlError
from meshctl.mesh import Faults, Mesh, drive, load_topology
from meshctl.mesh import bootstrap as bs
from meshctl.mesh.app import BackendApp, Call
from meshctl.mesh.telemetry import Collector, ProxyIdentity, apply_telemetry
from meshctl.mesh.topology import TelemetrySpec

TOPOLOGY = {
    "gateway": {"service": "frontend"},
    "telemetry": {"access_logs": ["json", "text"], "app_spans": True},
    "services": {
        "frontend": {"calls": [{"host": "reviews", "path": "/reviews/1"},
                               {"host": "api.partner.example", "port": 80, "path": "/quote"}]},
        "reviews": {"versions": {"v1": {}, "v2": {}}, "weights": {"v1": 50, "v2": 50},
                    "calls": [{"host": "ratings", "path": "/ratings/1"}]},
        "ratings": {},
    },
    "externals": {"api.partner.example": {"port": 80}},
}


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# ---- topology ------------------------------------------------------------------------------

def test_topology_pods_and_names():
    topo = load_topology({**TOPOLOGY, "services": {**TOPOLOGY["services"],
                                                   "reviews": {"versions": {"v1": {"replicas": 2}, "v2": {}}}}})
    pods = topo.pods()
    names = [p.name for p in pods]
    assert len(names) == len(set(names)) == 5
    v1 = [p for p in pods if p.workload == "reviews-v1"]
    assert len(v1) == 2
    # Kubernetes-like: <workload>-<replicaset hash>-<suffix>, same ReplicaSet hash for both replicas
    assert v1[0].name.rsplit("-", 1)[0] == v1[1].name.rsplit("-", 1)[0]
    assert v1[0].name.startswith("reviews-v1-")
    assert topo.resolve("reviews.default.svc.cluster.local", "default").name == "reviews"
    assert topo.resolve("api.partner.example", "default").host == "api.partner.example"
    assert topo.resolve("nowhere", "default") is None


def test_topology_errors_name_file_line_field(tmp_path):
    f = tmp_path / "topo.yaml"
    f.write_text("services:\n  frontend:\n    calls:\n      - {host: reviews}\n  reviews:\n"
                 "    versions:\n      v2:\n        faults: {error_rate: 1.5}\n")
    with pytest.raises(InputError) as exc:
        load_topology(f)
    err = exc.value
    assert err.file == str(f) and err.line == 8 and err.field == "services.reviews.versions.v2.faults.error_rate"

    f.write_text("services:\n  frontend:\n    calls: [{host: nowhere.example}]\n")
    with pytest.raises(InputError, match="neither a service nor a declared external") as exc:
        load_topology(f)
    # a cross-field error names its line too
    assert (exc.value.file, exc.value.line, exc.value.field) == (str(f), 3, "services.frontend.calls[0].host")
    f.write_text("services:\n  a: {calls: [{host: b}]}\n  b: {calls: [{host: a}]}\n")
    with pytest.raises(InputError, match="cycle: a -> b -> a"):
        load_topology(f)
    f.write_text("services:\n  r:\n    versions: {v1: {}, v2: {}}\n    weights: {v1: 50, v2: 40}\n")
    with pytest.raises(InputError, match="add up to 100") as exc:
        load_topology(f)
    assert exc.value.line == 4
    f.write_text("services:\n  r: {colour: blue}\n")
    with pytest.raises(InputError, match="unknown key 'colour'") as exc:
        load_topology(f)
    assert exc.value.line == 2
    f.write_text("services: [oops\n")
    with pytest.raises(InputError, match="not valid YAML"):
        load_topology(f)


# ---- bootstraps ----------------------------------------------------------------------------

@pytest.mark.envoy
def test_bootstraps_pass_envoy_validate(tmp_path, envoy_bin):
    from meshctl.envoy import validate_bootstrap

    topo = load_topology({
        **TOPOLOGY,
        "telemetry": {"access_logs": ["json", "text"], "otel_access_log": True, "otlp_protocol": "http"},
        "services": {
            **TOPOLOGY["services"],
            "reviews": {**TOPOLOGY["services"]["reviews"],
                        "retries": {"attempts": 2, "perTryTimeout": "2s"}, "timeout": "10s",
                        "rate_limit": {"max_tokens": 10, "tokens_per_fill": 10, "fill_interval": "1s"},
                        "traffic_policy": {
                            "connectionPool": {"tcp": {"maxConnections": 10, "connectTimeout": "1s"},
                                               "http": {"http1MaxPendingRequests": 5, "http2MaxRequests": 20,
                                                        "maxRequestsPerConnection": 100, "idleTimeout": "30s"}},
                            "outlierDetection": {"consecutive5xxErrors": 3, "consecutiveGatewayErrors": 2,
                                                 "interval": "5s", "baseEjectionTime": "30s",
                                                 "maxEjectionPercent": 50},
                            "loadBalancer": {"simple": "ROUND_ROBIN"}}},
        },
    })
    pods = {p.service.name: p for p in topo.pods()}
    collector = Collector(grpc_port=4317, http_port=4318)
    boots = {}
    for name in ("frontend", "reviews"):
        p = pods[name]
        boot = bs.sidecar_bootstrap(p, topo, app_port=12345, eds_dir=tmp_path, passthrough_port=23456)
        who = ProxyIdentity(pod=p.name, namespace=p.namespace, workload=p.workload, app=name, version="v1",
                            log_paths={"json": tmp_path / "a.json.log", "text": tmp_path / "a.text.log"})
        boots[name] = apply_telemetry(boot, topo.telemetry, who, collector)
    gw = bs.gateway_bootstrap(topo.gateway, topo, eds_dir=tmp_path)
    gw_who = ProxyIdentity("gw", "istio-system", "gw", "gw", role="gateway", log_paths={"json": tmp_path / "g.log"})
    boots["gateway"] = apply_telemetry(gw, TelemetrySpec(), gw_who, collector)
    # A rendered file access log with no file for it is a clear error, not a silent /dev/stdout.
    with pytest.raises(MeshctlError, match="no file to write to"):
        apply_telemetry(gw, TelemetrySpec(access_logs=["text"]), gw_who, collector)
    for cname in bs.service_endpoint_clusters(topo):
        bs.write_eds(tmp_path, cname, [("127.0.0.1", 1)])
    for name, boot in boots.items():
        check = validate_bootstrap(boot)
        assert check.ok, f"{name}: {check.message}"
    # The reviews cluster carries the DestinationRule translation; frontend's outbound route the retries.
    clusters = {c["name"]: c for c in boots["frontend"]["static_resources"]["clusters"]}
    v1 = clusters["outbound|9080|v1|reviews.default.svc.cluster.local"]
    th = v1["circuit_breakers"]["thresholds"][0]
    assert (th["max_connections"], th["max_pending_requests"], th["max_requests"]) == (10, 5, 20)
    assert v1["outlier_detection"]["consecutive_5xx"] == 3
    assert v1["common_lb_config"]["healthy_panic_threshold"]["value"] == 0.0
    assert "PassthroughCluster" in clusters
    # Telemetry comes from `meshctl render` (EnvoyFilters), with per-proxy settings filled in.
    hcms = [hcm for _, hcm in bs.iter_hcms(boots["reviews"])]
    assert len(hcms) == 2  # virtualInbound + 0.0.0.0_9080
    for hcm in hcms:
        paths = sorted(log["typed_config"].get("path", "otlp") for log in hcm["access_log"])
        assert paths == sorted([str(tmp_path / "a.json.log"), str(tmp_path / "a.text.log"), "otlp"])
        provider = hcm["tracing"]["provider"]["typed_config"]
        assert provider["service_name"] == "reviews.default"
        assert provider["http_service"]["http_uri"]["cluster"] == \
            "outbound|4318||opentelemetry-collector.observability.svc.cluster.local"


def test_destination_rule_translation_errors():
    with pytest.raises(InputError, match="positive integer"):
        bs.destination_rule_cluster_settings({"connectionPool": {"http": {"http2MaxRequests": 0}}})
    with pytest.raises(InputError, match="duration"):
        bs.destination_rule_cluster_settings({"outlierDetection": {"interval": "ten seconds"}})
    assert bs.parse_duration("500ms", "x") == "0.500s"
    assert bs.parse_duration("1m", "x") == "60.000s"


# ---- apps and the traffic driver -----------------------------------------------------------

def test_backend_faults_and_driver():
    with BackendApp("svc", faults=Faults(error_rate=0.3, error_code=503), seed=7) as app:
        result = drive(app.url, requests=200, concurrency=4)
    assert result.requests == 200 and result.failures == 0
    assert set(result.by_code) == {200, 503}
    assert 30 <= result.by_code[503] <= 90
    assert app.stats.requests == 200

    with BackendApp("dead", faults=Faults(fail=True)) as app:
        result = drive(app.url, requests=20)
    assert result.by_code == {503: 20}

    with BackendApp("down", faults=Faults(down=True)) as app:
        result = drive(app.url, requests=3, timeout=2)
    assert result.failures == 3 and result.requests == 0


def test_driver_is_bounded_and_loopback_only():
    with pytest.raises(InputError, match="loopback"):
        drive("http://example.com/", requests=1)
    with pytest.raises(InputError, match="loopback"):
        drive("http://10.0.0.1:80/", requests=1)
    with pytest.raises(InputError, match="requests"):
        drive("http://127.0.0.1:1/", requests=0)
    with BackendApp("slow", faults=Faults(latency_ms=50)) as app:
        result = drive(app.url, requests=10_000, duration=0.5, concurrency=2)
    assert result.stopped_by == "duration"
    assert result.sent < 100


def test_app_propagates_headers_to_calls():
    seen: list[dict[str, str]] = []
    lock = threading.Lock()

    with BackendApp("leaf") as leaf:
        original = leaf._server.RequestHandlerClass._serve

        def recording(handler):
            with lock:
                seen.append({k.lower(): v for k, v in handler.headers.items()})
            original(handler)

        leaf._server.RequestHandlerClass._serve = recording
        with BackendApp("mid", calls=[Call("leaf", port=leaf.port, path="/x")]) as mid:
            tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
            result = drive(mid.url, requests=1, headers={"x-request-id": "rid-1", "traceparent": tp, "b3": "1-2-1"})
    assert result.by_code == {200: 1}
    assert seen[0]["x-request-id"] == "rid-1"
    assert seen[0]["traceparent"] == tp and seen[0]["b3"] == "1-2-1"
    assert seen[0]["host"] == f"leaf:{leaf.port}"


# ---- a real mesh ---------------------------------------------------------------------------

@pytest.mark.envoy
@pytest.mark.slow
def test_mesh_logs_and_traces_join(tmp_path, envoy_bin):
    with Mesh(load_topology(TOPOLOGY), tmp_path / "mesh") as mesh:
        envoy_pids = [p.envoy.proc.pid for p in [mesh.gateway, *mesh.pods]]
        result = mesh.drive(requests=60, concurrency=4, headers={"host": "shop.example.com"})
        assert mesh.flush_telemetry(timeout=15)
        files = mesh.access_logs("json")
        manifest = json.loads((tmp_path / "mesh" / "mesh.json").read_text())
    assert result.by_code == {200: 60}
    # every process stopped
    import os

    for pid in envoy_pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert {p["role"] for p in manifest["pods"]} == {"gateway", "sidecar"}

    rows = {f.pod: _lines(f.path) for f in files}
    by_workload = {f.workload: rows[f.pod] for f in files}
    gw = by_workload["istio-ingressgateway"]
    assert len(gw) == 60 and {r["upstream_cluster"] for r in gw} == {"outbound|9080||frontend.default.svc.cluster.local"}
    assert {r["authority"] for r in gw} == {"shop.example.com"}
    front = by_workload["frontend-v1"]
    clusters = Counter(r["upstream_cluster"] for r in front)
    assert clusters["inbound|9080||"] == 60 and clusters["PassthroughCluster"] == 60
    assert clusters["outbound|9080|v1|reviews.default.svc.cluster.local"] + \
        clusters["outbound|9080|v2|reviews.default.svc.cluster.local"] == 60
    assert {r["route_name"] for r in front if r["upstream_cluster"] == "PassthroughCluster"} == {"allow_any"}
    # The same request id on the client side (frontend outbound) and the server side (reviews inbound).
    out_ids = {r["request_id"]: r["upstream_cluster"].split("|")[2] for r in front
               if r["upstream_cluster"].startswith("outbound|9080|v")}
    for version in ("v1", "v2"):
        inbound = [r for r in by_workload[f"reviews-{version}"] if r["upstream_cluster"] == "inbound|9080||"]
        assert inbound
        for r in inbound:
            assert out_ids[r["request_id"]] == version
    # Gateway request ids propagate all the way to ratings.
    assert all(r["pod_name"] == f.pod for f in files for r in rows[f.pod])  # %ENVIRONMENT(POD_NAME)%
    gw_ids = {r["request_id"] for r in gw}
    assert {r["request_id"] for r in by_workload["ratings-v1"]} == gw_ids
    # Text logs carry the same requests.
    text = mesh.access_logs("text")
    assert sum(len(f.path.read_text().splitlines()) for f in text) == sum(len(v) for v in rows.values())

    # Traces: one trace per request, proxies' and apps' spans joined by parent ids.
    traces: dict[str, list[tuple[str, dict]]] = {}
    for doc in _lines(tmp_path / "mesh" / "otlp" / "traces.jsonl"):
        for rs in doc["resourceSpans"]:
            svc = next(a["value"]["stringValue"] for a in rs["resource"]["attributes"] if a["key"] == "service.name")
            for ss in rs["scopeSpans"]:
                for s in ss["spans"]:
                    traces.setdefault(s["traceId"], []).append((svc, s))
    assert len(traces) == 60
    for spans in traces.values():
        ids = {s["spanId"] for _, s in spans}
        roots = [s for _, s in spans if not s.get("parentSpanId")]
        assert len(roots) == 1, "exactly one root per trace"
        assert all(s["parentSpanId"] in ids for _, s in spans if s.get("parentSpanId"))
        services = {svc for svc, _ in spans}
        assert {"istio-ingressgateway.istio-system", "frontend.default", "reviews.default", "ratings.default",
                "frontend", "reviews", "ratings"} <= services


# ---- resilience features as Envoy enforces them ----------------------------------------------

def _quiet(services: dict, **extra) -> dict:
    """A topology without tracing (faster) writing JSON and TEXT access logs."""
    return {"gateway": {"service": next(iter(services))},
            "telemetry": {"access_logs": ["json", "text"], "tracing": False, "app_spans": False},
            "services": services, **extra}


@pytest.mark.envoy
def test_local_rate_limit_gives_429_rl(tmp_path, envoy_bin):
    topo = _quiet({"api": {"rate_limit": {"max_tokens": 20, "tokens_per_fill": 20, "fill_interval": "60s"}}})
    with Mesh(topo, tmp_path / "m") as mesh:
        result = mesh.drive(requests=50, concurrency=4)
        mesh.flush_telemetry()
        stats = mesh.select("api")[0].envoy.stats("rate_limit")
        logs = {f.role: _lines(f.path) for f in mesh.access_logs("json")}
    assert result.by_code == {200: 20, 429: 30}
    inbound = Counter((r["response_code"], r["response_flags"]) for r in logs["sidecar"])
    assert inbound == {(200, "-"): 20, (429, "RL"): 30}
    assert Counter(r["response_code"] for r in logs["gateway"]) == {200: 20, 429: 30}
    assert stats["http_local_rate_limiter.http_local_rate_limit.rate_limited"] == 30


@pytest.mark.envoy
def test_circuit_breaker_overflow_gives_503_uo(tmp_path, envoy_bin):
    topo = _quiet({"api": {"faults": {"latency_ms": 150},
                           "traffic_policy": {"connectionPool": {"tcp": {"maxConnections": 2},
                                                                 "http": {"http1MaxPendingRequests": 1,
                                                                          "http2MaxRequests": 2}}}}})
    with Mesh(topo, tmp_path / "m") as mesh:
        result = mesh.drive(requests=60, concurrency=12)
        mesh.flush_telemetry()
        stats = mesh.gateway.envoy.stats("outbound.9080..api")
        gw = _lines(mesh.access_logs("json")[0].path)
    uo = sum(1 for r in gw if r["response_flags"] == "UO")
    assert uo > 0 and result.by_code.get(503, 0) == uo
    assert all(r["response_code"] == 503 for r in gw if r["response_flags"] == "UO")
    prefix = "cluster.outbound|9080||api.default.svc.cluster.local."
    overflow = stats.get(prefix + "upstream_rq_pending_overflow", 0)
    assert overflow == uo, {k: v for k, v in stats.items() if "overflow" in k}


@pytest.mark.envoy
def test_outlier_detection_ejects_failing_host(tmp_path, envoy_bin):
    topo = _quiet({
        "front": {"calls": [{"host": "api"}]},
        "api": {"versions": {"v1": {"replicas": 2, "hosts": {"0": {"fail": True}}}},
                "traffic_policy": {"outlierDetection": {"consecutive5xxErrors": 3, "interval": "1s",
                                                        "baseEjectionTime": "60s", "maxEjectionPercent": 50}}},
    })
    with Mesh(topo, tmp_path / "m") as mesh:
        first = mesh.drive(requests=30, concurrency=1)
        # Envoy merges host-health changes into the load balancer within update_merge_window (1 s default).
        time.sleep(1.2)
        second = mesh.drive(requests=30, concurrency=1)
        mesh.flush_telemetry()
        front = next(f for f in mesh.access_logs("json") if f.app == "front")
        stats = mesh.select("front")[0].envoy.stats("outlier_detection")
        bad = mesh.select("api:0")[0]
    rows = [r for r in _lines(front.path) if r["upstream_cluster"].startswith("outbound")]
    failed = [r for r in rows if r["response_code"] == 503]
    assert first.by_code[502] >= 3 and {r["upstream_host"] for r in failed} == {f"127.0.0.1:{bad.inbound_port}"}
    assert second.by_code == {200: 30}  # the ejected host gets nothing any more (no panic routing)
    prefix = "cluster.outbound|9080||api.default.svc.cluster.local.outlier_detection."
    assert stats[prefix + "ejections_enforced_consecutive_5xx"] == 1


@pytest.mark.envoy
def test_faults_change_live_and_down_host(tmp_path, envoy_bin):
    topo = _quiet({"api": {"versions": {"v1": {}, "v2": {"faults": {"down": True}}}, "weights": {"v1": 50, "v2": 50}}})
    with Mesh(topo, tmp_path / "m") as mesh:
        first = mesh.drive(requests=40, concurrency=2)
        mesh.set_faults("api-v1", {"error_rate": 1.0, "error_code": 500})
        second = mesh.drive(requests=40, concurrency=2)
        mesh.flush_telemetry()
        logs = {f.workload: _lines(f.path) for f in mesh.access_logs("json")}
    # v2's app refuses connections: its sidecar answers 503 UF (upstream connection failure)
    assert first.by_code[200] + first.by_code[503] == 40 and first.by_code[503] > 5
    uf = [r for r in logs["api-v2"] if r["response_flags"] == "UF"]
    assert len(uf) == first.by_code[503] + second.by_code[503]
    assert {r["upstream_cluster"] for r in uf} == {"inbound|9080||"}
    assert set(second.by_code) == {500, 503}  # v1 now answers 500 on every request
    assert {r["response_code"] for r in logs["api-v1"]} == {200, 500}


def test_apply_destination_rule_subsets_override_the_host_policy(tmp_path):
    topo = load_topology({"services": {"front": {"calls": [{"host": "api"}]},
                                       "api": {"versions": {"v1": {}, "v2": {}}}}})
    front = next(p for p in topo.pods() if p.service.name == "front")
    boot = bs.sidecar_bootstrap(front, topo, app_port=1, eds_dir=tmp_path)
    rule = {"kind": "DestinationRule", "metadata": {"name": "api"}, "spec": {
        "host": "api.default.svc.cluster.local",
        "trafficPolicy": {"connectionPool": {"http": {"http2MaxRequests": 100}}},
        "subsets": [{"name": "v2", "labels": {"version": "v2"},
                     "trafficPolicy": {"connectionPool": {"http": {"http2MaxRequests": 7}},
                                       "outlierDetection": {"consecutive5xxErrors": 2}}}]}}
    patched, changed = bs.apply_destination_rule(boot, rule)
    assert set(changed) == {"outbound|9080||api.default.svc.cluster.local",
                            "outbound|9080|v1|api.default.svc.cluster.local",
                            "outbound|9080|v2|api.default.svc.cluster.local"}
    clusters = {c["name"]: c for c in patched["static_resources"]["clusters"]}
    limit = {n.split("|")[2]: c["circuit_breakers"]["thresholds"][0]["max_requests"] for n, c in clusters.items()
             if n.startswith("outbound|")}
    assert limit == {"": 100, "v1": 100, "v2": 7}
    assert "outlier_detection" in clusters["outbound|9080|v2|api.default.svc.cluster.local"]
    assert "outlier_detection" not in clusters["outbound|9080|v1|api.default.svc.cluster.local"]
    # the input is not modified, and a rule for a host this proxy does not call changes nothing
    assert boot["static_resources"]["clusters"] != patched["static_resources"]["clusters"]
    assert bs.apply_destination_rule(boot, {"spec": {"host": "other.default.svc.cluster.local",
                                                     "trafficPolicy": rule["spec"]["trafficPolicy"]}})[1] == []
