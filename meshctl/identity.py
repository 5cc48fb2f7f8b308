"""Who called whom: fill the source_* / destination_* / reporter_* columns of parsed rows.

An access-log line names addresses and Envoy clusters, not workloads. This module turns what a
row carries, plus what meshctl knows about the proxy that wrote it, into workload identities:

- the Istio cluster name: `outbound|9080|v2|reviews.default.svc.cluster.local` → an outbound call
  to service reviews.default (namespace default), subset v2; `inbound|9080||` → the inbound side;
  `PassthroughCluster` / `BlackHoleCluster` → outbound to something outside the mesh;
- the mTLS SNI seen on the server side: `outbound_.9080_.v2_.reviews.default.svc.cluster.local`;
- peer metadata the log carried (Istio's filter_state upstream_peer/downstream_peer fields) —
  never overwritten;
- the reporter: the proxy's pod (from Kubernetes, the node log path, an envelope) or
  `--workload NAME --namespace NS` for files. On an outbound row the reporter is the source, on an
  inbound row the destination;
- mTLS principals: `spiffe://<td>/ns/<ns>/sa/<sa>` (Istio), `<sa>.<ns>.serviceaccount.identity.linkerd.<td>`;
- the authority (`reviews:9080`) when nothing better names the destination service; on the inbound
  side only when it names an in-cluster service, else the proxy's own Service or canonical service
  (app) — a public Host header an ingress forwarded is not a service of the mesh;
- from Kubernetes (`PodIndex`): upstream and downstream IPs resolved to pods and their labels.

Workload names come from pod names with the ReplicaSet / Argo Rollouts hashes taken off
(`reviews-v2-5f7d9b8c4-x2x9p` → `reviews-v2`); with Kubernetes metadata, from the owner chain and
the `pod-template-hash` / `rollouts-pod-template-hash` labels. Versions come from the labels
(`version`, `app.kubernetes.io/version`, `service.istio.io/canonical-revision`, then
`rollouts-pod-template-hash`, which tells an Argo canary from its stable set), else from a
workload name ending in `-v<N>` (Bookinfo's `reviews-v2`), else from a subset named `v<N>`.
A request to reviews-v2 is therefore attributed to version v2 whichever of these is at hand.

Everything is computed once per distinct value (clusters, addresses, pods), not once per row.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from analyzers import table as rt
from meshctl.parsers.fields import AUX_COLUMNS, AUX_DOWNSTREAM_LOCAL, AUX_REPORTER_POD, AUX_SNI

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

    from meshctl.kube import KubeAPI

# Kubernetes' safe-encoding alphabet for generated names (no vowels, no 0/1/3).
_HASH = "[bcdfghjklmnpqrstvwxz2456789]"
_RS_POD = re.compile(rf"^(?P<base>.+)-{_HASH}{{6,10}}-{_HASH}{{5}}$")
_RS_NAME = re.compile(rf"^(?P<base>.+)-{_HASH}{{6,10}}$")
_SUFFIX5 = re.compile(rf"^(?P<base>.+)-(?P<sfx>{_HASH}{{5}})$")
_VERSION_SUFFIX = re.compile(r"-(?P<v>v\d+[a-z0-9.]*)$")
_SUBSET_VERSION = re.compile(r"^v\d+[a-z0-9.-]*$")
_SVC_HOST = re.compile(r"^(?P<name>[^.]+)\.(?P<ns>[^.]+)\.svc(?:\.|$)")
_SPIFFE = re.compile(r"^spiffe://[^/]+/ns/(?P<ns>[^/]+)/sa/(?P<sa>[^/]+)")
_LINKERD_ID = re.compile(r"^(?P<sa>[^.]+)\.(?P<ns>[^.]+)\.serviceaccount\.identity\.linkerd\.")
_IPV4 = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")

VERSION_LABELS = ("version", "app.kubernetes.io/version", "service.istio.io/canonical-revision")
APP_LABELS = ("app", "app.kubernetes.io/name", "service.istio.io/canonical-name")
GATEWAY_LABELS = {"istio": ("ingressgateway", "egressgateway"), "gateway.istio.io/managed": None,
                  "gateway.networking.k8s.io/gateway-name": None}
SIDECAR_CONTAINERS = ("istio-proxy", "linkerd-proxy")


@dataclass(frozen=True)
class Workload:
    """A proxy's (or a peer's) identity as far as it is known."""

    workload: str | None = None
    namespace: str | None = None
    app: str | None = None
    version: str | None = None
    cluster: str | None = None
    pod: str | None = None
    service: str | None = None  # FQDN of a Service selecting it, when known
    gateway: bool = False


def workload_from_pod(pod: str, labels: Mapping[str, str] | None = None,
                      owner: tuple[str, str] | None = None) -> str:
    """Pod name → workload name: ReplicaSet / Rollout / DaemonSet / Job hashes and StatefulSet
    ordinals taken off. `owner` is the pod's controller (kind, name) when Kubernetes told us."""
    labels = labels or {}
    if owner:
        kind, name = owner
        if kind == "ReplicaSet":
            for key in ("pod-template-hash", "rollouts-pod-template-hash"):
                h = labels.get(key)
                if h and name.endswith("-" + h):
                    return name[: -len(h) - 1]
            m = _RS_NAME.match(name)
            return m.group("base") if m else name
        return name  # StatefulSet, DaemonSet, Job, Rollout-less owners name the workload
    for key in ("pod-template-hash", "rollouts-pod-template-hash"):
        h = labels.get(key)
        if h and f"-{h}-" in pod:
            return pod[: pod.rindex(f"-{h}-")]
    m = _RS_POD.match(pod)
    if m:
        return m.group("base")
    if "statefulset.kubernetes.io/pod-name" in labels:
        return re.sub(r"-\d+$", "", pod)
    m = _SUFFIX5.match(pod)
    if m and any(c.isdigit() for c in m.group("sfx")):
        return m.group("base")  # DaemonSet / Job pods: <name>-<5 chars>
    return pod


def version_from(labels: Mapping[str, str] | None, workload: str | None) -> str | None:
    for key in VERSION_LABELS:
        if labels and labels.get(key) and labels[key] != "latest":
            return labels[key]
    if labels and labels.get("rollouts-pod-template-hash"):
        return labels["rollouts-pod-template-hash"]
    if workload:
        m = _VERSION_SUFFIX.search(workload)
        if m:
            return m.group("v")
    return None


def app_from(labels: Mapping[str, str] | None, workload: str | None) -> str | None:
    for key in APP_LABELS:
        if labels and labels.get(key):
            return labels[key]
    if workload:
        m = _VERSION_SUFFIX.search(workload)
        if m:
            return workload[: m.start()]
    return None


def workload_of(name: str | None = None, namespace: str | None = None, *, pod: str | None = None,
                labels: Mapping[str, str] | None = None, owner: tuple[str, str] | None = None,
                cluster: str | None = None) -> Workload:
    """A Workload from whatever is known: a workload name (`--workload`) or a pod (+ labels)."""
    wl = name or (workload_from_pod(pod, labels, owner) if pod else None)
    gateway = rt.is_gateway_name(wl)
    for key, values in GATEWAY_LABELS.items():
        if labels and key in labels and (values is None or labels[key] in values):
            gateway = True
    return Workload(workload=wl, namespace=namespace, app=app_from(labels, wl), version=version_from(labels, wl),
                    cluster=cluster, pod=pod, gateway=gateway)


def pod_workload(obj: Mapping[str, Any], cluster: str | None = None) -> Workload:
    """A Kubernetes Pod object (API JSON) → its Workload."""
    meta = obj.get("metadata") or {}
    labels = meta.get("labels") or {}
    owner = None
    for ref in meta.get("ownerReferences") or []:
        if ref.get("controller", True):
            owner = (ref.get("kind", ""), ref.get("name", ""))
            break
    return workload_of(pod=meta.get("name"), namespace=meta.get("namespace"), labels=labels, owner=owner,
                       cluster=cluster)


class PodIndex:
    """Pod and Service addresses of a cluster → identities (read once per collection)."""

    def __init__(self, pods: Iterable[Mapping[str, Any]] = (), services: Iterable[Mapping[str, Any]] = (),
                 cluster: str | None = None) -> None:
        self.by_ip: dict[str, Workload] = {}
        self.by_pod: dict[tuple[str, str], Workload] = {}
        self.services: dict[str, str] = {}
        for obj in pods:
            w = pod_workload(obj, cluster)
            status = obj.get("status") or {}
            if w.pod and w.namespace:
                self.by_pod[(w.namespace, w.pod)] = w
            if (status.get("phase") or "Running") not in ("Running", "Pending"):
                continue
            host_network = (obj.get("spec") or {}).get("hostNetwork")
            ips = [status.get("podIP")] + [x.get("ip") for x in status.get("podIPs") or []]
            for ip in ips:
                if ip and not host_network:
                    self.by_ip[ip] = w
        for svc in services:
            meta, spec = svc.get("metadata") or {}, svc.get("spec") or {}
            fqdn = f"{meta.get('name')}.{meta.get('namespace')}.svc.cluster.local"
            for ip in [spec.get("clusterIP"), *(spec.get("clusterIPs") or [])]:
                if ip and ip != "None":
                    self.services[ip] = fqdn

    @classmethod
    def from_kube(cls, api: KubeAPI, namespaces: Iterable[str] | None = None, cluster: str | None = None) -> PodIndex:
        """All pods and services the credentials can list (cluster-wide, else the given namespaces)."""
        from meshctl.kube import ApiStatusError

        try:
            pods, services = api.list_pods(None), api.list_services(None)
        except ApiStatusError:
            if not namespaces:
                raise
            # Not allowed to list cluster-wide (RBAC): peers in the collected namespaces still resolve.
            pods, services = [], []
            for ns in namespaces:
                pods += api.list_pods(ns)
                services += api.list_services(ns)
        return cls(pods, services, cluster)

    def pod(self, namespace: str | None, name: str) -> Workload | None:
        if namespace:
            return self.by_pod.get((namespace, name))
        found = [w for (ns, p), w in self.by_pod.items() if p == name]
        return found[0] if len(found) == 1 else None


def host_of(address: str | None) -> str | None:
    """`10.1.2.3:8080` / `[2001:db8::1]:80` / `tcp://10.1.2.3:80` → the host part."""
    if not address:
        return None
    a = address.split("://", 1)[-1]
    if a.startswith("["):
        return a[1: a.index("]")] if "]" in a else None
    if a.count(":") == 1:
        return a.split(":", 1)[0]
    return a


@dataclass(frozen=True)
class ClusterInfo:
    direction: str | None = None
    port: str | None = None
    subset: str | None = None
    host: str | None = None
    external: bool = False


def parse_cluster(name: str | None) -> ClusterInfo:
    """Istio cluster names: `outbound|PORT|SUBSET|HOST`, `inbound|PORT||`, pass-through clusters."""
    if not name:
        return ClusterInfo()
    if "|" in name:
        parts = name.split("|")
        direction = parts[0] if parts[0] in ("inbound", "outbound") else None
        port = parts[1] if len(parts) > 1 and parts[1] else None
        subset = parts[2] if len(parts) > 2 and parts[2] else None
        host = parts[3] if len(parts) > 3 and parts[3] else None
        external = direction == "outbound" and bool(host) and not _SVC_HOST.match(host or "")
        return ClusterInfo(direction, port, subset, host, external)
    if name.startswith("InboundPassthroughCluster"):
        return ClusterInfo("inbound")
    if name in ("PassthroughCluster", "BlackHoleCluster"):
        return ClusterInfo("outbound", external=True)
    return ClusterInfo()


def parse_sni(sni: str | None) -> ClusterInfo:
    """Istio mTLS SNI `outbound_.PORT_.SUBSET_.HOST` (seen by the server side)."""
    if not sni or not sni.startswith("outbound_."):
        return ClusterInfo()
    parts = sni.split("_.", 3)
    if len(parts) != 4:
        return ClusterInfo()
    subset = None if parts[2] in ("", "_") else parts[2]
    return ClusterInfo("inbound", parts[1] or None, subset, parts[3] or None)


def principal_namespace(principal: str | None) -> str | None:
    if not principal:
        return None
    m = _SPIFFE.match(principal) or _LINKERD_ID.match(principal)
    return m.group("ns") if m else None


def service_namespace(host: str | None) -> str | None:
    m = _SVC_HOST.match(host or "")
    return m.group("ns") if m else None


@dataclass
class Identity:
    """What meshctl knows about where rows come from: the reporter and, from Kubernetes, a PodIndex."""

    reporter: Workload | None = None
    pods: PodIndex | None = None
    cluster: str | None = None
    _cache: dict[Any, Any] = field(default_factory=dict, repr=False)

    def for_reporter(self, reporter: Workload | None) -> Identity:
        return replace(self, reporter=reporter, _cache={})

    # ---- per-value resolution (cached) -----------------------------------------------------
    def _reporter(self, wl: str | None, ns: str | None, pod: str | None) -> Workload:
        """The proxy that wrote a row: the source's reporter, unless the row names its own pod."""
        key = ("rep", wl, ns, pod)
        if key in self._cache:
            return self._cache[key]
        base = self.reporter or Workload()
        namespace = ns or base.namespace
        if pod and pod != base.pod:
            found = self.pods.pod(namespace, pod) if self.pods is not None else None
            w = found or workload_of(pod=pod, namespace=namespace, cluster=self.cluster)
        elif wl and wl != base.workload:
            w = workload_of(name=wl, namespace=namespace, cluster=self.cluster)
        else:
            w = base if not ns or ns == base.namespace else replace(base, namespace=ns)
        if self.cluster and not w.cluster:
            w = replace(w, cluster=self.cluster)
        self._cache[key] = w
        return w

    def _peer(self, ip: str | None) -> Workload | None:
        if self.pods is None or not ip:
            return None
        return self.pods.by_ip.get(ip)

    # ---- the table ------------------------------------------------------------------------
    def enrich(self, table: pa.Table, *, encoded: bool = False) -> pa.Table:
        """Fill identity columns (nulls only), drop auxiliary inputs, conform to the requests table.

        Rows are grouped by the distinct combinations of the few values identity depends on
        (reporter, cluster, SNI, authority host, peer IPs, principal namespace): the rules run
        once per combination, typically a few hundred for a million rows.

        `encoded=True` (the collection pipeline, on its way to Dataset.append): computed columns stay
        dictionary-encoded (a value per combination, an index per row) and the table is not conformed.
        """
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        n = table.num_rows
        if n == 0:
            return rt.conform_arrow(table.drop_columns([c for c in table.column_names if c in AUX_COLUMNS]))
        names = set(table.column_names)

        def col(name: str) -> pa.Array:
            if name in names:
                c = table.column(name)
                return c.combine_chunks() if isinstance(c, pa.ChunkedArray) else c
            return pa.nulls(n, pa.string())

        pods = self.pods
        rep_cols = [col("reporter_workload"), col("reporter_namespace"), col(AUX_REPORTER_POD)]
        rep_given = any(c.null_count < n for c in rep_cols)
        inputs = [
            _codes(_joined(rep_cols) if rep_given else None, lambda key: self._reporter(*_split(key))),
            _codes(col("direction"), lambda v: v),
            _codes(col("upstream_cluster"), parse_cluster),
            _codes(col(AUX_SNI), parse_sni),
            _codes(col("authority"), _authority_host),
            _codes(_hosts(col(AUX_DOWNSTREAM_LOCAL)) if pods is not None else None,
                   lambda ip: pods.services.get(ip or "") if pods is not None else None),
            _codes(_hosts(col("upstream_host")) if pods is not None else None, self._peer),
            _codes(_hosts(col("downstream_remote_address")) if pods is not None else None, self._peer),
            _codes(col("source_principal"), principal_namespace),
        ]
        key = np.zeros(n, dtype=np.int64)
        radix = 1
        for codes, values in inputs:
            if codes is None:
                continue
            size = max(len(values), 1)
            if radix * size >= 2**62:  # too many combinations for one integer: compress first
                key = np.unique(key, return_inverse=True)[1].astype(np.int64)
                radix = int(key.max()) + 1
            key = key + codes.astype(np.int64) * radix
            radix *= size
        _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        rows = []
        for i in first.tolist():
            rows.append(self._rules(*(values[0] if codes is None else values[int(codes[i])]
                                      for codes, values in inputs)))
        out: dict[str, pa.Array] = {}
        inv = None
        for k in _OUTPUT_COLUMNS:
            cur = table.column(k) if k in names else None
            if cur is not None and cur.null_count == 0:
                continue  # the log said it all
            values = [r.get(k) for r in rows]
            distinct = set(values)
            if distinct == {None}:
                continue
            fills = cur is None or cur.null_count == n
            if encoded and fills:
                out[k] = _encoded(values, inverse.ravel())
                continue
            if len(distinct) == 1:
                computed = pa.repeat(pa.scalar(values[0], pa.string()), n)
            else:
                if inv is None:
                    inv = pa.array(inverse.ravel())
                computed = pa.array(values, type=pa.string()).take(inv)
            out[k] = computed if fills else pc.coalesce(cur, computed)
        keep = [c for c in table.column_names if c not in AUX_COLUMNS and c not in out]
        result = {c: table.column(c) for c in keep}
        result.update(out)
        return pa.table(result) if encoded else rt.conform_arrow(pa.table(result))

    def _rules(self, r: Workload, given_dir: str | None, cluster: ClusterInfo, sni: ClusterInfo,
               auth_host: str | None, dla_service: str | None, up_peer: Workload | None,
               down_peer: Workload | None, principal_ns: str | None) -> dict[str, str | None]:
        """The identity of one combination of inputs (see the module docstring for the rules)."""
        out: dict[str, str | None] = {}
        d = given_dir or cluster.direction or sni.direction
        if r.gateway and d in (None, "outbound"):
            d = "gateway"
        out["direction"] = d
        out["reporter_workload"] = r.workload
        out["reporter_namespace"] = r.namespace
        c = cluster if (cluster.host or cluster.subset) else sni
        host = c.host
        if d == "inbound" and not host:
            # The service this proxy serves: a Service known to select it, else the Host header when
            # it names an in-cluster service, else its canonical service (app) in its namespace. A
            # public Host (shop.example.com, forwarded by an ingress) names no service of ours.
            host = r.service or _in_cluster_host(auth_host, r.namespace) or _app_service(r)
        if not host:
            host = dla_service or (auth_host if d != "inbound" else None)
        out["destination_service"] = host
        out["destination_subset"] = c.subset
        out["destination_namespace"] = service_namespace(host)
        if cluster.external:
            out["destination_kind"] = "external"
        if d in ("outbound", "gateway"):
            if d == "outbound":
                _put(out, "source", r)
            if up_peer is not None:
                _put(out, "destination", up_peer)
            elif c.subset and _SUBSET_VERSION.match(c.subset):
                out["destination_version"] = c.subset
        elif d == "inbound":
            _put(out, "destination", r)
            if down_peer is not None:
                _put(out, "source", down_peer)
            elif principal_ns:
                out["source_namespace"] = principal_ns
        return out


_OUTPUT_COLUMNS = (
    "direction", "reporter_workload", "reporter_namespace",
    "source_workload", "source_namespace", "source_app", "source_version", "source_cluster",
    "destination_service", "destination_workload", "destination_namespace", "destination_app",
    "destination_version", "destination_subset", "destination_cluster", "destination_kind",
)


def _encoded(values: list[str | None], inverse: Any) -> pa.Array:
    """Per-combination values (None = null) and each row's combination → a dictionary array."""
    import numpy as np
    import pyarrow as pa

    index: dict[str, int] = {}
    codes = np.array([-1 if v is None else index.setdefault(v, len(index)) for v in values], dtype=np.int32)
    rows = codes[inverse]
    nulls = rows < 0
    indices = pa.array(rows, type=pa.int32(), mask=nulls if nulls.any() else None)
    return pa.DictionaryArray.from_arrays(indices, pa.array(list(index), type=pa.string()))


def _put(out: dict[str, str | None], side: str, w: Workload) -> None:
    for attr in ("workload", "namespace", "app", "version", "cluster"):
        value = getattr(w, attr)
        if value is not None:
            out[f"{side}_{attr}"] = value
    if side == "destination" and w.service and not out.get("destination_service"):
        out["destination_service"] = w.service


def _authority_host(authority: str | None) -> str | None:
    host = host_of(authority)
    if not host or _IPV4.match(host) or ":" in host:
        return None
    return host.lower()


def _in_cluster_host(host: str | None, namespace: str | None) -> str | None:
    """A Host header naming an in-cluster service (`reviews`, `reviews.shop`, `reviews.shop.svc...`), qualified."""
    if not host:
        return None
    if "." not in host:
        return _qualify(host, namespace)
    if _SVC_HOST.match(host):
        return host
    labels = host.split(".")
    if len(labels) == 2 and namespace and labels[1] == namespace:
        return f"{host}.svc.cluster.local"
    return None


def _app_service(w: Workload) -> str | None:
    """The canonical service as Istio names it (app label, else the workload name) in its namespace."""
    name = w.app or w.workload
    return f"{name}.{w.namespace}.svc.cluster.local" if name and w.namespace else None


def _qualify(host: str | None, namespace: str | None) -> str | None:
    """A short in-cluster name as the reporter's namespace resolves it (`reviews` → reviews.NS.svc...)."""
    if not host:
        return None
    if "." not in host and namespace:
        return f"{host}.{namespace}.svc.cluster.local"
    return host


def _hosts(arr: pa.Array) -> pa.Array:
    """Addresses → their host part, vectorized (`10.1.2.3:80` → 10.1.2.3, `[::1]:80` → ::1), so that
    the many client ports collapse into few distinct hosts."""
    import pyarrow.compute as pc

    h = pc.replace_substring_regex(arr, pattern=r"^(?:[a-z]+://)?(?:\[([^\]]*)\]|([^:\[]*))(?::\d+)?$",
                                   replacement=r"\1\2")
    return h


def _codes(arr: pa.Array | None, fn: Callable[[Any], Any]) -> tuple[Any, list[Any]]:
    """fn over the distinct values of arr (null included): (per-row code, distinct results).
    `arr` None means "nothing to look at": every row gets fn(None)."""
    import numpy as np

    if arr is None or arr.null_count == len(arr):
        return None, [fn(None)]
    enc = arr.dictionary_encode()
    dict_values = enc.dictionary.to_pylist()
    results: dict[Any, int] = {}
    per_value = []
    for v in [*dict_values, None]:
        res = fn(v)
        per_value.append(results.setdefault(res, len(results)))
    idx = enc.indices.fill_null(len(dict_values)).to_numpy(zero_copy_only=False)
    return np.asarray(per_value, dtype=np.int64)[idx], list(results)


def _joined(arrays: list[pa.Array]) -> pa.Array:
    import pyarrow as pa
    import pyarrow.compute as pc

    return pc.binary_join_element_wise(*[a.cast(pa.string()) for a in arrays], "\x1f",
                                       null_handling="replace", null_replacement="\x00")


def _split(key: str | None) -> list[str | None]:
    if key is None:
        return [None, None, None]
    return [None if p == "\x00" else p for p in key.split("\x1f")]
