"""meshctl.validate: run-time CRD conversion, schema stores from a directory or a (recorded) cluster,
envoy-data-plane type checks, and no false alarms on Istio's own valid configurations."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

from meshctl.render.istio import render_istio
from meshctl.validate import Validator
from meshctl.validate.crd import convert_schema, crd_to_schemas
from meshctl.validate.envoy_types import check_value
from meshctl.validate.schemas import SchemaStore

CRDS = json.loads((Path(__file__).parent / "golden" / "render" / "cluster-crds.json").read_text())


def test_convert_schema_rules():
    s = convert_schema({"type": "object", "properties": {
        "n": {"type": "number", "nullable": True},
        "open": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        "ios": {"x-kubernetes-int-or-string": True},
        "set": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
        "bare": {"type": "object"},
        "map": {"type": "object", "additionalProperties": {"type": "string"}},
    }})
    p = s["properties"]
    assert s["additionalProperties"] is False
    assert p["n"]["type"] == ["number", "null"]
    assert "additionalProperties" not in p["open"]
    assert p["ios"]["anyOf"] == [{"type": "integer"}, {"type": "string"}]
    assert p["set"]["uniqueItems"] is True
    assert p["bare"]["additionalProperties"] is False
    assert p["map"]["additionalProperties"] == {"type": "string"}


def test_crd_to_schemas_adds_root_consts_and_object_meta():
    schemas = crd_to_schemas(CRDS["items"][0])
    assert [s["properties"]["apiVersion"]["const"] for s in schemas] == ["telemetry.istio.io/v1", "telemetry.istio.io/v1alpha1"]
    assert schemas[0]["properties"]["kind"] == {"const": "Telemetry"}
    assert schemas[0]["properties"]["metadata"]["properties"]["namespace"]["maxLength"] == 63


def _store_from_crd_yaml(tmp_path):
    (tmp_path / "crds.yaml").write_text(yaml.safe_dump_all(CRDS["items"]))
    return SchemaStore.from_dir(tmp_path)


def test_schema_dir_with_crd_yaml(tmp_path):
    store = _store_from_crd_yaml(tmp_path)
    assert store.has("telemetry.istio.io/v1", "Telemetry") and store.has("networking.istio.io/v1alpha3", "EnvoyFilter")
    t = copy.deepcopy(render_istio({"sampling": 5}).resources[0].obj)
    assert store.validate(t) == []
    t["spec"]["tracing"][0]["randomSamplingPercentage"] = None  # nullable: fine
    assert store.validate(t) == []
    t["spec"]["tracing"][0]["randomSampling"] = 5
    t["metadata"]["namespace"] = "Bad_NS"
    problems = store.validate(t)
    assert {(p.path, p.reason) for p in problems} == {
        ("$.spec.tracing[0].randomSampling", "unknown field 'randomSampling'"),
        ("$.metadata.namespace", "'Bad_NS' does not match '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'"),
    }
    assert all(p.object == "Telemetry Bad_NS/mesh-default" for p in problems)


def test_unknown_kind_is_a_warning_naming_served_versions(tmp_path):
    store = _store_from_crd_yaml(tmp_path)
    [p] = store.validate({"apiVersion": "telemetry.istio.io/v2", "kind": "Telemetry", "metadata": {"name": "x"}})
    assert p.severity == "warning" and "telemetry.istio.io/v1" in p.reason


def test_cluster_crds_through_recorded_api(tmp_path, run_cli):
    from tests.kubeapi import FakeKubeAPI, Reply

    with FakeKubeAPI() as api:
        api.route("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", Reply.json(CRDS))
        kubeconfig = api.write_kubeconfig(tmp_path)
        code, out, err = run_cli("render", "istio", "--sampling", "5", "--validate", "cluster",
                                 "--kubeconfig", kubeconfig)
        assert code == 0, err
        assert next(yaml.safe_load_all(out))["kind"] == "Telemetry"
        # The mesh config has no CRD in a cluster: said plainly, not silently passed.
        code, out, err = run_cli("render", "istio", "--validate", "cluster", "--all", "--kubeconfig", kubeconfig)
        assert code == 0 and "no schema for install.istio.io/v1alpha1 IstioOperator" in err
        assert all(m == "GET" for m, _, _ in api.requests)
        assert api.count("/apis/apiextensions.k8s.io/v1/customresourcedefinitions") == 2


def test_cluster_validation_reports_api_errors(tmp_path, run_cli):
    from tests.kubeapi import FakeKubeAPI, Reply

    with FakeKubeAPI() as api:
        api.route("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", Reply.status_error(403, "forbidden: crds"))
        code, out, err = run_cli("render", "istio", "--validate", "cluster", "--kubeconfig", api.write_kubeconfig(tmp_path))
    assert code == 3 and out == "" and "403" in err


def test_shared_schema_dir_mesh_config_places(schemas_dir):
    store = SchemaStore.from_dir(schemas_dir)
    for fmt, hint in [("iop", None), ("helm", "istiod-values"), ("configmap", None)]:
        doc = copy.deepcopy(render_istio({"meshConfigFormat": fmt}).side[0].obj)
        assert store.validate(doc, validate_as=hint) == []
    cm = render_istio({"meshConfigFormat": "configmap"}).side[0].obj
    cm["data"]["mesh"] = cm["data"]["mesh"].replace("port: 4317", "port: 0", 1)
    [p] = store.validate(cm)
    assert p.path == "$.data.mesh.extensionProviders[0].opentelemetry.port" and "minimum of 1" in p.reason


# ---- envoy-data-plane type checks -----------------------------------------------------------------

@pytest.mark.parametrize(("value", "path", "reason"), [
    ({"name": "c", "connect_timeout": 5}, "$.connect_timeout", "expected a Duration"),
    ({"name": "c", "type": "DNS"}, "$.type", "is not a value of ClusterDiscoveryType"),
    ({"name": "c", "type": "STATIC", "cluster_type": {"name": "x"}}, "$", "alternatives (oneof cluster_discovery_type)"),
    ({"name": "c", "per_connection_buffer_limit_bytes": "many"}, "$.per_connection_buffer_limit_bytes", "expected uint32"),
    ({"name": 5}, "$.name", "expected string"),
    ({"name": "c", "load_assignment": {"endpoints": {"x": 1}}}, "$.load_assignment.endpoints", "expected a list"),
    ({"name": "c", "typed_extension_protocol_options": {"x": {"@type": "type.googleapis.com/nope.v1.Thing"}}},
     "$.typed_extension_protocol_options.x['@type']", "unknown type 'nope.v1.Thing'"),
])
def test_envoy_type_errors(value, path, reason):
    [(p, r)] = check_value("envoy.config.cluster.v3.Cluster", value)
    assert p == path and reason in r


def test_envoy_types_accept_what_envoy_accepts():
    ok = {
        "name": "c", "connect_timeout": "0.25s", "dns_refresh_rate": "500ms",  # Go durations: istiod converts them
        "outlier_detection": {"consecutive_5xx": 5, "consecutive5xx": None, "interval": "10s"},
        "circuitBreakers": {"thresholds": [{"maxRequests": 10, "priority": "DEFAULT"}]},
        "metadata": {"filter_metadata": {"istio": {"anything": [1, "x"]}}},
        "typed_extension_protocol_options": {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
            "@type": "type.googleapis.com/udpa.type.v1.TypedStruct",
            "type_url": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
            "value": {"explicit_http_config": {"http2_protocol_options": {}}}}},
        "per_connection_buffer_limit_bytes": "1024",
    }
    assert check_value("envoy.config.cluster.v3.Cluster", ok) == []
    assert check_value("envoy.config.cluster.v3.Cluster", {"name": "c", "connect_timeout": "500ms"}, go_durations=False)


# ---- Istio's own valid configurations raise no errors ----------------------------------------------

def _docs(path):
    return [d for d in yaml.safe_load_all(Path(path).read_text()) if isinstance(d, dict)]


def test_istio_valid_sets_and_otel_examples_pass(oracles_dir, schemas_dir):
    v = Validator(schemas=SchemaStore.from_dir(schemas_dir), envoy_types=True)
    ist = oracles_dir / "configs/istio"
    files = [ist / "repo/pkg/config/validation/testdata/crds/telemetry-valid.yaml",
             ist / "repo/pkg/config/validation/testdata/crds/envoyfilter-valid.yaml",
             *sorted((ist / "docs").glob("otel-*.yaml")), ist / "docs/sampling.telemetry.yaml",
             ist / "docs/accesslog-telemetry-api.valid.telemetry.yaml", ist / "docs/global-ratelimit.doc.envoyfilter.yaml",
             *sorted((ist / "repo/tests/integration/telemetry/tracing/otelcollector/testdata").glob("*.yaml"))]
    n = 0
    for f in files:
        for doc in _docs(f):
            errors = [str(p) for p in v.validate([doc]) if p.severity == "error"]
            assert not errors, (f.name, errors)
            n += 1
    assert n >= 20


def test_known_bad_upstream_docs_are_flagged(oracles_dir, schemas_dir):
    v = Validator(schemas=SchemaStore.from_dir(schemas_dir))
    [doc] = _docs(oracles_dir / "configs/istio/docs/local-ratelimit.doc-listener-misplaced.envoyfilter.yaml")
    assert any(p.path == "$.spec.configPatches[0].listener" for p in v.validate([doc]))
    invalid = [d for d in _docs(oracles_dir / "configs/istio/repo/pkg/config/validation/testdata/crds/telemetry-invalid.yaml")]
    caught = sum(1 for d in invalid if v.validate([{k: x for k, x in d.items() if k != "_err"}]))
    assert caught >= 1
