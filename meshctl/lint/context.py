"""What every lint rule gets: the parsed input, the merged mesh config, the known services, a reporter.

A rule is metadata plus one function (`Rule(name, description, kinds, codes, check)`), in the spirit
of istioctl's analyzers: `check(ctx)` reads documents through `ctx.of_kind(...)`, the mesh config
through `ctx.mesh`, and reports with `ctx.report(code, doc, path, **params)`, which fills in the
catalog message, the object (kind/namespace/name), the file and the line of the field.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from meshctl.lint.hosts import ServiceIndex
from meshctl.lint.loader import Document, DuplicateKey, Path, SyntaxProblem
from meshctl.lint.meshconfig import MeshSource, MeshView
from meshctl.lint.messages import CATALOG, Finding
from meshctl.validate.problems import json_path


@dataclass(frozen=True)
class Rule:
    name: str  # dotted, e.g. "telemetry.UnknownProvider"
    description: str
    kinds: tuple[str, ...]  # the inputs it reads ("Telemetry", "MeshConfig", "Service", ...)
    codes: tuple[str, ...]  # the catalog codes it may report
    check: Callable[[LintContext], None]


@dataclass
class LintContext:
    documents: list[Document]
    mesh: MeshView
    services: ServiceIndex
    syntax: list[SyntaxProblem] = field(default_factory=list)
    duplicate_keys: list[DuplicateKey] = field(default_factory=list)
    embedded_problems: list[tuple[Document, str]] = field(default_factory=list)
    texts: dict[str, str] = field(default_factory=dict)  # file -> text (for block-scalar line offsets)
    options: dict[str, Any] = field(default_factory=dict)
    forms: dict[int, str] = field(default_factory=dict)  # id(document) -> mesh config form, for kindless ones
    findings: list[Finding] = field(default_factory=list)
    rule: str = ""
    _by_kind: dict[str, list[tuple[int, Document]]] | None = field(default=None, repr=False)

    # ---- reading ---------------------------------------------------------------------------------
    def of_kind(self, *kinds: str, group: str | None = None) -> Iterator[Document]:
        """Kubernetes-shaped documents of these kinds (and API group suffix, e.g. "istio.io"), in input order."""
        if self._by_kind is None:
            self._by_kind = {}
            for pos, d in enumerate(self.documents):
                if d.is_resource:
                    self._by_kind.setdefault(d.kind or "", []).append((pos, d))
        found = [d for _, d in sorted(p for k in kinds for p in self._by_kind.get(k, []))] if len(kinds) > 1 \
            else [d for _, d in self._by_kind.get(kinds[0], [])]
        for d in found:
            if group is None or d.group == group or d.group.endswith("." + group):
                yield d

    def identity(self, doc: Document, form: str | None = None) -> tuple[str | None, str | None, str]:
        """(kind, namespace, name) to show for a document: resources as kubectl names them, other
        documents by what they are (istiod Helm values, MeshConfig, values) and file#position."""
        where = f"{doc.file.rsplit('/', 1)[-1]}#{doc.index + 1}"
        if doc.is_resource:
            if not doc.name:
                return doc.kind, None, where
            # IstioOperator is istioctl's input file, not a namespaced cluster object.
            ns = doc.metadata.get("namespace") if doc.kind == "IstioOperator" else doc.namespace
            return doc.kind, ns, doc.name
        label = form or self.forms.get(id(doc)) or "values"
        return label, None, where

    def istio(self, kind: str) -> Iterator[Document]:
        """Documents of an Istio kind (any istio.io API group and version)."""
        yield from self.of_kind(kind, group="istio.io")

    # ---- reporting -------------------------------------------------------------------------------
    def report(self, code: str, doc: Document | None = None, path: Path = (), *,
               source: MeshSource | None = None, line: int | None = None, **params: Any) -> Finding:
        """Report a catalog message about `doc` (at field `path`), or about a mesh config `source`
        (at `path` inside the mesh config)."""
        msg = CATALOG[code]
        text = msg.render(params)
        holder = source.doc if source is not None else doc
        if holder is not None:
            kind, namespace, obj = self.identity(holder, source.form if source is not None else None)
            full = source.path(path) if source is not None else tuple(path)
            if line is None:
                line = source.line_of(path) if source is not None else holder.line_of(path)
            finding = Finding(code, msg.name, msg.severity, text, self.rule, kind=kind, namespace=namespace,
                              object=obj, file=holder.file, line=line, path=json_path(full) if full else None)
        else:
            finding = Finding(code, msg.name, msg.severity, text, self.rule, line=line, file=params.get("file"))
        finding.extra = dict(params)
        self.findings.append(finding)
        return finding


def mapping(v: Any) -> Mapping[str, Any]:
    return v if isinstance(v, Mapping) else {}


def seq(v: Any) -> list[Any]:
    return v if isinstance(v, list) else []


def strings(v: Any, path: Path = ()) -> Iterator[tuple[Path, str]]:
    """(path, value) of every string in `v`, mappings and lists walked in order."""
    if isinstance(v, Mapping):
        for k, sub in v.items():
            yield from strings(sub, (*path, k))
    elif isinstance(v, list):
        for i, sub in enumerate(v):
            yield from strings(sub, (*path, i))
    elif isinstance(v, str):
        yield path, v
