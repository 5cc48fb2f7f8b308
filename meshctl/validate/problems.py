"""A validation finding: which object, where in it (JSON path), why, and which check found it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True)
class Problem:
    object: str  # "Telemetry istio-system/mesh-default"
    path: str  # "$.spec.tracing[0].randomSamplingPercentage"
    reason: str
    check: str  # "schema", "envoy-types", "envoy", "values"
    severity: str = ERROR
    source: str | None = None  # where the schema / verdict came from

    def __str__(self) -> str:
        where = f"{self.object}: {self.path}" if self.path else self.object
        return f"{self.severity}: {where}: {self.reason} [{self.check}]"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def json_path(parts: Iterable[Any]) -> str:
    """`['spec', 'tracing', 0, 'x']` -> `$.spec.tracing[0].x` (keys that are not identifiers are quoted)."""
    out = "$"
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        elif isinstance(p, str) and p.replace("_", "a").replace("-", "a").isalnum() and not p[:1].isdigit():
            out += f".{p}"
        else:
            out += "[" + repr(str(p)) + "]"
    return out


def object_name(obj: Any) -> str:
    """`Kind namespace/name` for a Kubernetes-shaped object, a short description otherwise."""
    if not isinstance(obj, Mapping):
        return f"document ({type(obj).__name__})"
    kind = obj.get("kind")
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), Mapping) else {}
    name = meta.get("name") or meta.get("generateName")
    if kind:
        ns = meta.get("namespace")
        return f"{kind} {ns}/{name}" if ns and name else f"{kind} {name}" if name else str(kind)
    return "document"


def has_errors(problems: Iterable[Problem]) -> bool:
    return any(p.severity == ERROR for p in problems)


def refuse_invalid(problems: Sequence[Problem], *, hint: str) -> None:
    """Print every problem on stderr; raise ValidationError (exit 1, nothing written) if any is an error."""
    import click

    from meshctl.errors import ValidationError

    for p in problems:
        click.echo(str(p), err=True)
    n = sum(1 for p in problems if p.severity == ERROR)
    if n:
        raise ValidationError(f"{n} validation error{'s' if n != 1 else ''}; nothing written", hint=hint)
