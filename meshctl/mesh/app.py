"""A small fault-injectable HTTP service for the local mesh (stdlib only; spans via opentelemetry-sdk if present).

Each instance listens on 127.0.0.1 (ephemeral port), answers every path with a small JSON body, and
can be told to misbehave: answer `error_code` for a fraction of requests, add latency, fail every
request, or not listen at all. It can call other services *through its sidecar's outbound listener*
(as an app in an Istio pod does, by host name), propagating `x-request-id`, W3C `traceparent` /
`tracestate` / `baggage` and the B3 headers, so access logs and spans of one request join up.

Faults can be changed while it runs (`app.faults = Faults(...)`), e.g. to make one host fail.
"""

from __future__ import annotations

import http.client
import json
import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from meshctl.errors import InputError

# Headers an Istio app must forward for tracing and request correlation.
PROPAGATED_HEADERS = (
    "x-request-id", "traceparent", "tracestate", "baggage",
    "x-b3-traceid", "x-b3-spanid", "x-b3-parentspanid", "x-b3-sampled", "x-b3-flags", "b3",
)


@dataclass
class Faults:
    """What an instance does wrong. All fields optional; the default is a healthy service.

    error_rate      fraction (0..1) of requests answered with `error_code`
    error_code      HTTP status of injected errors (default 503)
    latency_ms      added latency per request: the median when `latency_sigma` > 0, else fixed
    latency_sigma   spread of a log-normal latency distribution around `latency_ms` (0 = fixed)
    fail            every request is answered with `error_code` (a host that fails completely)
    down            the instance does not listen at all (connection refused: Envoy 503 UF)
    """

    error_rate: float = 0.0
    error_code: int = 503
    latency_ms: float = 0.0
    latency_sigma: float = 0.0
    fail: bool = False
    down: bool = False

    def __post_init__(self) -> None:
        if not 0.0 <= float(self.error_rate) <= 1.0:
            raise InputError(f"error_rate must be between 0 and 1, got {self.error_rate!r}", field="error_rate")
        if not 100 <= int(self.error_code) <= 599:
            raise InputError(f"error_code must be an HTTP status, got {self.error_code!r}", field="error_code")
        if float(self.latency_ms) < 0 or float(self.latency_sigma) < 0:
            raise InputError("latency_ms and latency_sigma must be >= 0", field="latency_ms")

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None, where: str = "faults") -> Faults:
        if data is None:
            return cls()
        if isinstance(data, Faults):
            return data
        if not isinstance(data, dict):
            raise InputError(f"{where} must be a mapping, got {type(data).__name__}", field=where)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(f"unknown keys {unknown} (known: {sorted(known)})", field=where)
        try:
            return cls(**data)
        except InputError as exc:
            raise InputError(exc.message, field=f"{where}.{exc.field}") from exc
        except (TypeError, ValueError) as exc:
            raise InputError(str(exc), field=where) from exc

    def merged(self, override: dict[str, Any] | None, where: str = "faults") -> Faults:
        """These faults with the keys of `override` replaced (per-host overrides of a version's faults)."""
        if not override:
            return self
        return Faults.from_dict({**asdict(self), **override}, where)

    def sample_latency_s(self, rng: random.Random) -> float:
        if self.latency_ms <= 0:
            return 0.0
        if self.latency_sigma > 0:
            return rng.lognormvariate(0.0, self.latency_sigma) * self.latency_ms / 1000.0
        return self.latency_ms / 1000.0


@dataclass
class Call:
    """One downstream call an instance makes for each request it serves.

    host         the name the app uses (`reviews`, `reviews.default.svc.cluster.local`, `api.partner.example`)
    port         the service port (selects the sidecar's outbound listener for that port)
    path         request path
    probability  fraction of requests that make this call
    propagate    when the call fails (5xx or no answer), answer 502 instead of carrying on
    """

    host: str
    port: int = 9080
    path: str = "/"
    method: str = "GET"
    probability: float = 1.0
    propagate: bool = True


@dataclass
class AppStats:
    requests: int = 0
    errors: int = 0
    calls: int = 0
    call_errors: int = 0
    by_code: dict[int, int] = field(default_factory=dict)


class _AppServer(ThreadingHTTPServer):
    # listen() backlog: set on the class, since server_activate() reads it in the constructor. The
    # default 5 makes bursts from a sidecar's connection pool see refused connections.
    request_queue_size = 128
    daemon_threads = True


class BackendApp:
    """A threaded HTTP service on 127.0.0.1. Use as a context manager, or start()/stop().

    outbound_port   a callable `port -> local port` of the sidecar's outbound listener for that
                    service port (set by the mesh once the sidecar runs); None: call hosts directly
    tracer          an OpenTelemetry tracer (or None): the app then emits SERVER and CLIENT spans
    """

    def __init__(
        self,
        name: str,
        *,
        version: str | None = None,
        pod: str | None = None,
        faults: Faults | None = None,
        calls: list[Call] | None = None,
        outbound_port: Callable[[int], int] | None = None,
        tracer: Any = None,
        seed: int | None = None,
        host: str = "127.0.0.1",
        call_timeout: float = 10.0,
    ) -> None:
        self.name = name
        self.version = version
        self.pod = pod or name
        self.faults = faults or Faults()
        self.calls = list(calls or [])
        self.outbound_port = outbound_port
        self.tracer = tracer
        self.host = host
        self.call_timeout = call_timeout
        self.stats = AppStats()
        self._rng = random.Random(seed)
        # The injected errors draw from a generator of their own: with a seed, the k-th request to reach
        # the error draw gets the same answer on every run, however many latency and call draws
        # concurrent requests made before it (a canary's error count is then reproducible).
        self._error_rng = random.Random(None if seed is None else f"{seed}/errors")
        self._rng_lock = threading.Lock()
        self._stats_lock = threading.Lock()
        self._local = threading.local()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None

    # -- lifecycle --
    @property
    def port(self) -> int:
        """The listening port (reserved even when the instance is `down`, so it refuses connections)."""
        assert self._port is not None, "app not started"
        return self._port

    def start(self) -> BackendApp:
        if self.faults.down:
            # Reserve a port nobody listens on: bind without listen(), keep it bound so it stays refused.
            self._down_sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self._down_sock.bind((self.host, 0))
            self._port = self._down_sock.getsockname()[1]
            return self
        handler = type("Handler", (_Handler,), {"app": self})
        self._server = _AppServer((self.host, 0), handler)
        self._port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name=f"app-{self.pod}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        sock = getattr(self, "_down_sock", None)
        if sock is not None:
            sock.close()
            self._down_sock = None

    def __enter__(self) -> BackendApp:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # -- behaviour --
    def _random(self, rng: random.Random | None = None) -> float:
        with self._rng_lock:
            return (rng or self._rng).random()

    def _latency(self, faults: Faults) -> float:
        with self._rng_lock:
            return faults.sample_latency_s(self._rng)

    def _count(self, code: int, *, error: bool = False, calls: int = 0, call_errors: int = 0) -> None:
        with self._stats_lock:
            s = self.stats
            s.requests += 1
            s.errors += int(error)
            s.calls += calls
            s.call_errors += call_errors
            s.by_code[code] = s.by_code.get(code, 0) + 1

    def _connection(self, port: int) -> http.client.HTTPConnection:
        conns = getattr(self._local, "conns", None)
        if conns is None:
            conns = self._local.conns = {}
        conn = conns.get(port)
        if conn is None:
            conn = conns[port] = http.client.HTTPConnection("127.0.0.1", port, timeout=self.call_timeout)
        return conn

    def call(self, c: Call, headers: dict[str, str]) -> int:
        """Make one downstream call through the sidecar; the status, or 0 when nothing came back."""
        port = self.outbound_port(c.port) if self.outbound_port else c.port
        hdrs = dict(headers)
        hdrs["host"] = c.host if c.port in (80,) else f"{c.host}:{c.port}"
        hdrs["user-agent"] = f"meshctl-mesh-app/{self.name}"
        for attempt in (1, 2):
            conn = self._connection(port)
            try:
                conn.request(c.method, c.path, headers=hdrs)
                resp = conn.getresponse()
                resp.read()
                if resp.will_close:
                    conn.close()
                return resp.status
            except (http.client.HTTPException, OSError):
                conn.close()
                # A kept-alive connection the proxy closed: retry once on a fresh one.
                if attempt == 2:
                    return 0
        return 0


class _Handler(BaseHTTPRequestHandler):
    app: BackendApp
    protocol_version = "HTTP/1.1"  # keep-alive, as Envoy's upstream connection pool expects
    server_version = "meshctl-mesh-app"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes: without NODELAY, Nagle + delayed ACK add 40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self._serve()

    do_PUT = do_POST
    do_DELETE = do_GET

    def _serve(self) -> None:
        app = self.app
        faults = app.faults  # one consistent snapshot even if changed concurrently
        incoming = {h: v for h in PROPAGATED_HEADERS if (v := self.headers.get(h)) is not None}
        span_cm = _server_span(app, self.command, self.path, incoming)
        with span_cm as span:
            code, body, calls, call_errors = self._handle(app, faults, incoming, span)
            if span is not None:
                span.set_attribute("http.response.status_code", code)
                if code >= 500:
                    from opentelemetry.trace import Status, StatusCode

                    span.set_status(Status(StatusCode.ERROR))
        app._count(code, error=code >= 500, calls=calls, call_errors=call_errors)
        data = json.dumps(body, separators=(",", ":")).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self, app: BackendApp, faults: Faults, incoming: dict[str, str], span: Any):
        delay = app._latency(faults)
        if delay:
            time.sleep(delay)
        body: dict[str, Any] = {"service": app.name, "version": app.version, "pod": app.pod, "path": self.path}
        if faults.fail:
            body["error"] = "injected failure (fail)"
            return faults.error_code, body, 0, 0
        results, n_calls, n_errors, failed = [], 0, 0, False
        for c in app.calls:
            if c.probability < 1.0 and app._random() >= c.probability:
                continue
            headers = dict(incoming)
            status = _traced_call(app, c, headers, span)
            n_calls += 1
            results.append({"host": c.host, "status": status})
            if status == 0 or status >= 500:
                n_errors += 1
                failed = failed or c.propagate
        if results:
            body["calls"] = results
        if failed:
            body["error"] = "a downstream call failed"
            return 502, body, n_calls, n_errors
        if faults.error_rate > 0 and app._random(app._error_rng) < faults.error_rate:
            body["error"] = "injected failure (error_rate)"
            return faults.error_code, body, n_calls, n_errors
        return 200, body, n_calls, n_errors


class _NullCM:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _server_span(app: BackendApp, method: str, path: str, incoming: dict[str, str]):
    if app.tracer is None:
        return _NullCM()
    from opentelemetry.trace import SpanKind
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    ctx = TraceContextTextMapPropagator().extract(incoming)
    return app.tracer.start_as_current_span(
        f"{method} {path.split('?')[0]}", context=ctx, kind=SpanKind.SERVER,
        attributes={"http.request.method": method, "url.path": path, "service.version": app.version or "",
                    "guid:x-request-id": incoming.get("x-request-id", "")},
    )


def _traced_call(app: BackendApp, c: Call, headers: dict[str, str], parent: Any) -> int:
    if app.tracer is None or parent is None:
        return app.call(c, headers)
    from opentelemetry import trace
    from opentelemetry.trace import SpanKind
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    ctx = trace.set_span_in_context(parent)
    with app.tracer.start_as_current_span(
        f"{c.method} {c.host}", context=ctx, kind=SpanKind.CLIENT,
        attributes={"http.request.method": c.method, "server.address": c.host, "server.port": c.port,
                    "url.path": c.path},
    ) as span:
        carrier: dict[str, str] = {}
        TraceContextTextMapPropagator().inject(carrier, context=trace.set_span_in_context(span))
        headers.update(carrier)
        status = app.call(c, headers)
        span.set_attribute("http.response.status_code", status)
        if status == 0 or status >= 500:
            from opentelemetry.trace import Status, StatusCode

            span.set_status(Status(StatusCode.ERROR))
        return status


def make_tracer(service: str, *, namespace: str, version: str | None, pod: str, otlp_grpc_endpoint: str,
                schedule_delay_ms: int = 500) -> tuple[Any, Callable[[], None]] | None:
    """An OpenTelemetry tracer exporting OTLP/gRPC to `otlp_grpc_endpoint`, and its shutdown function.

    None when opentelemetry-sdk or its OTLP gRPC exporter is not installed (app spans are optional:
    the proxies' spans already join through the propagated headers).
    """
    try:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        return None
    attrs = {"service.name": service, "service.namespace": namespace, "k8s.namespace.name": namespace,
             "k8s.pod.name": pod}
    if version:
        attrs["service.version"] = version
    provider = TracerProvider(resource=Resource.create(attrs))
    exporter = OTLPSpanExporter(endpoint=otlp_grpc_endpoint, insecure=True, timeout=5)
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=schedule_delay_ms))
    return provider.get_tracer("meshctl.mesh.app"), provider.shutdown
