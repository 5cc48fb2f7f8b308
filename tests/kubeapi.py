"""A loopback HTTP server that plays recorded Kubernetes API responses, with injected faults.

No API server can run on the build machines, so Kubernetes code is tested against this: real HTTP
on 127.0.0.1, real `kubernetes` client, real kubeconfig. Each route answers with a queue of
`Reply`s (the last one repeats), so a test can say "first a 429, then a 500, then the pod list".

    with FakeKubeAPI() as api:
        api.route("/api/v1/namespaces/shop/pods", Reply.json(pod_list))
        api.route("/api/v1/namespaces/shop/pods/web-1/log", Reply(status=429), Reply.chunks([b"a\\n", b"b\\n"]))
        client = KubernetesClient(kubeconfig=api.write_kubeconfig(tmp_path))
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    chunks: list[bytes] | None = None  # sent with Transfer-Encoding: chunked
    chunk_delay: float = 0.0  # seconds between chunks
    delay: float = 0.0  # seconds before the status line (drives client timeouts)
    drop_after_chunks: int | None = None  # close the socket after this many chunks (mid-stream drop)

    @classmethod
    def json(cls, obj: Any, status: int = 200, **kw: Any) -> Reply:
        headers = {"Content-Type": "application/json", **kw.pop("headers", {})}  # e.g. Retry-After
        return cls(status=status, body=json.dumps(obj).encode(), headers=headers, **kw)

    @classmethod
    def status_error(cls, status: int, reason: str = "injected", **kw: Any) -> Reply:
        body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": reason, "code": status}
        return cls.json(body, status=status, **kw)

    @classmethod
    def text_chunks(cls, chunks: list[bytes], **kw: Any) -> Reply:
        return cls(status=200, chunks=chunks, headers={"Content-Type": "text/plain"}, **kw)


def send_reply(handler: BaseHTTPRequestHandler, reply: Reply) -> None:
    """Write `reply` to the handler's client: after its delay, chunked when it has chunks (and cut off
    mid-stream when it says so)."""
    if reply.delay:
        time.sleep(reply.delay)
    try:
        handler.send_response(reply.status)
        for k, v in reply.headers.items():
            handler.send_header(k, v)
        if reply.chunks is None:
            handler.send_header("Content-Length", str(len(reply.body)))
            handler.end_headers()
            handler.wfile.write(reply.body)
            return
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        for i, chunk in enumerate(reply.chunks):
            if reply.drop_after_chunks is not None and i >= reply.drop_after_chunks:
                handler.wfile.flush()
                handler.connection.shutdown(socket.SHUT_RDWR)
                handler.close_connection = True
                return
            handler.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            handler.wfile.flush()
            if reply.chunk_delay:
                time.sleep(reply.chunk_delay)
        handler.wfile.write(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        handler.close_connection = True


class LoopbackServer:
    """A threaded HTTP/1.1 server on 127.0.0.1 that answers every request with `answer()`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._address: tuple[str, int] | None = None  # kept after stop(): tests quote the URL afterwards

    def answer(self, method: str, path: str, query: dict[str, list[str]]) -> Reply:
        raise NotImplementedError

    def start(self) -> LoopbackServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _handle(self) -> None:
                parts = urlsplit(self.path)
                send_reply(self, server.answer(self.command, parts.path, parse_qs(parts.query)))

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._address = self._server.server_address[:2]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        assert self._address is not None, "not started"
        host, port = self._address
        return f"http://{host}:{port}"

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class FakeKubeAPI(LoopbackServer):
    """Serve recorded API responses on 127.0.0.1; records every request it got."""

    def __init__(self) -> None:
        super().__init__()
        self._routes: dict[str, list[Reply]] = {}
        self._served: dict[str, int] = defaultdict(int)
        self.requests: list[tuple[str, str, dict[str, list[str]]]] = []  # (method, path, query)

    # ---- routing -------------------------------------------------------------------------
    def route(self, path: str, *replies: Reply) -> FakeKubeAPI:
        self._routes[path] = list(replies)
        return self

    def _next_reply(self, path: str) -> Reply | None:
        with self._lock:
            replies = self._routes.get(path)
            if not replies:
                return None
            i = self._served[path]
            self._served[path] += 1
            return replies[min(i, len(replies) - 1)]

    def count(self, path: str) -> int:
        return sum(1 for _, p, _ in self.requests if p == path)

    def answer(self, method: str, path: str, query: dict[str, list[str]]) -> Reply:
        with self._lock:
            self.requests.append((method, path, query))
        if method != "GET":
            return Reply.status_error(405, "meshctl must be read-only")
        reply = self._next_reply(path)
        return reply or Reply.status_error(404, f"no recorded response for {path}")

    def write_kubeconfig(self, directory: str | Path, context: str = "fake") -> str:
        """A kubeconfig whose context `context` points at this server (no auth, plain HTTP)."""
        cfg = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "fake", "user": {"token": "recorded"}}],
            "contexts": [{"name": context, "context": {"cluster": "fake", "user": "fake"}}],
            "current-context": context,
        }
        path = Path(directory) / "kubeconfig"
        path.write_text(json.dumps(cfg))
        return str(path)


def pod(name: str, namespace: str, *, labels: dict[str, str] | None = None, containers: list[str] | None = None,
        ip: str | None = None, phase: str = "Running") -> dict[str, Any]:
    """A Pod object in the API's JSON shape, as a list response would carry it."""
    return {
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {}, "uid": f"uid-{name}"},
        "spec": {"containers": [{"name": c} for c in (containers or ["app", "istio-proxy"])]},
        "status": {"phase": phase, "podIP": ip},
    }


def item_list(kind: str, items: list[dict[str, Any]], api_version: str = "v1") -> dict[str, Any]:
    return {"kind": kind, "apiVersion": api_version, "metadata": {"resourceVersion": "1"}, "items": items}
