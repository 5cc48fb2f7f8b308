"""`meshctl lint`: find the mistakes in mesh telemetry YAML that Istio and Linkerd accept silently.

    from meshctl.lint import lint
    result = lint(["mesh.yaml", "telemetry.yaml"])          # paths, directories, globs or "-"
    for f in result.findings:                                 # meshctl.lint.messages.Finding
        print(f.code, f.severity, f.resource, f.location, f.message)
    result.has_errors                                         # -> exit code 1 in the CLI

The input is parsed with line numbers (meshctl.lint.loader), mesh config is collected from every form
it comes in and merged (meshctl.lint.meshconfig), Services/ServiceEntries of the input and, with a
`kube` (meshctl.kube.KubeAPI), of a cluster are indexed (meshctl.lint.hosts); then every rule in
meshctl.lint.registry runs over one LintContext and reports findings from the one message catalog
(meshctl.lint.messages). Structural schema checks come from meshctl.validate.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from meshctl.lint.messages import CATALOG, ERROR, INFO, SEVERITIES, WARNING, Finding, severity_rank

__all__ = ["CATALOG", "ERROR", "INFO", "SEVERITIES", "WARNING", "Finding", "LintResult", "lint", "lint_text"]

YAML_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass
class LintResult:
    findings: list[Finding]
    documents: int = 0
    files: list[str] = field(default_factory=list)
    mesh_sources: list[str] = field(default_factory=list)  # "IstioOperator (file:line)", ...
    services: int = 0
    services_from_cluster: bool = False

    def count(self, severity: str) -> int:
        return sum(1 for f in self.findings if f.severity == severity)

    @property
    def has_errors(self) -> bool:
        return self.count(ERROR) > 0

    def at_least(self, severity: str) -> list[Finding]:
        return [f for f in self.findings if severity_rank(f.severity) <= severity_rank(severity)]

    def summary(self) -> dict[str, Any]:
        return {
            "documents": self.documents, "files": len(self.files),
            "errors": self.count(ERROR), "warnings": self.count(WARNING), "info": self.count(INFO),
            "meshConfig": self.mesh_sources, "services": self.services,
            "servicesFromCluster": self.services_from_cluster,
        }


def _read(inputs: Sequence[str]) -> list[tuple[str, str]]:
    """(name, text) of every input; unreadable or undecodable input is an InputError (exit 3)."""
    from meshctl.errors import InputError
    from meshctl.sources.files import expand_inputs

    out = []
    for f in expand_inputs(inputs, suffixes=YAML_SUFFIXES):
        try:
            with f.open() as stream:
                raw = stream.read()
        except OSError as exc:
            raise InputError(f"cannot read: {exc.strerror or exc}", file=f.name) from exc
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = raw[:exc.start].count(b"\n") + 1
            raise InputError("not UTF-8 text (is this a YAML file?)", file=f.name, line=line) from exc
        out.append((f.name, text))
    return out


CLUSTER_MESH_CONFIGMAP = ("istio-system", "istio")  # what istiod reads (its namespace, default revision)


def mesh_configmap(istio_namespace: str = "istio-system", revision: str | None = None) -> tuple[str, str]:
    """(namespace, name) of the ConfigMap a revision's istiod reads its mesh config from: `istio`
    for the default revision, `istio-<rev>` for a revisioned control plane."""
    return istio_namespace, "istio" if revision in (None, "", "default") else f"istio-{revision}"


def lint_text(sources: Iterable[tuple[str, str]], *, mesh_config: Iterable[tuple[str, str]] = (),
              default_namespace: str = "default", kube: Any = None, schemas: Any = None,
              envoy_types: bool = False, envoy: bool = False,
              only: Iterable[str] | None = None, ignore: Iterable[str] = (),
              configmap: tuple[str, str] = CLUSTER_MESH_CONFIGMAP) -> LintResult:
    """Lint already-read (name, text) inputs. `mesh_config` are extra mesh config files (--mesh-config);
    `kube` a meshctl.kube.KubeAPI to read Services from (and the mesh-config ConfigMap `configmap`,
    (namespace, name), when the inputs carry no mesh config); `schemas` a meshctl.validate SchemaStore."""
    from meshctl.lint.context import LintContext
    from meshctl.lint.hosts import ServiceIndex
    from meshctl.lint.loader import parse_text
    from meshctl.lint.meshconfig import find_sources, merge
    from meshctl.lint.registry import RULES

    documents, syntax, dups, texts = [], [], [], {}
    mesh_sources, embedded = [], []
    files: list[str] = []

    def load(role: str, name: str, text: str) -> None:
        nonlocal syntax, dups, mesh_sources, embedded
        files.append(name)
        texts[name] = text
        loaded = parse_text(text, name, default_namespace=default_namespace)
        syntax += loaded.syntax
        dups += loaded.duplicate_keys
        for doc in loaded.documents:
            found, problems = find_sources(doc, text, mesh_file=role == "mesh")
            mesh_sources += found
            embedded += [(doc, p) for p in problems]
            if role == "input" or not found:
                documents.append(doc)

    for role, items in (("input", sources), ("mesh", mesh_config)):
        for name, text in items:
            load(role, name, text)
    if kube is not None and not mesh_sources:
        # No mesh config in the input: use the cluster's, the ConfigMap istiod reads.
        cm = kube.get_configmap(*configmap)
        if cm is not None:
            from meshctl.output import dump_yaml

            load("mesh", "cluster:configmap/{}/{}".format(*configmap), dump_yaml(cm))
    mesh = merge(mesh_sources)
    services = ServiceIndex(cluster_domain=mesh.cluster_domain)
    for doc in documents:
        if doc.kind == "Service" and doc.api_version == "v1":
            services.add_service(doc.obj, doc.namespace, f"Service {doc.namespace}/{doc.name} in {doc.file}")
        elif doc.kind == "ServiceEntry" and doc.group == "networking.istio.io":
            services.add_service_entry(doc.obj, doc.namespace, f"ServiceEntry {doc.namespace}/{doc.name} in {doc.file}")
    if kube is not None:
        for svc in kube.list_services():
            ns = ((svc.get("metadata") or {}).get("namespace")) or "default"
            services.add_service(svc, ns, "cluster")
        services.from_cluster = True
    ctx = LintContext(documents=documents, mesh=mesh, services=services, syntax=syntax, duplicate_keys=dups,
                      embedded_problems=embedded, texts=texts,
                      options={"schemas": schemas, "envoy_types": envoy_types, "envoy": envoy},
                      forms={id(s.doc): s.form for s in mesh_sources if not s.doc.is_resource})
    wanted = set(only) if only else None
    for rule in RULES:
        if wanted is not None and rule.name not in wanted and not (set(rule.codes) & wanted):
            continue
        ctx.rule = rule.name
        rule.check(ctx)
    ignored = set(ignore)
    findings = [f for f in ctx.findings if f.code not in ignored and f.name not in ignored
                and (wanted is None or f.code in wanted or f.rule in wanted)]
    findings = _drop_schema_echoes(findings)
    findings.sort(key=lambda f: (f.file or "", f.line or 0, severity_rank(f.severity), f.code))
    return LintResult(
        findings=findings, documents=len(documents) + len(syntax), files=files,
        mesh_sources=[f"{s.label} ({s.doc.file}:{s.line_of()})" for s in mesh_sources],
        services=services.count, services_from_cluster=services.from_cluster,
    )


def _child_or_same(path: str, parent: str) -> bool:
    if path == parent:
        return True
    if not path.startswith(parent):
        return False
    rest = path[len(parent):]  # one more segment: ".key" or "[n]"
    return rest[:1] in (".", "[") and not any(c in rest[1:] for c in ".[")


def _drop_schema_echoes(findings: list[Finding]) -> list[Finding]:
    """A structural error (MSH0004) on a field a specific rule already explains says the same thing
    twice; keep the specific one. (Also "unknown field 'x'" reported on the parent of a field x that a
    specific rule reports.)"""
    from meshctl.lint.loader import parse_path

    specific = [(f.file, f.path) for f in findings if f.code != "MSH0004" and f.path and f.severity != INFO]

    def echoed(f: Finding) -> bool:
        if not f.path:
            return False
        children: set[str] = set()
        for file, path in specific:
            if file != f.file:
                continue
            if _child_or_same(f.path, path):
                return True
            if path != f.path and _child_or_same(path, f.path):
                children.add(str(parse_path(path)[-1]))
        listed = re.findall(r"'([^']*)'", f.message.split("unknown field", 1)[1]) if "unknown field" in f.message else []
        return bool(listed) and set(listed) <= children

    return [f for f in findings if f.code != "MSH0004" or not echoed(f)]


def lint(inputs: Sequence[str], *, mesh_config: Sequence[str] = (), **kwargs: Any) -> LintResult:
    """Lint files, directories (their .yaml/.yml/.json files), globs or "-" (stdin)."""
    return lint_text(_read(inputs), mesh_config=_read(mesh_config) if mesh_config else (), **kwargs)
