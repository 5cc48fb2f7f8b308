"""The same object (kind, namespace, name) defined more than once in the input."""

from __future__ import annotations

from meshctl.lint.context import LintContext, Rule
from meshctl.lint.loader import Document


def check(ctx: LintContext) -> None:
    seen: dict[tuple[str, str, str, str], list[Document]] = {}
    for d in ctx.documents:
        if not d.is_resource or not d.name or d.kind == "List":
            continue
        seen.setdefault((d.group, d.kind or "", d.namespace, d.name), []).append(d)
    for docs in seen.values():
        if len(docs) < 2:
            continue
        where = [f"{o.file}:{o.line_of(('metadata', 'name'))}" for o in docs]
        for i, d in enumerate(docs):
            rest = where[:i] + where[i + 1:]
            others = ", ".join(rest[:3]) + (f" and {len(rest) - 3} more" if len(rest) > 3 else "")
            ctx.report("MSH0003", d, ("metadata", "name"), resource=d.resource, count=len(docs), others=others)


RULE = Rule("input.DuplicateObject", "Reports objects defined several times (the last one wins when applied).",
            ("*",), ("MSH0003",), check)
