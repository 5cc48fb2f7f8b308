"""Access-log filter expressions (CEL) that cannot parse: unbalanced quotes, parentheses or brackets.

Envoy compiles the expression when it loads the listener; a parse error rejects the access-log
configuration. This is a lexical check, not a CEL type checker: it catches the mistakes YAML quoting
produces (a `"` swallowed by the YAML scalar, a missing `)`), nothing subtler.
"""

from __future__ import annotations

from meshctl.lint.context import LintContext, Rule, mapping, seq

_PAIRS = {")": "(", "]": "[", "}": "{"}


def cel_problem(expr: str) -> str | None:
    stack: list[tuple[str, int]] = []
    i = 0
    n = len(expr)
    while i < n:
        ch = expr[i]
        if ch in "\"'":
            triple = expr[i:i + 3] == ch * 3
            quote = ch * 3 if triple else ch
            j = i + len(quote)
            while j < n:
                if expr[j] == "\\":
                    j += 2
                    continue
                if expr.startswith(quote, j):
                    break
                if not triple and expr[j] == "\n":
                    j = n
                    break
                j += 1
            if j >= n:
                return f"the string starting at character {i + 1} is not closed"
            i = j + len(quote)
            continue
        if ch in "([{":
            stack.append((ch, i))
        elif ch in ")]}":
            if not stack or stack[-1][0] != _PAIRS[ch]:
                return f"unexpected {ch!r} at character {i + 1}"
            stack.pop()
        i += 1
    if stack:
        ch, pos = stack[-1]
        return f"{ch!r} at character {pos + 1} is never closed"
    if not expr.strip():
        return "the expression is empty"
    return None


def check(ctx: LintContext) -> None:
    for doc in ctx.istio("Telemetry"):
        for i, entry in enumerate(seq(doc.spec.get("accessLogging"))):
            expr = mapping(mapping(entry).get("filter")).get("expression")
            if isinstance(expr, str):
                problem = cel_problem(expr)
                if problem:
                    ctx.report("MSH0305", doc, ("spec", "accessLogging", i, "filter", "expression"),
                               section=f"accessLogging[{i}]", problem=problem)


RULE = Rule("telemetry.AccessLogFilter", "Checks that access-log filter CEL expressions are lexically well formed.",
            ("Telemetry",), ("MSH0305",), check)
