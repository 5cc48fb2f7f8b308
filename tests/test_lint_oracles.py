"""meshctl lint against real Istio and Linkerd configurations (../shared/oracles/configs, read in place).

- every valid upstream config lints without an Error (with the shared CRD schemas and the Envoy type
  checks on);
- the known-broken upstream docs listed in the configs README are flagged with the code that fits;
- Istio's own invalid validation documents that the structural schema rejects are flagged too;
- the istioctl-analyze fixtures in analyzers/testdata/EXPECTED.yaml that fall in lint's scope produce a
  matching meshctl code on the same resource.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from meshctl.lint import ERROR, lint_text
from meshctl.lint.loader import split_documents

CONFIGS = "configs"
ISTIO = "configs/istio"
VALIDATION = "configs/istio/repo/pkg/config/validation/testdata/crds"
ANALYZERS = "configs/istio/repo/pkg/config/analysis/analyzers/testdata"

# Upstream files that are not plain YAML or not meant to be valid (see the configs README).
NOT_VALID = {
    "istio/docs/accesslog-telemetry-api.bad-quoting.telemetry.yaml.txt",
    "istio/docs/telemetry-api-tracing.broken-indent.telemetry.yaml",
    "istio/docs/local-ratelimit.doc-listener-misplaced.envoyfilter.yaml",
    "istio/docs/local-ratelimit-per-route.doc.envoyfilter.yaml",
    "istio/docs/dynatrace-sampler.iop.yaml",
    "istio/docs/circuit-breaking.doc.destinationrule.yaml",
    "istio/docs/telemetry-api-tracing.placeholder.telemetry.yaml",
    "istio/repo/operator/pkg/util/testdata/overlay-iop.yaml",
    # a Go template ({{ .TargetGatewayName }}), not YAML until rendered
    "istio/repo/tests/integration/telemetry/api/testdata/accesslog/targetref.yaml",
}


@pytest.fixture(scope="module")
def store(schemas_dir):
    from meshctl.validate.schemas import SchemaStore

    return SchemaStore.from_dir(schemas_dir)


def _valid_files(root: Path) -> list[str]:
    out = []
    for p in sorted((root / CONFIGS).rglob("*")):
        rel = p.relative_to(root / CONFIGS).as_posix()
        if not p.is_file() or p.suffix not in (".yaml", ".yml") or rel in NOT_VALID:
            continue
        if rel.startswith("istio/repo/pkg/config/analysis/") or rel.endswith("-invalid.yaml"):
            continue  # analyzer fixtures and invalid sets are checked below
        out.append(rel)
    return out


def _documents(text: str) -> list[str]:
    """The documents of a stream that have content (not only comments)."""
    return [chunk for _, chunk in split_documents(text)
            if any(ln.strip() and not ln.lstrip().startswith("#") for ln in chunk.splitlines())]


def _per_document(rel: str) -> bool:
    # "each document valid": alternatives from one docs page, or one test case per document
    return ".valid." in rel or rel.endswith("-valid.yaml")


def test_valid_upstream_configs_have_no_errors(oracles_dir, store):
    files = _valid_files(oracles_dir)
    assert len(files) > 60, files
    failures = []
    for rel in files:
        text = (oracles_dir / CONFIGS / rel).read_text(encoding="utf-8")
        units = [(f"{rel}#{i + 1}", t) for i, t in enumerate(_documents(text))] if _per_document(rel) else [(rel, text)]
        for name, unit in units:
            result = lint_text([(name, unit)], schemas=store, envoy_types=True)
            failures += [f"{name}: {f}" for f in result.findings if f.severity == ERROR]
    assert not failures, "\n".join(failures)


def test_upstream_pairs_resolve_their_providers(oracles_dir):
    """The docs' mesh config and Telemetry, linted together: provider references are checked and resolve."""
    pairs = [
        ("istio/docs/otel-tracing-grpc.iop.yaml", "istio/docs/otel-tracing.telemetry.yaml"),
        ("istio/docs/otel-tracing-http.iop.yaml", "istio/docs/sampling.telemetry.yaml"),
        ("istio/docs/otel-accesslog-defaultproviders.iop.yaml", "istio/docs/otel-accesslog.telemetry.yaml"),
        ("istio/docs/otel-accesslog.configmap.yaml", "istio/docs/otel-accesslog.telemetry.yaml"),
        ("istio/repo/manifests/helm-profiles/demo.yaml", "istio/repo/samples/open-telemetry/tracing/telemetry.yaml"),
        ("istio/extracted/otelcollector-controlplane-values.yaml",
         "istio/repo/tests/integration/telemetry/tracing/otelcollector/testdata/otel-tracing-http.yaml"),
    ]
    for mesh, tele in pairs:
        items = [(p, (oracles_dir / CONFIGS / p).read_text()) for p in (mesh, tele)]
        result = lint_text(items)
        assert result.mesh_sources, mesh
        assert not [f for f in result.findings if f.code in ("MSH0101", "MSH0103", "MSH0008") or f.severity == ERROR], \
            [str(f) for f in result.findings]


def test_upstream_loki_sample_collector_resolves(oracles_dir):
    """samples/open-telemetry/loki as its README applies it (`-n istio-system`): the envoyOtelAls
    provider's service and port are the Service that otel.yaml creates."""
    base = oracles_dir / ISTIO / "repo/samples/open-telemetry/loki"
    items = [(str(base / n), (base / n).read_text()) for n in ("iop.yaml", "otel.yaml", "telemetry.yaml")]
    result = lint_text(items, default_namespace="istio-system")
    assert result.services == 1 and result.findings == []
    # ... and the same manifests applied to another namespace leave the collector unresolved
    result = lint_text(items, default_namespace="observability")
    assert [f.code for f in result.findings] == ["MSH0117"]


# ---- known-broken upstream docs (configs README, "Known-bad upstream docs") -------------------------

NEGATIVES = [
    ("istio/docs/local-ratelimit.doc-listener-misplaced.envoyfilter.yaml", "MSH0501", 19, True),
    ("istio/docs/local-ratelimit-per-route.doc.envoyfilter.yaml", "MSH0501", 15, True),
    ("istio/docs/telemetry-api-tracing.broken-indent.telemetry.yaml", "MSH0001", 15, True),
    ("istio/docs/accesslog-telemetry-api.bad-quoting.telemetry.yaml.txt", "MSH0001", 14, True),
    ("istio/docs/dynatrace-sampler.iop.yaml", "MSH0107", 16, True),
    ("istio/docs/circuit-breaking.doc.destinationrule.yaml", "MSH0601", 20, False),
    ("istio/docs/telemetry-api-tracing.placeholder.telemetry.yaml", "MSH0006", 17, False),
    ("istio/repo/operator/pkg/util/testdata/overlay-iop.yaml", "MSH0112", 11, True),
]


@pytest.mark.parametrize("rel, code, line, error", NEGATIVES, ids=[n[0].rsplit("/", 1)[1] for n in NEGATIVES])
def test_known_broken_upstream_docs_are_flagged(oracles_dir, rel, code, line, error):
    path = oracles_dir / CONFIGS / rel
    result = lint_text([(str(path), path.read_text(encoding="utf-8"))])
    hits = [f for f in result.findings if f.code == code]
    assert hits, [str(f) for f in result.findings]
    assert hits[0].line == line and hits[0].file == str(path)
    assert result.has_errors == error


# ---- Istio's invalid validation documents ---------------------------------------------------------

def _strip_err(doc_text: str) -> tuple[str, str | None]:
    """Drop the `_err:` key (the expected API-server message) as the README says; return it too."""
    m = re.search(r"^_err: *(.*)$", doc_text, re.M)
    return re.sub(r"^_err:.*\n", "", doc_text, flags=re.M), (m.group(1) if m else None)


def test_invalid_validation_documents_rejected_by_the_schema_are_flagged(oracles_dir, store):
    flagged = schema_rejects = total = 0
    misses = []
    for path in sorted((oracles_dir / VALIDATION).glob("*-invalid.yaml")):
        for i, chunk in enumerate(_documents(path.read_text(encoding="utf-8"))):
            text, expected_err = _strip_err(chunk)
            obj = yaml.safe_load(text)
            if not isinstance(obj, dict):
                continue
            total += 1
            rejects = any(p.severity == "error" for p in store.validate(obj))
            result = lint_text([(f"{path.name}#{i + 1}", text)], schemas=store, envoy_types=True)
            schema_rejects += rejects
            flagged += result.has_errors
            if rejects and not result.has_errors:
                misses.append(f"{path.name}#{i + 1} ({expected_err})")
    assert total >= 70 and schema_rejects >= 30
    assert not misses, misses
    assert flagged >= schema_rejects


# ---- istioctl analyze fixtures (EXPECTED.yaml) ------------------------------------------------------

# istioctl code -> the meshctl codes that report the same mistake. Codes absent here are outside
# lint's scope (DestinationRule TLS CA checks, Pod selection by DestinationRule subsets, conflicting
# Telemetry selectors).
IST_TO_MSH = {
    "IST0002": {"MSH0601", "MSH0103", "MSH0114"},  # deprecated fields; the deprecated lightstep provider
    "IST0151": {"MSH0505"},
    "IST0152": {"MSH0506"},
    "IST0153": {"MSH0506"},
    "IST0154": {"MSH0506"},
    "IST0155": {"MSH0505"},
    "IST0157": {"MSH0303"},
    "IST0160": {"MSH0301", "MSH0302"},
    "IST0101": {"MSH0306"},
}
IN_SCOPE = {"deprecation.DeprecationAnalyzer", "envoyfilter.EnvoyPatchAnalyzer", "telemetry.ProviderAnalyzer",
            "telemetry.DefaultSelectorAnalyzer", "telemetry.LightstepAnalyzer", "telemetry.SelectorAnalyzer"}
ANALYZER_CODES = {
    "deprecation.DeprecationAnalyzer": {"MSH0601"},
    "envoyfilter.EnvoyPatchAnalyzer": {"MSH0505", "MSH0506"},
    "telemetry.ProviderAnalyzer": {"MSH0303"},
    "telemetry.DefaultSelectorAnalyzer": {"MSH0301", "MSH0302"},
    "telemetry.LightstepAnalyzer": {"MSH0103", "MSH0114"},
    "telemetry.SelectorAnalyzer": {"MSH0306"},
}


def _cases(oracles_dir: Path) -> list[dict]:
    data = yaml.safe_load((oracles_dir / ANALYZERS / "EXPECTED.yaml").read_text())
    return [c for c in data["cases"] if c["analyzer"] in IN_SCOPE]


def _same_resource(finding, resource: str) -> bool:
    kind, _, ref = resource.partition(" ")
    ns, _, name = ref.rpartition("/")
    return finding.kind == kind and finding.object == name and (not ns or finding.namespace == ns)


def test_analyzer_fixtures_in_scope(oracles_dir):
    cases = _cases(oracles_dir)
    assert len(cases) >= 12
    problems = []
    for case in cases:
        items = [(n, (oracles_dir / ANALYZERS / n).read_text()) for n in case["inputs"]]
        mesh = [(case["meshConfig"], (oracles_dir / ANALYZERS / case["meshConfig"]).read_text())] \
            if case.get("meshConfig") else []
        result = lint_text(items, mesh_config=mesh)
        for code_name, resource in case["expected"]:
            wanted = IST_TO_MSH.get(code_name.split()[0])
            if wanted is None:
                continue
            if not any(f.code in wanted and _same_resource(f, resource) for f in result.findings):
                problems.append(f"{case['name']}: no {sorted(wanted)} for {code_name} on {resource}")
        if not case["expected"]:
            stray = [str(f) for f in result.findings if f.code in ANALYZER_CODES[case["analyzer"]]]
            if stray:
                problems.append(f"{case['name']}: expected nothing, got {stray}")
    assert not problems, "\n".join(problems)
