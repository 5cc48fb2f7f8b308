"""Filter names an EnvoyFilter can match: Envoy's filters, the ones istiod generates, deprecated aliases.

Envoy's canonical filter names follow the layout of its API (`envoy.extensions.filters.http.router.v3`
is `envoy.filters.http.router`); the list is read from the installed envoy-data-plane package's
directories, without importing it. istiod still matches the deprecated pre-1.14 names
(`envoy.http_connection_manager`, `envoy.router`, ...) and warns about them.
"""

from __future__ import annotations

import importlib.util
import os
from functools import lru_cache

HCM = "envoy.filters.network.http_connection_manager"

# pkg/config/xds: canonical name -> deprecated name istiod still matches.
DEPRECATED = {
    "envoy.filters.http.buffer": "envoy.buffer",
    "envoy.filters.http.cors": "envoy.cors",
    "envoy.filters.http.csrf": "envoy.csrf",
    "envoy.filters.http.dynamo": "envoy.http_dynamo_filter",
    "envoy.filters.http.ext_authz": "envoy.ext_authz",
    "envoy.filters.http.fault": "envoy.fault",
    "envoy.filters.http.grpc_http1_bridge": "envoy.grpc_http1_bridge",
    "envoy.filters.http.grpc_json_transcoder": "envoy.grpc_json_transcoder",
    "envoy.filters.http.grpc_web": "envoy.grpc_web",
    "envoy.filters.http.gzip": "envoy.gzip",
    "envoy.filters.http.health_check": "envoy.health_check",
    "envoy.filters.http.ip_tagging": "envoy.ip_tagging",
    "envoy.filters.http.lua": "envoy.lua",
    "envoy.filters.http.ratelimit": "envoy.rate_limit",
    "envoy.filters.http.router": "envoy.router",
    "envoy.filters.http.squash": "envoy.squash",
    "envoy.filters.listener.http_inspector": "envoy.listener.http_inspector",
    "envoy.filters.listener.original_dst": "envoy.listener.original_dst",
    "envoy.filters.listener.original_src": "envoy.listener.original_src",
    "envoy.filters.listener.proxy_protocol": "envoy.listener.proxy_protocol",
    "envoy.filters.listener.tls_inspector": "envoy.listener.tls_inspector",
    "envoy.filters.network.client_ssl_auth": "envoy.client_ssl_auth",
    "envoy.filters.network.ext_authz": "envoy.ext_authz",
    HCM: "envoy.http_connection_manager",
    "envoy.filters.network.mongo_proxy": "envoy.mongo_proxy",
    "envoy.filters.network.ratelimit": "envoy.ratelimit",
    "envoy.filters.network.redis_proxy": "envoy.redis_proxy",
    "envoy.filters.network.tcp_proxy": "envoy.tcp_proxy",
}
REVERSE_DEPRECATED = {old: new for new, old in DEPRECATED.items() if old != "envoy.ext_authz"}
REVERSE_DEPRECATED["envoy.ext_authz"] = "envoy.filters.http.ext_authz (or envoy.filters.network.ext_authz)"

# Filters istiod itself puts into listeners (pilot/pkg/xds/filters, telemetry, authn, waypoints).
ISTIO_FILTERS = frozenset({
    "istio.metadata_exchange", "istio.stats", "istio.alpn", "istio_authn", "istio.peer_metadata",
    "waypoint_downstream_peer_metadata", "waypoint_upstream_peer_metadata", "connect_authority",
    "istio.forward_downstream_sni", "istio.tcp_cluster_rewrite", "istio.sni_verifier", "istio.stackdriver",
    "envoy.filters.network.metadata_exchange", "envoy.filters.http.peer_metadata", "istio.set_internal_dst_address",
})

# Envoy filters outside envoy-data-plane's tree (contrib builds) that operators do match.
_CONTRIB = frozenset({
    "envoy.filters.network.mysql_proxy", "envoy.filters.network.postgres_proxy", "envoy.filters.network.kafka_broker",
    "envoy.filters.network.kafka_mesh", "envoy.filters.network.rocketmq_proxy", "envoy.filters.network.sip_proxy",
    "envoy.filters.http.golang", "envoy.filters.http.sxg", "envoy.filters.http.squash", "envoy.filters.http.dynamo",
    "envoy.filters.http.checksum", "envoy.filters.network.golang",
})

_FALLBACK = frozenset({
    HCM, "envoy.filters.network.tcp_proxy", "envoy.filters.network.rbac", "envoy.filters.network.ext_authz",
    "envoy.filters.network.local_ratelimit", "envoy.filters.network.ratelimit", "envoy.filters.network.redis_proxy",
    "envoy.filters.network.mongo_proxy", "envoy.filters.network.sni_cluster", "envoy.filters.network.wasm",
    "envoy.filters.http.router", "envoy.filters.http.fault", "envoy.filters.http.cors", "envoy.filters.http.rbac",
    "envoy.filters.http.ext_authz", "envoy.filters.http.ext_proc", "envoy.filters.http.jwt_authn",
    "envoy.filters.http.lua", "envoy.filters.http.wasm", "envoy.filters.http.local_ratelimit",
    "envoy.filters.http.ratelimit", "envoy.filters.http.grpc_stats", "envoy.filters.http.grpc_web",
    "envoy.filters.http.compressor", "envoy.filters.http.buffer", "envoy.filters.http.health_check",
    "envoy.filters.http.stateful_session", "envoy.filters.http.header_to_metadata",
    "envoy.filters.listener.tls_inspector", "envoy.filters.listener.http_inspector",
    "envoy.filters.listener.original_dst", "envoy.filters.listener.original_src",
    "envoy.filters.listener.proxy_protocol",
})


@lru_cache(maxsize=1)
def envoy_filter_names() -> frozenset[str]:
    """Canonical Envoy filter names (envoy.filters.{http,network,listener,udp_listener}.*)."""
    names = set(_FALLBACK) | set(DEPRECATED) | _CONTRIB
    spec = importlib.util.find_spec("envoy_data_plane")
    if spec is None or not spec.submodule_search_locations:
        return frozenset(names)
    root = os.path.join(next(iter(spec.submodule_search_locations)), "envoy", "extensions", "filters")
    for family in ("http", "network", "listener", "udp", "udp_listener"):
        try:
            entries = os.listdir(os.path.join(root, family))
        except OSError:
            continue
        prefix = "udp_listener" if family == "udp" else family
        names.update(f"envoy.filters.{prefix}.{e}" for e in entries if not e.startswith("_") and "." not in e)
    return frozenset(names)


def known(name: str) -> bool:
    return name in envoy_filter_names() or name in ISTIO_FILTERS or name in REVERSE_DEPRECATED


def network_filter(name: str) -> bool:
    return name.startswith("envoy.filters.network.") or REVERSE_DEPRECATED.get(name, "").startswith("envoy.filters.network.")


@lru_cache(maxsize=256)
def close_match(name: str) -> str | None:
    import difflib

    pool = sorted(envoy_filter_names() | ISTIO_FILTERS)
    found = difflib.get_close_matches(name, pool, n=1, cutoff=0.85)
    if found:
        return found[0]
    # `envoy.filters.network.http_connection_manager.Something`: a known filter plus a suffix.
    for candidate in pool:
        if name.startswith(candidate + "."):
            return candidate
    return None
