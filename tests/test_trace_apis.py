"""Trace query APIs (Jaeger, Zipkin, Tempo) against a loopback HTTP server that answers with recorded
API responses built from the real oracle traces (read in place), with injected faults."""

from __future__ import annotations

import base64
import collections
import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from analyzers import table as rt
from meshctl.parsers.traces import read_trace_file, trace_rows
from meshctl.sources.trace_apis import HttpClient, TraceAPIError, Window, api_sources
from meshctl.store import Dataset
from meshctl.trace_ingest import ingest_traces
from tests.kubeapi import LoopbackServer, Reply

NOW = datetime(2026, 1, 2, 15, 0, 0, tzinfo=timezone.utc)


class TraceAPIServer(LoopbackServer):
    """127.0.0.1 HTTP server; `handler(path, query) -> Reply`; faults are queued per (path, key)."""

    def __init__(self, handler: Callable[[str, dict[str, str]], Reply]) -> None:
        super().__init__()
        self.handler = handler
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.faults: dict[tuple[str, str | None], list[Reply]] = collections.defaultdict(list)

    def fault(self, path: str, *replies: Reply, key: str | None = None) -> None:
        """The next requests to `path` (whose service/trace query equals `key`, if given) get `replies`."""
        self.faults[(path, key)].extend(replies)

    def answer(self, method: str, path: str, query: dict[str, list[str]]) -> Reply:
        if method != "GET":  # the query APIs are read with GET only
            return Reply(status=501, body=b"unsupported method")
        q = {k: v[-1] for k, v in query.items()}
        key = q.get("service") or q.get("serviceName") or q.get("tags")
        with self._lock:
            self.requests.append((path, q))
            queued = self.faults.get((path, key)) or self.faults.get((path, None))
            reply = queued.pop(0) if queued else None
        return reply or self.handler(path, q)

    def paths(self) -> list[str]:
        return [p for p, _ in self.requests]


def fast_client(**kw: Any) -> HttpClient:
    slept: list[float] = []
    client = HttpClient(timeout=kw.pop("timeout", 5.0), backoff=0.01, max_backoff=0.05, sleep=slept.append, **kw)
    client.slept = slept  # type: ignore[attr-defined]
    return client


# ---------------------------------------------------------------------------------------------
# Recorded answers built from the oracle data
# ---------------------------------------------------------------------------------------------
def jaeger_api_traces(data: Path) -> list[dict]:
    """DeathStarBench's UI export turned into what Jaeger's /api/traces returns (the UI adds process,
    depth, childSpanIds, relativeStartTime, and nests the referenced span in each reference)."""
    doc = json.loads((data / "deathstarbench" / "traces-1695947455229.json").read_text())
    out = []
    for t in doc["data"]:
        spans = []
        for s in t["spans"]:
            s = {k: v for k, v in s.items() if k not in ("process", "depth", "childSpanIds", "relativeStartTime",
                                                         "hasChildren")}
            s["references"] = [{k: v for k, v in r.items() if k != "span"} for r in s["references"]]
            spans.append(s)
        out.append({"traceID": t["traceID"], "spans": spans, "processes": t["processes"], "warnings": None})
    return out


def jaeger_handler(traces: list[dict]) -> Callable[[str, dict[str, str]], Reply]:
    def services_of(t):
        return {p["serviceName"] for p in t["processes"].values()}

    def handle(path: str, q: dict[str, str]) -> Reply:
        if path == "/api/services":
            names = sorted({s for t in traces for s in services_of(t)})
            return Reply.json({"data": names, "total": len(names), "limit": 0, "offset": 0, "errors": None})
        if path == "/api/traces":
            if not q.get("service"):
                return Reply.json({"data": None, "total": 0, "limit": 0, "offset": 0,
                                   "errors": [{"code": 400, "msg": "parameter 'service' is required"}]}, status=400)
            start, end, limit = int(q["start"]), int(q["end"]), int(q.get("limit", 20))
            hits = [t for t in traces if q["service"] in services_of(t)
                    and any(start <= s["startTime"] <= end for s in t["spans"])][:limit]
            return Reply.json({"data": hits, "total": len(hits), "limit": 0, "offset": 0, "errors": None})
        return Reply.json({"errors": [{"code": 404, "msg": "not found"}]}, status=404)

    return handle


def zipkin_traces(data: Path) -> list[list[dict]]:
    return [json.loads((data / "zipkin" / n).read_text()) for n in
            ("yelp.json", "ascend.json", "messaging-kafka.json", "skew.json", "simple-db-p6.json")]


def zipkin_handler(traces: list[list[dict]]) -> Callable[[str, dict[str, str]], Reply]:
    def services_of(t):
        return {(s.get("localEndpoint") or {}).get("serviceName") for s in t} - {None}

    def handle(path: str, q: dict[str, str]) -> Reply:
        if path == "/api/v2/services":
            return Reply.json(sorted({s for t in traces for s in services_of(t)}))
        if path == "/api/v2/traces":
            end_us = int(q["endTs"]) * 1000
            start_us = end_us - int(q["lookback"]) * 1000
            hits = [t for t in traces if (not q.get("serviceName") or q["serviceName"] in services_of(t))
                    and any(start_us <= s["timestamp"] <= end_us for s in t)][: int(q.get("limit", 10))]
            return Reply.json(hits)
        return Reply(status=404, body=b"not found")

    return handle


def tempo_traces(data: Path) -> dict[str, dict]:
    """Tempo's /api/traces/{id} answers: {"batches": resourceSpans} per trace id."""
    out = {}
    for name in ("trace-with-queue-database.json", "trace-with-failed-requests.json"):
        doc = json.loads((data / "tempo" / name).read_text())
        tid = base64.b64decode(doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"]).hex()
        out[tid] = {"batches": doc["resourceSpans"]}
    return out


def tempo_handler(traces: dict[str, dict]) -> Callable[[str, dict[str, str]], Reply]:
    def handle(path: str, q: dict[str, str]) -> Reply:
        if path == "/api/search":
            svc = (q.get("tags") or "").removeprefix("service.name=")
            hits = [{"traceID": tid, "rootServiceName": "mythical-requester"} for tid, t in traces.items()
                    if not svc or svc in json.dumps(t)][: int(q.get("limit", 20))]
            return Reply.json({"traces": hits, "metrics": {"inspectedTraces": len(traces)}})
        if path.startswith("/api/traces/"):
            tid = path.rsplit("/", 1)[1]
            return Reply.json(traces[tid]) if tid in traces else Reply(status=404, body=b"trace not found")
        return Reply(status=404)

    return handle


@pytest.fixture(scope="module")
def data(oracles_dir: Path) -> Path:
    return oracles_dir / "data"


def window_covering(traces_us: list[int]) -> tuple[str, str]:
    lo, hi = min(traces_us), max(traces_us)
    return (datetime.fromtimestamp(lo / 1e6 - 60, timezone.utc).isoformat(),
            datetime.fromtimestamp(hi / 1e6 + 60, timezone.utc).isoformat())


# ---------------------------------------------------------------------------------------------
# Jaeger
# ---------------------------------------------------------------------------------------------
def test_jaeger_api_per_service_with_retries(data: Path, tmp_path: Path) -> None:
    traces = jaeger_api_traces(data)
    since, until = window_covering([s["startTime"] for t in traces for s in t["spans"]])
    with TraceAPIServer(jaeger_handler(traces)) as api:
        # Two services answer 429 then 503 before the real answer; both are retried.
        api.fault("/api/traces", Reply(status=429, headers={"Retry-After": "0"}), Reply(status=503),
                  key="text-service")
        api.fault("/api/services", Reply(status=502))
        client = fast_client()
        sources = api_sources("jaeger", api.url, since=since, until=until, limit=50, client=client)
        assert [s.service for s in sources] == sorted({p["serviceName"] for t in traces
                                                        for p in t["processes"].values()})
        report = ingest_traces(sources, Dataset(tmp_path / "d"), progress=False)
        assert report.failed == []
        assert client.slept and len(client.slept) == 3  # 502 on /api/services, 429 and 503 on one query
        sent = [q for p, q in api.requests if p == "/api/traces"]
        assert {q["start"] for q in sent} == {str(int(datetime.fromisoformat(since).timestamp() * 1e6))}
        assert {q["limit"] for q in sent} == {"50"}
    df = Dataset(tmp_path / "d").read()
    # Every trace was fetched by several services; each call is stored once.
    from_file = rt.to_frame(trace_rows(read_trace_file(data / "deathstarbench" / "traces-1695947455229.json")))
    assert len(df) == len(from_file) == 240
    key = ["trace_id", "span_id", "source_app", "destination_service"]
    assert sorted(map(tuple, df[key].astype(str).values)) == sorted(map(tuple, from_file[key].astype(str).values))
    assert set(df["record_source"]) <= {s.name for s in sources}
    assert report.append.duplicates == 0 and report.rows == 240


def test_jaeger_service_that_keeps_failing_is_reported_and_the_rest_lands(data: Path, tmp_path: Path) -> None:
    traces = jaeger_api_traces(data)
    since, until = window_covering([s["startTime"] for t in traces for s in t["spans"]])
    with TraceAPIServer(jaeger_handler(traces)) as api:
        api.fault("/api/traces", *[Reply(status=500, body=b"storage unavailable")] * 10, key="nginx-web-server")
        client = fast_client(attempts=3)
        sources = [s for s in api_sources("jaeger", api.url, since=since, until=until, client=client)
                   if s.service in ("nginx-web-server", "user-service")]
        report = ingest_traces(sources, Dataset(tmp_path / "d"), progress=False)
    [failed] = report.failed
    assert failed.source.endswith("service=nginx-web-server")
    assert "gave up after 3 attempts" in failed.error and "HTTP 500" in failed.error
    ok = next(s for s in report.sources if s.source.endswith("service=user-service"))
    assert ok.error is None and ok.rows > 0 and report.rows > 0


def test_client_errors_are_not_retried(data: Path) -> None:
    with TraceAPIServer(jaeger_handler(jaeger_api_traces(data))) as api:
        client = fast_client()
        src = api_sources("jaeger", api.url, service="", client=client, since="1h", now=NOW)  # lists services
        assert len(src) == 12
        bad = api_sources("jaeger", api.url, service="x", client=client, now=NOW)[0]
        bad.service = None  # Jaeger requires a service: a 400 with Jaeger's own message
        with pytest.raises(TraceAPIError, match=r"HTTP 400.*parameter 'service' is required"):
            bad.read()
        assert client.slept == []


def test_timeouts_are_retried(data: Path) -> None:
    with TraceAPIServer(zipkin_handler(zipkin_traces(data))) as api:
        api.fault("/api/v2/traces", Reply.json([], delay=1.5))
        client = fast_client(timeout=0.5)
        [src] = api_sources("zipkin", api.url, since="2015-01-01T00:00:00Z", client=client, now=NOW)
        res = src.read()
        assert res.count > 0 and len(client.slept) == 1 and client.requests == 2


# ---------------------------------------------------------------------------------------------
# Zipkin and Tempo
# ---------------------------------------------------------------------------------------------
def test_zipkin_api(data: Path, tmp_path: Path) -> None:
    traces = zipkin_traces(data)
    with TraceAPIServer(zipkin_handler(traces)) as api:
        [everything] = api_sources("zipkin", api.url + "/api/v2", since="2015-01-01T00:00:00Z", client=fast_client(),
                                   now=NOW)
        res = everything.read()
        assert res.count == sum(len(t) for t in traces) and res.rejects == []
        [one] = api_sources("zipkin", api.url, service="mobile_api", since="2015-01-01T00:00:00Z",
                            until="2020-01-01T00:00:00Z", client=fast_client(), now=NOW)
        res = one.read()
        q = api.requests[-1][1]
        assert q["serviceName"] == "mobile_api"
        assert int(q["endTs"]) == int(datetime(2020, 1, 1, tzinfo=timezone.utc).timestamp() * 1000)
        assert int(q["endTs"]) - int(q["lookback"]) == int(datetime(2015, 1, 1, tzinfo=timezone.utc).timestamp() * 1000)
    yelp = json.loads((data / "zipkin" / "yelp.json").read_text())
    assert res.count == len(yelp)  # only yelp's trace has mobile_api
    rows = rt.to_frame(trace_rows(res))
    assert rows["destination_service"].value_counts()["memcache"] == 5


def test_tempo_api_search_then_fetch(data: Path, tmp_path: Path) -> None:
    traces = tempo_traces(data)
    with TraceAPIServer(tempo_handler(traces)) as api:
        api.fault("/api/traces/e8b6dff9f8d44b28f1b22bc3bd2f6768", Reply(status=503))
        client = fast_client()
        sources = api_sources("tempo", api.url, service="mythical-server", since="2h", until="1h", client=client,
                              now=NOW)
        report = ingest_traces(sources, Dataset(tmp_path / "d"), progress=False)
        search = next(q for p, q in api.requests if p == "/api/search")
        assert search["tags"] == "service.name=mythical-server"
        assert (int(search["start"]), int(search["end"])) == (int((NOW - timedelta(hours=2)).timestamp()),
                                                             int((NOW - timedelta(hours=1)).timestamp()) + 1)
        assert sorted(p for p in api.paths() if p.startswith("/api/traces/")) == sorted(
            [f"/api/traces/{t}" for t in traces] + ["/api/traces/e8b6dff9f8d44b28f1b22bc3bd2f6768"])
    assert report.failed == [] and report.rejected == 0
    df = Dataset(tmp_path / "d").read()
    assert report.lines == 19 + 15
    # The edges Tempo's own service-graph tests expect, from both traces.
    pairs = collections.Counter(zip(df["source_app"].fillna("user"), df["destination_service"].fillna("?"),
                                    strict=True))
    assert pairs[("mythical-requester", "mythical-server")] == 2
    assert pairs[("mythical-server", "postgres")] == 2
    assert pairs[("mythical-requester", "mythical-recorder")] == 1
    assert set(df.loc[df["destination_service"] == "postgres", "span_status"].fillna("-")) == {"error", "-"}


def test_tempo_trace_that_cannot_be_fetched_is_a_reject(data: Path) -> None:
    traces = tempo_traces(data)
    with TraceAPIServer(tempo_handler(traces)) as api:
        api.fault("/api/traces/e8b6dff9f8d44b28f1b22bc3bd2f6768", *[Reply(status=500)] * 5)
        [src] = api_sources("tempo", api.url, client=fast_client(attempts=2), now=NOW)
        res = src.read()
    assert res.count == 19 and len(res.rejects) == 1
    assert "e8b6dff9f8d44b28f1b22bc3bd2f6768" in res.rejects[0].reason and "HTTP 500" in res.rejects[0].reason


def test_window_defaults_and_validation() -> None:
    w = Window.resolve(None, None, now=NOW)
    assert (w.start, w.end) == (NOW - timedelta(hours=1), NOW)
    w = Window.resolve("30m", None, now=NOW)
    assert w.start == NOW - timedelta(minutes=30)
    from meshctl.errors import MeshctlError

    with pytest.raises(MeshctlError, match="not before"):
        Window.resolve("1h", "2h", now=NOW)
    with pytest.raises(MeshctlError, match="not an http"):
        api_sources("jaeger", "jaeger:16686", service="x")


# ---------------------------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------------------------
def test_cli_collect_traces_from_zipkin_api(data: Path, tmp_path: Path, run_cli) -> None:
    with TraceAPIServer(zipkin_handler(zipkin_traces(data))) as api:
        code, out, err = run_cli("collect", "traces", "--zipkin", api.url, "--since", "2015-01-01T00:00:00Z",
                                 "--data", str(tmp_path / "d"), "-q", "-o", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["rows"] == len(Dataset(tmp_path / "d").read()) > 0
    assert doc["sources"][0]["source"] == f"zipkin {api.url}" and doc["sources"][0]["format"] == "zipkin"


def test_cli_api_failure_exit_code(tmp_path: Path, run_cli) -> None:
    with TraceAPIServer(lambda p, q: Reply(status=503, body=b"down")) as api:
        code, out, _ = run_cli("collect", "traces", "--tempo", api.url, "--retries", "0",
                                 "--data", str(tmp_path / "d"), "-q", "-o", "json")
    assert code == 1
    [src] = json.loads(out)["sources"]
    assert "HTTP 503: down" in src["error"] and f"{api.url}/api/search" in src["error"]


def test_cli_usage_errors(tmp_path: Path, run_cli) -> None:
    code, _, err = run_cli("collect", "traces", "x.json", "--jaeger", "http://127.0.0.1:9", "--data", str(tmp_path))
    assert code == 3 and "not both" in err
    code, _, err = run_cli("collect", "traces", "--jaeger", "http://a", "--zipkin", "http://b", "--data", str(tmp_path))
    assert code == 3 and "one trace API" in err
    code, _, err = run_cli("collect", "traces", str(tmp_path), "--service", "x", "--data", str(tmp_path / "d"))
    assert code == 3 and "--service" in err
