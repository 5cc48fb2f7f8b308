"""OTLP log records as access logs (OpenTelemetry Collector file exporter, OTLP/JSON documents).

The Collector's file exporter writes one `{"resourceLogs": [...]}` document per line; a single
pretty-printed ExportLogsServiceRequest document works too. Each log record becomes one row:

- time: the request start the body or attributes give (START_TIME), else the record's
  `timeUnixNano` (or `observedTimeUnixNano` when the producer left time unset);
- ids: `traceId` / `spanId` (hex as OTLP/JSON prescribes; base64 as some exporters write is converted);
- body: a string body is an access-log line in any text format meshctl reads (Envoy's OpenTelemetry
  access logger puts the formatted line there; Istio uses its default TEXT format); a map body is
  read like a JSON access log;
- attributes: read like JSON access-log keys (Istio's names), plus OpenTelemetry HTTP semantic
  conventions (`http.request.method`, `http.response.status_code`, ...);
- resource: `k8s.pod.name` / `k8s.namespace.name`, or Envoy's `node_name` (Istio's
  `sidecar~IP~POD.NS~NS.svc.cluster.local` node id) say which proxy reported the record.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from meshctl.parsers.base import json_text
from meshctl.parsers.fields import AUX_REPORTER_POD, Field, json_key_field
from meshctl.parsers.text import BlockFailed, BlockRaw, LineError

SEMCONV: dict[str, Field] = {
    "http.request.method": Field("method"),
    "http.method": Field("method"),
    "http.response.status_code": Field("response_code", "int"),
    "http.status_code": Field("response_code", "int"),
    "url.path": Field("path"),
    "http.target": Field("path"),
    "user_agent.original": Field("user_agent"),
    "http.user_agent": Field("user_agent"),
    "network.protocol.name": Field("protocol"),
    "server.address": Field("authority"),
    "http.host": Field("authority"),
    "client.address": Field("downstream_remote_address"),
    "rpc.grpc.status_code": Field("grpc_status", "grpc"),
}
RESOURCE: dict[str, Field] = {
    "k8s.pod.name": Field(AUX_REPORTER_POD),
    "k8s.namespace.name": Field("reporter_namespace"),
    "k8s.cluster.name": Field("source_cluster"),
}
_NODE_ID = re.compile(r"^(?:sidecar|router|waypoint)~[^~]*~(?P<pod>[^.~]+)\.(?P<ns>[^~]+)~")


def any_value(v: Any) -> Any:
    """OTLP/JSON AnyValue → plain Python value."""
    if not isinstance(v, dict):
        return v
    if "stringValue" in v:
        return v["stringValue"]
    if "intValue" in v:
        return str(v["intValue"])
    if "doubleValue" in v:
        return v["doubleValue"]
    if "boolValue" in v:
        return v["boolValue"]
    if "kvlistValue" in v:
        return {kv.get("key"): any_value(kv.get("value")) for kv in (v["kvlistValue"].get("values") or [])}
    if "arrayValue" in v:
        return [any_value(x) for x in (v["arrayValue"].get("values") or [])]
    if "bytesValue" in v:
        return v["bytesValue"]
    return None


def attributes(items: Any) -> dict[str, Any]:
    if not isinstance(items, list):
        return {}
    return {kv["key"]: any_value(kv.get("value")) for kv in items if isinstance(kv, dict) and "key" in kv}


def otlp_id(v: Any, size: int) -> str | None:
    """A trace (16 bytes) or span (8 bytes) id as lower-case hex; base64 input is converted."""
    if not isinstance(v, str) or not v:
        return None
    if len(v) == size * 2 and re.fullmatch(r"[0-9a-fA-F]+", v):
        return None if set(v) == {"0"} else v.lower()
    try:
        raw = base64.b64decode(v, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw.hex() if len(raw) == size and any(raw) else None


class OtlpLogFormat:
    """OTLP log records; the body's own format is detected from the first string body."""

    name = "otlp-logs"
    kind = "otlp_log"
    def __init__(self) -> None:
        self.constants: dict[str, str] = {}
        self._body_format: Any = None
        self._body_tried = False

    def score(self, lines: list[str]) -> float:
        hits = sum(1 for ln in lines if ln.lstrip().startswith("{") and '"resourceLogs"' in ln)
        return hits / len(lines) if lines else 0.0

    @staticmethod
    def key_rank(key: str) -> int:
        """Sources of one column are tried in this order: the access-log line in the body, then the
        attributes, and the record's own time and ids last."""
        return {"b": 0, "r": 0, "a": 1, "t": 2}.get(key[:1], 1)

    def field_of(self, key: str) -> Field | None:
        kind, _, name = key.partition("|")
        if kind == "t":
            return {"time": Field("timestamp", "epoch_ns"), "trace": Field("trace_id", "hexid"),
                    "span": Field("span_id", "hexid")}.get(name)
        if kind == "b":
            return self._body_format.field_of(name) if self._body_format is not None else None
        if kind == "a":
            return json_key_field(name) or SEMCONV.get(name)
        if kind == "r":
            return RESOURCE.get(name)
        return None

    def _detect_body(self, body: str) -> None:
        if self._body_format is None and not self._body_tried:
            from meshctl.parsers.detect import detect_line_format

            self._body_tried = True
            self._body_format = detect_line_format([body])

    def _body(self, body: str) -> dict[str, Any]:
        self._detect_body(body)
        if self._body_format is None:
            return {}
        try:
            recs = self._body_format.parse_line(body.encode("utf-8", "surrogatepass"))
        except LineError:
            return {}
        return recs[0] if recs else {}

    def parse_line(self, line: bytes) -> list[dict[str, Any]]:
        try:
            doc = json.loads(line)
        except UnicodeDecodeError:
            raise LineError("not UTF-8 text; wrong encoding or binary data") from None
        except ValueError as exc:
            raise LineError(f"truncated or malformed OTLP JSON: {exc}") from None
        return self.records(doc)

    def parse_block(self, data: bytes, count: int) -> BlockRaw:
        """A block of file-exporter lines: JSON documents one by one, the records' text bodies all
        together through the body format's vectorized reader. Lines that do not read (or hold no
        record) are left to the per-line path, which explains or ignores them."""
        import numpy as np
        import pyarrow as pa

        recs: list[dict[str, Any]] = []
        rows: list[int] = []
        retry: list[int] = []
        for i, ln in enumerate(data.split(b"\n")[:-1]):
            try:
                out = self.records(json.loads(ln), defer_body=True)
            except (ValueError, LineError):
                out = []
            if not out:
                retry.append(i)
                continue
            recs.extend(out)
            rows.extend([i] * len(out))
        n = len(recs)
        columns: dict[str, pa.Array] = {}
        with_body = [j for j, r in enumerate(recs) if "_body" in r]
        if with_body:
            texts = [recs[j].pop("_body") for j in with_body]
            self._detect_body(texts[0])
            fmt = self._body_format
            parsed = None
            if fmt is not None and hasattr(fmt, "parse_block") and not any("\n" in t for t in texts):
                joined = ("\n".join(texts) + "\n").encode("utf-8", "surrogatepass")
                try:
                    parsed = fmt.parse_block(joined, len(texts))
                except BlockFailed:
                    parsed = None
            if parsed is not None and len(parsed.rows):
                # Scatter the parsed bodies' values to their records (others stay null).
                where = np.full(n, -1, dtype=np.int64)
                where[np.asarray(with_body, dtype=np.int64)[parsed.rows]] = np.arange(len(parsed.rows))
                idx = pa.array(where, mask=where < 0)
                columns = {f"b|{k}": v.take(idx) for k, v in parsed.columns.items()}
                leftover = [with_body[int(b)] for b in parsed.retry]
                left_texts = [texts[int(b)] for b in parsed.retry]
            else:
                leftover, left_texts = with_body, texts
            for j, text in zip(leftover, left_texts, strict=True):
                recs[j].update({f"b|{k}": v for k, v in self._body(text).items()})
        keys: dict[str, None] = {}
        for r in recs:
            keys.update(dict.fromkeys(r))
        for k in sorted(keys, key=self.key_rank):
            values = pa.array([json_text(r.get(k)) for r in recs], type=pa.string())
            columns[k] = pc_coalesce(columns[k], values) if k in columns else values
        return BlockRaw(columns, np.asarray(rows, dtype=np.int64), retry)

    def records(self, doc: Any, *, defer_body: bool = False) -> list[dict[str, Any]]:
        if not isinstance(doc, dict) or not isinstance(doc.get("resourceLogs"), list):
            raise LineError("not an OTLP logs document (no resourceLogs)")
        out: list[dict[str, Any]] = []
        for rl in doc["resourceLogs"]:
            if not isinstance(rl, dict):
                continue
            res = attributes((rl.get("resource") or {}).get("attributes"))
            base: dict[str, Any] = {f"r|{k}": v for k, v in res.items() if k in RESOURCE}
            node = res.get("node_name")
            if isinstance(node, str) and f"r|{'k8s.pod.name'}" not in base:
                m = _NODE_ID.match(node)
                if m:
                    base["r|k8s.pod.name"] = m.group("pod")
                    base["r|k8s.namespace.name"] = m.group("ns").split(".")[0]
            for sl in rl.get("scopeLogs") or rl.get("instrumentationLibraryLogs") or []:
                for rec in (sl or {}).get("logRecords") or []:
                    if isinstance(rec, dict):
                        out.append(self._record(rec, base, defer_body))
        return out

    def _record(self, rec: dict[str, Any], base: dict[str, Any], defer_body: bool = False) -> dict[str, Any]:
        row = dict(base)
        body = any_value(rec.get("body"))
        if isinstance(body, str):
            if defer_body:
                row["_body"] = body  # read with the block's other bodies (parse_block)
            else:
                row.update({f"b|{k}": v for k, v in self._body(body).items()})
        elif isinstance(body, dict):
            row.update(_attr_row(body))
        row.update(_attr_row(attributes(rec.get("attributes"))))
        # Last: where the line itself says when the request started (START_TIME), that wins over
        # the record's time (the first non-null source of a column is kept).
        t = rec.get("timeUnixNano")
        if t in (None, "0", 0, ""):
            t = rec.get("observedTimeUnixNano")
        row["t|time"] = None if t in (None, "0", 0, "") else str(t)
        row["t|trace"] = otlp_id(rec.get("traceId"), 16)
        row["t|span"] = otlp_id(rec.get("spanId"), 8)
        return row


def pc_coalesce(a: Any, b: Any) -> Any:
    import pyarrow.compute as pc

    return pc.coalesce(a, b)


def _attr_row(attrs: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for k, v in attrs.items():
        if json_key_field(k) is None and k not in SEMCONV:
            continue
        row[f"a|{k}"] = json_text(v)
    return row
