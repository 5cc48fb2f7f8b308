"""meshctl lint: table-driven rule tests (fixture -> the codes it must produce), locations, CLI.

Every case lists the (code, resource) pairs its fixture must produce and, with `exact`, that it
produces nothing else at Warning or Error level. Fixtures live in tests/fixtures/lint/ (written for
these tests; the upstream oracles are exercised in test_lint_oracles.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from meshctl.lint import lint, lint_text
from meshctl.lint.messages import CATALOG, ERROR, INFO, WARNING

FIXTURES = Path(__file__).parent / "fixtures" / "lint"

CASES = [
    # fixture, expected (code, resource) pairs, exact (no other Warning/Error)
    ("clean.yaml", [], True),
    ("provider-refs.yaml", [
        ("MSH0101", "Telemetry istio-system/mesh-default"),
        ("MSH0102", "IstioOperator provider-refs.yaml#1"),
        ("MSH0104", "IstioOperator provider-refs.yaml#1"),
        ("MSH0105", "Telemetry shop/wrong-kinds"),
        ("MSH0103", "Telemetry shop/wrong-kinds"),
    ], True),
    ("provider-definitions.yaml", [
        ("MSH0106", "IstioOperator provider-definitions.yaml#1"),
        ("MSH0113", "IstioOperator provider-definitions.yaml#1"),
        ("MSH0107", "IstioOperator provider-definitions.yaml#1"),
        ("MSH0112", "IstioOperator provider-definitions.yaml#1"),
        ("MSH0111", "IstioOperator provider-definitions.yaml#1"),
        ("MSH0114", "IstioOperator provider-definitions.yaml#1"),
        ("MSH0116", "IstioOperator provider-definitions.yaml#1"),
        ("MSH0103", "Telemetry istio-system/uses-legacy"),
        ("MSH0115", "Telemetry shop/uses-sampler"),
    ], True),
    ("collector-service.yaml", [
        ("MSH0108", "IstioOperator collector-service.yaml#1"),
        ("MSH0109", "IstioOperator collector-service.yaml#1"),
        ("MSH0117", "IstioOperator collector-service.yaml#1"),
    ], True),
    ("collector-short-name.yaml", [("MSH0110", "istiod Helm values collector-short-name.yaml#1")], True),
    ("sampling.yaml", [
        ("MSH0201", "ConfigMap istio-system/istio"),
        ("MSH0203", "IstioOperator control-plane"),
        ("MSH0202", "IstioOperator control-plane"),
        ("MSH0202", "Telemetry shop/too-much"),
        ("MSH0201", "Deployment shop/checkout"),  # the proxy.istio.io/config annotation
    ], True),
    ("negative-sampling.yaml", [("MSH0202", "istiod Helm values negative-sampling.yaml#1")], True),
    ("telemetry-scope.yaml", [
        ("MSH0301", "Telemetry istio-system/mesh-default"),
        ("MSH0301", "Telemetry istio-system/mesh-logging"),
        ("MSH0302", "Telemetry shop/shop-a"),
        ("MSH0302", "Telemetry shop/shop-b"),
    ], True),
    ("telemetry-entries.yaml", [
        ("MSH0303", "Telemetry shop/web-logs"),
        ("MSH0303", "Telemetry shop/api-tracing"),
    ], True),
    ("telemetry-fields.yaml", [
        ("MSH0304", "Telemetry shop/tags-and-filters"),
        ("MSH0305", "Telemetry shop/tags-and-filters"),
        ("MSH0306", "Telemetry shop/selects-nothing"),
    ], True),
    ("format-operators.yaml", [
        ("MSH0401", "ConfigMap istio-system/istio"),
        ("MSH0402", "ConfigMap istio-system/istio"),
        ("MSH0401", "EnvoyFilter istio-system/hcm-access-log"),
    ], True),
    ("envoyfilter.yaml", [
        ("MSH0501", "EnvoyFilter istio-system/misplaced"),
        ("MSH0502", "EnvoyFilter shop/names"),
        ("MSH0503", "EnvoyFilter shop/names"),
        ("MSH0504", "EnvoyFilter shop/names"),
        ("MSH0505", "EnvoyFilter shop/operations"),
        ("MSH0506", "EnvoyFilter shop/operations"),
        ("MSH0507", "EnvoyFilter istio-system/ancient"),
    ], True),
    ("deprecated.yaml", [
        ("MSH0601", "DestinationRule shop/reviews"),
        ("MSH0601", "VirtualService shop/ratings"),
        ("MSH0602", "ServiceRole shop/old"),
    ], True),
    ("linkerd.yaml", [
        ("MSH0701", "values linkerd.yaml#1"),
        ("MSH0703", "values linkerd.yaml#2"),
        ("MSH0706", "values linkerd.yaml#2"),  # and the Service has no port 4318
        ("MSH0702", "values linkerd.yaml#3"),
        ("MSH0706", "values linkerd.yaml#4"),
        ("MSH0705", "Deployment shop/web"),
        ("MSH0707", "values linkerd.yaml#8"),
        ("MSH0704", "values linkerd.yaml#5"),
    ], True),
    ("duplicate-objects.yaml", [("MSH0003", "Telemetry shop/web")], True),
    ("syntax.yaml", [
        ("MSH0001", "syntax.yaml#1"),
        ("MSH0201", "istiod Helm values syntax.yaml#2"),  # the document after a broken one is still checked
        ("MSH0001", "syntax.yaml#3"),
    ], True),
    ("duplicate-keys.yaml", [("MSH0002", "Telemetry shop/twice")], True),
    ("placeholders.yaml", [
        ("MSH0006", "IstioOperator placeholders.yaml#1"),
        ("MSH0006", "Telemetry istio-system/tags"),
        ("MSH0107", "IstioOperator placeholders.yaml#1"),
    ], True),
    ("configmap-unreadable.yaml", [("MSH0005", "ConfigMap istio-system/istio")], True),
]


def _pairs(findings, levels=(ERROR, WARNING, INFO)):
    return {(f.code, f.resource) for f in findings if f.severity in levels}


@pytest.mark.parametrize("fixture, expected, exact", CASES, ids=[c[0] for c in CASES])
def test_fixture_codes(fixture, expected, exact):
    result = lint([str(FIXTURES / fixture)])
    got = _pairs(result.findings)
    missing = set(expected) - got
    assert not missing, f"missing {sorted(missing)}; got {sorted(got)}"
    if exact:
        extra = _pairs(result.findings, (ERROR, WARNING)) - set(expected)
        assert not extra, f"unexpected {sorted(extra)}"
    for f in result.findings:
        assert f.code in CATALOG and f.severity == CATALOG[f.code].severity and f.name == CATALOG[f.code].name
        assert f.file and f.file.endswith(fixture) and f.line, f


def _find(result, code, resource=None, path=None):
    hits = [f for f in result.findings if f.code == code and (resource is None or f.resource == resource)
            and (path is None or f.path == path)]
    assert hits, f"no {code} {resource or ''} {path or ''} in {[(f.code, f.resource, f.path) for f in result.findings]}"
    return hits[0]


def test_lines_point_at_the_field():
    r = lint([str(FIXTURES / "provider-refs.yaml")])
    f = _find(r, "MSH0101")
    assert (f.line, f.path) == (26, "$.spec.tracing[0].providers[0].name")
    assert "'otel-tracing'" in f.message and "defined: envoy, otel, otel-als, prometheus, stackdriver" in f.message
    # names match case-insensitively, as in istiod: OTEL-ALS is otel-als
    assert not [x for x in r.findings if "OTEL-ALS" in x.message]


def test_lines_inside_the_istio_configmap_mesh_string():
    r = lint([str(FIXTURES / "sampling.yaml")])
    f = _find(r, "MSH0201")
    assert f.line == 10 and f.path == "$.data.mesh.defaultConfig.tracing.sampling"
    assert "becomes" not in f.message and "1%" in f.message


def test_proxy_config_annotation_sampling_codes_and_lines():
    pod = ("apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: shop\n  annotations:\n"
           "    proxy.istio.io/config: |\n      tracing:\n        sampling: {value}\n")
    text = "---\n".join(pod.format(name=n, value=v) for n, v in (("neg", -1), ("zero", 0), ("ok", 5), ("big", 101)))
    got = [(f.code, f.resource, f.line) for f in lint_text([("pods.yaml", text)]).findings]
    assert got == [("MSH0202", "Pod shop/neg", 9), ("MSH0203", "Pod shop/zero", 19), ("MSH0201", "Pod shop/big", 39)]


def test_syntax_errors_name_file_and_line():
    r = lint([str(FIXTURES / "syntax.yaml")])
    first, third = [f for f in r.findings if f.code == "MSH0001"]
    assert first.line == 11 and "column 52" in first.message  # the nested double quote
    assert third.line == 21  # the tab
    assert r.documents == 3


def test_duplicate_key_names_both_lines():
    f = _find(lint([str(FIXTURES / "duplicate-keys.yaml")]), "MSH0002")
    assert f.line == 9 and "first at line 8" in f.message


def test_dynatrace_sampler_without_http():
    r = lint([str(FIXTURES / "provider-definitions.yaml")])
    f = _find(r, "MSH0116")
    assert f.path.endswith(".opentelemetry.dynatrace_sampler")


def test_collector_suggests_the_full_hostname():
    r = lint([str(FIXTURES / "collector-service.yaml")])
    short = next(f for f in r.findings if f.code == "MSH0108" and "'short'" in f.message)
    assert "did you mean 'otel-collector.observability.svc.cluster.local'" in short.message
    port = _find(r, "MSH0109")
    assert "only exposes 4317" in port.message
    # an external host with a ServiceEntry is fine; one without is reported as not checked (Info)
    assert not [f for f in r.findings if "external-with-entry" in f.message]
    assert any(f.code == "MSH0117" and "'saas'" in f.message for f in r.findings)


def test_provider_refs_without_mesh_config_are_info_only():
    text = (FIXTURES / "provider-refs.yaml").read_text().split("---", 1)[1]
    r = lint_text([("telemetry.yaml", text)])
    assert {f.code for f in r.findings if f.severity != INFO} == {"MSH0105", "MSH0103"}  # built-in 'envoy' is known
    info = _find(r, "MSH0008", "Telemetry istio-system/mesh-default")
    assert "otel-tracing" in info.message and "--mesh-config" in info.message


def test_mesh_config_given_separately():
    tele = (FIXTURES / "telemetry-entries.yaml").read_text().split("---", 1)[1]
    mesh = (FIXTURES / "mesh-only-default-providers.yaml").read_text()
    r = lint_text([("t.yaml", tele)], mesh_config=[("mesh.yaml", mesh)])
    # accessLogging now has a default provider; the filter on the provider-less entry is still ignored
    assert [f.resource for f in r.findings if f.code == "MSH0303"] == ["Telemetry shop/web-logs", "Telemetry shop/api-tracing"]
    assert r.mesh_sources and "MeshConfig" in r.mesh_sources[0]


def test_services_from_a_cluster(tmp_path):
    from meshctl.kube import KubernetesClient
    from tests.kubeapi import FakeKubeAPI, Reply, item_list

    svc = {"metadata": {"name": "otel-collector", "namespace": "observability"}, "spec": {"ports": [{"port": 4317}]}}
    with FakeKubeAPI() as api:
        api.route("/api/v1/services", Reply.json(item_list("ServiceList", [svc])))
        kube = KubernetesClient(kubeconfig=api.write_kubeconfig(tmp_path))
        r = lint([str(FIXTURES / "collector-short-name.yaml")], kube=kube)
        assert all(method == "GET" for method, _, _ in api.requests)
    assert r.services_from_cluster and r.services == 1
    codes = [(f.code, f.message) for f in r.findings]
    # the short names are now checked against the cluster: one resolves nowhere, the other has a suggestion
    assert any(c == "MSH0108" and "did you mean 'otel-collector.observability.svc.cluster.local'" in m for c, m in codes)
    assert any(c == "MSH0108" and "zipkin.istio-system.svc" in m and "or the cluster" in m for c, m in codes)


def test_only_and_ignore():
    path = str(FIXTURES / "envoyfilter.yaml")
    assert {f.code for f in lint([path], only=["MSH0502"]).findings} == {"MSH0502"}
    assert {f.code for f in lint([path], only=["envoyfilter.Operations"]).findings} == {"MSH0505", "MSH0506"}
    assert "MSH0505" not in {f.code for f in lint([path], ignore=["EnvoyFilterRelativeOperation"]).findings}


def test_every_code_is_reported_by_a_rule_and_documented():
    from meshctl.lint.registry import RULES

    by_rule = {c for r in RULES for c in r.codes}
    assert by_rule == set(CATALOG), set(CATALOG) ^ by_rule
    names = [r.name for r in RULES]
    assert len(names) == len(set(names))
    for r in RULES:
        assert r.description and r.kinds and "." in r.name
    docs = (Path(__file__).parent.parent / "docs" / "lint.md").read_text()
    for code, msg in CATALOG.items():
        assert code in docs and msg.name in docs, code


def test_every_template_renders_from_its_fixture():
    """Each code's template is exercised by at least one fixture (so a template typo cannot hide)."""
    seen = set()
    for fixture, _, _ in CASES:
        seen |= {f.code for f in lint([str(FIXTURES / fixture)]).findings}
    untested = set(CATALOG) - seen - {"MSH0004", "MSH0007"}  # need --schemas: test_schema_rule
    assert not untested, sorted(untested)


# ---- CLI ---------------------------------------------------------------------------------------

def test_cli_exit_codes_and_json(run_cli):
    code, out, err = run_cli("lint", "-o", "json", str(FIXTURES / "provider-refs.yaml"))
    assert code == 1
    body = json.loads(out)
    assert body["summary"]["errors"] == sum(1 for f in body["findings"] if f["severity"] == "Error") > 0
    f = next(x for x in body["findings"] if x["code"] == "MSH0101")
    assert f["resource"] == "Telemetry istio-system/mesh-default" and f["line"] == 26
    assert "error(s)" in err

    code, out, _ = run_cli("lint", str(FIXTURES / "clean.yaml"))
    assert code == 0 and out == ""

    code, out, _ = run_cli("lint", "--failure-threshold", "warning", str(FIXTURES / "collector-short-name.yaml"))
    assert code == 1
    code, _, _ = run_cli("lint", str(FIXTURES / "collector-short-name.yaml"))
    assert code == 0


def test_cli_table_and_yaml(run_cli):
    import yaml

    code, out, _ = run_cli("lint", str(FIXTURES / "envoyfilter.yaml"))
    lines = out.splitlines()
    assert lines[0].split() == ["SEVERITY", "CODE", "RESOURCE", "LOCATION", "MESSAGE"]
    assert code == 1
    assert any(ln.startswith("Error") and "MSH0501" in ln and "envoyfilter.yaml:9" in ln for ln in lines)
    code, out, _ = run_cli("lint", "-o", "yaml", "--output-threshold", "error", str(FIXTURES / "envoyfilter.yaml"))
    body = yaml.safe_load(out)
    assert code == 1 and {f["severity"] for f in body["findings"]} == {"Error"}


def test_cli_stdin_and_usage_errors(run_cli, tmp_path):
    text = (FIXTURES / "telemetry-scope.yaml").read_text()
    code, out, _ = run_cli("lint", "-o", "json", "-", input=text)
    assert code == 1 and {f["file"] for f in json.loads(out)["findings"]} == {"<stdin>"}
    assert run_cli("lint")[0] == 3
    assert run_cli("lint", str(tmp_path / "missing.yaml"))[0] == 3
    (tmp_path / "bin.yaml").write_bytes(b"kind: \xff\xfe\n")
    code, _, err = run_cli("lint", str(tmp_path / "bin.yaml"))
    assert code == 3 and "UTF-8" in err
    assert run_cli("lint", "-o", "xml", str(FIXTURES / "clean.yaml"))[0] == 3
    assert run_cli("lint", "--validate", "bogus", str(FIXTURES / "clean.yaml"))[0] == 3


def test_cli_namespace_applies_to_objects_without_one(run_cli):
    code, out, _ = run_cli("lint", "-n", "istio-system", "-o", "json", "-",
                           input="apiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata: {name: a}\nspec: {}\n"
                                 "---\napiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata: {name: b}\nspec: {}\n")
    assert code == 1
    assert {f["code"] for f in json.loads(out)["findings"]} == {"MSH0301"}


def test_cli_list(run_cli):
    code, out, _ = run_cli("lint", "--list", "-o", "json")
    rows = json.loads(out)
    assert code == 0 and {r["code"] for r in rows} == set(CATALOG)
    assert all(r["rule"] != "-" for r in rows)


def test_directory_input_reads_yaml_only(tmp_path):
    (tmp_path / "a.yaml").write_text((FIXTURES / "duplicate-keys.yaml").read_text())
    (tmp_path / "notes.txt").write_text("not: [yaml")
    r = lint([str(tmp_path)])
    assert r.files == [str(tmp_path / "a.yaml")] and {f.code for f in r.findings} == {"MSH0002"}


def test_schema_rule(schemas_dir):
    from meshctl.validate.schemas import SchemaStore

    store = SchemaStore.from_dir(schemas_dir)
    r = lint([str(FIXTURES / "schema.yaml")], schemas=store, envoy_types=True)
    got = {(f.code, f.resource, f.line) for f in r.findings}
    assert ("MSH0004", "Telemetry shop/typo", 13) in got  # disabeld
    assert ("MSH0007", "Telemetry shop/future", 15) in got  # telemetry.istio.io/v2
    assert ("MSH0004", "ConfigMap istio-system/istio", 36) in got  # samplng, inside the data.mesh string
    types = _find(r, "MSH0004", "EnvoyFilter istio-system/bad-patch-value")
    assert types.line == 54 and "lb_polcy" in types.message and "envoy-types" in types.message
    # without schemas only the Envoy type check runs
    r = lint([str(FIXTURES / "schema.yaml")], envoy_types=True)
    assert {f.resource for f in r.findings if f.code == "MSH0004"} == {"EnvoyFilter istio-system/bad-patch-value"}
    assert lint([str(FIXTURES / "schema.yaml")]).findings == []


def test_configmap_mesh_string_is_read_as_istiod_reads_it(schemas_dir):
    """Go's YAML reads `001:db8::` in a flow sequence as a string; the schema check of the istio
    ConfigMap's data.mesh reads it the same way as the lint rules (no false structural error)."""
    from meshctl.validate.schemas import SchemaStore

    mesh = "trustDomainAliases: [cluster.local, 001:db8::]\n"
    cm = ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: istio, namespace: istio-system}\n"
          "data:\n  mesh: |-\n    " + mesh)
    r = lint_text([("cm.yaml", cm)], schemas=SchemaStore.from_dir(schemas_dir))
    assert r.findings == []
    assert r.documents == 1
    bad = lint_text([("cm.yaml", cm.replace("[cluster.local,", "[{a: b},"))], schemas=SchemaStore.from_dir(schemas_dir))
    assert [(f.code, f.path) for f in bad.findings] == [("MSH0004", "$.data.mesh.trustDomainAliases[0]")]


def test_schema_errors_on_fields_a_rule_explains_are_not_repeated(schemas_dir):
    from meshctl.validate.schemas import SchemaStore

    r = lint([str(FIXTURES / "envoyfilter.yaml")], schemas=SchemaStore.from_dir(schemas_dir))
    at = {(f.code, f.line) for f in r.findings}
    assert ("MSH0501", 9) in at and ("MSH0004", 9) not in at
    assert ("MSH0507", 134) in at and not any(c == "MSH0004" and ln in (131, 132, 134) for c, ln in at)


def test_cli_schemas_option(run_cli, schemas_dir):
    code, out, _ = run_cli("lint", "--schemas", str(schemas_dir), "-o", "json", str(FIXTURES / "schema.yaml"))
    assert code == 1 and "MSH0007" in {f["code"] for f in json.loads(out)["findings"]}
    code, out, _ = run_cli("lint", "--validate", "none", "-o", "json", str(FIXTURES / "schema.yaml"))
    assert code == 0 and json.loads(out)["findings"] == []
    assert run_cli("lint", "--validate", "schemas", str(FIXTURES / "schema.yaml"))[0] == 3  # needs --schemas


@pytest.mark.parametrize("args, with_mesh", [
    (["--collector", "otel.observability:4317", "--sampling", "5"], True),
    (["--protocol", "http", "--collector", "otel-collector.observability.svc.cluster.local:4318"], True),
    (["--mode", "envoyfilter"], False),
])
def test_rendered_istio_config_lints_clean(run_cli, args, with_mesh):
    """`meshctl render istio --all | meshctl lint -`: what meshctl renders passes its own linter; in
    Telemetry mode the stream carries the mesh config, so every provider reference is really checked."""
    code, rendered, err = run_cli("render", "istio", "--all", "--no-validate", *args)
    assert code == 0, err
    result = lint_text([("<render>", rendered)], envoy_types=True)
    assert bool(result.mesh_sources) == with_mesh
    assert [str(f) for f in result.findings if f.severity != INFO or f.code == "MSH0008"] == []


def test_cli_kubeconfig_reads_services(run_cli, tmp_path):
    from tests.kubeapi import FakeKubeAPI, Reply, item_list

    svc = {"metadata": {"name": "otel-collector", "namespace": "observability"}, "spec": {"ports": [{"port": 4317}]}}
    with FakeKubeAPI() as api:
        api.route("/api/v1/services", Reply.json(item_list("ServiceList", [svc])))
        code, out, _ = run_cli("lint", "--kubeconfig", api.write_kubeconfig(tmp_path), "-o", "json",
                               str(FIXTURES / "collector-short-name.yaml"))
        assert api.count("/api/v1/services") == 1
    body = json.loads(out)
    assert code == 1 and body["summary"]["servicesFromCluster"] is True
    assert {f["code"] for f in body["findings"]} == {"MSH0108"}
    # once the server is gone, the cluster cannot be read: an error exit 3, not a lint result
    code, _, err = run_cli("lint", "--kubeconfig", str(tmp_path / "kubeconfig"), str(FIXTURES / "clean.yaml"))
    assert code == 3 and "Kubernetes API" in err


def test_mesh_config_comes_from_the_cluster_when_the_input_has_none(tmp_path):
    from meshctl.kube import KubernetesClient
    from tests.kubeapi import FakeKubeAPI, Reply, item_list

    mesh = ("extensionProviders:\n- name: otel\n  opentelemetry:\n"
            "    service: otel-collector.observability.svc.cluster.local\n    port: 4317\n")
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "istio", "namespace": "istio-system"},
          "data": {"mesh": mesh}}
    svc = {"metadata": {"name": "otel-collector", "namespace": "observability"}, "spec": {"ports": [{"port": 4317}]}}
    telemetry = tmp_path / "telemetry.yaml"
    telemetry.write_text(
        "apiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata:\n  name: t\n  namespace: shop\n"
        "spec:\n  tracing:\n  - providers:\n    - name: otel\n  - providers:\n    - name: nope\n")
    with FakeKubeAPI() as api:
        api.route("/api/v1/services", Reply.json(item_list("ServiceList", [svc])))
        api.route("/api/v1/namespaces/istio-system/configmaps/istio", Reply.json(cm))
        kube = KubernetesClient(kubeconfig=api.write_kubeconfig(tmp_path))
        r = lint([str(telemetry)], kube=kube)
        assert api.count("/api/v1/namespaces/istio-system/configmaps/istio") == 1
    unknown = [f for f in r.findings if f.code == "MSH0101"]
    assert len(unknown) == 1 and "nope" in unknown[0].message
    assert any("cluster:configmap/istio-system/istio" in s for s in r.mesh_sources)


def test_revisioned_control_plane_mesh_config_comes_from_its_configmap(tmp_path, run_cli):
    """`--revision canary -i istio-ctl` reads istio-ctl/istio-canary (what that istiod reads), not istio."""
    from tests.kubeapi import FakeKubeAPI, Reply, item_list

    mesh = "extensionProviders:\n- name: otel-canary\n  opentelemetry: {service: c.o.svc.cluster.local, port: 4317}\n"
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "istio-canary", "namespace": "istio-ctl"},
          "data": {"mesh": mesh}}
    telemetry = tmp_path / "telemetry.yaml"
    telemetry.write_text("apiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata: {name: t, namespace: shop}\n"
                         "spec:\n  tracing:\n  - providers: [{name: otel-canary}]\n")
    with FakeKubeAPI() as api:
        svc = {"metadata": {"name": "c", "namespace": "o"}, "spec": {"ports": [{"port": 4317}]}}
        api.route("/api/v1/services", Reply.json(item_list("ServiceList", [svc])))
        api.route("/api/v1/namespaces/istio-ctl/configmaps/istio-canary", Reply.json(cm))
        kubeconfig = str(api.write_kubeconfig(tmp_path))
        code, out, _ = run_cli("lint", "--kubeconfig", kubeconfig, "-o", "json", str(telemetry))
        assert api.count("/api/v1/namespaces/istio-ctl/configmaps/istio-canary") == 0
        # the default revision's ConfigMap is absent here: provider references go unchecked
        assert {f["code"] for f in json.loads(out)["findings"]} == {"MSH0008"}
        code, out, _ = run_cli("lint", "--kubeconfig", kubeconfig, "-i", "istio-ctl", "--revision", "canary",
                               "-o", "json", str(telemetry))
        assert api.count("/api/v1/namespaces/istio-ctl/configmaps/istio-canary") == 1
    assert code == 0 and json.loads(out)["findings"] == [], out
