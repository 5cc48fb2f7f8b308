"""YAML that does not parse, and istio ConfigMaps whose embedded `mesh` YAML does not."""

from __future__ import annotations

from meshctl.lint.context import LintContext, Rule


def check(ctx: LintContext) -> None:
    for p in ctx.syntax:
        where = f"line {p.line}" + (f", column {p.column}" if p.column else "")
        f = ctx.report("MSH0001", None, line=p.line, file=p.file, problem=f"{p.problem} at {where}")
        f.object = f"{p.file.rsplit('/', 1)[-1]}#{p.document + 1}"
    for doc, problem in ctx.embedded_problems:
        ctx.report("MSH0005", doc, ("data", "mesh"), where=f"ConfigMap {doc.namespace}/{doc.name} data.mesh",
                   problem=problem)


RULE = Rule("input.Syntax", "Reports YAML that cannot be parsed, with file and line.",
            ("*",), ("MSH0001", "MSH0005"), check)
