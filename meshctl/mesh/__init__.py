"""A real Envoy mesh on one machine: apps, Istio-like sidecars and gateway, OTLP receiver, traffic.

Used by `meshctl demo`, examples/local-mesh and every test that needs real proxy traffic. Everything
listens on 127.0.0.1 with ephemeral ports; every process is stopped when the mesh stops.

Quick start (see docs/local-mesh.md for more)::

    from meshctl.mesh import Mesh, load_topology

    topo = load_topology({
        "gateway": {"service": "frontend"},
        "telemetry": {"access_logs": ["json", "text"]},
        "services": {
            "frontend": {"calls": [{"host": "reviews", "path": "/reviews/1"}]},
            "reviews": {"versions": {"v1": {}, "v2": {"faults": {"error_rate": 0.05}}},
                        "weights": {"v1": 50, "v2": 50}},
        },
    })
    with Mesh(topo, workdir=tmp_path) as mesh:          # starts receiver, apps, sidecars, gateway
        result = mesh.drive(requests=300, concurrency=8)  # bounded, loopback only
        mesh.flush_telemetry()                            # spans are exported on a timer
        for f in mesh.access_logs("json"):                # AccessLogFile(path, format, pod, workload, ...)
            ...
        spans = mesh.receiver.traces_path                 # OTLP JSON lines

API
---
Topology (meshctl.mesh.topology)
    load_topology(path | dict) -> Topology      YAML/dict -> dataclasses; InputError names file/line/field
    Topology(services, externals, gateway, telemetry, cluster_domain, seed), ServiceSpec, VersionSpec,
    ExternalSpec, GatewaySpec, TelemetrySpec; Topology.pods() -> PodSpec with Kubernetes-like pod names
Mesh (meshctl.mesh.runner)
    Mesh(topology, workdir, *, receiver=True, log_level="warning", telemetry_hook=None)  context manager
    .gateway_url, .drive(**drive_kwargs) -> TrafficResult, .flush_telemetry(), .access_logs(fmt=None)
    log_sources(access_log_files) -> meshctl.ingest sources, each file with its proxy's identity
    .pods / .gateway (Pod: name, workload, app, version, role, envoy: EnvoyProcess, backend: BackendApp,
    inbound_port, outbound_ports, log_paths), .select(target), .set_faults(target, Faults|dict),
    .write_endpoints(), .receiver (OTLPReceiver), .manifest() (also written to WORKDIR/mesh.json)
    handle_sigterm(): context manager turning SIGTERM into KeyboardInterrupt so the mesh is stopped
Apps (meshctl.mesh.app)
    Faults(error_rate, error_code=503, latency_ms, latency_sigma, fail, down), Call(host, port, path, ...)
    BackendApp(name, version=, pod=, faults=, calls=, outbound_port=, tracer=)  context manager, .port, .url
Bootstraps (meshctl.mesh.bootstrap) -- usable on their own with meshctl.envoy.EnvoyProcess
    sidecar_bootstrap(pod_spec, topo, app_port=, eds_dir=, passthrough_port=, runtime=)
    gateway_bootstrap(gateway_spec, topo, eds_dir=, runtime=)
    cluster_name("outbound", 9080, "v1", host), write_eds(eds_dir, cluster, [(ip, port)]),
    destination_rule_cluster_settings(trafficPolicy), apply_destination_rule(bootstrap, DestinationRule)
    -> (bootstrap, changed clusters), local_ratelimit_filter(spec), retry_policy(retries), iter_hcms(bootstrap)
    listener names: INBOUND_LISTENER ("virtualInbound"), outbound_listener_name(port) ("0.0.0.0_9080")
Telemetry (meshctl.mesh.telemetry) -- from `meshctl render istio --mode envoyfilter`, not hand-written
    render_values(TelemetrySpec) / render_envoyfilters(TelemetrySpec): the render calls and their output
    apply_telemetry(bootstrap, TelemetrySpec, ProxyIdentity, Collector, envoyfilters=[...]) -> bootstrap
    proxy_env(ProxyIdentity): POD_NAME, CANONICAL_REVISION, OTEL_RESOURCE_ATTRIBUTES ... for EnvoyProcess(env=)
Receiver (meshctl.receiver)
    OTLPReceiver(out_dir, grpc_port=0, http_port=0, defer=False)  context manager; .grpc_port, .http_port,
    .wait_for(spans=, logs=, timeout=, quiet=), .flush(), .stats, .traces_path / .logs_path
Demo (meshctl.mesh.demo)
    run_demo(DemoOptions(out_dir, healthy, requests, ...), Reporter) -> DemoResult (stages, verdict, exit_code)

Process lifetime: Envoy gets SIGTERM when the *thread* that spawned it ends, so proxies are started
from the calling thread; keep that thread (and process) alive while the mesh runs.
Traffic (meshctl.mesh.traffic)
    drive(url, *, requests, duration, concurrency, paths, method, headers, rate, timeout, on_response)
    -> TrafficResult(requests, failures, by_code, seconds, latencies_ms, rps, errors, percentile(q))
"""

from __future__ import annotations

from meshctl.mesh.app import BackendApp, Call, Faults
from meshctl.mesh.runner import AccessLogFile, Mesh, Pod, handle_sigterm, log_sources
from meshctl.mesh.topology import (
    ExternalSpec,
    GatewaySpec,
    ServiceSpec,
    TelemetrySpec,
    Topology,
    VersionSpec,
    load_topology,
)
from meshctl.mesh.traffic import TrafficResult, drive

__all__ = [
    "AccessLogFile", "BackendApp", "Call", "ExternalSpec", "Faults", "GatewaySpec", "Mesh", "Pod",
    "ServiceSpec", "TelemetrySpec", "Topology", "TrafficResult", "VersionSpec", "drive", "handle_sigterm",
    "load_topology", "log_sources",
]
