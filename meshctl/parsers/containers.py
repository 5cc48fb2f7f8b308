"""Container-log envelopes around access-log lines, and the Kubernetes node log path convention.

What a proxy writes to stdout reaches meshctl wrapped in one of these envelopes:

- CRI (containerd, CRI-O; files under /var/log/pods): `<RFC3339Nano> stdout|stderr F|P <line>`,
  where `P` marks a partial line continued on the next one;
- the Kubernetes logs API with `timestamps=true`: `<RFC3339Nano> <line>`;
- Docker's json-file driver: `{"log": "<line>\\n", "stream": "stdout", "time": "..."}`;
- log shippers (Filebeat, Fluent Bit) writing JSON with the line under `message` and
  pod metadata under `kubernetes`;
- Emissary/Ambassador's `ACCESS ` prefix.

`unwrap_block` strips one known envelope from a whole block (line numbers unchanged);
`unwrap_line` peels any envelope off a single line (the per-line fallback path).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from meshctl.parsers.blocks import Block

CRI_RE = re.compile(rb"^(\d{4}-\d\d-\d\dT[\d:.]+(?:Z|[+-]\d\d:\d\d)) (stdout|stderr) ([FP]) ?(.*)$", re.DOTALL)
KTS_RE = re.compile(rb"^(\d{4}-\d\d-\d\dT[\d:.]+(?:Z|[+-]\d\d:\d\d)) (.*)$", re.DOTALL)
_CRI_SUB = re.compile(rb"(?m)^\d{4}-\d\d-\d\dT[\d:.]+(?:Z|[+-]\d\d:\d\d) (?:stdout|stderr) F ?")
_KTS_SUB = re.compile(rb"(?m)^\d{4}-\d\d-\d\dT[\d:.]+(?:Z|[+-]\d\d:\d\d) ")
_ACCESS_SUB = re.compile(rb"(?m)^ACCESS ")
_CRI_PARTIAL = re.compile(rb"(?m)^\d{4}-\d\d-\d\dT[\d:.]+(?:Z|[+-]\d\d:\d\d) (?:stdout|stderr) P")

WRAPPERS = ("none", "cri", "k8s-timestamps", "docker-json", "shipper-json", "ambassador")


@dataclass
class LineMeta:
    """What an envelope said about the line: which pod wrote it (when it says)."""

    pod: str | None = None
    namespace: str | None = None
    container: str | None = None


def detect_wrapper(lines: list[bytes]) -> str:
    """The envelope most sample lines carry ('none' if no envelope is common)."""
    counts = dict.fromkeys(WRAPPERS, 0)
    for ln in lines:
        counts[_line_wrapper(ln)] += 1
    best = max(WRAPPERS[1:], key=lambda w: counts[w])
    return best if counts[best] > counts["none"] else "none"


def _line_wrapper(ln: bytes) -> str:
    if CRI_RE.match(ln):
        return "cri"
    if KTS_RE.match(ln):
        return "k8s-timestamps"
    if ln.startswith(b"ACCESS "):
        return "ambassador"
    if ln.startswith(b"{") and (b'"log"' in ln or b'"message"' in ln):
        obj = _loads(ln)
        if isinstance(obj, dict):
            if isinstance(obj.get("log"), str) and ("stream" in obj or "time" in obj):
                return "docker-json"
            if isinstance(obj.get("message"), str) and not _looks_like_access_json(obj):
                return "shipper-json"
    return "none"


def _looks_like_access_json(obj: dict[str, Any]) -> bool:
    return any(k in obj for k in ("start_time", "response_code", "upstream_cluster", "client.addr"))


def _loads(ln: bytes) -> Any:
    try:
        return json.loads(ln)
    except (ValueError, UnicodeDecodeError):
        return None


def unwrap_line(ln: bytes) -> tuple[bytes, LineMeta | None]:
    """Peel every known envelope off one line (up to three levels deep)."""
    meta: LineMeta | None = None
    for _ in range(3):
        kind = _line_wrapper(ln)
        if kind == "none":
            break
        if kind == "cri":
            m = CRI_RE.match(ln)
            assert m
            ln = m.group(4)
        elif kind == "k8s-timestamps":
            m = KTS_RE.match(ln)
            assert m
            ln = m.group(2)
        elif kind == "ambassador":
            ln = ln[len(b"ACCESS "):]
        else:
            obj = _loads(ln)
            key = "log" if kind == "docker-json" else "message"
            ln = obj[key].rstrip("\r\n").encode("utf-8", "surrogatepass")
            kube = obj.get("kubernetes")
            if isinstance(kube, dict):
                pod = kube.get("pod") if isinstance(kube.get("pod"), dict) else {}
                cont = kube.get("container") if isinstance(kube.get("container"), dict) else {}
                ns = kube.get("namespace") if isinstance(kube.get("namespace"), str) else kube.get("namespace_name")
                meta = LineMeta(pod=pod.get("name") or kube.get("pod_name"), namespace=ns,
                                container=cont.get("name") or kube.get("container_name"))
    return ln, meta


def unwrap_block(block: Block, wrapper: str) -> Block:
    """Strip `wrapper` from every line of a block that carries it; line count and numbers are kept.

    CRI partial lines (`P`) are joined to the line that completes them; the partial's own line is
    left empty, so the record keeps the number of its final line.
    """
    if wrapper == "none":
        return block
    data = block.data
    if wrapper == "cri":
        if _CRI_PARTIAL.search(data):
            data = _join_cri_partials(data)
        data = _CRI_SUB.sub(b"", data)
    elif wrapper == "k8s-timestamps":
        data = _KTS_SUB.sub(b"", data)
    elif wrapper == "ambassador":
        data = _ACCESS_SUB.sub(b"", data)
    else:
        data = _unwrap_json_block(data, "log" if wrapper == "docker-json" else "message")
    return Block(data, block.first_line, block.count)


def _join_cri_partials(data: bytes) -> bytes:
    out: list[bytes] = []
    carry = b""
    for ln in data.split(b"\n")[:-1]:
        m = CRI_RE.match(ln)
        if m and m.group(3) == b"P":
            carry += m.group(4)
            out.append(b"")
            continue
        if carry and m:
            out.append(m.group(1) + b" " + m.group(2) + b" F " + carry + m.group(4))
        else:
            out.append(carry + ln if carry else ln)
        carry = b""
    if carry:
        out[-1] = carry
    return b"\n".join(out) + b"\n"


def _unwrap_json_block(data: bytes, key: str) -> bytes:
    """JSON envelopes → their inner lines, vectorized; lines that are not envelopes stay as they are."""
    import pyarrow as pa
    import pyarrow.json as pj

    lines = data.split(b"\n")[:-1]
    try:
        schema = pa.schema([(key, pa.string())])
        tbl = pj.read_json(pa.BufferReader(data), parse_options=pj.ParseOptions(
            explicit_schema=schema, unexpected_field_behavior="ignore"),
            read_options=pj.ReadOptions(use_threads=False, block_size=max(len(data), 1 << 20) + 1))
        if tbl.num_rows == len(lines) and tbl.column(key).null_count == 0:
            inner = tbl.column(key).to_pylist()
            return b"".join(v.rstrip("\r\n").encode("utf-8", "surrogatepass") + b"\n" for v in inner)
    except (pa.ArrowInvalid, ValueError):
        pass
    out = []
    for ln in lines:
        obj = _loads(ln)
        if isinstance(obj, dict) and isinstance(obj.get(key), str):
            out.append(obj[key].rstrip("\r\n").encode("utf-8", "surrogatepass"))
        else:
            out.append(ln)
    return b"\n".join(out) + b"\n"


# ---- Kubernetes node log paths ------------------------------------------------------------
@dataclass(frozen=True)
class PodLogPath:
    namespace: str
    pod: str
    uid: str | None
    container: str


_POD_DIR = re.compile(r"^(?P<ns>[a-z0-9]([-a-z0-9]*[a-z0-9])?)_(?P<pod>[a-z0-9]([-.a-z0-9]*[a-z0-9])?)_(?P<uid>[0-9a-fA-F-]{8,})$")
_CONTAINER_LOG = re.compile(
    r"^(?P<pod>[a-z0-9]([-.a-z0-9]*[a-z0-9])?)_(?P<ns>[a-z0-9]([-a-z0-9]*[a-z0-9])?)_"
    r"(?P<container>[a-z0-9]([-a-z0-9]*[a-z0-9])?)-(?P<cid>[0-9a-f]{64})\.log$"
)


def pod_log_path(path: str) -> PodLogPath | None:
    """`/var/log/pods/<ns>_<pod>_<uid>/<container>/N.log[.gz|.<date>]` or
    `/var/log/containers/<pod>_<ns>_<container>-<id>.log` → who wrote it; None otherwise."""
    p = PurePosixPath(path.replace("\\", "/"))
    parts = p.parts
    if len(parts) >= 3 and re.match(r"^\d+\.log", parts[-1]):
        m = _POD_DIR.match(parts[-3])
        if m:
            return PodLogPath(m.group("ns"), m.group("pod"), m.group("uid"), parts[-2])
    m = _CONTAINER_LOG.match(p.name)
    if m:
        return PodLogPath(m.group("ns"), m.group("pod"), None, m.group("container"))
    return None
