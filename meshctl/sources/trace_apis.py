"""Trace query APIs as collection sources: Jaeger, Zipkin and Tempo (read-only HTTP GETs).

    sources = api_sources("jaeger", "http://jaeger-query:16686", service="frontend", since="30m", limit=200)
    for src in sources:
        result = src.read()          # SpanResult (meshctl.parsers.spans), parsed from the responses

One source per query, so that a query that keeps failing is reported on its own and the rest still
lands:

* Jaeger (`/api`, the query service's HTTP API): `GET /api/traces?service=S&start=&end=&limit=`
  (microseconds). Jaeger needs a service: without `--service`, `GET /api/services` lists them and
  each is one source (traces seen from two services are collected twice and counted once).
* Zipkin (`/api/v2`): `GET /api/v2/traces?serviceName=S&endTs=&lookback=&limit=` (milliseconds);
  without a service, one query for all services.
* Tempo: `GET /api/search?tags=service.name=S&start=&end=&limit=` (seconds) finds trace ids, then
  `GET /api/traces/{id}` fetches each trace (OTLP JSON, base64 ids), a few at a time.

`--since/--until` are durations back from now or absolute times (meshctl.timewindow); with neither,
the last hour. Every request is retried with exponential backoff on 429, 5xx, timeouts and dropped
connections (a `Retry-After` header is honoured, within bounds); other 4xx answers fail at once with
the server's message.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote, urlencode

from meshctl.errors import MeshctlError
from meshctl.parsers.base import Reject
from meshctl.parsers.spans import SpanResult, concat_span_tables, empty_span_table

APIS = ("jaeger", "zipkin", "tempo")
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
DEFAULT_LOOKBACK = timedelta(hours=1)


class TraceAPIError(MeshctlError):
    """A trace query API could not be read (after retries) or refused the query."""


@dataclass
class HttpClient:
    """GETs with retries and exponential backoff; stdlib only (urllib)."""

    timeout: float = 30.0
    attempts: int = 5
    backoff: float = 0.5  # seconds before the first retry; doubles each time
    max_backoff: float = 10.0
    headers: Mapping[str, str] = field(default_factory=dict)
    sleep: Callable[[float], None] = time.sleep
    requests: int = 0  # how many HTTP requests were made (for tests and summaries)

    def get(self, url: str, params: Mapping[str, Any] | None = None, *, accept: str = "application/json") -> bytes:
        import urllib.error
        import urllib.request

        full = url + ("?" + urlencode({k: v for k, v in params.items() if v is not None}) if params else "")
        last = ""
        for attempt in range(1, self.attempts + 1):
            req = urllib.request.Request(full, headers={"Accept": accept, "User-Agent": "meshctl", **self.headers})
            delay = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
            self.requests += 1
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    return resp.read()
            except urllib.error.HTTPError as exc:
                body = exc.read()[:300].decode("utf-8", "replace") if exc.fp else ""
                last = f"HTTP {exc.code}" + (f": {body.strip()}" if body.strip() else "")
                if exc.code not in RETRY_STATUSES:
                    raise TraceAPIError(f"{last}", file=full) from None
                retry_after = exc.headers.get("Retry-After") if exc.headers else None
                if retry_after and retry_after.strip().isdigit():
                    delay = min(self.max_backoff, max(delay, float(retry_after)))
            except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                last = f"{type(reason).__name__}: {reason}"
            if attempt < self.attempts:
                self.sleep(delay)
        raise TraceAPIError(f"gave up after {self.attempts} attempts ({last})", file=full)

    def get_json(self, url: str, params: Mapping[str, Any] | None = None) -> Any:
        data = self.get(url, params)
        try:
            return json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise TraceAPIError(f"the answer is not JSON ({exc})", file=url) from None


@dataclass
class Window:
    start: datetime
    end: datetime

    @classmethod
    def resolve(cls, since: str | None, until: str | None, *, now: datetime | None = None) -> Window:
        from meshctl.timewindow import resolve_window

        now = now or datetime.now(timezone.utc)
        start, end = resolve_window(since, until, anchor=now)
        end = end or now
        start = start or (end - DEFAULT_LOOKBACK)
        if start >= end:
            raise MeshctlError(f"--since ({start.isoformat()}) is not before --until ({end.isoformat()})",
                               field="--since")
        return cls(start, end)

    def micros(self) -> tuple[int, int]:
        return int(self.start.timestamp() * 1e6), int(self.end.timestamp() * 1e6)


@dataclass
class TraceAPISource:
    """One query against a trace API; `read()` fetches and parses it."""

    api: str
    base: str
    service: str | None
    window: Window
    limit: int
    client: HttpClient
    reporter: Any = None  # ingest's Source protocol: no proxy wrote an API's answer

    @property
    def name(self) -> str:
        who = f" service={self.service}" if self.service else ""
        return f"{self.api} {self.base}{who}"

    @property
    def file(self) -> str:
        return self.name

    def size(self) -> int | None:
        return None

    def read(self, fmt: str = "auto") -> SpanResult:
        return {"jaeger": self._jaeger, "zipkin": self._zipkin, "tempo": self._tempo}[self.api]()

    # ---- Jaeger ---------------------------------------------------------------------------
    def _jaeger(self) -> SpanResult:
        from meshctl.parsers.jaeger import parse_jaeger_docs

        start, end = self.window.micros()
        url = f"{self.base}/api/traces"
        doc = self.client.get_json(url, {"service": self.service, "start": start, "end": end, "limit": self.limit})
        _jaeger_errors(doc, url)
        return parse_jaeger_docs([(1, doc)], file=self.name, source=self.name)

    # ---- Zipkin ---------------------------------------------------------------------------
    def _zipkin(self) -> SpanResult:
        from meshctl.parsers.zipkin import parse_zipkin

        end_ms = int(self.window.end.timestamp() * 1000)
        lookback = end_ms - int(self.window.start.timestamp() * 1000)
        data = self.client.get(f"{self.base}/api/v2/traces", {"serviceName": self.service, "endTs": end_ms,
                                                             "lookback": lookback, "limit": self.limit})
        return parse_zipkin(data, file=self.name, source=self.name)

    # ---- Tempo ----------------------------------------------------------------------------
    def _tempo(self) -> SpanResult:
        from concurrent.futures import ThreadPoolExecutor

        from meshctl.parsers.otlp_traces import parse_otlp_json

        params: dict[str, Any] = {"start": int(self.window.start.timestamp()),
                                  "end": int(self.window.end.timestamp()) + 1, "limit": self.limit}
        if self.service:
            params["tags"] = f"service.name={self.service}"
        found = self.client.get_json(f"{self.base}/api/search", params)
        if not isinstance(found, dict) or not isinstance(found.get("traces", []), list):
            raise TraceAPIError("unexpected /api/search answer (no 'traces' list)", file=f"{self.base}/api/search")
        ids = list(dict.fromkeys(str(t.get("traceID")) for t in found.get("traces") or []
                                 if isinstance(t, dict) and t.get("traceID")))[: self.limit]

        def fetch(tid: str) -> tuple[str, bytes | None, str | None]:
            try:
                return tid, self.client.get(f"{self.base}/api/traces/{quote(tid)}"), None
            except TraceAPIError as exc:
                return tid, None, str(exc)

        results: list[SpanResult] = []
        rejects: list[Reject] = []
        records = 0
        with ThreadPoolExecutor(max_workers=4, thread_name_prefix="meshctl-tempo") as ex:
            for i, (tid, data, err) in enumerate(ex.map(fetch, ids), start=1):
                where = f"{self.name} trace {tid}"
                if err is not None:  # one trace that cannot be fetched does not cost the others
                    rejects.append(Reject.of(self.name, i, f"trace {tid}: {err}", ""))
                    records += 1
                    continue
                res = parse_otlp_json(data, file=self.name, source=self.name)
                for r in res.rejects:
                    r.reason = f"{where}: {r.reason}"
                results.append(res)
                rejects.extend(res.rejects)
                records += res.records
        spans = concat_span_tables([r.spans for r in results]) if results else empty_span_table()
        if ids and not results:
            raise TraceAPIError(f"none of the {len(ids)} traces found could be fetched ({rejects[0].reason})",
                                file=f"{self.base}/api/traces")
        return SpanResult(spans, rejects, records, "otlp-json")


def _jaeger_errors(doc: Any, url: str) -> None:
    if not isinstance(doc, dict):
        raise TraceAPIError("unexpected answer (not a JSON object)", file=url)
    errors = doc.get("errors")
    if errors and not doc.get("data"):
        msgs = "; ".join(str(e.get("msg", e)) if isinstance(e, dict) else str(e) for e in errors)
        raise TraceAPIError(f"Jaeger says: {msgs}", file=url)


def api_sources(api: str, url: str, *, service: str | None = None, since: str | None = None,
                until: str | None = None, limit: int = 100, client: HttpClient | None = None,
                now: datetime | None = None) -> list[TraceAPISource]:
    """The queries to run against one trace API for a collection."""
    if api not in APIS:
        raise MeshctlError(f"unknown trace API {api!r} (one of {', '.join(APIS)})")
    base = url.rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise MeshctlError(f"{url!r} is not an http(s) URL", field=f"--{api}")
    for suffix in ("/api/v2", "/api"):  # accept the API root as well as the server root
        if base.endswith(suffix):
            base = base[: -len(suffix)]
    if limit < 1:
        raise MeshctlError("--limit must be at least 1", field="--limit")
    client = client or HttpClient()
    window = Window.resolve(since, until, now=now)
    if api == "jaeger" and not service:
        services = list_services(api, base, client)
        return [TraceAPISource(api, base, s, window, limit, client) for s in services]
    return [TraceAPISource(api, base, service, window, limit, client)]


def list_services(api: str, base: str, client: HttpClient) -> list[str]:
    """Services the API knows (Jaeger `/api/services`, Zipkin `/api/v2/services`)."""
    if api == "jaeger":
        url = f"{base}/api/services"
        doc = client.get_json(url)
        _jaeger_errors(doc, url)
        names = doc.get("data") or []
    elif api == "zipkin":
        names = client.get_json(f"{base}/api/v2/services")
    else:
        raise MeshctlError(f"{api} has no service list")
    if not isinstance(names, list):
        raise TraceAPIError("unexpected service list", file=base)
    return sorted({str(n) for n in names if n})
