"""Service dependency graph from the requests table: `build_graph(df, group_by=...) -> nx.DiGraph`.

Pure: a DataFrame (analyzers/table.py columns) in, a networkx DiGraph with figures out. Vectorized
(numpy / pandas factorize), never a Python loop per row: per-row work is array arithmetic, and
Python only loops over the few distinct identities and edges.

Nodes (attribute `kind`)
    workload, app, versioned_app, service, namespace — in-mesh identities, by `group_by`;
    gateway   — a proxy that reported rows with direction=gateway, or destination_kind=gateway;
    unknown   — a caller or callee with no identity at all;
    user      — requests from outside the traced system (trace roots: source_kind=user);
    external, database, messaging — virtual peers (destination_kind), e.g. an uninstrumented DB.
    Node ids are readable: `ns/app`, `ns/app:v2`, `ns/workload`, `svc:ns/name`, `database:postgres`,
    `unknown`; with several clusters in the selection, `@cluster` is appended (a cluster dimension).

Edges carry
    requests, rps (over the window), errors, error_rate, errors_5xx, errors_grpc, errors_no_response,
    errors_4xx (not in error_rate), errors_span, flags {FLAG: count} (each response flag counted separately),
    p50_ms, p90_ms, p99_ms, mean_ms (duration_ms, numpy 'linear' percentiles), latency_samples,
    bytes_sent, bytes_received, protocols, reporter, client_rows, server_rows, trace_rows,
    paired_server_rows, dropped_trace_rows.
Nodes carry in/out requests and errors, in/out error rate, error_rate, rps_in/out, is_root.

An error is: HTTP 5xx, gRPC status other than OK, no response at all (code 0), an Envoy response
flag that marks a failure (any but DI, an injected delay), or span_status=error (a traced call that
failed without an HTTP/gRPC code, e.g. a database error). 4xx is counted apart (errors_4xx).

Counting each request once (the reporter policy, in graph attribute `dedup_policy`):
    A request through two sidecars is logged twice: by the client (direction outbound, or gateway)
    and by the server (inbound). For each edge:
    1. a server-side row is dropped when a client-side row of the same request exists (same
       request_id and callee service): the client's view counts, and attempts the server saw within
       one client request (Envoy retries) are not extra requests. A client row that names only the
       callee's service (no workload/app: typical of outbound logs) takes the callee's workload,
       app and version from its server row, so versioned and workload graphs stay exact;
    2. a server-side row that cannot be paired (no request id on it, or the edge's client rows carry
       none) is dropped when client-side rows exist for the same caller -> callee (for a server row
       that does not name its caller: for the same callee);
    3. what is left on the server side are requests no collected client saw (caller outside the mesh
       or its logs not collected) and they count.
    Trace-derived rows (record_kind=span; already one row per client/server span pair) count on
    edges that have no access-log rows; where both exist (same edge, or same caller name and callee
    service however they are grouped), access logs win (spans are sampled).
    Edge attribute `reporter` says what was counted: client | server | client+server | trace | mixed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from analyzers.table import is_gateway_name

if TYPE_CHECKING:  # pragma: no cover
    import networkx as nx
    import numpy as np
    import pandas as pd

GROUP_BYS = ("app", "app-version", "workload", "service", "namespace")
NODE_KINDS = ("workload", "app", "versioned_app", "service", "namespace", "gateway", "unknown", "user",
              "external", "database", "messaging")
VIRTUAL_KINDS = ("external", "database", "messaging")
# Every Envoy response flag marks a failure except DI (delay injected: slower, not failed).
NON_FAILURE_FLAGS = frozenset({"DI"})
# Flags the proxy sets when *it* failed the request (the callee never answered): errors with these
# flags originate on the edge, not in the callee's code.
PROXY_FLAGS = frozenset({"UF", "UH", "UO", "URX", "NR", "NC", "LH", "RL", "UT", "DF", "DO", "OM", "UAEX",
                         "RLSE", "UC", "UR", "LR", "UPE", "UMSDR", "SI"})
FLAG_NAMES = {
    "UH": "no healthy upstream", "UF": "upstream connection failure", "UO": "upstream overflow (circuit breaker)",
    "NR": "no route", "URX": "retry limit exceeded", "NC": "no cluster", "DT": "max duration reached",
    "DC": "downstream disconnected", "LH": "failed local health check", "UT": "upstream timeout",
    "LR": "local reset", "UR": "upstream reset", "UC": "upstream connection termination",
    "DI": "delay injected", "FI": "fault injected", "RL": "rate limited", "UAEX": "unauthorized (ext authz)",
    "RLSE": "rate limit service error", "IH": "invalid header", "SI": "stream idle timeout",
    "DPE": "downstream protocol error", "UPE": "upstream protocol error", "UMSDR": "max stream duration",
    "OM": "overload manager", "DF": "DNS resolution failure", "DO": "dropped overload",
}
PERCENTILES = (50, 90, 99)
# Istio's canonical revision when a workload has no version label: the same as no version.
UNVERSIONED = frozenset({"latest"})

# The requests-table columns the graph reads (commands read only these from the store).
GRAPH_COLUMNS = [
    "timestamp", "duration_ms", "response_code", "grpc_status", "response_flags", "protocol",
    "bytes_received", "bytes_sent",
    "source_workload", "source_namespace", "source_app", "source_version", "source_cluster",
    "destination_service", "destination_workload", "destination_namespace", "destination_app",
    "destination_version", "destination_cluster", "destination_kind",
    "direction", "reporter_workload", "reporter_namespace", "request_id", "record_kind",
    "source_kind", "span_status",
]
# Also read by the root-cause walk (correlation of failures along a trace / request).
TRACE_COLUMNS = ["trace_id", "span_id", "parent_span_id"]

DEDUP_POLICY = (
    "each request counted once: server-side rows paired with a client-side row (request_id + callee) "
    "are dropped; unpaired server rows are dropped where the edge has client rows; access logs win "
    "over trace spans on the same edge"
)

_SIDE_CLIENT, _SIDE_SERVER, _SIDE_OTHER = 0, 1, 2
_SRC_COLS = ("source_cluster", "source_namespace", "source_workload", "source_app", "source_version", "source_kind")
_DST_COLS = ("destination_cluster", "destination_namespace", "destination_workload", "destination_app",
             "destination_version", "destination_service", "destination_kind")


# ----------------------------------------------------------------------------------------------
# Node identities
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NodeKey:
    """One graph node: its id and descriptive attributes (hashable, so identical identities merge)."""

    id: str
    kind: str
    label: str
    namespace: str | None = None
    cluster: str | None = None
    app: str | None = None
    version: str | None = None
    workload: str | None = None
    service: str | None = None

    def attrs(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "id" and v is not None}


def split_service(host: str | None, namespace: str | None) -> tuple[str | None, str | None, bool]:
    """`reviews.default.svc.cluster.local:9080` -> ("reviews", "default", True). The flag says whether
    the host looks like an in-mesh (Kubernetes) service name rather than an outside host name."""
    if not host:
        return None, namespace, False
    h = host.strip()
    if h.startswith("[") or h.count(":") == 1:  # host:port (IPv6 in brackets)
        h = h.rsplit(":", 1)[0] if not h.startswith("[") else h
    parts = h.split(".")
    if len(parts) == 1:
        return parts[0], namespace, True
    if len(parts) >= 3 and parts[2] == "svc":
        return parts[0], parts[1], True
    if len(parts) == 2 and not parts[1].isdigit() and namespace in (None, parts[1]):
        return parts[0], parts[1], True
    return h, namespace, False


def _with_cluster(node_id: str, cluster: str | None, multi_cluster: bool) -> str:
    return f"{node_id}@{cluster}" if multi_cluster and cluster else node_id


def _in_mesh_node(group_by: str, cl: str | None, ns: str | None, wl: str | None, app: str | None,
                  ver: str | None, multi: bool, kind_override: str | None = None) -> NodeKey | None:
    """The node of a caller/callee with some in-mesh identity at the `group_by` level (None if none)."""
    c = cl if multi else None
    nsd = f"{ns}/" if ns else ""
    if ver in UNVERSIONED:
        ver = None
    if kind_override is None and (is_gateway_name(wl) or is_gateway_name(app)):
        kind_override = "gateway"
    if group_by == "namespace":
        if ns is None:
            return None
        return NodeKey(_with_cluster(ns, cl, multi), kind_override or "namespace", ns, namespace=ns, cluster=c)
    if group_by == "workload" and wl:
        return NodeKey(_with_cluster(f"{nsd}{wl}", cl, multi), kind_override or "workload", wl,
                       namespace=ns, cluster=c, app=app, version=ver, workload=wl)
    if group_by == "app-version" and app:
        if ver:
            return NodeKey(_with_cluster(f"{nsd}{app}:{ver}", cl, multi), kind_override or "versioned_app",
                           f"{app} {ver}", namespace=ns, cluster=c, app=app, version=ver)
        return NodeKey(_with_cluster(f"{nsd}{app}", cl, multi), kind_override or "app", app,
                       namespace=ns, cluster=c, app=app)
    if group_by == "app" and app:
        return NodeKey(_with_cluster(f"{nsd}{app}", cl, multi), kind_override or "app", app,
                       namespace=ns, cluster=c, app=app)
    if group_by == "service" and app:
        # The caller's service: by the Kubernetes convention the app label names the service.
        return NodeKey(_with_cluster(f"{nsd}{app}", cl, multi), kind_override or "service", app,
                       namespace=ns, cluster=c, app=app, service=app)
    if wl:  # finer identity than asked for, better than none
        return NodeKey(_with_cluster(f"{nsd}{wl}", cl, multi), kind_override or "workload", wl,
                       namespace=ns, cluster=c, app=app, version=ver, workload=wl)
    if app:
        return NodeKey(_with_cluster(f"{nsd}{app}", cl, multi), kind_override or "app", app,
                       namespace=ns, cluster=c, app=app)
    return None


def _unknown(cl: str | None, multi: bool) -> NodeKey:
    return NodeKey(_with_cluster("unknown", cl, multi), "unknown", "unknown", cluster=cl if multi else None)


def source_node(group_by: str, values: tuple, *, multi: bool, gateway: bool) -> NodeKey:
    cl, ns, wl, app, ver, skind = values
    c = cl if multi else None
    if skind == "user":  # a trace root: the request came from outside the traced system
        return NodeKey(_with_cluster("user", cl, multi), "user", "user", cluster=c)
    if skind in VIRTUAL_KINDS:  # a virtual caller (e.g. a message broker); its name is in source_app
        label = app or wl or "?"
        return NodeKey(_with_cluster(f"{skind}:{label}", cl, multi), skind, label, cluster=c, service=label)
    if skind == "unknown" and not (wl or app):
        return _unknown(cl, multi)
    gw = gateway or skind == "gateway"
    node = _in_mesh_node(group_by, cl, ns, wl, app, ver, multi, "gateway" if gw else None)
    return node or _unknown(cl, multi)


def destination_node(group_by: str, values: tuple, *, multi: bool, known_ids: set[str]) -> NodeKey:
    cl, ns, wl, app, ver, svc, dkind = values
    name, svc_ns, in_mesh_name = split_service(svc, ns)
    if dkind in VIRTUAL_KINDS or (dkind is None and svc and not in_mesh_name and not (wl or app)):
        kind = dkind or "external"
        label = svc or wl or app or "?"
        return NodeKey(_with_cluster(f"{kind}:{label}", cl, multi), kind, label, cluster=cl if multi else None,
                       service=svc)
    if dkind == "unknown" and not (wl or app or svc):
        return _unknown(cl, multi)
    gw = dkind == "gateway"
    if group_by == "service" and name:
        node_ns = svc_ns or ns
        return NodeKey(_with_cluster(f"{node_ns}/{name}" if node_ns else name, cl, multi), "gateway" if gw else "service", name,
                       namespace=node_ns, cluster=cl if multi else None, service=name)
    node = _in_mesh_node(group_by, cl, ns, wl, app, ver, multi, "gateway" if gw else None)
    if node is not None:
        return node
    if name:
        node_ns = svc_ns or ns
        if group_by == "namespace" and node_ns:
            return NodeKey(_with_cluster(node_ns, cl, multi), "namespace", node_ns, namespace=node_ns,
                           cluster=cl if multi else None)
        # Only a service is known (e.g. the request never reached a pod: UH, NR). If an app of that name
        # is a node already, it is the same thing by convention; otherwise a service node (as Kiali).
        app_id = _with_cluster(f"{node_ns}/{name}" if node_ns else name, cl, multi)
        if group_by in ("app", "app-version") and app_id in known_ids:
            return NodeKey(app_id, "app", name, namespace=node_ns, cluster=cl if multi else None, app=name)
        return NodeKey(_with_cluster(f"svc:{node_ns}/{name}" if node_ns else f"svc:{name}", cl, multi), "gateway" if gw else "service",
                       name, namespace=node_ns, cluster=cl if multi else None, service=name)
    return _unknown(cl, multi)


# ----------------------------------------------------------------------------------------------
# Vectorized helpers
# ----------------------------------------------------------------------------------------------
def _factorize(col: pd.Series) -> tuple[np.ndarray, list]:
    """Codes (int64, -1 for null) and the distinct values as Python objects."""
    import numpy as np
    import pandas as pd

    codes, uniques = pd.factorize(col, use_na_sentinel=True)
    return codes.astype(np.int64, copy=False), list(uniques)


def _combine(codes: list[np.ndarray], sizes: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Rows of several code arrays -> (group index per row, [n_groups, k] code matrix of each group)."""
    import numpy as np
    import pandas as pd

    radix = [s + 1 for s in sizes]
    if math.prod(radix) < 2**62:
        key = np.zeros(len(codes[0]), dtype=np.int64)
        for c, r in zip(codes, radix, strict=True):
            key = key * r + (c + 1)
        inv, uniq = pd.factorize(key)
        uniq = np.asarray(uniq, dtype=np.int64)
        cols = []
        for r in reversed(radix):
            cols.append(uniq % r - 1)
            uniq = uniq // r
        return inv.astype(np.int64), np.stack(cols[::-1], axis=1)
    stacked = np.stack(codes, axis=1)
    uniq, inv = np.unique(stacked, axis=0, return_inverse=True)
    return inv.reshape(-1).astype(np.int64), uniq


def _col(df: pd.DataFrame, name: str) -> pd.Series:
    import pandas as pd

    if name in df.columns:
        return df[name]
    return pd.Series(pd.array([None] * len(df), dtype=pd.StringDtype("pyarrow")), index=df.index)


def _ints(df: pd.DataFrame, name: str, na: int = -1) -> np.ndarray:
    """An integer column as int64, nulls as `na`."""
    import numpy as np

    if name not in df.columns:
        return np.full(len(df), na, dtype=np.int64)
    f = df[name].to_numpy(dtype=np.float64, na_value=np.nan)
    return np.where(np.isnan(f), na, f).astype(np.int64)


def _floats(df: pd.DataFrame, name: str) -> np.ndarray:
    import numpy as np

    if name not in df.columns:
        return np.full(len(df), np.nan)
    return df[name].to_numpy(dtype=np.float64, na_value=np.nan)


def _epoch_us(df: pd.DataFrame) -> np.ndarray:
    """timestamp as int64 microseconds since the epoch (NaT -> min int)."""
    import numpy as np
    import pandas as pd

    ts = df["timestamp"] if "timestamp" in df.columns else pd.Series(pd.NaT, index=df.index)
    if not isinstance(ts.dtype, pd.DatetimeTZDtype) and not pd.api.types.is_datetime64_dtype(ts.dtype):
        ts = pd.to_datetime(ts, utc=True)
    return ts.to_numpy(dtype="datetime64[us]").astype(np.int64)


def _to_utc(t: Any) -> pd.Timestamp | None:
    import pandas as pd

    if t is None:
        return None
    ts = pd.Timestamp(t)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def flags_of(value: str | None) -> tuple[str, ...]:
    """`"UF,URX"` -> ("UF", "URX"); `-`, empty and null -> ()."""
    if not value or value == "-":
        return ()
    return tuple(f for f in (p.strip() for p in value.replace(" ", ",").split(",")) if f and f != "-")


def group_quantiles(values: np.ndarray, groups: np.ndarray, n_groups: int,
                    qs: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-group quantiles (numpy's default 'linear' method), means and sample counts, NaNs ignored.
    Returns ([n_groups, len(qs)] quantiles, means, counts). One sort, no Python loop over groups."""
    import numpy as np

    valid = ~np.isnan(values)
    v, g = values[valid], groups[valid]
    counts = np.bincount(g, minlength=n_groups)
    sums = np.bincount(g, weights=v, minlength=n_groups)
    order = np.lexsort((v, g))
    sv = v[order]
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    out = np.full((n_groups, len(qs)), np.nan)
    has = counts > 0
    for j, q in enumerate(qs):
        pos = starts[has] + q * (counts[has] - 1)
        lo = np.floor(pos).astype(np.int64)
        hi = np.ceil(pos).astype(np.int64)
        frac = pos - lo
        out[has, j] = sv[lo] + (sv[hi] - sv[lo]) * frac
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(has, sums / np.maximum(counts, 1), np.nan)
    return out, means, counts


# ----------------------------------------------------------------------------------------------
# Preparing rows: filter, resolve nodes, count each request once
# ----------------------------------------------------------------------------------------------
@dataclass
class Prepared:
    """The selected rows after the reporter policy, with their node indices (internal, shared by the
    graph, the diff and the root-cause walk)."""

    selected: pd.DataFrame           # rows in the filters (before the reporter policy)
    keep: np.ndarray                 # bool per selected row: counted by the reporter policy
    src: np.ndarray                  # node index per kept row
    dst: np.ndarray
    nodes: list[NodeKey]
    side: np.ndarray                 # 0 client, 1 server, 2 other (trace pair / unknown) per kept row
    is_trace: np.ndarray             # bool per kept row
    group_by: str
    window_start: pd.Timestamp | None
    window_end: pd.Timestamp | None
    rows_selected: int = 0
    # (src, dst) -> (server-side rows dropped as already counted by the client, trace rows dropped)
    dropped: dict[tuple[int, int], tuple[int, int]] = field(default_factory=dict)
    multi_cluster: bool = False
    clusters: list[str] = field(default_factory=list)
    # callee version per kept row (codes into callee_versions, -1 none), after client rows borrowed
    # their server row's identity: the raw destination_version column lacks it on most client rows
    callee_version: np.ndarray | None = None
    callee_versions: list[str] = field(default_factory=list)

    @property
    def frame(self) -> pd.DataFrame:
        """The counted rows (a copy of the kept rows; column accessors below avoid the copy)."""
        return self.selected if self.keep.all() else self.selected.loc[self.keep]

    def floats(self, name: str) -> np.ndarray:
        return _floats(self.selected, name)[self.keep]

    def ints(self, name: str, na: int = -1) -> np.ndarray:
        return _ints(self.selected, name, na)[self.keep]

    def codes(self, name: str) -> tuple[np.ndarray, list]:
        codes, values = _factorize(_col(self.selected, name))
        return codes[self.keep], values

    @property
    def window_seconds(self) -> float | None:
        if self.window_start is None or self.window_end is None:
            return None
        s = (self.window_end - self.window_start).total_seconds()
        return s if s > 0 else None


def select_rows(df: pd.DataFrame, *, namespace: str | None = None, since: Any = None, until: Any = None,
                cluster: str | None = None) -> pd.DataFrame:
    """Rows touching `namespace` (as caller, callee or reporter), in [since, until), touching `cluster`."""
    import numpy as np

    mask = np.ones(len(df), dtype=bool)
    if namespace:
        m = np.zeros(len(df), dtype=bool)
        for c in ("source_namespace", "destination_namespace", "reporter_namespace"):
            if c in df.columns:
                m |= (df[c] == namespace).fillna(False).to_numpy(dtype=bool)
        mask &= m
    if cluster:
        m = np.zeros(len(df), dtype=bool)
        for c in ("source_cluster", "destination_cluster"):
            if c in df.columns:
                m |= (df[c] == cluster).fillna(False).to_numpy(dtype=bool)
        mask &= m
    if since is not None or until is not None:
        us = _epoch_us(df)
        if since is not None:
            mask &= us >= _to_utc(since).value // 1000
        if until is not None:
            mask &= us < _to_utc(until).value // 1000
    return df if mask.all() else df.loc[mask]


def prepare(df: pd.DataFrame, *, group_by: str = "app", namespace: str | None = None, since: Any = None,
            until: Any = None, cluster: str | None = None) -> Prepared:
    """Filter, resolve caller/callee nodes and apply the reporter policy (module docstring)."""
    import numpy as np
    import pandas as pd

    if group_by not in GROUP_BYS:
        raise ValueError(f"group_by must be one of {', '.join(GROUP_BYS)}, not {group_by!r}")
    sel = select_rows(df, namespace=namespace, since=since, until=until, cluster=cluster)
    n = len(sel)

    # Which proxy reported each row (null direction: a trace pair or unknown -> counted as is).
    dcodes, dvals = _factorize(_col(sel, "direction"))
    side_of = np.array([_SIDE_CLIENT if v in ("outbound", "gateway") else _SIDE_SERVER if v == "inbound"
                        else _SIDE_OTHER for v in dvals] + [_SIDE_OTHER], dtype=np.int8)
    side = side_of[dcodes]  # code -1 (null) picks the trailing OTHER
    is_gateway_row = dcodes == (dvals.index("gateway") if "gateway" in dvals else -2)
    kcodes, kvals = _factorize(_col(sel, "record_kind"))
    is_trace = np.array([v == "span" for v in kvals] + [False], dtype=bool)[kcodes]

    # Several clusters in the selection keep a cluster dimension in node ids.
    clusters = sorted({v for c in ("source_cluster", "destination_cluster") if c in sel.columns
                       for v in sel[c].dropna().unique().tolist()})
    multi = len(clusters) > 1

    # Callers. A gateway row's caller, for the graph, is the gateway proxy that reported it.
    src_cols = {c: _col(sel, c) for c in _SRC_COLS}
    if is_gateway_row.any():
        rep_wl, rep_ns = _col(sel, "reporter_workload"), _col(sel, "reporter_namespace")
        subst = is_gateway_row & rep_wl.notna().to_numpy(dtype=bool) & \
            (src_cols["source_workload"] != rep_wl).fillna(True).to_numpy(dtype=bool) & \
            (src_cols["source_app"] != rep_wl).fillna(True).to_numpy(dtype=bool)
        if subst.any():
            src_cols["source_workload"] = src_cols["source_workload"].mask(subst, rep_wl)
            src_cols["source_namespace"] = src_cols["source_namespace"].mask(subst, rep_ns)
            for c in ("source_app", "source_version", "source_kind"):  # those were the downstream caller's
                src_cols[c] = src_cols[c].mask(subst, None)
    src_fact = [_factorize(src_cols[c]) for c in _SRC_COLS]
    src_group, src_combos = _combine([c for c, _ in src_fact] + [is_gateway_row.astype(np.int64)],
                                     [len(v) for _, v in src_fact] + [2])
    dst_fact = [_factorize(_col(sel, c)) for c in _DST_COLS]
    dst_group, dst_combos = _combine([c for c, _ in dst_fact], [len(v) for _, v in dst_fact])

    def values(fact: list, row: np.ndarray) -> tuple:
        return tuple(None if row[j] < 0 else fact[j][1][row[j]] for j in range(len(fact)))

    node_index: dict[str, int] = {}
    nodes: list[NodeKey] = []

    def intern(node: NodeKey) -> int:
        i = node_index.get(node.id)
        if i is None:
            i = node_index[node.id] = len(nodes)
            nodes.append(node)
        elif node.kind == "gateway" and nodes[i].kind != "gateway":
            nodes[i] = node  # a workload seen reporting as a gateway is a gateway
        return i

    src_map = np.array([intern(source_node(group_by, values(src_fact, row), multi=multi, gateway=bool(row[-1])))
                        for row in src_combos], dtype=np.int64)
    dst_rows = [values(dst_fact, row) for row in dst_combos]

    # Pair the client and server rows of one request (request id + callee service); a client row
    # that names only the callee's service borrows the workload/app/version its server row knows.
    callee_codes: dict[tuple, int] = {}
    ck_of_combo = np.array([callee_codes.setdefault(k, len(callee_codes)) if (k := callee_key(r)) else -1
                            for r in dst_rows] + [-1], dtype=np.int64)
    paired, partner, has_rid = _pair_requests(sel, side, is_trace, ck_of_combo[dst_group] if n else dst_group)
    lacks = np.array([r[2] is None and r[3] is None for r in dst_rows] + [False], dtype=bool)
    borrow = (side == _SIDE_CLIENT) & (partner >= 0)
    if borrow.any():
        cand = np.flatnonzero(borrow)
        mine, theirs = dst_group[cand], dst_group[partner[cand]]
        ok = lacks[mine] & ~lacks[theirs]
        if ok.any():
            dst_group = dst_group.copy()
            dst_group[cand[ok]] = theirs[ok]

    # Callees with a workload/app identity first, so that service-only callees can merge into them.
    dst_map = np.zeros(len(dst_rows), dtype=np.int64)
    for i in sorted(range(len(dst_rows)), key=lambda i: dst_rows[i][2] is None and dst_rows[i][3] is None):
        dst_map[i] = intern(destination_node(group_by, dst_rows[i], multi=multi, known_ids=set(node_index)))
    src = src_map[src_group] if n else np.zeros(0, dtype=np.int64)
    dst = dst_map[dst_group] if n else np.zeros(0, dtype=np.int64)

    unknown_node = np.array([nd.kind == "unknown" for nd in nodes] + [False], dtype=bool)
    # The same call as a log row and a trace row, whatever the grouping: (caller name, callee service).
    caller_codes: dict[tuple, int] = {}
    caller_of_combo = np.array([caller_codes.setdefault((r[1], r[3] or r[2]), len(caller_codes)) if (r[3] or r[2])
                                else -1 for r in (values(src_fact, row) for row in src_combos)] + [-1], dtype=np.int64)
    ck = ck_of_combo[dst_group] if n else dst_group
    cc = caller_of_combo[src_group] if n else src_group
    coarse = np.where((ck >= 0) & (cc >= 0), cc * (len(callee_codes) + 1) + ck, -1)
    keep, dropped = _reporter_policy(src, dst, side, is_trace, len(nodes), unknown_node[src], paired, partner,
                                     has_rid, coarse)

    start, end = _to_utc(since), _to_utc(until)
    if n and (start is None or end is None):
        us = _epoch_us(sel)
        us = us[us != np.iinfo(np.int64).min]
        if len(us):
            start = start if start is not None else pd.Timestamp(int(us.min()), unit="us", tz="UTC")
            end = end if end is not None else pd.Timestamp(int(us.max()), unit="us", tz="UTC")
    versions: dict[str, int] = {}
    ver_of_combo = np.array([versions.setdefault(r[4], len(versions)) if r[4] and r[4] not in UNVERSIONED else -1
                             for r in dst_rows] + [-1], dtype=np.int64)
    return Prepared(selected=sel, keep=keep, src=src[keep], dst=dst[keep], nodes=nodes, side=side[keep],
                    is_trace=is_trace[keep], group_by=group_by, window_start=start, window_end=end,
                    rows_selected=n, dropped=dropped, multi_cluster=multi, clusters=clusters,
                    callee_version=ver_of_combo[dst_group][keep] if n else np.zeros(0, dtype=np.int64),
                    callee_versions=list(versions))


def callee_key(values: tuple) -> tuple | None:
    """What both sides of a call call the callee: (namespace, service name) - the service's short name
    from destination_service, else the app label (by convention the service's name)."""
    _cl, ns, wl, app, _ver, svc, dkind = values
    if dkind in VIRTUAL_KINDS:
        return None
    name, svc_ns, in_mesh = split_service(svc, ns)
    if name and in_mesh:
        return (svc_ns or ns, name)
    if app or wl:
        return (ns, app or wl)
    return (ns, name) if name else None


def _pair_requests(sel: pd.DataFrame, side: np.ndarray, is_trace: np.ndarray,
                   callee: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows of one request on both sides: (server rows that pair with a client row; per row the index
    of a row of the other side of its request, or -1; whether the row has a request id)."""
    import numpy as np
    import pandas as pd

    n = len(sel)
    paired = np.zeros(n, dtype=bool)
    partner = np.full(n, -1, dtype=np.int64)
    client = (side == _SIDE_CLIENT) & ~is_trace
    server = (side == _SIDE_SERVER) & ~is_trace
    rid = _col(sel, "request_id")
    has_rid = rid.notna().to_numpy(dtype=bool)
    if not (client.any() and server.any()):
        return paired, partner, has_rid
    idx = np.flatnonzero((client | server) & has_rid & (callee >= 0))
    if len(idx) == 0:
        return paired, partner, has_rid
    if len(idx) * 2 > n:  # factorizing the whole column is cheaper than copying most of it first
        rcodes = pd.factorize(rid)[0].astype(np.int64)[idx]
    else:
        rcodes = pd.factorize(rid.iloc[idx])[0].astype(np.int64)
    inv, _ = pd.factorize(rcodes * (int(callee.max()) + 1) + callee[idx])
    inv = inv.astype(np.int64)
    ngrp = int(inv.max()) + 1
    is_cli = client[idx]
    cli_rep = np.full(ngrp, -1, dtype=np.int64)
    cli_rep[inv[is_cli]] = idx[is_cli]
    srv_rep = np.full(ngrp, -1, dtype=np.int64)
    srv_rep[inv[~is_cli]] = idx[~is_cli]
    # The client's view wins, retries included: every server row of a request a client logged is
    # that request seen again.
    matched = ~is_cli & (cli_rep[inv] >= 0)
    paired[idx[matched]] = True
    partner[idx[matched]] = cli_rep[inv[matched]]
    answered = is_cli & (srv_rep[inv] >= 0)
    partner[idx[answered]] = srv_rep[inv[answered]]
    return paired, partner, has_rid


def _reporter_policy(src: np.ndarray, dst: np.ndarray, side: np.ndarray, is_trace: np.ndarray, n_nodes: int,
                     src_unknown: np.ndarray, paired: np.ndarray, partner: np.ndarray,
                     has_rid: np.ndarray, coarse: np.ndarray) -> tuple[np.ndarray, dict]:
    """Keep mask of the reporter policy (module docstring) and per edge the dropped (server, trace) rows."""
    import numpy as np

    n = len(src)
    keep = np.ones(n, dtype=bool)
    if n == 0:
        return keep, {}
    edge = src * n_nodes + dst

    dropped_trace = np.zeros(n, dtype=bool)
    if is_trace.any() and not is_trace.all():  # access logs win over (sampled) trace rows
        log_coarse = np.unique(coarse[~is_trace & (coarse >= 0)])
        dropped_trace = is_trace & (np.isin(edge, np.unique(edge[~is_trace]))
                                    | ((coarse >= 0) & np.isin(coarse, log_coarse)))
        keep &= ~dropped_trace

    client = keep & (side == _SIDE_CLIENT) & ~is_trace
    server = keep & (side == _SIDE_SERVER) & ~is_trace
    dropped_server = np.zeros(n, dtype=bool)
    blame = edge.copy()  # the edge a dropped server row is accounted to (its client counterpart's)
    if client.any() and server.any():
        paired_here = server & paired
        blame[paired_here] = edge[partner[paired_here]]
        # Unpaired server rows where client sidecars report the same edge (or the same callee, for
        # server rows that do not name the caller) and pairing was not possible.
        rest = server & ~paired
        on_cli_edge = np.isin(edge, np.unique(edge[client]))
        on_norid_edge = np.isin(edge, np.unique(edge[client & ~has_rid]))
        to_cli_dst = np.isin(dst, np.unique(dst[client]))
        to_norid_dst = np.isin(dst, np.unique(dst[client & ~has_rid]))
        unpairable = rest & (
            (~has_rid & (on_cli_edge | (src_unknown & to_cli_dst)))
            | (has_rid & (on_norid_edge | (src_unknown & to_norid_dst)))
        )
        dropped_server = paired_here | unpairable
        keep &= ~dropped_server
        by_dst = unpairable & src_unknown & ~on_cli_edge
        if by_dst.any():
            dst_client_edge = np.zeros(n_nodes, dtype=np.int64)
            dst_client_edge[dst[client]] = edge[client]
            blame[by_dst] = dst_client_edge[dst[by_dst]]

    dropped: dict[tuple[int, int], tuple[int, int]] = {}
    any_dropped = dropped_server | dropped_trace
    if any_dropped.any():
        keys, inv = np.unique(blame[any_dropped], return_inverse=True)
        n_srv = np.bincount(inv, weights=dropped_server[any_dropped].astype(np.float64), minlength=len(keys))
        n_all = np.bincount(inv, minlength=len(keys))
        for k, s_cnt, a_cnt in zip(keys.tolist(), n_srv.astype(np.int64).tolist(), n_all.tolist(), strict=True):
            dropped[(k // n_nodes, k % n_nodes)] = (s_cnt, a_cnt - s_cnt)
    return keep, dropped


# ----------------------------------------------------------------------------------------------
# Aggregation into the graph
# ----------------------------------------------------------------------------------------------
def row_outcomes(prep: Prepared) -> dict[str, Any]:
    """Per counted row, the error classification (arrays) plus the distinct response-flag sets:
    is_error, is_5xx, is_4xx, is_grpc_error, no_response, proxy_error, flag_codes, flag_sets."""
    import numpy as np

    code = prep.ints("response_code")
    grpc = prep.ints("grpc_status")
    fcodes, fvals = prep.codes("response_flags")
    flag_sets = [flags_of(v) for v in fvals]
    failing = np.array([any(f not in NON_FAILURE_FLAGS for f in fs) for fs in flag_sets] + [False], dtype=bool)
    proxy = np.array([any(f in PROXY_FLAGS for f in fs) for fs in flag_sets] + [False], dtype=bool)
    is_5xx = (code >= 500) & (code <= 599)
    is_4xx = (code >= 400) & (code <= 499)
    is_grpc = grpc > 0
    no_resp = code == 0
    scodes, svals = prep.codes("span_status")
    span_error = np.array([v == "error" for v in svals] + [False], dtype=bool)[scodes]
    is_error = is_5xx | is_grpc | no_resp | failing[fcodes] | span_error
    return {"span_error": span_error, "is_error": is_error, "is_5xx": is_5xx, "is_4xx": is_4xx, "is_grpc_error": is_grpc,
            "no_response": no_resp, "proxy_error": proxy[fcodes], "flag_codes": fcodes, "flag_sets": flag_sets}


def _round(x: float, nd: int = 3) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else round(float(x), nd)


def aggregate(prep: Prepared) -> nx.DiGraph:
    """Edge and node figures from prepared rows."""
    import networkx as nx
    import numpy as np
    import pandas as pd

    nn = len(prep.nodes)
    n_rows = len(prep.src)
    g = nx.DiGraph()
    window = prep.window_seconds
    g.graph.update({
        "group_by": prep.group_by,
        "window_start": prep.window_start.isoformat() if prep.window_start is not None else None,
        "window_end": prep.window_end.isoformat() if prep.window_end is not None else None,
        "window_seconds": window,
        "rows_selected": prep.rows_selected,
        "rows_counted": n_rows,
        "rows_dropped_server": sum(v[0] for v in prep.dropped.values()),
        "rows_dropped_trace": sum(v[1] for v in prep.dropped.values()),
        "dedup_policy": DEDUP_POLICY,
        "clusters": prep.clusters,
    })
    if n_rows == 0:
        return g
    ekey = prep.src * nn + prep.dst
    einv, ekeys = pd.factorize(ekey)
    einv = einv.astype(np.int64)
    ekeys = np.asarray(ekeys, dtype=np.int64)
    ne = len(ekeys)

    def count(mask: np.ndarray) -> np.ndarray:
        return np.bincount(einv[mask], minlength=ne)

    def total(values: np.ndarray) -> np.ndarray:
        return np.bincount(einv, weights=values, minlength=ne)

    out = row_outcomes(prep)
    requests = np.bincount(einv, minlength=ne)
    errors = count(out["is_error"])
    e5xx, e4xx = count(out["is_5xx"]), count(out["is_4xx"])
    egrpc, enoresp = count(out["is_grpc_error"]), count(out["no_response"])
    espan = count(out["span_error"])
    client_rows = count((prep.side == _SIDE_CLIENT) & ~prep.is_trace)
    server_rows = count((prep.side == _SIDE_SERVER) & ~prep.is_trace)
    trace_rows = count(prep.is_trace)
    other_rows = requests - client_rows - server_rows - trace_rows

    # Response flags: one bincount per distinct flag name over the rows carrying it.
    flag_counts: dict[str, np.ndarray] = {}
    fcodes = out["flag_codes"]
    names = sorted({f for fs in out["flag_sets"] for f in fs})
    if names:
        valid = fcodes >= 0
        for name in names:
            has = np.array([name in fs for fs in out["flag_sets"]], dtype=bool)
            flag_counts[name] = count(valid & has[np.where(valid, fcodes, 0)])

    dur = prep.floats("duration_ms")
    quant, means, samples = group_quantiles(dur, einv, ne, tuple(p / 100 for p in PERCENTILES))
    bytes_rx = total(np.nan_to_num(prep.floats("bytes_received")))
    bytes_tx = total(np.nan_to_num(prep.floats("bytes_sent")))

    # Protocols per edge: distinct (edge, protocol) pairs.
    pcodes, pvals = prep.codes("protocol")
    protocols: list[set[str]] = [set() for _ in range(ne)]
    has_p = pcodes >= 0
    if has_p.any():
        pairs = np.unique(einv[has_p] * (len(pvals) + 1) + pcodes[has_p])
        for e, p in zip((pairs // (len(pvals) + 1)).tolist(), (pairs % (len(pvals) + 1)).tolist(), strict=True):
            protocols[e].add(pvals[p])

    used = np.unique(np.concatenate([ekeys // nn, ekeys % nn]))
    for i in used.tolist():  # nodes whose rows were all dropped as duplicates do not appear
        g.add_node(prep.nodes[i].id, **prep.nodes[i].attrs())
    for e in range(ne):
        s, d = divmod(int(ekeys[e]), nn)
        req = int(requests[e])
        drop_srv, drop_trace = prep.dropped.get((s, d), (0, 0))
        kinds = [k for k, c in (("client", client_rows[e]), ("server", server_rows[e]), ("trace", trace_rows[e]),
                                ("unknown", other_rows[e])) if c]
        reporter = "+".join(kinds) if len(kinds) <= 2 and "trace" not in kinds[1:] else "mixed"
        attrs = {
            "requests": req,
            "rps": _round(req / window, 4) if window else None,
            "errors": int(errors[e]),
            "error_rate": _round(errors[e] / req, 6) if req else 0.0,
            "errors_5xx": int(e5xx[e]),
            "errors_grpc": int(egrpc[e]),
            "errors_no_response": int(enoresp[e]),
            "errors_4xx": int(e4xx[e]),
            "errors_span": int(espan[e]),
            "flags": {k: int(v[e]) for k, v in flag_counts.items() if v[e]},
            "p50_ms": _round(quant[e, 0]),
            "p90_ms": _round(quant[e, 1]),
            "p99_ms": _round(quant[e, 2]),
            "mean_ms": _round(means[e]),
            "latency_samples": int(samples[e]),
            "bytes_received": int(bytes_rx[e]),
            "bytes_sent": int(bytes_tx[e]),
            "protocols": sorted(protocols[e]),
            "reporter": reporter,
            "client_rows": int(client_rows[e]),
            "server_rows": int(server_rows[e]),
            "trace_rows": int(trace_rows[e]),
            "paired_server_rows": drop_srv,
            "dropped_trace_rows": drop_trace,
        }
        g.add_edge(prep.nodes[s].id, prep.nodes[d].id, **attrs)
    _node_figures(g, window)
    return g


def _node_figures(g: nx.DiGraph, window: float | None) -> None:
    for node in g.nodes:
        ins = [d for _, _, d in g.in_edges(node, data=True)]
        outs = [d for _, _, d in g.out_edges(node, data=True)]
        in_req = sum(d["requests"] for d in ins)
        out_req = sum(d["requests"] for d in outs)
        in_err = sum(d["errors"] or 0 for d in ins)  # None: not known (dependency links)
        out_err = sum(d["errors"] or 0 for d in outs)
        a = g.nodes[node]
        a.setdefault("kind", "unknown")
        a.setdefault("label", node)
        a.update({
            "in_requests": in_req, "out_requests": out_req, "in_errors": in_err, "out_errors": out_err,
            "in_error_rate": _round(in_err / in_req, 6) if in_req else None,
            "out_error_rate": _round(out_err / out_req, 6) if out_req else None,
            "rps_in": _round(in_req / window, 4) if window else None,
            "rps_out": _round(out_req / window, 4) if window else None,
            "is_root": not ins,
        })
        a["error_rate"] = a["in_error_rate"] if in_req else (a["out_error_rate"] or 0.0)


def build_graph(df: pd.DataFrame, *, group_by: str = "app", namespace: str | None = None, since: Any = None,
                until: Any = None, cluster: str | None = None) -> nx.DiGraph:
    """The service graph of the requests in `df` (see the module docstring for nodes, edges and the
    reporter policy). `since`/`until` (datetimes) bound the window and the rps denominator."""
    return aggregate(prepare(df, group_by=group_by, namespace=namespace, since=since, until=until,
                             cluster=cluster))


# ----------------------------------------------------------------------------------------------
# Other inputs and plain-data output
# ----------------------------------------------------------------------------------------------
def from_dependency_links(links: list[dict[str, Any]]) -> nx.DiGraph:
    """A graph from Jaeger dependency links (`/api/dependencies`, jaeger-ui sample data):
    `[{"parent", "child", "callCount"}]`. Only call counts are known: errors, error rates and
    latencies are None (drawn grey), not zero."""
    import networkx as nx

    g = nx.DiGraph(group_by="service", dedup_policy="as reported by the dependency links", window_seconds=None)
    for i, link in enumerate(links):
        try:
            parent, child, calls = str(link["parent"]), str(link["child"]), int(link.get("callCount", 0))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"dependency link {i}: needs parent, child and callCount ({exc})") from None
        for name in (parent, child):
            if name not in g:
                g.add_node(name, kind="service", label=name, service=name)
        if g.has_edge(parent, child):
            g.edges[parent, child]["requests"] += calls
        else:
            g.add_edge(parent, child, requests=calls, errors=None, error_rate=None, rps=None, p50_ms=None,
                       p90_ms=None, p99_ms=None, mean_ms=None, protocols=[], flags={}, reporter="dependency-links")
    _node_figures(g, None)
    for _, a in g.nodes(data=True):  # errors are not known, which is not the same as none
        a.update(in_errors=None, out_errors=None, in_error_rate=None, out_error_rate=None, error_rate=None)
    return g


def graph_to_dict(g: nx.DiGraph) -> dict[str, Any]:
    """The graph as plain data (the `-o json` shape): {"graph": {...}, "nodes": [...], "edges": [...]}."""
    nodes = [{"id": n, **_plain(a)} for n, a in g.nodes(data=True)]
    edges = [{"source": s, "target": t, **_plain(a)} for s, t, a in g.edges(data=True)]
    return {"graph": _plain(dict(g.graph)), "nodes": nodes, "edges": edges}


def _plain(d: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        if isinstance(v, float) and math.isnan(v):
            v = None
        elif isinstance(v, (set, frozenset, tuple)):
            v = sorted(v)
        out[k] = v
    return out
