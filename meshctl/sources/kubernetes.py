"""Sidecar access logs straight from Kubernetes (read-only): pods → log streams → ingest sources.

    targets, skipped = discover(api, namespace="shop", selector="app=web")
    sources = [PodLogSource(api, t, since_seconds=1800) for t in targets]
    ingest(sources, AccessLogParser(), dataset, identity=Identity(pods=PodIndex.from_kube(api)), workers=8)

- Discovery lists pods (one namespace, or all with -A; optional label selector) and picks each
  pod's proxy container: `istio-proxy` or `linkerd-proxy` (native sidecars under initContainers
  count), or the `--container` asked for. Pods without one are reported as skipped.
- Each log is requested with `timestamps=true`. When a request fails with 429 or a 5xx, times out,
  or the stream drops midway, the source waits (Retry-After when the server sends one, else
  exponential backoff with jitter) and reconnects, widening `sinceSeconds` by the time elapsed so
  the window still starts where it did, and skips every line it already delivered (by kubelet
  timestamp, then by count within the same timestamp): nothing is lost or read twice.
- A pod that keeps failing (`RetryPolicy.attempts` failures in a row without progress) raises
  KubeError from its stream; ingest reports it in that pod's summary and goes on with the others.
  Other API errors (404 pod gone, 400 container not found) are not retried.
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from meshctl.errors import KubeError
from meshctl.identity import SIDECAR_CONTAINERS, Workload, pod_workload
from meshctl.kube import ApiConnectionError, ApiStatusError, KubeAPI

_TS = re.compile(rb"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$")


@dataclass(frozen=True)
class PodTarget:
    namespace: str
    pod: str
    container: str
    workload: Workload

    @property
    def name(self) -> str:
        return f"{self.namespace}/{self.pod}/{self.container}"


@dataclass(frozen=True)
class SkippedPod:
    namespace: str
    pod: str
    reason: str


def sidecar_container(obj: dict[str, Any], wanted: str | None = None) -> str | None:
    """The proxy container of a pod: `wanted` if it has it, else istio-proxy / linkerd-proxy."""
    spec = obj.get("spec") or {}
    names = [c.get("name") for c in spec.get("containers") or []]
    # Native sidecars (Kubernetes >= 1.28, Istio ENABLE_NATIVE_SIDECARS) are restartable init containers.
    names += [c.get("name") for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"
              or c.get("name") in SIDECAR_CONTAINERS]
    if wanted:
        return wanted if wanted in names else None
    for candidate in SIDECAR_CONTAINERS:
        if candidate in names:
            return candidate
    return None


def discover(
    api: KubeAPI,
    *,
    namespace: str | None = None,
    all_namespaces: bool = False,
    selector: str | None = None,
    container: str | None = None,
    cluster: str | None = None,
) -> tuple[list[PodTarget], list[SkippedPod]]:
    """Pods whose proxy logs to read, and the pods passed over (with why)."""
    pods = api.list_pods(None if all_namespaces else (namespace or "default"), selector)
    targets: list[PodTarget] = []
    skipped: list[SkippedPod] = []
    for obj in sorted(pods, key=lambda o: ((o.get("metadata") or {}).get("namespace", ""),
                                           (o.get("metadata") or {}).get("name", ""))):
        meta = obj.get("metadata") or {}
        ns, name = meta.get("namespace") or namespace or "default", meta.get("name") or "?"
        phase = (obj.get("status") or {}).get("phase")
        if phase == "Pending":
            skipped.append(SkippedPod(ns, name, "pending: no log yet"))
            continue
        c = sidecar_container(obj, container)
        if c is None:
            want = container or " or ".join(SIDECAR_CONTAINERS)
            skipped.append(SkippedPod(ns, name, f"no {want} container"))
            continue
        targets.append(PodTarget(ns, name, c, pod_workload(obj, cluster)))
    return targets, skipped


@dataclass
class RetryPolicy:
    attempts: int = 5  # failures in a row (without a new line delivered) before giving up
    base: float = 0.5  # first backoff, seconds; doubles each time
    cap: float = 10.0
    jitter: float = 0.25  # ± share of the backoff
    timeout: float = 60.0  # seconds without data before a stream counts as stalled
    max_retry_after: float = 60.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)

    def delay(self, failures: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        d = min(self.cap, self.base * (2 ** max(failures - 1, 0)))
        return max(0.0, d * (1 + random.uniform(-self.jitter, self.jitter)))


def _terminated(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The chunks, and a newline after them when the log's last line has none: that line then goes
    through the same timestamp and resume checks as every other."""
    last = b"\n"
    for chunk in chunks:
        if chunk:
            last = chunk[-1:]
        yield chunk
    if last != b"\n":
        yield b"\n"


def _ts_key(ts: bytes) -> tuple[bytes, bytes, bytes] | None:
    """A kubelet RFC 3339 timestamp as a sortable key (fractions padded to nanoseconds)."""
    m = _TS.match(ts)
    if not m:
        return None
    return m.group(1), (m.group(2) or b"").ljust(9, b"0"), m.group(3)


class PodLogStream:
    """A pod container's log as a binary stream (lines without the kubelet timestamps), resilient
    to throttling, server errors, stalls and dropped connections (see the module docstring)."""

    def __init__(self, api: KubeAPI, target: PodTarget, *, since_seconds: int | None = None,
                 policy: RetryPolicy | None = None) -> None:
        self.api = api
        self.target = target
        self.since_seconds = since_seconds
        self.policy = policy or RetryPolicy()
        self.retries = 0  # reconnects made (for reports and tests)
        self.lines = 0
        self._buf = b""
        self._gen = self._lines()
        self._closed = False

    # -- file-like ----------------------------------------------------------------------------
    def read(self, n: int = -1) -> bytes:
        while (n < 0 or len(self._buf) < n) and not self._closed:
            chunk = next(self._gen, None)
            if chunk is None:
                self._closed = True
                break
            self._buf += chunk
        if n < 0:
            out, self._buf = self._buf, b""
        else:
            out, self._buf = self._buf[:n], self._buf[n:]
        return out

    def close(self) -> None:
        self._closed = True
        self._gen.close()

    # -- the resilient line stream ------------------------------------------------------------
    def _lines(self) -> Iterator[bytes]:
        t = self.target
        started = time.monotonic()
        failures = 0
        last_key: tuple[bytes, bytes, bytes] | None = None
        at_last = 0  # lines delivered that carry last_key
        last_error = ""
        while True:
            since = None
            if self.since_seconds is not None:
                since = int(self.since_seconds + (time.monotonic() - started)) + (1 if self.retries else 0)
            skip_key, skip_n = last_key, at_last
            try:
                chunks = self.api.stream_pod_log(t.namespace, t.pod, t.container, since_seconds=since,
                                                 timestamps=True, timeout=self.policy.timeout)
                pending = b""
                for chunk in _terminated(chunks):
                    data = pending + chunk
                    cut = data.rfind(b"\n") + 1
                    pending = data[cut:]
                    out: list[bytes] = []
                    for line in data[:cut].split(b"\n")[:-1]:
                        ts, _, rest = line.partition(b" ")
                        key = _ts_key(ts)
                        if key is None:  # no timestamp (should not happen): keep the line as it is
                            out.append(line)
                            continue
                        if skip_key is not None:
                            if key < skip_key:
                                continue
                            if key == skip_key and skip_n > 0:
                                skip_n -= 1
                                continue
                            skip_key = None
                        if key == last_key:
                            at_last += 1
                        else:
                            last_key, at_last = key, 1
                        out.append(rest)
                    if out:
                        failures = 0  # progress: the next failure starts a fresh backoff
                        self.lines += len(out)
                        yield b"\n".join(out) + b"\n"
                return
            except ApiStatusError as exc:
                if exc.status != 429 and exc.status < 500:
                    raise KubeError(f"{t.name}: {exc.message}") from exc
                last_error, retry_after = exc.message, exc.retry_after
            except ApiConnectionError as exc:
                last_error, retry_after = exc.message, None
            failures += 1
            if failures >= self.policy.attempts:
                raise KubeError(f"{t.name}: log stream failed {failures} times in a row; last error: {last_error}",
                                hint="the pod was skipped; the other pods' logs were collected")
            self.retries += 1
            self.policy.sleep(self.policy.delay(failures, retry_after))


class PodLogSource:
    """One pod's proxy container as an ingest source."""

    def __init__(self, api: KubeAPI, target: PodTarget, *, since_seconds: int | None = None,
                 policy: RetryPolicy | None = None) -> None:
        self.api = api
        self.target = target
        self.since_seconds = since_seconds
        self.policy = policy
        self.reporter: Workload | None = target.workload
        self.streams: list[PodLogStream] = []
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.target.name

    @property
    def file(self) -> str:
        return self.target.name

    def open(self) -> PodLogStream:
        s = PodLogStream(self.api, self.target, since_seconds=self.since_seconds, policy=self.policy)
        with self._lock:
            self.streams.append(s)
        return s

    def size(self) -> int | None:
        return None
