"""Filter expressions over requests-table columns, for custom canary metrics.

The syntax is a small, safe subset of Python expressions, evaluated vectorized (pyarrow compute):

    response_code >= 500
    method == "POST" and path.startswith("/api/checkout")
    route == "GET /reviews/{id}" or grpc_status not in [0, 5]
    match(user_agent, "^curl/") and not isnull(upstream_host)
    error                                   # meshctl's error definition (5xx, gRPC non-OK, flags)

Names are requests-table columns or the derived columns `error` (bool) and `route` (method and path
template). Comparisons with a null value never match. Functions: startswith, endswith, contains,
match (regular expression), isnull, notnull, lower; `x in [...]`, `x not in [...]`; and, or, not.
Anything else (attributes, subscripts, arbitrary calls) is rejected when the config is read.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any

from analyzers.table import COLUMN_NAMES

DERIVED = ("error", "route")
_FUNCS = {"startswith", "endswith", "contains", "match", "isnull", "notnull", "lower"}


class ExprError(ValueError):
    pass


@dataclass(frozen=True)
class Expr:
    text: str
    tree: ast.expr

    @property
    def columns(self) -> set[str]:
        callees = {id(n.func) for n in ast.walk(self.tree) if isinstance(n, ast.Call)}
        return {n.id for n in ast.walk(self.tree) if isinstance(n, ast.Name) and id(n) not in callees}


def parse_expr(text: str) -> Expr:
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as exc:
        raise ExprError(f"invalid expression {text!r}: {exc.msg} at column {exc.offset}") from None
    _check(tree, text)
    return Expr(text, tree)


def _check(node: ast.AST, text: str) -> None:
    ok = (ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub, ast.Compare, ast.Eq, ast.NotEq, ast.Lt,
          ast.LtE, ast.Gt, ast.GtE, ast.In, ast.NotIn, ast.Name, ast.Constant, ast.List, ast.Tuple, ast.Load,
          ast.Call, ast.Attribute)
    callees = {id(n.func) for n in ast.walk(node) if isinstance(n, ast.Call)}
    for n in ast.walk(node):
        if not isinstance(n, ok):
            raise ExprError(f"{type(n).__name__} is not allowed in a filter expression: {text!r}")
        if isinstance(n, ast.Name) and id(n) not in callees and n.id not in COLUMN_NAMES and n.id not in DERIVED:
            from analyzers.canary.config import _close

            hint = _close(n.id, [*COLUMN_NAMES, *DERIVED])
            raise ExprError(f"unknown column {n.id!r}" + (f" (did you mean {hint!r}?)" if hint else "")
                            + f" in {text!r}")
        if isinstance(n, ast.Call):
            fname = n.func.attr if isinstance(n.func, ast.Attribute) else getattr(n.func, "id", None)
            if fname not in _FUNCS or n.keywords:
                raise ExprError(f"unknown function {fname!r} in {text!r}; allowed: {', '.join(sorted(_FUNCS))}")
            if isinstance(n.func, ast.Attribute) and not isinstance(n.func.value, ast.Name):
                raise ExprError(f"methods apply to a column name only: {text!r}")
        if isinstance(n, ast.Attribute) and id(n) not in callees:
            raise ExprError(f"attributes are not allowed (only column.method(...) calls): {text!r}")
        if isinstance(n, ast.Constant) and not isinstance(n.value, (str, int, float, bool, type(None))):
            raise ExprError(f"unsupported literal {n.value!r} in {text!r}")


def to_arrow(expr: Expr) -> Any:
    """The expression as a pyarrow compute Expression over the table's columns (derived columns
    must have been added to the table under their names)."""
    import pyarrow.compute as pc

    def lit(node: ast.expr) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, (ast.List, ast.Tuple)):
            return [lit(e) for e in node.elts]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -lit(node.operand)
        raise ExprError(f"expected a literal in {expr.text!r}")

    def is_lit(node: ast.expr) -> bool:
        return isinstance(node, (ast.Constant, ast.List, ast.Tuple)) or (
            isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub))

    def val(node: ast.expr) -> Any:
        if isinstance(node, ast.Name):
            return pc.field(node.id)
        if is_lit(node):
            v = lit(node)
            # A literal operand becomes a scalar expression so it can stand on either side of a comparison.
            return pc.scalar(v) if v is not None and not isinstance(v, list) else v
        return conv(node)

    def call(node: ast.Call) -> Any:
        if isinstance(node.func, ast.Attribute):
            name = node.func.attr
            args = [node.func.value, *node.args]
        else:
            name = node.func.id  # type: ignore[attr-defined]
            args = list(node.args)
        want = 1 if name in ("isnull", "notnull", "lower") else 2
        if len(args) != want:
            raise ExprError(f"{name}() takes {want} argument(s) in {expr.text!r}")
        subject = val(args[0])
        if name == "isnull":
            return pc.is_null(subject)
        if name == "notnull":
            return pc.is_valid(subject)
        if name == "lower":
            return pc.utf8_lower(subject)
        pattern = lit(args[1])
        if not isinstance(pattern, str):
            raise ExprError(f"{name}() needs a string pattern in {expr.text!r}")
        if name == "match":
            import re

            try:
                re.compile(pattern)
            except re.error as exc:
                raise ExprError(f"invalid regular expression {pattern!r}: {exc}") from None
            return pc.match_substring_regex(subject, pattern=pattern)
        fn = {"startswith": pc.starts_with, "endswith": pc.ends_with, "contains": pc.match_substring}[name]
        return fn(subject, pattern=pattern)

    def compare(left: Any, op: ast.cmpop, right_node: ast.expr) -> Any:
        if isinstance(op, (ast.In, ast.NotIn)):
            values = lit(right_node)
            if not isinstance(values, list):
                raise ExprError(f"`in` needs a list such as [500, 503] in {expr.text!r}")
            res = pc.is_in(left, value_set=_value_set(values))
            # Null never matches, in either form.
            return pc.and_kleene(pc.invert(res), pc.is_valid(left)) if isinstance(op, ast.NotIn) else res
        right = val(right_node)
        if right is None:
            if isinstance(op, ast.Eq):
                return pc.is_null(left)
            if isinstance(op, ast.NotEq):
                return pc.is_valid(left)
            raise ExprError(f"only == and != compare with None in {expr.text!r}")
        fn = {ast.Eq: pc.equal, ast.NotEq: pc.not_equal, ast.Lt: pc.less, ast.LtE: pc.less_equal,
              ast.Gt: pc.greater, ast.GtE: pc.greater_equal}[type(op)]
        return fn(left, right)

    def conv(node: ast.expr) -> Any:
        if isinstance(node, ast.BoolOp):
            parts = [conv(v) for v in node.values]
            out = parts[0]
            for p in parts[1:]:
                out = pc.and_kleene(out, p) if isinstance(node.op, ast.And) else pc.or_kleene(out, p)
            return out
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return pc.invert(conv(node.operand))
        if isinstance(node, ast.Compare):
            left = val(node.left)
            out = None
            for op, right in zip(node.ops, node.comparators, strict=True):
                part = compare(left, op, right)
                out = part if out is None else pc.and_kleene(out, part)
                left = val(right)
            return out
        if isinstance(node, ast.Call):
            return call(node)
        if isinstance(node, ast.Name):
            return pc.field(node.id)  # a boolean column (error)
        if isinstance(node, ast.Constant) and isinstance(node.value, bool):
            return pc.scalar(node.value)
        raise ExprError(f"not a condition: {ast.unparse(node)!r} in {expr.text!r}")

    return conv(expr.tree)


def _value_set(values: list[Any]) -> Any:
    import pyarrow as pa

    if all(isinstance(v, str) for v in values):
        return pa.array(values, pa.string())
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return pa.array(values, pa.int64())
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return pa.array([float(v) for v in values], pa.float64())
    raise ExprError(f"a list mixes types: {values!r}")


def evaluate(expr: Expr, table: Any) -> Any:
    """Boolean numpy mask (null counts as false) of the expression over an Arrow table."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.dataset as ds

    try:
        res = ds.dataset(table).to_table(columns={"m": to_arrow(expr)}).column("m")
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        raise ExprError(f"cannot evaluate {expr.text!r}: {exc}") from None
    if not pa.types.is_boolean(res.type):
        raise ExprError(f"{expr.text!r} is not a condition (it gives {res.type})")
    return np.asarray(res.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)
