"""Mappings that repeat a key: one of the values is silently lost."""

from __future__ import annotations

from meshctl.lint.context import LintContext, Rule


def check(ctx: LintContext) -> None:
    for d in ctx.duplicate_keys:
        ctx.report("MSH0002", d.doc, (*d.path, d.key), line=d.line, key=d.key, first=d.first_line)


RULE = Rule("input.DuplicateKey", "Reports a mapping key given twice in one mapping.", ("*",), ("MSH0002",), check)
