"""The supervisor: start a topology (apps, sidecars, gateway, stand-ins, OTLP receiver), stop all of it.

Envoy dies with the process that spawned it, so this process stays alive while the mesh runs and
stops every process it started itself: on normal exit, on exceptions, on Ctrl-C (KeyboardInterrupt)
and, via `handle_sigterm()`, on SIGTERM.
"""

from __future__ import annotations

import json
import signal
import threading
import time
import urllib.error
import uuid
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from meshctl.envoy import EnvoyProcess
from meshctl.errors import InputError, MeshctlError
from meshctl.mesh import bootstrap as bs
from meshctl.mesh.app import BackendApp, Faults, make_tracer
from meshctl.mesh.telemetry import (
    Collector,
    ProxyIdentity,
    apply_telemetry,
    pod_labels,
    proxy_env,
    runtime_overrides,
)
from meshctl.mesh.topology import PodSpec, Topology, load_topology
from meshctl.mesh.traffic import TrafficResult, drive

if TYPE_CHECKING:  # pragma: no cover
    from meshctl.identity import Workload
    from meshctl.ingest import FileSource

LOG_FORMAT_NAMES = {"json": "istio-json", "text": "istio-text"}


@dataclass
class AccessLogFile:
    """One proxy's access-log file and whose proxy wrote it (a sidecar's log does not say)."""

    path: Path
    format: str          # istio-json | istio-text
    pod: str
    namespace: str
    workload: str
    app: str
    version: str | None
    role: str            # sidecar | gateway

    def reporter(self) -> Workload:
        """Whose proxy wrote the file, with the labels Kubernetes would give its pod."""
        from meshctl.identity import workload_of

        return workload_of(pod=self.pod, namespace=self.namespace, labels=pod_labels(self.app, self.version, self.role))


def log_sources(files: Iterable[AccessLogFile]) -> list[FileSource]:
    """`meshctl.ingest` sources for access-log files, each with its proxy's identity."""
    from meshctl.ingest import FileSource
    from meshctl.sources.files import expand_inputs

    return [FileSource(inp, f.reporter()) for f in files for inp in expand_inputs([str(f.path)])]


@dataclass
class Pod:
    """A running instance: an app (none for the gateway) and its proxy."""

    name: str
    namespace: str
    workload: str
    app: str
    version: str | None
    role: str                                   # sidecar | gateway
    envoy: EnvoyProcess
    spec: PodSpec | None = None
    backend: BackendApp | None = None
    inbound_port: int | None = None             # sidecar inbound listener (what other proxies call)
    outbound_ports: dict[int, int] = field(default_factory=dict)  # service port -> local outbound listener
    listen_port: int | None = None              # gateway listener
    log_paths: dict[str, Path] = field(default_factory=dict)

    @property
    def labels(self) -> dict[str, str]:
        return pod_labels(self.app, self.version, self.role)


class Mesh:
    """A running local mesh. Use as a context manager:

    >>> with Mesh("topology.yaml", workdir=tmp) as mesh:
    ...     mesh.drive(requests=200)
    ...     mesh.flush_telemetry()
    ...     files = mesh.access_logs()
    """

    def __init__(
        self,
        topology: Topology | str | Path | dict[str, Any],
        workdir: str | Path,
        *,
        receiver: bool = True,
        log_level: str = "warning",
        envoyfilters: list[dict[str, Any]] | None = None,
        telemetry_hook: Any = None,
    ) -> None:
        self.topology = topology if isinstance(topology, Topology) else load_topology(topology)
        self.topology.validate()
        self.workdir = Path(workdir)
        self.log_level = log_level
        self.want_receiver = receiver and (self.topology.telemetry.tracing or self.topology.telemetry.otel_access_log
                                           or self.topology.telemetry.app_spans)
        # Extra Istio EnvoyFilters applied to every proxy they select (workloadSelector labels app/version,
        # namespace), after the rendered telemetry: e.g. a suggested local rate limit.
        self.envoyfilters = list(envoyfilters or [])
        # A callable (bootstrap, ProxyIdentity, Collector | None) -> bootstrap that adds telemetry;
        # defaults to meshctl.mesh.telemetry.apply_telemetry with the topology's telemetry settings.
        self.telemetry_hook = telemetry_hook
        self.receiver: Any = None
        self.pods: list[Pod] = []
        self.gateway: Pod | None = None
        self.standins: dict[str, BackendApp] = {}
        self._envoys: list[EnvoyProcess] = []
        self._apps: list[BackendApp] = []
        self._tracer_shutdowns: list[Any] = []
        self._started = False
        self.started_at: float | None = None
        self.last_traffic_at: float | None = None

    # ---- paths ----
    @property
    def logs_dir(self) -> Path:
        return self.workdir / "logs"

    @property
    def eds_dir(self) -> Path:
        return self.workdir / "eds"

    @property
    def otlp_dir(self) -> Path:
        return self.workdir / "otlp"

    @property
    def envoy_dir(self) -> Path:
        return self.workdir / "envoy"

    @property
    def all_pods(self) -> list[Pod]:
        """The gateway (if any), then every sidecar pod."""
        return [*([self.gateway] if self.gateway else []), *self.pods]

    # ---- lifecycle ----
    def __enter__(self) -> Mesh:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, timeout: float = 30.0) -> Mesh:
        if self._started:
            return self
        self._started = True
        self.started_at = time.monotonic()
        try:
            self._start(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self, timeout: float) -> None:
        topo, tel = self.topology, self.topology.telemetry
        for d in (self.logs_dir, self.eds_dir, self.envoy_dir):
            d.mkdir(parents=True, exist_ok=True)
        collector = None
        if self.want_receiver:
            from meshctl.receiver import OTLPReceiver

            self.receiver = OTLPReceiver(self.otlp_dir, grpc_port=0, http_port=0, defer=True).start()
            collector = Collector(grpc_port=self.receiver.grpc_port, http_port=self.receiver.http_port)

        # 1. External stand-ins: one local server answers every host the mesh does not know.
        passthrough_port = None
        if topo.externals:
            # Different external hosts share the stand-in (it answers by Host); faults come from the first
            # external (each external host may get its own stand-in later if needed).
            ext = topo.externals[0]
            standin = BackendApp("external", pod=f"standin-{ext.host}", faults=ext.faults, seed=topo.seed).start()
            self._apps.append(standin)
            for e in topo.externals:
                self.standins[e.host] = standin
            passthrough_port = standin.port

        # 2. Apps (ports known at once), then proxies (EDS files make start order irrelevant).
        runtime = runtime_overrides(tel)
        pod_specs = topo.pods()
        for spec in pod_specs:
            envoy = EnvoyProcess({}, workdir=self.envoy_dir, name=spec.name, log_level=self.log_level)
            pod = Pod(name=spec.name, namespace=spec.namespace, workload=spec.workload, app=spec.service.name,
                      version=spec.version.name, role="sidecar", envoy=envoy, spec=spec)
            pod.backend = self._make_app(spec, pod, collector)
            pod.log_paths = self._log_paths(spec.name, spec.namespace)
            boot = bs.sidecar_bootstrap(spec, topo, app_port=pod.backend.port, eds_dir=self.eds_dir,
                                        passthrough_port=passthrough_port, runtime=runtime)
            envoy.bootstrap = self._telemetry(boot, pod, collector)
            self.pods.append(pod)
        if topo.gateway is not None:
            gw = topo.gateway
            name = bs.gateway_pod_name(gw, topo)
            envoy = EnvoyProcess({}, workdir=self.envoy_dir, name=name, log_level=self.log_level)
            pod = Pod(name=name, namespace=gw.namespace, workload=gw.name, app=gw.name, version=None, role="gateway",
                      envoy=envoy)
            pod.log_paths = self._log_paths(name, gw.namespace)
            boot = bs.gateway_bootstrap(gw, topo, eds_dir=self.eds_dir, runtime=runtime, pod=name)
            envoy.bootstrap = self._telemetry(boot, pod, collector)
            self.gateway = pod
        # Empty EDS files first, so each proxy initialises at once; real endpoints follow.
        clusters = bs.service_endpoint_clusters(topo)
        for cname in clusters:
            bs.write_eds(self.eds_dir, cname, [], version="0")
        # Sidecars, then the gateway (stop() goes the other way: ingress first).
        self._envoys = [p.envoy for p in [*self.pods, *([self.gateway] if self.gateway else [])]]
        # Started from this thread, one after the other: Envoy gets SIGTERM when the *thread* that
        # spawned it ends (parent-death signal), so a thread pool here would kill them at once.
        for envoy in self._envoys:
            envoy.start(timeout=timeout)
        for pod in self.pods:
            ports = pod.envoy.listener_ports()
            pod.inbound_port = ports[bs.INBOUND_LISTENER]
            pod.outbound_ports = {int(n.rsplit("_", 1)[1]): p for n, p in ports.items() if n != bs.INBOUND_LISTENER}
        if self.gateway is not None:
            self.gateway.listen_port = self.gateway.envoy.listener_port(bs.outbound_listener_name(topo.gateway.port))

        # 3. Endpoints: every outbound cluster lists the inbound ports of its pods' sidecars.
        self.write_endpoints()
        self._wait_endpoints(timeout)
        self._write_manifest()

    def _log_paths(self, pod: str, namespace: str) -> dict[str, Path]:
        """Per format, the file the proxy's stdout goes to, laid out like a Kubernetes node's
        `/var/log/pods/<ns>_<pod>_<uid>/istio-proxy/0.log`, so `meshctl collect logs DIR` knows the pod."""
        uid = uuid.uuid5(uuid.NAMESPACE_DNS, f"{pod}.{namespace}.{self.topology.seed}")
        paths = {}
        for fmt in self.topology.telemetry.access_logs:
            path = self.logs_dir / fmt / f"{namespace}_{pod}_{uid}" / "istio-proxy" / "0.log"
            path.parent.mkdir(parents=True, exist_ok=True)
            paths[fmt] = path
        return paths

    def _make_app(self, spec: PodSpec, pod: Pod, collector: Collector | None) -> BackendApp:
        tel = self.topology.telemetry
        tracer = None
        if tel.app_spans and collector is not None and collector.grpc_port is not None:
            made = make_tracer(spec.service.name, namespace=spec.namespace, version=spec.version.name, pod=spec.name,
                               otlp_grpc_endpoint=f"{collector.host}:{collector.grpc_port}")
            if made is not None:
                tracer, shutdown = made
                self._tracer_shutdowns.append(shutdown)

        def outbound(port: int, pod: Pod = pod) -> int:
            try:
                return pod.outbound_ports[port]
            except KeyError:
                raise MeshctlError(f"{pod.name} has no outbound listener for port {port}") from None

        # A seed per pod that is the same in every run (hash() of a str changes with each interpreter).
        app = BackendApp(spec.service.name, version=spec.version.name, pod=spec.name, faults=spec.faults,
                         calls=spec.service.calls, outbound_port=outbound, tracer=tracer,
                         seed=zlib.crc32(f"{self.topology.seed}/{spec.name}".encode()))
        self._apps.append(app)
        return app.start()

    def _telemetry(self, boot: dict[str, Any], pod: Pod, collector: Collector | None) -> dict[str, Any]:
        who = ProxyIdentity(pod=pod.name, namespace=pod.namespace, workload=pod.workload, app=pod.app,
                            version=pod.version, role=pod.role, log_paths=dict(pod.log_paths))
        pod.envoy.env = proxy_env(who)
        if self.telemetry_hook is not None:
            return self.telemetry_hook(boot, who, collector)
        return apply_telemetry(boot, self.topology.telemetry, who, collector, envoyfilters=self.envoyfilters)

    def _endpoints(self) -> dict[str, list[tuple[str, int]]]:
        """Outbound EDS cluster name -> (address, inbound port) of every sidecar of its service (version)."""
        return {cname: [(bs.LOOPBACK, p.inbound_port) for svc, vname in members for p in self.pods
                        if p.app == svc.name and p.namespace == svc.namespace
                        and (vname is None or p.version == vname) and p.inbound_port]
                for cname, members in bs.service_endpoint_clusters(self.topology).items()}

    def write_endpoints(self, version: str | None = None) -> None:
        """(Re)write every outbound cluster's EDS file from the pods' sidecar inbound ports."""
        stamp = version or str(time.time_ns())
        for cname, endpoints in self._endpoints().items():
            bs.write_eds(self.eds_dir, cname, endpoints, version=stamp)

    def _wait_endpoints(self, timeout: float) -> None:
        """Until every proxy has loaded the endpoints just written. A proxy whose admin API does not
        answer (a loaded machine) is asked again, never taken for one that has them."""
        expected = {cname: len(endpoints) for cname, endpoints in self._endpoints().items()}
        deadline = time.monotonic() + timeout
        for pod in self.all_pods:
            while True:
                have = _cluster_host_counts(pod.envoy)
                missing = None if have is None else {c: n for c, n in expected.items() if c in have and have[c] != n}
                if missing == {}:
                    break
                if time.monotonic() > deadline:
                    loaded = ("no answer from its admin API" if have is None
                              else f"{missing} (expected) vs {({c: have[c] for c in missing})} (loaded)")
                    raise MeshctlError(f"proxy {pod.name} did not load its endpoints: {loaded}")
                time.sleep(0.05)

    def stop(self) -> None:
        """Stop everything this mesh started (idempotent; never raises for one failing part)."""
        errors: list[str] = []
        # Ingress first so no new traffic enters, then sidecars, apps, app tracers, receiver last.
        for envoy in reversed(self._envoys):
            try:
                envoy.stop()
            except Exception as exc:  # keep stopping the others
                errors.append(f"{envoy.name}: {exc}")
        for app in self._apps:
            try:
                app.stop()
            except Exception as exc:
                errors.append(f"{app.pod}: {exc}")
        for shutdown in self._tracer_shutdowns:
            try:
                shutdown()
            except Exception as exc:
                errors.append(f"tracer: {exc}")
        self._tracer_shutdowns.clear()
        if self.receiver is not None:
            try:
                self.receiver.stop()
            except Exception as exc:
                errors.append(f"receiver: {exc}")
        if errors:
            import sys

            print("meshctl mesh: while stopping: " + "; ".join(errors), file=sys.stderr)

    # ---- using it ----
    @property
    def gateway_url(self) -> str:
        if self.gateway is None or self.gateway.listen_port is None:
            raise MeshctlError("this mesh has no running gateway")
        return f"http://{bs.LOOPBACK}:{self.gateway.listen_port}"

    def drive(self, **kwargs: Any) -> TrafficResult:
        """`meshctl.mesh.traffic.drive` against the gateway (same arguments, minus the URL)."""
        try:
            return drive(self.gateway_url, **kwargs)
        finally:
            self.last_traffic_at = time.monotonic()

    def pod(self, name: str) -> Pod:
        for p in self.all_pods:
            if p.name == name:
                return p
        raise KeyError(name)

    def select(self, target: str) -> list[Pod]:
        """Pods by pod name, workload (`reviews-v2`), service (`reviews`) or `service:replica-index`."""
        if ":" in target:
            workload, idx = target.rsplit(":", 1)
            pods = [p for p in self.pods if p.workload == workload or p.app == workload]
            return [p for p in pods if p.spec is not None and str(p.spec.replica) == idx]
        return [p for p in self.pods if target in (p.name, p.workload, p.app)]

    def set_faults(self, target: str, faults: Faults | dict[str, Any]) -> list[Pod]:
        """Change the faults of running apps (see `select`); `down` cannot be changed live."""
        f = faults if isinstance(faults, Faults) else Faults.from_dict(faults)
        pods = self.select(target)
        if not pods:
            raise InputError(f"no pod matches {target!r}", field="target")
        for p in pods:
            assert p.backend is not None
            p.backend.faults = f
        return pods

    def access_logs(self, fmt: str | None = None) -> list[AccessLogFile]:
        """Every proxy's access-log files (optionally one format: json | text)."""
        out = []
        for p in self.all_pods:
            for f, path in p.log_paths.items():
                if fmt is None or f == fmt:
                    out.append(AccessLogFile(path=path, format=LOG_FORMAT_NAMES[f], pod=p.name, namespace=p.namespace,
                                             workload=p.workload, app=p.app, version=p.version, role=p.role))
        return out

    def flush_telemetry(self, timeout: float = 15.0) -> bool:
        """Wait until proxies and apps have exported their spans (Envoy flushes on a timer, not on exit)."""
        for shutdown in self._tracer_shutdowns:
            shutdown()  # flushes the app spans; the providers are done after this
        self._tracer_shutdowns.clear()
        # Access-log files are flushed every 200 ms (EnvoyProcess passes --file-flush-interval-msec).
        interval = self.topology.telemetry.flush_interval_ms / 1000.0
        if self.receiver is None or not self.topology.telemetry.tracing:
            time.sleep(0.5)
            return True
        since = self.last_traffic_at or time.monotonic()
        wait = since + interval + 0.3 - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        done = self.receiver.wait_for(timeout=timeout, quiet=max(0.5, interval * 1.2))
        self.receiver.flush()  # the in-process receiver defers writing (see OTLPReceiver.defer)
        return done

    def manifest(self) -> dict[str, Any]:
        pods = []
        for p in self.all_pods:
            pods.append({
                "name": p.name, "namespace": p.namespace, "workload": p.workload, "app": p.app, "version": p.version,
                "role": p.role, "admin": p.envoy.admin_url, "inbound_port": p.inbound_port,
                "outbound_ports": p.outbound_ports, "listen_port": p.listen_port,
                "app_port": p.backend.port if p.backend else None,
                "access_logs": {LOG_FORMAT_NAMES[f]: str(path) for f, path in p.log_paths.items()},
            })
        doc: dict[str, Any] = {"pods": pods, "externals": {h: s.port for h, s in self.standins.items()}}
        if self.gateway is not None and self.gateway.listen_port:
            doc["gateway_url"] = self.gateway_url
        if self.receiver is not None:
            doc["otlp"] = {"grpc": f"127.0.0.1:{self.receiver.grpc_port}", "http": f"127.0.0.1:{self.receiver.http_port}",
                           "traces": str(self.receiver.traces_path), "logs": str(self.receiver.logs_path)}
        return doc

    def _write_manifest(self) -> None:
        (self.workdir / "mesh.json").write_text(json.dumps(self.manifest(), indent=1))


def _cluster_host_counts(envoy: EnvoyProcess) -> dict[str, int] | None:
    """Cluster name -> hosts loaded, from the admin API; None when it did not answer."""
    try:
        data = json.loads(envoy.admin("/clusters?format=json"))
    except (urllib.error.URLError, OSError, ValueError):
        return None
    return {c["name"]: len(c.get("host_statuses", [])) for c in data.get("cluster_statuses", [])}


@contextmanager
def handle_sigterm() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt while inside (main thread only), so `with Mesh(...)` cleans up."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def raise_interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
