"""Apply Istio EnvoyFilter `configPatches` to an Envoy bootstrap dict, the way istiod applies them to the
xDS it generates. Used by tests (every rendered patch goes through a real `envoy --mode validate`), by
the local mesh (sidecars get the telemetry `meshctl render istio --mode envoyfilter` produces) and by
`meshctl suggest`.

    from meshctl.envoyfilter import apply_envoyfilters
    result = apply_envoyfilters(bootstrap, [envoyfilter_doc], proxy_type="sidecar")
    result.bootstrap            # a patched deep copy
    result.applied, result.skipped   # PatchRef lists; skipped ones say why (no match, wrong context, ...)

What is supported (Istio semantics, pkg/networking/core/envoyfilter):
- applyTo LISTENER, FILTER_CHAIN, NETWORK_FILTER, HTTP_FILTER, LISTENER_FILTER, ROUTE_CONFIGURATION,
  VIRTUAL_HOST, HTTP_ROUTE, CLUSTER, BOOTSTRAP (EXTENSION_CONFIG is ECDS-only: reported as skipped);
- operations MERGE, ADD, REMOVE, INSERT_BEFORE, INSERT_AFTER, INSERT_FIRST, REPLACE where istiod allows
  them for that applyTo (others raise `EnvoyFilterError`, as istiod's validation rejects them);
- match on context (SIDECAR_INBOUND / SIDECAR_OUTBOUND / GATEWAY / ANY), listener name / portNumber /
  filterChain (name, sni, transportProtocol, applicationProtocols, destinationPort, filter.name,
  filter.subFilter.name) / listenerFilter, routeConfiguration (name, portNumber, vhost name / domainName,
  route name / action), cluster (name, service, portNumber, subset of `dir|port|subset|host` names),
  proxy.proxyVersion; workloadSelector labels when `labels` is given; EnvoyFilter priority ordering.
- a listener's context comes from its `traffic_direction` (INBOUND -> SIDECAR_INBOUND, else
  SIDECAR_OUTBOUND) for sidecars, and is GATEWAY for `proxy_type="gateway"`. Route configurations are the
  ones inline in HTTP connection managers (`route_config`), matched by portNumber = listener port.

MERGE follows protobuf merge semantics on the JSON form: messages merge field by field, repeated fields
append, scalars are replaced, and an `Any` whose `@type` differs is replaced. Field names are matched in
both spellings (`typed_config` / `typedConfig`).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from meshctl.errors import MeshctlError

HCM = "envoy.filters.network.http_connection_manager"

ALLOWED_OPS: dict[str, set[str]] = {
    "LISTENER": {"ADD", "REMOVE", "MERGE"},
    "FILTER_CHAIN": {"ADD", "REMOVE", "MERGE"},
    "NETWORK_FILTER": {"ADD", "REMOVE", "MERGE", "INSERT_BEFORE", "INSERT_AFTER", "INSERT_FIRST", "REPLACE"},
    "HTTP_FILTER": {"ADD", "REMOVE", "MERGE", "INSERT_BEFORE", "INSERT_AFTER", "INSERT_FIRST", "REPLACE"},
    "LISTENER_FILTER": {"ADD", "REMOVE", "MERGE", "INSERT_BEFORE", "INSERT_AFTER", "INSERT_FIRST"},
    "ROUTE_CONFIGURATION": {"MERGE"},
    "VIRTUAL_HOST": {"ADD", "REMOVE", "MERGE", "REPLACE"},
    "HTTP_ROUTE": {"ADD", "REMOVE", "MERGE", "INSERT_BEFORE", "INSERT_AFTER", "INSERT_FIRST"},
    "CLUSTER": {"ADD", "REMOVE", "MERGE"},
    "BOOTSTRAP": {"MERGE"},
    "EXTENSION_CONFIG": {"ADD"},
}
_VALUE_REQUIRED = {"MERGE", "ADD", "INSERT_BEFORE", "INSERT_AFTER", "INSERT_FIRST", "REPLACE"}


class EnvoyFilterError(MeshctlError):
    """A patch istiod would reject (unknown applyTo/operation, operation not allowed, missing value)."""


@dataclass(frozen=True)
class PatchRef:
    """Which patch: the EnvoyFilter (namespace/name) and the index in its configPatches."""

    envoyfilter: str
    index: int
    apply_to: str
    operation: str

    def __str__(self) -> str:
        return f"{self.envoyfilter} configPatches[{self.index}] ({self.apply_to} {self.operation})"


@dataclass
class ApplyResult:
    bootstrap: dict[str, Any]
    applied: list[PatchRef] = field(default_factory=list)
    skipped: list[tuple[PatchRef, str]] = field(default_factory=list)


# ---- proto-style merge on the JSON form ----------------------------------------------------------

_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])")


def _canon(key: str) -> str:
    """`typedConfig` -> `typed_config` for field-name keys (map keys such as header names are left alone)."""
    if key.startswith("@") or not re.fullmatch(r"[a-z][A-Za-z0-9_]*", key):
        return key
    return _CAMEL.sub(r"_\1", key).lower()


def _find_key(d: Mapping[str, Any], key: str) -> str | None:
    if key in d:
        return key
    c = _canon(key)
    for k in d:
        if _canon(k) == c:
            return k
    return None


def proto_merge(dst: dict[str, Any], src: Mapping[str, Any]) -> dict[str, Any]:
    """Merge `src` into `dst` in place with protobuf MergeFrom semantics (see module docstring)."""
    if "@type" in src and "@type" in dst and src["@type"] != dst["@type"]:
        dst.clear()
        dst.update(copy.deepcopy(dict(src)))
        return dst
    for k, v in src.items():
        dk = _find_key(dst, k)
        if dk is None:
            dst[k] = copy.deepcopy(v)
            continue
        cur = dst[dk]
        if isinstance(cur, dict) and isinstance(v, Mapping):
            proto_merge(cur, v)
        elif isinstance(cur, list) and isinstance(v, list):
            cur.extend(copy.deepcopy(v))
        else:
            dst[dk] = copy.deepcopy(v)
    return dst


def _get(d: Mapping[str, Any] | None, *keys: str, default: Any = None) -> Any:
    cur: Any = d
    for k in keys:
        if not isinstance(cur, Mapping):
            return default
        fk = _find_key(cur, k)
        if fk is None:
            return default
        cur = cur[fk]
    return cur


def _list(d: dict[str, Any], key: str, create: bool = False) -> list[Any] | None:
    fk = _find_key(d, key)
    if fk is None:
        if not create:
            return None
        d[key] = []
        return d[key]
    if d[fk] is None and create:
        d[fk] = []
    return d[fk]


# ---- matching ----------------------------------------------------------------------------------


_ISTIO_LISTENER_NAME = re.compile(r"^.+_(\d{1,5})$")  # istiod names listeners <ip>_<port> (0.0.0.0_9080)


def _listener_port(listener: Mapping[str, Any]) -> int | None:
    """The service port istiod matches `portNumber` against: the one in an Istio listener name, else the
    bound port. They are the same in a cluster; a local mesh binds ephemeral ports under Istio's names."""
    named = _ISTIO_LISTENER_NAME.match(str(listener.get("name") or ""))
    if named:
        return int(named.group(1))
    port = _get(listener, "address", "socket_address", "port_value")
    return int(port) if port is not None else None


def listener_context(listener: Mapping[str, Any], proxy_type: str) -> str:
    if proxy_type == "gateway":
        return "GATEWAY"
    direction = _get(listener, "traffic_direction")
    if direction == "INBOUND" or (direction is None and str(_get(listener, "name", default="")).startswith(("virtualInbound", "inbound"))):
        return "SIDECAR_INBOUND"
    return "SIDECAR_OUTBOUND"


def _context_ok(want: str | None, have: str) -> bool:
    return want in (None, "", "ANY") or want == have


def _filters_of(chain: Mapping[str, Any]) -> list[dict[str, Any]]:
    return _get(chain, "filters", default=None) or []


def _hcm_http_filters(f: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    tc = _get(f, "typed_config")
    if not isinstance(tc, dict):
        return None
    return _list(tc, "http_filters", create=True)


def _chain_matches(chain: Mapping[str, Any], m: Mapping[str, Any]) -> bool:
    if not m:
        return True
    fcm = _get(chain, "filter_chain_match", default={}) or {}
    if m.get("name") and _get(chain, "name") != m["name"]:
        return False
    if m.get("sni") and m["sni"] not in (_get(fcm, "server_names", default=[]) or []):
        return False
    if m.get("transportProtocol") and _get(fcm, "transport_protocol", default="") != m["transportProtocol"]:
        return False
    if m.get("applicationProtocols"):
        want = {p.strip() for p in str(m["applicationProtocols"]).split(",")}
        if not want & set(_get(fcm, "application_protocols", default=[]) or []):
            return False
    if m.get("destinationPort") and _get(fcm, "destination_port") != m["destinationPort"]:
        return False
    fm = m.get("filter") or {}
    if fm.get("name"):
        named = [f for f in _filters_of(chain) if f.get("name") == fm["name"]]
        if not named:
            return False
        sub = (fm.get("subFilter") or {}).get("name")
        if sub and not any(hf.get("name") == sub for f in named for hf in (_hcm_http_filters(f) or [])):
            return False
    return True


def _listener_matches(listener: Mapping[str, Any], m: Mapping[str, Any] | None) -> bool:
    if not m:
        return True
    if m.get("portNumber") and _listener_port(listener) != m["portNumber"]:
        return False
    if m.get("name") and _get(listener, "name") != m["name"]:
        return False
    if m.get("portName"):
        return False  # port names exist only in istiod's model, not in a bootstrap
    if m.get("listenerFilter"):
        names = [lf.get("name") for lf in (_get(listener, "listener_filters", default=[]) or [])]
        if m["listenerFilter"] not in names:
            return False
    return True


def parse_cluster_name(name: str) -> dict[str, Any]:
    """Istio's `direction|port|subset|hostname` cluster names; other names only have `name`."""
    parts = name.split("|")
    if len(parts) == 4 and parts[1].isdigit():
        return {"direction": parts[0], "port": int(parts[1]), "subset": parts[2], "host": parts[3]}
    return {}


def _cluster_matches(cluster: Mapping[str, Any], m: Mapping[str, Any] | None) -> bool:
    if not m:
        return True
    name = str(_get(cluster, "name", default=""))
    if m.get("name") and name != m["name"]:
        return False
    parsed = parse_cluster_name(name)
    if m.get("service") and parsed.get("host") != m["service"]:
        return False
    if m.get("portNumber") and parsed.get("port") != m["portNumber"]:
        return False
    return not (m.get("subset") and parsed.get("subset") != m["subset"])


def _cluster_context(cluster: Mapping[str, Any], proxy_type: str) -> str:
    if proxy_type == "gateway":
        return "GATEWAY"
    return "SIDECAR_INBOUND" if str(_get(cluster, "name", default="")).startswith("inbound|") else "SIDECAR_OUTBOUND"


def _selector_ok(ef: Mapping[str, Any], labels: Mapping[str, str] | None) -> bool:
    if labels is None:
        return True
    want = _get(ef, "spec", "workloadSelector", "labels") or {}
    return all(labels.get(k) == v for k, v in want.items())


def _proxy_ok(m: Mapping[str, Any], proxy_version: str | None, metadata: Mapping[str, str] | None) -> bool:
    pm = m.get("proxy") or {}
    if pm.get("proxyVersion") and proxy_version is not None and not re.match(pm["proxyVersion"], proxy_version):
        return False
    if pm.get("proxyVersion") and proxy_version is None:
        return False
    return all((metadata or {}).get(k) == v for k, v in (pm.get("metadata") or {}).items())


# ---- list operations ---------------------------------------------------------------------------


def _list_op(items: list[dict[str, Any]], op: str, value: Any, anchor_name: str | None) -> bool:
    """ADD / INSERT_* / REMOVE / MERGE / REPLACE on a list of named items; True when something changed."""
    idx = next((i for i, it in enumerate(items) if it.get("name") == anchor_name), None) if anchor_name else None
    if op == "ADD":
        items.append(copy.deepcopy(value))
        return True
    if op == "INSERT_FIRST":
        items.insert(0, copy.deepcopy(value))
        return True
    if op == "INSERT_BEFORE":
        if anchor_name and idx is None:
            return False
        items.insert(idx if idx is not None else 0, copy.deepcopy(value))
        return True
    if op == "INSERT_AFTER":
        if anchor_name and idx is None:
            return False
        items.insert(idx + 1 if idx is not None else len(items), copy.deepcopy(value))
        return True
    targets = [i for i, it in enumerate(items) if anchor_name is None or it.get("name") == anchor_name]
    if not targets:
        return False
    if op == "REMOVE":
        for i in reversed(targets):
            del items[i]
    elif op == "MERGE":
        for i in targets:
            proto_merge(items[i], value)
    elif op == "REPLACE":
        for i in targets:
            items[i] = copy.deepcopy(value)
    return True


# ---- the applier -------------------------------------------------------------------------------


def _ordered(envoyfilters: Iterable[Mapping[str, Any]], root_namespace: str) -> list[Mapping[str, Any]]:
    efs = list(envoyfilters)

    def key(item: tuple[int, Mapping[str, Any]]) -> tuple[int, int, int]:
        i, ef = item
        prio = int(_get(ef, "spec", "priority", default=0) or 0)
        ns = _get(ef, "metadata", "namespace")
        return prio, 0 if ns == root_namespace else 1, i

    return [ef for _, ef in sorted(enumerate(efs), key=key)]


def apply_envoyfilters(
    bootstrap: Mapping[str, Any],
    envoyfilters: Iterable[Mapping[str, Any]],
    *,
    proxy_type: str = "sidecar",
    labels: Mapping[str, str] | None = None,
    namespace: str | None = None,
    root_namespace: str = "istio-system",
    proxy_version: str | None = None,
    proxy_metadata: Mapping[str, str] | None = None,
) -> ApplyResult:
    """Apply EnvoyFilter documents to a copy of `bootstrap`.

    `labels`: the workload's labels (None: ignore workloadSelector). `namespace`: the workload's namespace
    (None: every EnvoyFilter applies; else only those in it or in `root_namespace`).
    """
    result = ApplyResult(bootstrap=copy.deepcopy(dict(bootstrap)))
    for ef in _ordered(envoyfilters, root_namespace):
        if _get(ef, "kind") not in (None, "EnvoyFilter"):
            continue
        ef_ns = _get(ef, "metadata", "namespace")
        ident = f"{ef_ns or '-'}/{_get(ef, 'metadata', 'name', default='?')}"
        patches = _get(ef, "spec", "configPatches", default=[]) or []
        in_scope = namespace is None or ef_ns in (None, namespace, root_namespace)
        selected = _selector_ok(ef, labels)
        for i, patch in enumerate(patches):
            ref = PatchRef(ident, i, str(patch.get("applyTo")), str((patch.get("patch") or {}).get("operation")))
            if not in_scope:
                result.skipped.append((ref, f"EnvoyFilter namespace {ef_ns} does not apply to namespace {namespace}"))
                continue
            if not selected:
                result.skipped.append((ref, "workloadSelector does not select these labels"))
                continue
            reason = _apply_patch(result.bootstrap, patch, ref, proxy_type, proxy_version, proxy_metadata)
            if reason is None:
                result.applied.append(ref)
            else:
                result.skipped.append((ref, reason))
    return result


def apply_patches(bootstrap: Mapping[str, Any], config_patches: list[Mapping[str, Any]], **kw: Any) -> ApplyResult:
    """`apply_envoyfilters` for a bare configPatches list."""
    ef = {"kind": "EnvoyFilter", "metadata": {"name": "patches"}, "spec": {"configPatches": config_patches}}
    return apply_envoyfilters(bootstrap, [ef], **kw)


def _apply_patch(
    boot: dict[str, Any],
    patch: Mapping[str, Any],
    ref: PatchRef,
    proxy_type: str,
    proxy_version: str | None,
    proxy_metadata: Mapping[str, str] | None,
) -> str | None:
    """Apply one patch; None when applied, else why it was skipped."""
    apply_to = patch.get("applyTo")
    body = patch.get("patch") or {}
    op = body.get("operation")
    value = body.get("value")
    if apply_to not in ALLOWED_OPS:
        raise EnvoyFilterError(f"{ref}: unknown applyTo {apply_to!r}", hint=f"one of {', '.join(ALLOWED_OPS)}")
    if op not in ALLOWED_OPS[apply_to]:
        raise EnvoyFilterError(f"{ref}: operation {op!r} is not supported for {apply_to}",
                               hint=f"allowed: {', '.join(sorted(ALLOWED_OPS[apply_to]))}")
    if op in _VALUE_REQUIRED and not isinstance(value, Mapping):
        raise EnvoyFilterError(f"{ref}: {op} needs a patch.value object")
    m = patch.get("match") or {}
    if "listener" in patch:
        raise EnvoyFilterError(f"{ref}: `listener` sits outside `match` (istiod prunes it and the patch "
                               "applies to every listener)", hint="move it under match:")
    if not _proxy_ok(m, proxy_version, proxy_metadata):
        return "match.proxy does not select this proxy"
    want_ctx = m.get("context")

    if apply_to == "BOOTSTRAP":
        proto_merge(boot, value)
        return None
    if apply_to == "EXTENSION_CONFIG":
        return "EXTENSION_CONFIG patches are served over ECDS; a static bootstrap has no place for them"

    static = boot.setdefault("static_resources", {}) if _find_key(boot, "static_resources") is None else boot[_find_key(boot, "static_resources")]

    if apply_to == "CLUSTER":
        clusters = _list(static, "clusters", create=True)
        assert clusters is not None
        if op == "ADD":
            own = "GATEWAY" if proxy_type == "gateway" else "SIDECAR_OUTBOUND"
            if not _context_ok(want_ctx, own):
                return f"context {want_ctx} does not match this {proxy_type}'s clusters ({own})"
            clusters.append(copy.deepcopy(value))
            return None
        hits = [c for c in clusters if _context_ok(want_ctx, _cluster_context(c, proxy_type)) and _cluster_matches(c, m.get("cluster"))]
        if not hits:
            return "no cluster matches"
        for c in hits:
            if op == "REMOVE":
                clusters.remove(c)
            else:
                proto_merge(c, value)
        return None

    listeners = _list(static, "listeners", create=True)
    assert listeners is not None
    lm = m.get("listener") or {}
    if apply_to == "LISTENER":
        if op == "ADD":
            listeners.append(copy.deepcopy(value))
            return None
        hits = [ln for ln in listeners if _context_ok(want_ctx, listener_context(ln, proxy_type)) and _listener_matches(ln, lm)]
        if not hits:
            return "no listener matches"
        for ln in hits:
            if op == "REMOVE":
                listeners.remove(ln)
            else:
                proto_merge(ln, value)
        return None

    cands = [ln for ln in listeners if _context_ok(want_ctx, listener_context(ln, proxy_type)) and _listener_matches(ln, lm)]
    if apply_to in ("ROUTE_CONFIGURATION", "VIRTUAL_HOST", "HTTP_ROUTE"):
        return _apply_route_patch(listeners, proxy_type, want_ctx, m.get("routeConfiguration") or {}, apply_to, op, value)
    if not cands:
        return "no listener matches"
    if apply_to == "LISTENER_FILTER":
        changed = False
        for ln in cands:
            lfs = _list(ln, "listener_filters", create=True)
            assert lfs is not None
            changed |= _list_op(lfs, op, value, lm.get("listenerFilter"))
        return None if changed else "no listener filter matches"

    fcm = lm.get("filterChain") or {}
    chains = [(ln, fc) for ln in cands for fc in (_list(ln, "filter_chains") or []) if _chain_matches(fc, fcm)]
    if apply_to == "FILTER_CHAIN":
        if op == "ADD":
            for ln in cands:
                fcs = _list(ln, "filter_chains", create=True)
                assert fcs is not None
                fcs.append(copy.deepcopy(value))
            return None
        if not chains:
            return "no filter chain matches"
        for ln, fc in chains:
            if op == "REMOVE":
                (_list(ln, "filter_chains") or []).remove(fc)
            else:
                proto_merge(fc, value)
        return None
    if not chains:
        return "no filter chain matches"
    fname = (fcm.get("filter") or {}).get("name")
    changed = False
    if apply_to == "NETWORK_FILTER":
        for _ln, fc in chains:
            filters = _list(fc, "filters", create=True)
            assert filters is not None
            changed |= _list_op(filters, op, value, fname)
        return None if changed else f"no network filter named {fname!r}"
    # HTTP_FILTER: inside the HTTP connection managers of the matched chains.
    sub = ((fcm.get("filter") or {}).get("subFilter") or {}).get("name")
    for _ln, fc in chains:
        for f in _filters_of(fc):
            if f.get("name") != HCM or (fname and fname != HCM):
                continue
            hfs = _hcm_http_filters(f)
            if hfs is not None:
                changed |= _list_op(hfs, op, value, sub)
    return None if changed else "no HTTP filter matches"


def _route_configs(listeners: list[dict[str, Any]], proxy_type: str, want_ctx: str | None) -> list[tuple[dict[str, Any], int | None]]:
    out = []
    for ln in listeners:
        if not _context_ok(want_ctx, listener_context(ln, proxy_type)):
            continue
        for fc in _list(ln, "filter_chains") or []:
            for f in _filters_of(fc):
                rc = _get(f, "typed_config", "route_config")
                if f.get("name") == HCM and isinstance(rc, dict):
                    out.append((rc, _listener_port(ln)))
    return out


def _apply_route_patch(listeners: list[dict[str, Any]], proxy_type: str, want_ctx: str | None,
                       rm: Mapping[str, Any], apply_to: str, op: str, value: Any) -> str | None:
    rcs = [(rc, port) for rc, port in _route_configs(listeners, proxy_type, want_ctx)
           if (not rm.get("name") or rc.get("name") == rm["name"])
           and (not rm.get("portNumber") or port == rm["portNumber"])
           and not rm.get("portName") and not rm.get("gateway")]
    if not rcs:
        return "no route configuration matches"
    if apply_to == "ROUTE_CONFIGURATION":
        for rc, _ in rcs:
            proto_merge(rc, value)
        return None
    vm = rm.get("vhost") or {}

    def vhost_ok(vh: Mapping[str, Any]) -> bool:
        if vm.get("name") and vh.get("name") != vm["name"]:
            return False
        return not (vm.get("domainName") and vm["domainName"] not in (vh.get("domains") or []))

    changed = False
    for rc, _ in rcs:
        vhosts = _list(rc, "virtual_hosts", create=True)
        assert vhosts is not None
        if apply_to == "VIRTUAL_HOST":
            if op == "ADD":
                vhosts.append(copy.deepcopy(value))
                changed = True
                continue
            for i in reversed(range(len(vhosts))):
                if vhost_ok(vhosts[i]):
                    changed = True
                    if op == "REMOVE":
                        del vhosts[i]
                    elif op == "MERGE":
                        proto_merge(vhosts[i], value)
                    else:
                        vhosts[i] = copy.deepcopy(value)
            continue
        route_m = vm.get("route") or {}
        for vh in vhosts:
            if not vhost_ok(vh):
                continue
            routes = _list(vh, "routes", create=True)
            assert routes is not None
            action = route_m.get("action")
            if action and action != "ANY":
                key = {"ROUTE": "route", "REDIRECT": "redirect", "DIRECT_RESPONSE": "direct_response"}[action]
                names = [r.get("name") for r in routes if _find_key(r, key) is not None]
                if not names:
                    continue
                if op in ("MERGE", "REMOVE"):
                    for r in [r for r in routes if _find_key(r, key) is not None and (not route_m.get("name") or r.get("name") == route_m["name"])]:
                        changed = True
                        if op == "REMOVE":
                            routes.remove(r)
                        else:
                            proto_merge(r, value)
                    continue
            changed |= _list_op(routes, op, value, route_m.get("name"))
    return None if changed else f"no {apply_to.lower().replace('_', ' ')} matches"
