"""meshctl.envoyfilter: configPatches applied to a bootstrap as istiod applies them to its xDS."""

from __future__ import annotations

import copy
import glob
from pathlib import Path

import pytest
import yaml

from meshctl.envoyfilter import EnvoyFilterError, apply_envoyfilters, apply_patches, proto_merge
from meshctl.validate.envoy_check import stub_bootstrap

ROUTER = {"name": "envoy.filters.http.router",
          "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}
CORS = {"name": "envoy.filters.http.cors",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors"}}
HCM_MATCH = {"filterChain": {"filter": {"name": "envoy.filters.network.http_connection_manager"}}}


def _listeners(boot):
    return boot["static_resources"]["listeners"]


def _http_filters(boot, i=0):
    return [f["name"] for f in _listeners(boot)[i]["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"]]


def test_proto_merge_semantics():
    dst = {"a": {"b": 1, "l": [1]}, "typedConfig": {"@type": "x", "k": 1}, "s": "old"}
    proto_merge(dst, {"a": {"c": 2, "l": [2]}, "typed_config": {"@type": "x", "j": 2}, "s": "new"})
    assert dst == {"a": {"b": 1, "l": [1, 2], "c": 2}, "typedConfig": {"@type": "x", "k": 1, "j": 2}, "s": "new"}
    proto_merge(dst, {"typed_config": {"@type": "y", "z": 1}})
    assert dst["typedConfig"] == {"@type": "y", "z": 1}  # a different Any type is replaced, not merged


def test_http_filter_insert_before_router_and_context():
    res = apply_patches(stub_bootstrap(), [{
        "applyTo": "HTTP_FILTER",
        "match": {"context": "SIDECAR_INBOUND", "listener": {"filterChain": {"filter": {
            "name": "envoy.filters.network.http_connection_manager", "subFilter": {"name": "envoy.filters.http.router"}}}}},
        "patch": {"operation": "INSERT_BEFORE", "value": CORS},
    }])
    assert _http_filters(res.bootstrap, 0) == ["envoy.filters.http.cors", "envoy.filters.http.router"]  # inbound
    assert _http_filters(res.bootstrap, 1) == ["envoy.filters.http.router"]  # outbound untouched
    assert len(res.applied) == 1


@pytest.mark.parametrize(("op", "anchor", "expected"), [
    ("INSERT_FIRST", None, ["cors", "router"]),
    ("INSERT_AFTER", "envoy.filters.http.router", ["router", "cors"]),
    ("INSERT_BEFORE", None, ["cors", "router"]),
    ("ADD", None, ["router", "cors"]),
    ("REPLACE", "envoy.filters.http.router", ["cors"]),
    ("REMOVE", "envoy.filters.http.router", []),
])
def test_http_filter_operations(op, anchor, expected):
    fc = {"filter": {"name": "envoy.filters.network.http_connection_manager"}}
    if anchor:
        fc["filter"]["subFilter"] = {"name": anchor}
    patch = {"applyTo": "HTTP_FILTER", "match": {"listener": {"filterChain": fc}}, "patch": {"operation": op}}
    if op != "REMOVE":
        patch["patch"]["value"] = CORS
    res = apply_patches(stub_bootstrap(), [patch])
    assert [n.rsplit(".", 1)[1] for n in _http_filters(res.bootstrap)] == expected


def test_network_filter_merge_keeps_existing_fields_and_appends_lists():
    res = apply_patches(stub_bootstrap(), [{
        "applyTo": "NETWORK_FILTER", "match": {"context": "ANY", "listener": HCM_MATCH},
        "patch": {"operation": "MERGE", "value": {"typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
            "access_log": [{"name": "x"}], "stat_prefix": "patched"}}},
    }])
    for ln in _listeners(res.bootstrap):
        tc = ln["filter_chains"][0]["filters"][0]["typed_config"]
        assert tc["stat_prefix"] == "patched" and tc["access_log"] == [{"name": "x"}]
        assert tc["route_config"]["virtual_hosts"]  # untouched


def test_listener_port_and_name_match():
    boot = stub_bootstrap()
    # An Istio-named listener (<ip>_<port>) matches its service port even when bound to an ephemeral
    # port (the local mesh); other listeners match their bound port.
    _listeners(boot)[1]["address"]["socket_address"]["port_value"] = 0
    merge = {"operation": "MERGE", "value": {"per_connection_buffer_limit_bytes": 1024}}
    res = apply_patches(boot, [{"applyTo": "LISTENER", "match": {"listener": {"portNumber": 8080}}, "patch": merge}])
    assert "per_connection_buffer_limit_bytes" not in _listeners(res.bootstrap)[0]
    assert _listeners(res.bootstrap)[1]["per_connection_buffer_limit_bytes"] == 1024
    _listeners(boot)[1]["name"] = "custom"
    _listeners(boot)[1]["address"]["socket_address"]["port_value"] = 9080
    res = apply_patches(boot, [{"applyTo": "LISTENER", "match": {"listener": {"portNumber": 9080}}, "patch": merge}])
    assert _listeners(res.bootstrap)[1]["per_connection_buffer_limit_bytes"] == 1024
    _listeners(boot)[1]["name"] = "0.0.0.0_8080"
    res = apply_patches(boot, [{"applyTo": "LISTENER", "match": {"listener": {"name": "virtualInbound"}},
                                "patch": {"operation": "REMOVE"}}])
    assert [ln["name"] for ln in _listeners(res.bootstrap)] == ["0.0.0.0_8080"]


def test_cluster_add_merge_remove_and_match_by_service():
    added = {"name": "outbound|4317||otel.observability.svc.cluster.local", "type": "STRICT_DNS"}
    res = apply_patches(stub_bootstrap(), [
        {"applyTo": "CLUSTER", "match": {"context": "SIDECAR_OUTBOUND"}, "patch": {"operation": "ADD", "value": added}},
        {"applyTo": "CLUSTER", "match": {"context": "GATEWAY"}, "patch": {"operation": "ADD", "value": {"name": "gw-only"}}},
        {"applyTo": "CLUSTER", "match": {"cluster": {"service": "otel.observability.svc.cluster.local", "portNumber": 4317}},
         "patch": {"operation": "MERGE", "value": {"connect_timeout": "2s"}}},
        {"applyTo": "CLUSTER", "match": {"cluster": {"service": "stub.default.svc.cluster.local"}},
         "patch": {"operation": "REMOVE"}},
    ])
    clusters = res.bootstrap["static_resources"]["clusters"]
    assert [c["name"] for c in clusters] == [added["name"]]
    assert clusters[0]["connect_timeout"] == "2s"
    assert [r.index for r, _ in res.skipped] == [1]  # the GATEWAY patch does not apply to a sidecar


def test_route_vhost_and_route_patches():
    res = apply_patches(stub_bootstrap(), [
        {"applyTo": "VIRTUAL_HOST", "match": {"context": "SIDECAR_OUTBOUND", "routeConfiguration": {"vhost": {"name": "stub"}}},
         "patch": {"operation": "MERGE", "value": {"rate_limits": [{"actions": [{"remote_address": {}}]}]}}},
        {"applyTo": "HTTP_ROUTE", "match": {"routeConfiguration": {"vhost": {"name": "stub", "route": {"name": "default"}}}},
         "patch": {"operation": "INSERT_BEFORE", "value": {"name": "health", "match": {"path": "/healthz"},
                                                           "direct_response": {"status": 200}}}},
        {"applyTo": "ROUTE_CONFIGURATION", "match": {"routeConfiguration": {"portNumber": 12345}},
         "patch": {"operation": "MERGE", "value": {"validate_clusters": False}}},
    ])
    out_rc = _listeners(res.bootstrap)[1]["filter_chains"][0]["filters"][0]["typed_config"]["route_config"]
    in_rc = _listeners(res.bootstrap)[0]["filter_chains"][0]["filters"][0]["typed_config"]["route_config"]
    assert "rate_limits" in out_rc["virtual_hosts"][0] and "rate_limits" not in in_rc["virtual_hosts"][0]
    assert [r["name"] for r in out_rc["virtual_hosts"][0]["routes"]] == ["health", "default"]
    assert [r.index for r, _ in res.skipped] == [2]


def test_bootstrap_merge_and_extension_config_skipped():
    res = apply_patches(stub_bootstrap(), [
        {"applyTo": "BOOTSTRAP", "patch": {"operation": "MERGE", "value": {"stats_config": {"use_all_default_tags": False}}}},
        {"applyTo": "EXTENSION_CONFIG", "patch": {"operation": "ADD", "value": {"name": "x"}}},
    ])
    assert res.bootstrap["stats_config"] == {"use_all_default_tags": False}
    assert "ECDS" in res.skipped[0][1]


def test_workload_selector_namespace_and_priority():
    def ef(name, ns, prio, value, labels=None):
        spec = {"priority": prio, "configPatches": [{"applyTo": "BOOTSTRAP", "patch": {"operation": "MERGE", "value": value}}]}
        if labels:
            spec["workloadSelector"] = {"labels": labels}
        return {"kind": "EnvoyFilter", "metadata": {"name": name, "namespace": ns}, "spec": spec}

    efs = [ef("late", "shop", 10, {"x": "late"}), ef("early", "shop", -5, {"x": "early"}),
           ef("other-ns", "web", 0, {"y": 1}), ef("sel", "shop", 0, {"z": 1}, {"app": "cart"})]
    res = apply_envoyfilters({}, efs, namespace="shop", labels={"app": "reviews"})
    assert res.bootstrap == {"x": "late"}
    assert {r.envoyfilter for r, _ in res.skipped} == {"web/other-ns", "shop/sel"}


def test_invalid_patches_raise_like_istiod():
    with pytest.raises(EnvoyFilterError, match="not supported for CLUSTER"):
        apply_patches({}, [{"applyTo": "CLUSTER", "patch": {"operation": "INSERT_BEFORE", "value": {}}}])
    with pytest.raises(EnvoyFilterError, match="outside `match`"):
        apply_patches({}, [{"applyTo": "HTTP_FILTER", "listener": {"portNumber": 80},
                            "patch": {"operation": "ADD", "value": {}}}])
    with pytest.raises(EnvoyFilterError, match=r"needs a patch\.value"):
        apply_patches({}, [{"applyTo": "BOOTSTRAP", "patch": {"operation": "MERGE"}}])


def test_input_is_not_modified():
    boot = stub_bootstrap()
    before = copy.deepcopy(boot)
    apply_patches(boot, [{"applyTo": "LISTENER", "patch": {"operation": "REMOVE"}}])
    assert boot == before


def _oracle_envoyfilters(oracles_dir):
    out = []
    patterns = ["configs/istio/docs/global-ratelimit.doc.envoyfilter.yaml",
                "configs/istio/repo/tests/integration/telemetry/policy/testdata/enable_envoy_*.yaml",
                "configs/istio/repo/samples/ratelimit/local-rate-limit-service.yaml"]
    for pat in patterns:
        for f in sorted(glob.glob(str(oracles_dir / pat))):
            for doc in yaml.safe_load_all(Path(f).read_text()):
                if isinstance(doc, dict) and doc.get("kind") == "EnvoyFilter":
                    out.append((f.split("configs/")[1], doc))
    return out


@pytest.mark.envoy
def test_upstream_envoyfilters_patched_into_stub_pass_real_envoy(oracles_dir, envoy_bin):
    from meshctl.validate.envoy_check import check_envoyfilter_with_envoy

    efs = _oracle_envoyfilters(oracles_dir)
    assert len(efs) >= 4
    for name, doc in efs:
        errors = [p for p in check_envoyfilter_with_envoy(doc) if p.severity == "error"]
        assert not errors, (name, [str(e) for e in errors])
