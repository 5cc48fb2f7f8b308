"""A small OTLP receiver (gRPC and HTTP) that appends what it receives to files as OTLP JSON lines.

`meshctl receive --out DIR` runs it for users; the local mesh (`meshctl.mesh`, `meshctl demo`) runs
it in-process as the collector its Envoys and apps export to. No collector on the package registries
writes files (rotel only forwards), hence this one.

Protocols (OTLP 1.x):
- OTLP/gRPC: `opentelemetry.proto.collector.{trace,logs,metrics}.v1` Export services (gzip handled by grpcio).
- OTLP/HTTP: `POST /v1/traces`, `/v1/logs`, `/v1/metrics` with `application/x-protobuf` or
  `application/json` bodies, `Content-Length` or `Transfer-Encoding: chunked` (Envoy's HTTP exporter
  sends chunked bodies without a length), optionally `Content-Encoding: gzip`. The reply is the
  empty Export*ServiceResponse in the request's encoding.

Output, one file per signal in the output directory, one JSON document per received request, in
the OpenTelemetry Collector file exporter's format (OTLP/JSON: lowerCamelCase keys, trace and span
ids as lower-case hex, enums as integers, 64-bit integers as strings):

    DIR/traces.jsonl    {"resourceSpans": [...]}
    DIR/logs.jsonl      {"resourceLogs": [...]}
    DIR/metrics.jsonl   {"resourceMetrics": [...]}

>>> with OTLPReceiver("out") as rx:                      # ports 0: ephemeral, read them back
...     endpoint = f"127.0.0.1:{rx.grpc_port}"
...     rx.wait_for(spans=10, timeout=15)
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import math
import socket
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

from meshctl.errors import InputError, MeshctlError

# OTLP/JSON writes these bytes fields as hex, where the protobuf JSON mapping would use base64.
_ID_FIELDS = frozenset({"traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"})
MAX_BODY_BYTES = 64 * 1024 * 1024  # refuse absurd requests instead of exhausting memory


@dataclass
class _Signal:
    name: str          # traces | logs | metrics
    top_key: str       # resourceSpans | resourceLogs | resourceMetrics
    request_cls: Any
    response_cls: Any


def _signals() -> dict[str, _Signal]:
    from opentelemetry.proto.collector.logs.v1 import logs_service_pb2 as lpb
    from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as mpb
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as tpb

    return {
        "traces": _Signal("traces", "resourceSpans", tpb.ExportTraceServiceRequest, tpb.ExportTraceServiceResponse),
        "logs": _Signal("logs", "resourceLogs", lpb.ExportLogsServiceRequest, lpb.ExportLogsServiceResponse),
        "metrics": _Signal("metrics", "resourceMetrics", mpb.ExportMetricsServiceRequest,
                           mpb.ExportMetricsServiceResponse),
    }


# ---- OTLP/JSON <-> protobuf ------------------------------------------------------------------

def _walk_ids(obj: Any, convert: Callable[[str], str]) -> Any:
    if isinstance(obj, dict):
        return {k: (convert(v) if k in _ID_FIELDS and isinstance(v, str) else _walk_ids(v, convert))
                for k, v in obj.items()}
    if isinstance(obj, list):
        return [_walk_ids(v, convert) for v in obj]
    return obj


def _b64_to_hex(v: str) -> str:
    return base64.b64decode(v).hex() if v else ""


def _hex_to_b64(v: str) -> str:
    if not v:
        return ""
    try:
        raw = bytes.fromhex(v)
    except ValueError:
        # Some exporters send base64 (the plain protobuf JSON mapping); accept it as it is.
        return v
    return base64.b64encode(raw).decode()


_BYTES_IDS = frozenset({"trace_id", "span_id", "parent_span_id"})
_FIELD_KINDS: dict[Any, tuple[str, str, bool]] = {}


def _field_kind(f: Any) -> tuple[str, str, bool]:
    """(JSON name, how to write the value, repeated) of a field descriptor, computed once."""
    kind = _FIELD_KINDS.get(f)
    if kind is None:
        from google.protobuf.descriptor import FieldDescriptor as FD

        repeated = f.is_repeated if hasattr(f, "is_repeated") else f.label == FD.LABEL_REPEATED
        t = f.type
        if t == FD.TYPE_MESSAGE:
            how = "message"
        elif t == FD.TYPE_BYTES:
            how = "hex" if f.name in _BYTES_IDS else "base64"
        elif t in (FD.TYPE_INT64, FD.TYPE_UINT64, FD.TYPE_FIXED64, FD.TYPE_SFIXED64, FD.TYPE_SINT64):
            how = "string"  # 64-bit integers are JSON strings in the protobuf JSON mapping
        elif t in (FD.TYPE_DOUBLE, FD.TYPE_FLOAT):
            how = "float"
        else:
            how = "plain"  # bool, string, 32-bit ints, enums (as integers, as OTLP/JSON wants them)
        kind = _FIELD_KINDS[f] = (f.json_name, how, repeated)
    return kind


def _float(v: float) -> float | str:
    if math.isfinite(v):
        return v
    return "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")


def _message_dict(msg: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f, v in msg.ListFields():
        name, how, repeated = _field_kind(f)
        if how == "message":
            out[name] = [_message_dict(x) for x in v] if repeated else _message_dict(v)
        elif how == "plain":
            out[name] = list(v) if repeated else v
        elif how == "string":
            out[name] = [str(x) for x in v] if repeated else str(v)
        elif how == "hex":
            out[name] = [x.hex() for x in v] if repeated else v.hex()
        elif how == "float":
            out[name] = [_float(x) for x in v] if repeated else _float(v)
        else:
            out[name] = [base64.b64encode(x).decode() for x in v] if repeated else base64.b64encode(v).decode()
    return out


def to_otlp_json(message: Any) -> dict[str, Any]:
    """A protobuf Export*ServiceRequest as an OTLP/JSON dict: lowerCamelCase keys, trace/span ids as hex,
    enums as integers, 64-bit integers as strings (what `json_format.MessageToDict(use_integers_for_enums=
    True)` gives with hex ids, about twice as fast: OTLP has no maps, Any or well-known types)."""
    return _message_dict(message)


def from_otlp_json(doc: dict[str, Any], request_cls: Any) -> Any:
    """An OTLP/JSON document (hex ids; camelCase or snake_case keys) as a protobuf request message."""
    from google.protobuf import json_format

    if not isinstance(doc, dict):
        raise ValueError("OTLP/JSON body must be a JSON object")
    return json_format.ParseDict(_walk_ids(doc, _hex_to_b64), request_cls(), ignore_unknown_fields=True)


def count_items(signal: str, message: Any) -> int:
    """Spans, log records or metric data points in one export request."""
    n = 0
    if signal == "traces":
        for rs in message.resource_spans:
            for ss in rs.scope_spans:
                n += len(ss.spans)
    elif signal == "logs":
        for rl in message.resource_logs:
            for sl in rl.scope_logs:
                n += len(sl.log_records)
    else:
        for rm in message.resource_metrics:
            for sm in rm.scope_metrics:
                n += len(sm.metrics)
    return n


# ---- the receiver ----------------------------------------------------------------------------

@dataclass
class SignalCounts:
    requests: int = 0
    items: int = 0
    rejected: int = 0
    last_at: float = 0.0  # time.monotonic() of the last accepted request


@dataclass
class ReceiverStats:
    traces: SignalCounts = field(default_factory=SignalCounts)
    logs: SignalCounts = field(default_factory=SignalCounts)
    metrics: SignalCounts = field(default_factory=SignalCounts)
    http_chunked: int = 0  # HTTP requests whose body came chunked (Envoy's OTLP/HTTP exporter)


class OTLPReceiver:
    """OTLP/gRPC + OTLP/HTTP receiver writing OTLP JSON lines to `out_dir`.

    Ports 0 mean ephemeral ports (read back from `grpc_port` / `http_port` after start); `None`
    disables that protocol. Binds to loopback unless told otherwise.
    """

    def __init__(
        self,
        out_dir: str | Path,
        *,
        host: str = "127.0.0.1",
        grpc_port: int | None = 0,
        http_port: int | None = 0,
        max_workers: int = 4,
        defer: bool = False,
    ) -> None:
        if grpc_port is None and http_port is None:
            raise MeshctlError("the OTLP receiver needs at least one of gRPC or HTTP")
        self.out_dir = Path(out_dir)
        self.host = host
        self._want_grpc = grpc_port
        self._want_http = http_port
        self._max_workers = max_workers
        # defer: keep decoded requests in memory and write them on flush()/stop(). Converting to JSON
        # costs Python CPU; an in-process receiver (the local mesh) defers it so that it does not
        # stall the apps sharing the interpreter while traffic runs.
        self.defer = defer
        self._pending: list[tuple[str, Any]] = []
        self.grpc_port: int | None = None
        self.http_port: int | None = None
        self.stats = ReceiverStats()
        self._signals = _signals()
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._files: dict[str, Any] = {}
        self._grpc_server: Any = None
        self._http_server: ThreadingHTTPServer | None = None
        self._http_thread: threading.Thread | None = None

    # -- files --
    def path(self, signal: str) -> Path:
        return self.out_dir / f"{signal}.jsonl"

    @property
    def traces_path(self) -> Path:
        return self.path("traces")

    @property
    def logs_path(self) -> Path:
        return self.path("logs")

    @property
    def metrics_path(self) -> Path:
        return self.path("metrics")

    def accept(self, signal: str, message: Any) -> None:
        """Record one decoded export request: append its OTLP JSON line (or, deferred, keep it) and count it."""
        items = count_items(signal, message)
        with self._cond:
            if self.defer:
                self._pending.append((signal, message))
            else:
                self._write(signal, message)
            counts: SignalCounts = getattr(self.stats, signal)
            counts.requests += 1
            counts.items += items
            counts.last_at = time.monotonic()
            self._cond.notify_all()

    def _write(self, signal: str, message: Any) -> None:
        line = json.dumps(to_otlp_json(message), separators=(",", ":")) + "\n"
        f = self._files.get(signal)
        if f is None:
            f = self._files[signal] = open(self.path(signal), "a", encoding="utf-8")  # noqa: SIM115
        f.write(line)
        f.flush()

    def flush(self) -> int:
        """Write the requests kept while `defer` is on (in arrival order); the number written."""
        with self._cond:
            pending, self._pending = self._pending, []
            for signal, message in pending:
                self._write(signal, message)
        return len(pending)

    def _reject(self, signal: str) -> None:
        with self._cond:
            getattr(self.stats, signal).rejected += 1

    def decode(self, signal: str, body: bytes, content_type: str) -> Any:
        """An HTTP body (protobuf or JSON) as the signal's request message; ValueError when malformed."""
        sig = self._signals[signal]
        ctype = content_type.split(";")[0].strip().lower()
        if ctype == "application/json":
            try:
                doc = json.loads(body.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise ValueError(f"invalid JSON body: {exc}") from exc
            try:
                return from_otlp_json(doc, sig.request_cls)
            except Exception as exc:  # json_format.ParseError and friends
                raise ValueError(f"not an OTLP {signal} JSON document: {exc}") from exc
        if ctype in ("application/x-protobuf", "application/protobuf", "application/octet-stream"):
            from google.protobuf.message import DecodeError

            msg = sig.request_cls()
            try:
                msg.ParseFromString(body)
            except DecodeError as exc:
                raise ValueError(f"invalid protobuf body: {exc}") from exc
            return msg
        raise LookupError(f"unsupported content type {content_type!r} (use application/x-protobuf or application/json)")

    # -- lifecycle --
    def start(self) -> OTLPReceiver:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        try:
            if self._want_grpc is not None:
                self._start_grpc()
            if self._want_http is not None:
                self._start_http()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_grpc(self) -> None:
        from concurrent import futures

        import grpc
        from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc as lgrpc
        from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc as mgrpc
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc as tgrpc

        receiver = self

        def servicer(base: type, signal: str) -> Any:
            sig = self._signals[signal]

            class Servicer(base):  # type: ignore[misc, valid-type]
                def Export(self, request: Any, context: Any) -> Any:
                    receiver.accept(signal, request)
                    return sig.response_cls()

            return Servicer()

        server = grpc.server(futures.ThreadPoolExecutor(max_workers=self._max_workers, thread_name_prefix="otlp-grpc"),
                             options=[("grpc.max_receive_message_length", MAX_BODY_BYTES),
                                      ("grpc.so_reuseport", 0)])
        tgrpc.add_TraceServiceServicer_to_server(servicer(tgrpc.TraceServiceServicer, "traces"), server)
        lgrpc.add_LogsServiceServicer_to_server(servicer(lgrpc.LogsServiceServicer, "logs"), server)
        mgrpc.add_MetricsServiceServicer_to_server(servicer(mgrpc.MetricsServiceServicer, "metrics"), server)
        try:
            port = server.add_insecure_port(f"{self.host}:{self._want_grpc}")
        except RuntimeError as exc:
            raise MeshctlError(f"OTLP/gRPC: cannot listen on {self.host}:{self._want_grpc}: {exc}") from exc
        if port == 0:
            raise MeshctlError(f"OTLP/gRPC: cannot listen on {self.host}:{self._want_grpc} (in use?)")
        server.start()
        self._grpc_server, self.grpc_port = server, port

    def _start_http(self) -> None:
        handler = type("OTLPHandler", (_OTLPHTTPHandler,), {"receiver": self})
        try:
            server = ThreadingHTTPServer((self.host, self._want_http), handler)
        except OSError as exc:
            raise MeshctlError(f"OTLP/HTTP: cannot listen on {self.host}:{self._want_http}: {exc}") from exc
        server.daemon_threads = True
        self._http_server, self.http_port = server, server.server_address[1]
        self._http_thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                                             name="otlp-http", daemon=True)
        self._http_thread.start()

    def stop(self) -> None:
        if self._http_server is not None:
            self._http_server.shutdown()
            self._http_server.server_close()
            self._http_server = None
        if self._grpc_server is not None:
            self._grpc_server.stop(grace=1).wait(2)
            self._grpc_server = None
        self.flush()
        with self._cond:
            for f in self._files.values():
                f.close()
            self._files.clear()

    def __enter__(self) -> OTLPReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- waiting --
    def wait_for(self, *, spans: int = 0, logs: int = 0, timeout: float = 15.0, quiet: float = 0.0) -> bool:
        """Block until at least `spans` spans and `logs` log records arrived (and then, if `quiet` > 0,
        until nothing new arrived for `quiet` seconds). False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.stats.traces.items < spans or self.stats.logs.items < logs:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.5))
        while quiet > 0:
            with self._cond:
                last = max(self.stats.traces.last_at, self.stats.logs.last_at, self.stats.metrics.last_at)
            idle = time.monotonic() - last
            if idle >= quiet:
                break
            if time.monotonic() + (quiet - idle) > deadline:
                return False
            time.sleep(quiet - idle)
        return True


class _OTLPHTTPHandler(BaseHTTPRequestHandler):
    receiver: OTLPReceiver
    protocol_version = "HTTP/1.1"  # keep-alive: Envoy's and the SDK's exporters reuse connections
    server_version = "meshctl-otlp"

    _PATHS: ClassVar[dict[str, str]] = {"/v1/traces": "traces", "/v1/logs": "logs", "/v1/metrics": "metrics"}

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        # Headers and body are separate writes: without NODELAY, Nagle + delayed ACK add 40 ms per reply.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _read_body(self) -> bytes:
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            with self.receiver._cond:
                self.receiver.stats.http_chunked += 1
            chunks, total = [], 0
            while True:
                size_line = self.rfile.readline(1024)
                if not size_line:
                    raise ValueError("connection closed inside a chunked body")
                try:
                    size = int(size_line.split(b";")[0].strip(), 16)
                except ValueError as exc:
                    raise ValueError(f"bad chunk size line {size_line[:40]!r}") from exc
                if size == 0:
                    # trailers, up to the empty line
                    while self.rfile.readline(65536) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                total += size
                if total > MAX_BODY_BYTES:
                    raise OverflowError("body too large")
                chunks.append(self.rfile.read(size))
                self.rfile.readline(8)  # CRLF after each chunk
            body = b"".join(chunks)
        else:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                raise OverflowError("body too large")
            body = self.rfile.read(length) if length else b""
        enc = (self.headers.get("Content-Encoding") or "identity").lower()
        if enc == "gzip":
            body = gzip.decompress(body)
        elif enc == "deflate":
            body = zlib.decompress(body)
        elif enc not in ("identity", ""):
            raise LookupError(f"unsupported Content-Encoding {enc!r}")
        return body

    def _reply(self, code: int, body: bytes, ctype: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _error(self, code: int, message: str, ctype: str) -> None:
        # OTLP/HTTP errors carry a google.rpc.Status in the request's encoding.
        if ctype.startswith("application/json"):
            self._reply(code, json.dumps({"code": 3, "message": message}).encode(), "application/json")
        else:
            from google.rpc import status_pb2

            self._reply(code, status_pb2.Status(code=3, message=message).SerializeToString(),
                        "application/x-protobuf")

    def do_POST(self) -> None:
        signal = self._PATHS.get(self.path.split("?")[0].rstrip("/"))
        ctype = self.headers.get("Content-Type") or "application/x-protobuf"
        if signal is None:
            self._drain()
            self._error(404, f"unknown OTLP path {self.path!r} (use /v1/traces, /v1/logs, /v1/metrics)", ctype)
            return
        try:
            body = self._read_body()
            message = self.receiver.decode(signal, body, ctype)
        except LookupError as exc:
            self.receiver._reject(signal)
            self._error(415, str(exc), ctype)
            return
        except (ValueError, OverflowError, OSError, zlib.error, binascii.Error, EOFError) as exc:
            self.receiver._reject(signal)
            self.close_connection = True
            self._error(413 if isinstance(exc, OverflowError) else 400, str(exc), ctype)
            return
        self.receiver.accept(signal, message)
        response = self.receiver._signals[signal].response_cls()
        if ctype.split(";")[0].strip().lower() == "application/json":
            self._reply(200, b"{}", "application/json")
        else:
            self._reply(200, response.SerializeToString(), "application/x-protobuf")

    def _drain(self) -> None:
        try:
            self._read_body()
        except Exception:
            self.close_connection = True


def parse_port(value: str | int | None, what: str) -> int | None:
    """A CLI port value: a number (0 = ephemeral) or `off`."""
    if value is None or (isinstance(value, str) and value.lower() in ("off", "none", "-")):
        return None
    try:
        port = int(value)
    except ValueError as exc:
        raise InputError(f"{what} must be a port number or 'off', not {value!r}", field=what) from exc
    if not 0 <= port <= 65535:
        raise InputError(f"{what} {port} is out of range 0-65535", field=what)
    return port
