"""`--validate=envoy`: put each EnvoyFilter's patches into a stub bootstrap and ask the real Envoy.

The stub is the smallest bootstrap istiod-like patches find their targets in: an inbound and an outbound
listener, each with an HTTP connection manager (router last, an inline route to a stub cluster), and
that cluster. Clusters the patches reference by name (`cluster_name`, `cluster`) but do not add get
stub clusters, so Envoy judges the patch itself. The patches are applied with `meshctl.envoyfilter`
(as a sidecar, and as a gateway when a patch targets GATEWAY), then `envoy --mode validate` runs and
Envoy's own message is reported.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from typing import Any

from meshctl.validate.problems import ERROR, WARNING, Problem, object_name

HCM_TYPE = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
STUB_CLUSTER = "outbound|8080||stub.default.svc.cluster.local"


def _hcm_listener(name: str, port: int, direction: str) -> dict[str, Any]:
    return {
        "name": name,
        "traffic_direction": direction,
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
        "filter_chains": [{"filters": [{
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": {
                "@type": HCM_TYPE,
                "stat_prefix": name,
                "route_config": {"name": str(port), "virtual_hosts": [{
                    "name": "stub", "domains": ["*"],
                    "routes": [{"name": "default", "match": {"prefix": "/"}, "route": {"cluster": STUB_CLUSTER}}],
                }]},
                "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}],
            },
        }]}],
    }


def _stub_cluster(name: str) -> dict[str, Any]:
    return {
        "name": name, "type": "STATIC", "connect_timeout": "1s",
        "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [{"endpoint": {
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": 9}}}}]}]},
    }


def stub_bootstrap() -> dict[str, Any]:
    """A minimal sidecar-like bootstrap: inbound + outbound HTTP listeners and one cluster (all port 0)."""
    return {
        "node": {"id": "sidecar~127.0.0.1~stub.default~default.svc.cluster.local", "cluster": "stub.default"},
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "static_resources": {
            "listeners": [_hcm_listener("virtualInbound", 0, "INBOUND"), _hcm_listener("0.0.0.0_8080", 0, "OUTBOUND")],
            "clusters": [_stub_cluster(STUB_CLUSTER)],
        },
    }


def _referenced_clusters(obj: Any) -> set[str]:
    out: set[str] = set()
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            if k in ("cluster_name", "clusterName", "cluster") and isinstance(v, str):
                out.add(v)
            else:
                out |= _referenced_clusters(v)
    elif isinstance(obj, list):
        for v in obj:
            out |= _referenced_clusters(v)
    return out


def patched_bootstraps(envoyfilter: Mapping[str, Any]) -> list[tuple[str, dict[str, Any], list[str]]]:
    """[(proxy type, patched bootstrap, notes about patches that matched nothing)]."""
    from meshctl.envoyfilter import apply_envoyfilters
    from meshctl.validate.envoy_types import APPLY_TO_TYPE, envoy_json

    # istiod converts patch values to protos before Envoy sees them (Go durations become "0.5s").
    envoyfilter = copy.deepcopy(dict(envoyfilter))
    for p in ((envoyfilter.get("spec") or {}).get("configPatches")) or []:
        body = p.get("patch") if isinstance(p, dict) else None
        if isinstance(body, dict) and isinstance(body.get("value"), dict) and p.get("applyTo") in APPLY_TO_TYPE:
            body["value"] = envoy_json(APPLY_TO_TYPE[p["applyTo"]], body["value"])
    patches = ((envoyfilter.get("spec") or {}).get("configPatches")) or []
    contexts = {((p.get("match") or {}).get("context") or "ANY") for p in patches if isinstance(p, Mapping)}
    kinds = ["sidecar"] if contexts - {"GATEWAY"} else []
    if "GATEWAY" in contexts:
        kinds.append("gateway")
    out = []
    for proxy_type in kinds:
        res = apply_envoyfilters(stub_bootstrap(), [envoyfilter], proxy_type=proxy_type)
        boot = res.bootstrap
        static = boot.setdefault("static_resources", {})
        clusters = static.setdefault("clusters", [])
        have = {c.get("name") for c in clusters}
        for name in sorted(_referenced_clusters(static.get("listeners")) - have):
            clusters.append(_stub_cluster(name))
        notes = [f"{ref} did not apply to a {proxy_type} stub: {why}" for ref, why in res.skipped
                 if "context" not in why]
        out.append((proxy_type, boot, notes))
    return out


def clean_envoy_message(text: str) -> str:
    """Envoy's reason without its log prefix, the temporary file name and padding."""
    lines = []
    for line in text.splitlines():
        line = re.sub(r"^\[[^\]]*\]\[\d+\]\[\w+\]\[\w+\] \[[^\]]*\] ", "", line)
        line = re.sub(r"error initializing configuration '[^']*': ", "", line)
        line = re.sub(r"\s+", " ", line).strip()
        if line:
            lines.append(line)
    return "\n".join(lines)


def check_envoyfilter_with_envoy(envoyfilter: Mapping[str, Any]) -> list[Problem]:
    """Run `envoy --mode validate` on the stub bootstrap(s) patched by `envoyfilter`."""
    from meshctl.envoy import validate_bootstrap
    from meshctl.envoyfilter import EnvoyFilterError

    name = object_name(envoyfilter)
    try:
        variants = patched_bootstraps(envoyfilter)
    except EnvoyFilterError as exc:
        return [Problem(name, "$.spec.configPatches", exc.message, "envoy", ERROR, "meshctl.envoyfilter")]
    out: list[Problem] = []
    for proxy_type, boot, notes in variants:
        check = validate_bootstrap(copy.deepcopy(boot))
        if not check.ok:
            out.append(Problem(name, "$.spec.configPatches", f"Envoy rejects it ({proxy_type}): {clean_envoy_message(check.message)}",
                               "envoy", ERROR, "envoy --mode validate"))
        out += [Problem(name, "$.spec.configPatches", n, "envoy", WARNING, "meshctl.envoyfilter") for n in notes]
    return out


def check_all(docs: Iterable[Any]) -> list[Problem]:
    out: list[Problem] = []
    for d in docs:
        if isinstance(d, Mapping) and d.get("kind") == "EnvoyFilter":
            out += check_envoyfilter_with_envoy(d)
    return out
