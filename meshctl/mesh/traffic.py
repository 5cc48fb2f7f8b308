"""A bounded traffic driver for the local mesh: loopback only, a request count and a duration cap.

>>> result = drive("http://127.0.0.1:8080", requests=500, concurrency=8, paths=["/productpage"])
>>> result.by_code     # {200: 493, 503: 7}
"""

from __future__ import annotations

import http.client
import ipaddress
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from meshctl.errors import InputError

MAX_REQUESTS = 1_000_000
MAX_DURATION_S = 600.0
MAX_CONCURRENCY = 256


@dataclass
class TrafficResult:
    requests: int = 0                                    # requests that got a response
    failures: int = 0                                    # requests without a response (connection errors)
    by_code: dict[int, int] = field(default_factory=dict)
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    stopped_by: str = "count"                            # count | duration

    @property
    def sent(self) -> int:
        return self.requests + self.failures

    @property
    def rps(self) -> float:
        return self.sent / self.seconds if self.seconds > 0 else 0.0

    @property
    def errors(self) -> int:
        return sum(n for code, n in self.by_code.items() if code >= 500) + self.failures

    def percentile(self, q: float) -> float | None:
        if not self.latencies_ms:
            return None
        data = sorted(self.latencies_ms)
        return data[min(len(data) - 1, int(q / 100 * len(data)))]


def require_loopback(url: str) -> tuple[str, int, str]:
    """(host, port, base path) of an http:// URL on a loopback address; InputError otherwise."""
    parts = urlsplit(url)
    if parts.scheme != "http":
        raise InputError(f"the traffic driver speaks plain http to the local mesh, not {parts.scheme!r}", field="url")
    host = parts.hostname or ""
    ok = host == "localhost"
    if not ok:
        try:
            ok = ipaddress.ip_address(host).is_loopback
        except ValueError:
            ok = False
    if not ok:
        raise InputError(f"refusing to send traffic to {host!r}: the driver only targets loopback addresses",
                         field="url")
    return host, parts.port or 80, parts.path.rstrip("/")


def drive(
    url: str,
    *,
    requests: int = 100,
    duration: float = 60.0,
    concurrency: int = 4,
    paths: Sequence[str] = ("/",),
    method: str = "GET",
    headers: dict[str, str] | None = None,
    rate: float | None = None,
    timeout: float = 10.0,
    on_response: Callable[[int, int, float], None] | None = None,
) -> TrafficResult:
    """Send up to `requests` requests to a loopback URL within `duration` seconds.

    Requests go round-robin over `paths`, from `concurrency` keep-alive connections, optionally
    paced to `rate` requests per second overall. `on_response(index, status, latency_ms)` is called
    for each request (status 0: no response). Stops at whichever of count and duration comes first.
    """
    host, port, base = require_loopback(url)
    if not 1 <= requests <= MAX_REQUESTS:
        raise InputError(f"requests must be between 1 and {MAX_REQUESTS}", field="requests")
    if not 0 < duration <= MAX_DURATION_S:
        raise InputError(f"duration must be between 0 and {MAX_DURATION_S:.0f} seconds", field="duration")
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise InputError(f"concurrency must be between 1 and {MAX_CONCURRENCY}", field="concurrency")
    if rate is not None and rate <= 0:
        raise InputError("rate must be positive", field="rate")
    if not paths:
        raise InputError("at least one path is needed", field="paths")
    hdrs = {"user-agent": "meshctl-traffic/1", **(headers or {})}

    result = TrafficResult()
    lock = threading.Lock()
    counter = iter(range(requests))
    start = time.monotonic()
    deadline = start + duration
    stop = threading.Event()

    def next_index() -> int | None:
        with lock:
            if stop.is_set():
                return None
            if time.monotonic() >= deadline:
                result.stopped_by = "duration"
                stop.set()
                return None
            return next(counter, None)

    def worker() -> None:
        conn: http.client.HTTPConnection | None = None
        while (i := next_index()) is not None:
            if rate is not None:
                wait = start + i / rate - time.monotonic()
                if wait > 0:
                    if wait > deadline - time.monotonic():
                        break
                    time.sleep(wait)
            path = base + paths[i % len(paths)]
            t0 = time.perf_counter()
            status = 0
            for attempt in (1, 2):
                if conn is None:
                    conn = http.client.HTTPConnection(host, port, timeout=timeout)
                try:
                    conn.request(method, path, headers=hdrs)
                    resp = conn.getresponse()
                    resp.read()
                    status = resp.status
                    if resp.will_close:
                        conn.close()
                        conn = None
                    break
                except (http.client.HTTPException, OSError):
                    conn.close()
                    conn = None
                    # A first failure may be a kept-alive connection the proxy closed: retry once, fresh.
                    if attempt == 2 or time.perf_counter() - t0 > timeout:
                        break
            ms = (time.perf_counter() - t0) * 1000.0
            with lock:
                if status:
                    result.requests += 1
                    result.by_code[status] = result.by_code.get(status, 0) + 1
                    result.latencies_ms.append(ms)
                else:
                    result.failures += 1
            if on_response is not None:
                on_response(i, status, ms)
        if conn is not None:
            conn.close()

    threads = [threading.Thread(target=worker, name=f"traffic-{n}", daemon=True) for n in range(concurrency)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            while t.is_alive():
                t.join(0.2)  # short joins keep Ctrl-C responsive
    except BaseException:
        stop.set()
        raise
    result.seconds = time.monotonic() - start
    return result
