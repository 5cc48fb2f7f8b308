"""`meshctl render istio|linkerd`: golden outputs, schema and real-Envoy validation, versions, values files.

Goldens live in tests/golden/render/<scenario>.yaml (stdout of the command, YAML with its comments).
Regenerate them deliberately and review the diff before committing:

    MESHCTL_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_render_istio.py -k golden
    git diff tests/golden/render/
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import jsonschema
import pytest
import yaml

from meshctl.envoy import validate_bootstrap
from meshctl.envoyfilter import apply_envoyfilters
from meshctl.render.istio import render_istio
from meshctl.render.linkerd import render_linkerd
from meshctl.validate.envoy_types import check_envoyfilter

GOLDEN = Path(__file__).parent / "golden" / "render"

SCENARIOS = {
    "istio-mesh-wide-grpc": ["render", "istio", "--collector", "otel.observability:4317", "--sampling", "5", "--all"],
    "istio-http-headers": ["render", "istio", "--protocol", "http", "--collector", "otel-collector.observability:4318",
                           "--header", "x-api-key=s3cr3t: not yaml", "--header", "x-tenant=team a", "--timeout", "5s",
                           "--resource-detectors", "environment", "--all"],
    "istio-namespace-selector": ["render", "istio", "-n", "shop", "--selector", "app=reviews,version=v2",
                                 "--sampling", "25", "--custom-tag", "env=literal:prod",
                                 "--custom-tag", "user=header:x-user", "--custom-tag", "node=env:NODE_NAME",
                                 "--access-log", "file-json", "--all"],
    "istio-access-log-filter": ["render", "istio", "--collector", "otel.observability:4317", "--no-tracing",
                                "--access-log-filter",
                                "response.code >= 400 || xds.cluster_name == 'BlackHoleCluster'",
                                "--mesh-config-format", "configmap", "--all"],
    "istio-envoyfilter": ["render", "istio", "--mode", "envoyfilter", "-n", "shop", "--selector", "app=frontend",
                          "--collector", "otel.observability:4317", "--sampling", "10",
                          "--custom-tag", "cluster=env:ISTIO_META_CLUSTER_ID", "--custom-tag", "route=formatter:%ROUTE_NAME%",
                          "--service-name", "frontend.shop", "--access-log-filter", "response.code >= 500"],
    "istio-helm-1.26": ["render", "istio", "--istio-version", "1.26", "--mesh-config-format", "helm",
                        "--header-from-env", "authorization=OTEL_TOKEN", "--timeout", "3s", "--all"],
    "istio-route-tagger": ["render", "istio", "-n", "shop", "--collector", "otel.observability:4317",
                           "--route-tagger", "oci://ghcr.io/meshctl/route-tagger:0.1.0",
                           "--route-tagger-sha256", "a" * 64, "--all"],
    "linkerd-edge": ["render", "linkerd", "-n", "shop", "--collector", "otel-collector.observability:4317",
                     "--collector-service-account", "otel-collector", "--sampling", "10", "--all"],
    "linkerd-2.16-workload": ["render", "linkerd", "--linkerd-version", "2.16", "-n", "shop",
                              "--workload", "deployment/web", "--access-log", "apache", "--all"],
}


def _render(run_cli, args, *extra):
    code, out, err = run_cli(*args, *extra)
    assert code == 0, err
    return out, err


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_golden(run_cli, scenario):
    out, _ = _render(run_cli, SCENARIOS[scenario], "--no-validate")
    path = GOLDEN / f"{scenario}.yaml"
    if os.environ.get("MESHCTL_UPDATE_GOLDEN"):
        path.write_text(out)
    assert path.exists(), f"missing golden {path}: run with MESHCTL_UPDATE_GOLDEN=1 and review it"
    assert out == path.read_text(), f"{scenario} differs from {path} (regenerate deliberately, see module docstring)"


# ---- an independent schema check: the shared schemas, the README's recipe, nothing of meshctl ----

def _shared_validator(schemas_dir):
    idx = {(e.get("apiVersion"), e.get("kind")): e["file"] for e in json.loads((schemas_dir / "index.json").read_text())}
    mesh = json.loads((schemas_dir / "istio/meshconfig.v1alpha1.json").read_text())

    def check(doc):
        if doc.get("kind") == "ConfigMap":
            jsonschema.Draft202012Validator(mesh).validate(yaml.safe_load(doc["data"]["mesh"]))
        elif "apiVersion" not in doc and "meshConfig" in doc:  # istiod Helm values
            jsonschema.Draft202012Validator(mesh).validate(doc["meshConfig"])
        elif (doc.get("apiVersion"), doc.get("kind")) in idx:
            schema = json.loads((schemas_dir / idx[(doc["apiVersion"], doc["kind"])]).read_text())
            jsonschema.Draft202012Validator(schema).validate(doc)
        else:
            return False
        return True

    return check


@pytest.mark.parametrize("scenario", sorted(s for s in SCENARIOS if s.startswith("istio")))
def test_every_rendered_istio_document_validates_against_shared_schemas(run_cli, schemas_dir, scenario):
    out, _ = _render(run_cli, SCENARIOS[scenario], "--no-validate")
    check = _shared_validator(schemas_dir)
    docs = list(yaml.safe_load_all(out))
    assert docs and all(check(d) for d in docs), [d.get("kind") for d in docs]


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_builtin_validation_passes_with_shared_schemas(run_cli, schemas_dir, scenario):
    checks = "schemas,types,envoy" if scenario == "istio-envoyfilter" else "schemas,types"
    _, err = _render(run_cli, SCENARIOS[scenario], "--validate", checks, "--schemas", str(schemas_dir))
    assert "error:" not in err and "warning:" not in err, err


def test_done_when_command_prints_kubectl_ready_yaml(run_cli, schemas_dir):
    out, err = _render(run_cli, ["render", "istio", "--collector", "otel.observability:4317", "--sampling", "5"])
    docs = list(yaml.safe_load_all(out))
    assert [d["kind"] for d in docs] == ["Telemetry"]  # only cluster resources on stdout
    assert _shared_validator(schemas_dir)(docs[0])
    t = docs[0]
    assert t["apiVersion"] == "telemetry.istio.io/v1" and t["metadata"]["namespace"] == "istio-system"
    assert t["spec"]["tracing"][0] == {"providers": [{"name": "otel"}], "randomSamplingPercentage": 5.0}
    assert "--mesh-config-out" in err and "otel.observability.svc.cluster.local" in err


def test_mesh_config_out_file_and_stderr_names_the_command(run_cli, tmp_path):
    for fmt, cmd in [("iop", "istioctl install"), ("helm", "helm upgrade istiod"), ("configmap", "kubectl apply -f")]:
        f = tmp_path / f"mesh-{fmt}.yaml"
        out, err = _render(run_cli, ["render", "istio", "--mesh-config-format", fmt, "--mesh-config-out", str(f),
                                     "--no-validate"])
        assert cmd in err and str(f) in err
        side = yaml.safe_load(f.read_text())
        assert all(d["kind"] == "Telemetry" for d in yaml.safe_load_all(out))
        mesh = (side.get("spec", {}).get("meshConfig") or side.get("meshConfig")
                or yaml.safe_load(side.get("data", {}).get("mesh", "{}")))
        assert [p["name"] for p in mesh["extensionProviders"]] == ["otel", "otel-als"]


def test_json_output_is_a_v1_list(run_cli):
    out, _ = _render(run_cli, ["render", "istio", "-o", "json", "--all", "--no-validate"])
    doc = json.loads(out)
    assert doc["apiVersion"] == "v1" and doc["kind"] == "List"
    assert [i["kind"] for i in doc["items"]] == ["Telemetry", "IstioOperator"]


def test_output_dir_writes_one_file_per_document(run_cli, tmp_path):
    _, err = _render(run_cli, ["render", "istio", "--mode", "envoyfilter", "--output-dir", str(tmp_path), "--no-validate"])
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["01-envoyfilter-mesh-otel-tracing.yaml", "02-envoyfilter-mesh-otel-accesslog.yaml"]
    assert "wrote 2 file(s)" in err
    assert yaml.safe_load((tmp_path / files[0]).read_text())["kind"] == "EnvoyFilter"


# ---- real Envoy ------------------------------------------------------------------------------------

MINIMAL_BOOTSTRAP = {
    "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
    "static_resources": {
        "listeners": [{
            "name": "0.0.0.0_8080", "traffic_direction": "OUTBOUND",
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
            "filter_chains": [{"filters": [{
                "name": "envoy.filters.network.http_connection_manager",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                    "stat_prefix": "outbound",
                    "route_config": {"virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [
                        {"match": {"prefix": "/"}, "route": {"cluster": "backend"}}]}]},
                    "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}],
                },
            }]}],
        }],
        "clusters": [{"name": "backend", "type": "STATIC", "connect_timeout": "1s", "load_assignment": {
            "cluster_name": "backend", "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {
                "socket_address": {"address": "127.0.0.1", "port_value": 9}}}}]}]}}],
    },
}

ENVOYFILTER_VALUES = [
    {"mode": "envoyfilter", "sampling": 5},
    {"mode": "envoyfilter", "protocol": "http", "collector": "otel.obs:4318", "headers": {"x-k": "v"},
     "accessLog": "file-json", "accessLogFilter": "response.code >= 400", "maxTagLength": 128},
    {"mode": "envoyfilter", "accessLog": "file-text", "resourceDetectors": ["environment"], "serviceName": "svc",
     "customTags": {"a": {"literal": "x\nkind: Secret"}, "b": {"header": {"name": "x-u", "defaultValue": "-"}},
                    "c": {"environment": "POD_NAME"}, "d": {"formatter": "%REQ(:PATH)%"}}},
    {"mode": "envoyfilter", "collectorCluster": "backend", "timeout": "2s", "headers": {"authorization": "Bearer x"}},
]


@pytest.mark.envoy
@pytest.mark.parametrize("values", ENVOYFILTER_VALUES, ids=range(len(ENVOYFILTER_VALUES)))
def test_every_envoyfilter_patch_passes_real_envoy(envoy_bin, values):
    result = render_istio(values)
    efs = [r.obj for r in result.resources]
    assert efs and all(e["kind"] == "EnvoyFilter" for e in efs)
    for ef in efs:
        assert check_envoyfilter(ef) == []
    applied = apply_envoyfilters(MINIMAL_BOOTSTRAP, efs, proxy_type="sidecar")
    n_patches = sum(len(e["spec"]["configPatches"]) for e in efs)
    assert len(applied.applied) == n_patches - len(applied.skipped)
    assert all("GATEWAY" in why for _, why in applied.skipped)  # only the gateway CLUSTER ADDs
    hcm = applied.bootstrap["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    assert hcm["tracing"]["provider"]["name"] == "envoy.tracers.opentelemetry"
    assert len(hcm["access_log"]) == 1
    check = validate_bootstrap(applied.bootstrap)
    assert check.ok, check.message
    gateway = apply_envoyfilters(MINIMAL_BOOTSTRAP, efs, proxy_type="gateway")
    assert validate_bootstrap(gateway.bootstrap).ok


@pytest.mark.envoy
def test_misspelled_field_is_rejected_by_envoy_data_plane_and_envoy(envoy_bin):
    ef = copy.deepcopy(render_istio({"mode": "envoyfilter", "accessLog": "off"}).resources[0].obj)
    patch = ef["spec"]["configPatches"][2]["patch"]["value"]["typed_config"]["tracing"]["provider"]["typed_config"]
    patch["grpc_servce"] = patch.pop("grpc_service")
    problems = check_envoyfilter(ef)
    assert [p.path for p in problems] == [
        "$.spec.configPatches[2].patch.value.typed_config.tracing.provider.typed_config.grpc_servce"]
    assert "unknown field 'grpc_servce' in envoy.config.trace.v3.OpenTelemetryConfig" in problems[0].reason
    check = validate_bootstrap(apply_envoyfilters(MINIMAL_BOOTSTRAP, [ef]).bootstrap)
    assert not check.ok and "grpc_servce" in check.message


@pytest.mark.envoy
def test_go_style_durations_are_accepted_like_istiod(run_cli, tmp_path, envoy_bin):
    # istiod decodes patch values with legacy jsonpb (Go durations); the envoy check converts them first.
    values = tmp_path / "v.yaml"
    values.write_text("mode: envoyfilter\ntimeout: 1m30s\naccessLog: 'off'\n")
    code, out, err = run_cli("render", "istio", "-f", str(values), "--validate", "types,envoy")
    assert code == 0 and "timeout: 1m30s" in out, err


def test_misspelled_field_in_a_patch_fails_the_command(run_cli, tmp_path, monkeypatch):
    import meshctl.render.istio as istio_mod

    real = istio_mod.render_documents

    def typo(template, ctx):
        docs = real(template, ctx)
        if template.endswith("envoyfilter-tracing.yaml.j2"):
            docs[0]["spec"]["configPatches"][-1]["patch"]["value"]["typed_config"]["tracing"]["random_samplng"] = {}
        return docs

    monkeypatch.setattr(istio_mod, "render_documents", typo)
    code, out, err = run_cli("render", "istio", "--mode", "envoyfilter", "--validate", "types")
    assert code == 1 and out == ""
    assert "unknown field 'random_samplng'" in err and "$.spec.configPatches[2].patch.value.typed_config.tracing" in err


# ---- values files, errors and versions -------------------------------------------------------------

def test_values_file_errors_name_file_line_key_and_allowed_values(run_cli, tmp_path):
    f = tmp_path / "values.yaml"
    f.write_text("collector: otel.observability:4317\naccessLog: otlpp\n")
    code, out, err = run_cli("render", "istio", "-f", str(f))
    assert code == 3 and out == ""
    assert f"{f}:2: accessLog:" in err and "allowed values: otlp, file-json, file-text, off" in err
    f.write_text("sampling: 150\n")
    code, _, err = run_cli("render", "istio", "-f", str(f))
    assert code == 3 and f"{f}:1: sampling:" in err and "0 to 100" in err
    f.write_text("samplng: 5\n")
    code, _, err = run_cli("render", "istio", "-f", str(f))
    assert code == 3 and "unknown key 'samplng'" in err and "sampling" in err


def test_values_file_and_cli_precedence(run_cli, tmp_path):
    f = tmp_path / "values.yaml"
    f.write_text("collector: a.b:4317\nsampling: 1\ncustomTags:\n  team: {literal: core}\n")
    out, _ = _render(run_cli, ["render", "istio", "-f", str(f), "--sampling", "7", "--custom-tag", "env=literal:x",
                               "--no-validate"])
    t = next(yaml.safe_load_all(out))
    assert t["spec"]["tracing"][0]["randomSamplingPercentage"] == 7.0
    assert t["spec"]["tracing"][0]["customTags"] == {"team": {"literal": {"value": "core"}}, "env": {"literal": {"value": "x"}}}


@pytest.mark.parametrize(("args", "message"), [
    (["--sampling", "101"], "sampling (--sampling): 101.0 is out of range"),
    (["--collector", "otel:4317"], "bare service name is ambiguous"),
    (["--collector", "otel.obs:99999"], "port must be 1..65535"),
    (["--selector", "app=x"], "--selector needs --namespace"),
    (["--istio-version", "1.21"], "allowed values: 1.24, 1.25"),
    (["--istio-version", "1.28", "--custom-tag", "r=formatter:%ROUTE_NAME%"], "formatter tags need Istio >= 1.29"),
    (["--istio-version", "1.25", "--header-from-env", "a=B"], "headersFromEnv needs Istio >= 1.26"),
    (["--protocol", "http", "--collector", "o.obs:4319"], "OTLP/gRPC only"),
    (["--no-tracing", "--access-log", "off"], "nothing to render"),
])
def test_option_errors(run_cli, args, message):
    code, out, err = run_cli("render", "istio", *args)
    assert code == 3 and out == "" and message in err, err


def test_collector_forms():
    def svc(c):
        mesh = render_istio({"collector": c}).side[0].obj["spec"]["meshConfig"]
        return mesh["extensionProviders"][0]["opentelemetry"]["service"]

    assert svc("otel.observability:4317") == "otel.observability.svc.cluster.local"
    assert svc("otel.observability.svc:4317") == "otel.observability.svc.cluster.local"
    assert svc("observability/otel-collector.observability.svc.cluster.local:4317") == \
        "otel-collector.observability.svc.cluster.local"
    assert svc("api.honeycomb.io:443") == "api.honeycomb.io"


def test_http_always_gets_path_and_timeout():
    mesh = render_istio({"protocol": "http"}).side[0].obj["spec"]["meshConfig"]
    otel = mesh["extensionProviders"][0]["opentelemetry"]
    assert otel["port"] == 4318 and otel["http"] == {"path": "/v1/traces", "timeout": "10s"}
    assert mesh["extensionProviders"][1]["envoyOtelAls"]["port"] == 4317  # the ALS is OTLP/gRPC only


@pytest.mark.parametrize("version", ["1.24", "1.25", "1.26", "1.27", "1.28", "1.29", "1.30"])
def test_versions_render_valid_config(version, schemas_dir):
    result = render_istio({"istioVersion": version, "sampling": 3})
    check = _shared_validator(schemas_dir)
    assert result.resources[0].obj["apiVersion"] == "telemetry.istio.io/v1"
    assert all(check(r.obj) for r in result.resources + result.side)
    labels = result.side[0].obj["spec"]["meshConfig"]["extensionProviders"][1]["envoyOtelAls"]["logFormat"]["labels"]
    assert labels["upstream_cluster"] == "%UPSTREAM_CLUSTER_RAW%"


def test_namespace_scope_leaves_default_providers_alone():
    result = render_istio({"namespace": "shop"})
    assert "defaultProviders" not in result.side[0].obj["spec"]["meshConfig"]
    assert result.resources[0].obj["metadata"] == {"name": "namespace-default", "namespace": "shop",
                                                   "labels": {"app.kubernetes.io/managed-by": "meshctl"}}


# ---- shapes of the upstream OTel examples -------------------------------------------------------------

def _keys(obj, prefix=""):
    out = set()
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.add(prefix + k)
            out |= _keys(v, prefix + k + ".")
    elif isinstance(obj, list):
        for v in obj:
            out |= _keys(v, prefix)
    return out


def test_rendered_providers_have_the_shapes_of_istios_own_examples(oracles_dir):
    ist = oracles_dir / "configs/istio"
    upstream_otel, upstream_als = set(), set()
    for f in ["docs/otel-tracing-grpc.iop.yaml", "docs/otel-tracing-http.iop.yaml", "docs/otel-accesslog-defaultproviders.iop.yaml",
              "repo/samples/open-telemetry/loki/iop.yaml"]:
        for p in yaml.safe_load(Path(ist / f).read_text())["spec"]["meshConfig"]["extensionProviders"]:
            upstream_otel |= _keys(p.get("opentelemetry", {}))
            upstream_als |= _keys(p.get("envoyOtelAls", {}))
    extracted = yaml.safe_load(Path(ist / "extracted/otelcollector-controlplane-values.yaml").read_text())
    for p in extracted["meshConfig"]["extensionProviders"]:
        upstream_otel |= _keys(p.get("opentelemetry", {}))
    ours_otel, ours_als = set(), set()
    for values in [{"protocol": "http", "headers": {"a": "b"}}, {"timeout": "3s", "headers": {"a": "b"}},
                   {"resourceDetectors": ["environment", "dynatrace"]}]:
        for p in render_istio(values).side[0].obj["spec"]["meshConfig"]["extensionProviders"]:
            ours_otel |= _keys(p.get("opentelemetry", {}))
            ours_als |= _keys(p.get("envoyOtelAls", {}))
    # camelCase vs the e2e test's snake_case resource_detectors: both are accepted by istiod (jsonpb)
    upstream_otel = {k.replace("resource_detectors", "resourceDetectors") for k in upstream_otel}
    assert ours_otel <= upstream_otel, ours_otel - upstream_otel
    assert ours_als - {"logFormat.labels." + k for k in ("start_time",)} <= upstream_als | {
        k for k in ours_als if k.startswith("logFormat.labels.")}
    tel = yaml.safe_load(Path(ist / "docs/otel-tracing.telemetry.yaml").read_text())
    ours = render_istio({"sampling": 100, "customTags": {"my-attribute": {"literal": "default-value"}},
                         "providerName": "otel-tracing", "accessLog": "off"}).resources[0].obj
    assert ours["spec"]["tracing"] == tel["spec"]["tracing"]


# ---- Linkerd ------------------------------------------------------------------------------------------

def test_linkerd_values_match_upstream_tracing_values(oracles_dir):
    ld = oracles_dir / "configs/linkerd"
    cases = [
        ("repo/extracted/install_tracing.input-values.yaml", {"collector": "tracing.foo:4317", "collectorServiceAccount": "default"}),
        ("website-2-edge/distributed-tracing.L100.yaml", {"collector": "jaeger-collector.jaeger-system:4317",
                                                          "collectorServiceAccount": "jaeger"}),
        ("website-2-edge/jaeger-extension-migration.L54.yaml", {"collector": "collector.linkerd-jaeger:4317"}),
        ("repo/test/integration/tracing/testdata/tracing-values.yaml",
         {"collector": "otel-collector-opentelemetry-collector.tracing:4317",
          "collectorServiceAccount": "otel-collector-opentelemetry-collector"}),
    ]
    for f, values in cases:
        want = {k: v for k, v in yaml.safe_load(Path(ld / f).read_text()).items()}
        got = render_linkerd(values).side[0].obj
        assert got == want, f


def test_linkerd_legacy_values_keys_exist_in_the_jaeger_chart(schemas_dir):
    from meshctl.validate.schemas import SchemaStore

    store = SchemaStore.from_dir(schemas_dir)
    result = render_linkerd({"linkerdVersion": "2.18", "namespace": "shop"})
    side = result.side[0]
    assert side.validate_as == "linkerd-jaeger-values"
    assert store.validate(side.obj, validate_as=side.validate_as) == []
    bad = copy.deepcopy(side.obj)
    bad["webhook"]["collectorSvcAcount"] = "x"
    assert [p.path for p in store.validate(bad, validate_as=side.validate_as)] == ["$.webhook.collectorSvcAcount"]
    ns = result.resources[0].obj["metadata"]["annotations"]
    assert ns == {"config.linkerd.io/access-log": "json",
                  "config.linkerd.io/trace-collector": "opentelemetry-collector.observability:4317",
                  "config.alpha.linkerd.io/trace-collector-service-account": "opentelemetry-collector"}


def test_linkerd_says_plainly_what_it_cannot_do(run_cli):
    out, err = _render(run_cli, ["render", "linkerd", "--sampling", "5", "--custom-tag", "a=literal:b",
                                 "--protocol", "http", "--access-log-filter", "x", "--all", "--no-validate"])
    for phrase in ["NOT SUPPORTED BY LINKERD: --sampling", "NOT SUPPORTED BY LINKERD: --custom-tag",
                   "NOT SUPPORTED BY LINKERD: --protocol http", "NOT SUPPORTED BY LINKERD: --access-log-filter"]:
        assert phrase in out
    assert "linkerd upgrade --set proxy.tracing.enabled=true" in out
    assert "-n NAMESPACE" in err  # access logs need a namespace or workload


@pytest.mark.parametrize("version", ["edge", "2.16"])
def test_linkerd_set_flags_in_the_comment_are_one_shell_word_each(run_cli, version):
    import shlex

    out, err = _render(run_cli, ["render", "linkerd", "--linkerd-version", version, "--trace-service-name", "my proxy",
                                 "--all", "--no-validate"])
    line = next(x for x in out.splitlines() if x.startswith("# or: linkerd "))
    argv = shlex.split(line.removeprefix("# or: ").partition(" | ")[0])
    key = "proxy.tracing.traceServiceName" if version == "edge" else "webhook.collectorTraceSvcName"
    assert argv[argv.index(f"{key}=my proxy") - 1] == "--set"
    _, err = _render(run_cli, ["render", "linkerd", "--linkerd-version", version, "--no-validate"])
    assert "--values-out FILE" in err and "--mesh-config-out" not in err  # the option render linkerd has


@pytest.mark.parametrize(("version", "legacy"), [("edge", False), ("edge-25.9.4", True), ("edge-26.8.3", False),
                                                  ("2.14", True), ("stable-2.18.1", True), ("2.19", False)])
def test_linkerd_version_selects_jaeger_extension(version, legacy):
    side = render_linkerd({"linkerdVersion": version}).side[0]
    assert (side.validate_as == "linkerd-jaeger-values") is legacy


@pytest.mark.parametrize("argv", [["render", "--help"], ["render", "istio", "--help"], ["render", "linkerd", "--help"]])
def test_render_help_imports_nothing_heavy(argv):
    import subprocess
    import sys

    heavy = ["jinja2", "yaml", "jsonschema", "envoy_data_plane", "kubernetes", "rich", "pandas", "pyarrow"]
    code = (
        "import sys\nfrom meshctl.cli import main\n"
        f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
        f"print('HEAVY=' + ','.join(m for m in {heavy!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "Usage:" in out and out.splitlines()[-1] == "HEAVY="


# ---- the injection rule end to end: free-text options come out as exactly one scalar ------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from meshctl.output import dump_yaml_stream  # noqa: E402


def _strings(obj):
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield k
            yield from _strings(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _strings(v)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(min_size=1).filter(lambda s: s.strip() == s and s), st.sampled_from(["telemetry", "envoyfilter"]))
def test_free_text_values_are_single_scalars(text, mode):
    values = {"mode": mode, "customTags": {"t": {"literal": text}}, "headers": {"x-h": text}, "accessLogFilter": text,
              "serviceName": text, "accessLog": "otlp"}
    result = render_istio(values)
    docs = [r.obj for r in result.resources + result.side]
    printed = dump_yaml_stream(docs, [r.comment_text() for r in result.resources + result.side])
    parsed = list(yaml.safe_load_all(printed))
    assert parsed == docs and len(parsed) == 2
    found = [s for s in _strings(parsed) if s == text]
    expected = 3 if mode == "telemetry" else 4  # tag, header, filter (+ service_name in envoyfilter mode)
    assert len(found) >= expected
    for evil in ("x\nkind: Secret", "{{ 7*7 }}"):
        assert evil not in printed or text.find(evil) >= 0


@pytest.mark.parametrize("evil", ["x\nkind: Secret", "{{ 7*7 }}", "a\n---\napiVersion: v1\nkind: Secret", "'; rm -rf /"])
def test_cli_values_cannot_inject(run_cli, evil):
    out, _ = _render(run_cli, ["render", "istio", "--custom-tag", f"t=literal:{evil}", "--header", f"x-h={evil}",
                               "--access-log-filter", evil, "--all", "--no-validate"])
    docs = list(yaml.safe_load_all(out))
    assert [d["kind"] for d in docs] == ["Telemetry", "IstioOperator"]
    assert docs[0]["spec"]["tracing"][0]["customTags"]["t"]["literal"]["value"] == evil
    assert docs[0]["spec"]["accessLogging"][0]["filter"]["expression"] == evil
    otel = docs[1]["spec"]["meshConfig"]["extensionProviders"][0]["opentelemetry"]
    assert otel["grpc"]["initialMetadata"] == [{"name": "x-h", "value": evil}]
    assert "49" not in out


def test_linkerd_values_out_writes_values_and_patch_separately(run_cli, tmp_path):
    f = tmp_path / "tracing.yaml"
    _, err = _render(run_cli, ["render", "linkerd", "-n", "shop", "--workload", "deploy/web", "--values-out", str(f),
                               "--no-validate"])
    assert yaml.safe_load(f.read_text())["proxy"]["tracing"]["enabled"] is True
    patch = yaml.safe_load((tmp_path / "web-annotations-patch.yaml").read_text())
    assert patch["spec"]["template"]["metadata"]["annotations"] == {"config.linkerd.io/access-log": "json"}
    assert "helm upgrade linkerd-control-plane" in err and "kubectl -n shop patch deploy/web" in err


def test_invalid_output_is_refused_with_each_problem_and_nothing_written(run_cli, tmp_path):
    """A schema the output breaks (here a CRD allowing at most 1% sampling): exit 1, stdout empty, the
    problem named by object and JSON path, and the count."""
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "telemetries.telemetry.istio.io"},
           "spec": {"group": "telemetry.istio.io", "names": {"kind": "Telemetry", "plural": "telemetries"},
                    "scope": "Namespaced",
                    "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                        "type": "object", "properties": {"spec": {
                            "type": "object", "x-kubernetes-preserve-unknown-fields": True, "properties": {"tracing": {
                            "type": "array", "items": {"type": "object", "properties": {
                                "randomSamplingPercentage": {"type": "number", "maximum": 1}},
                                "x-kubernetes-preserve-unknown-fields": True}}}}}}}}]}}
    (tmp_path / "telemetry-crd.yaml").write_text(yaml.safe_dump(crd))
    code, out, err = run_cli("render", "istio", "--sampling", "5", "--validate", "schemas", "--schemas", str(tmp_path))
    assert code == 1 and out == "", err
    assert "Telemetry istio-system/mesh-default: $.spec.tracing[0].randomSamplingPercentage: 5.0 is greater" in err
    assert "1 validation error; nothing written" in err
