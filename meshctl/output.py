"""Output writers shared by every command: YAML streams, JSON, rich tables, files or stdout.

Values always go into YAML as data through a YAML emitter, never by text substitution. Strings that
a YAML 1.1 parser (PyYAML, go-yaml v2 used by kubectl) or a YAML 1.2 parser could read as something
else are double-quoted: bool-like words (`on`, `yes`), numbers, sexagesimals, IPv6-like values with
`:`, `%OPERATOR%` Envoy format strings, and anything starting with a YAML indicator.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TextIO

_BOOLISH = {
    "y", "n", "yes", "no", "on", "off", "true", "false", "null", "~", "",
}
_NUMBERISH = re.compile(
    r"""^[-+]?(
        \d[\d_]*(\.\d*)?([eE][-+]?\d+)?     # decimal, 1_000, 1e3
       |\.\d+([eE][-+]?\d+)?
       |0[xX][0-9a-fA-F_]+ | 0[oO][0-7_]+ | 0[bB][01_]+
       |\.(inf|Inf|INF|nan|NaN|NAN)
       |[1-9][\d_]*(:[0-5]?\d)+(\.\d*)?    # YAML 1.1 sexagesimal
    )$""",
    re.VERBOSE,
)
_INDICATOR_START = set("-?:,[]{}#&*!|>'\"%@`")


def _needs_quotes(s: str) -> bool:
    if s.lower() in _BOOLISH or _NUMBERISH.match(s):
        return True
    if s[0] in _INDICATOR_START or s[0].isspace() or s[-1].isspace():
        return True
    return ":" in s or " #" in s or "\t" in s


def _yaml():
    import yaml

    class Dumper(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:  # never emit anchors/aliases
            return True

        def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
            # Indent block sequences under their key, as kubectl and istioctl print them.
            super().increase_indent(flow, False)

    def represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
        if "\n" in data and not any(c in data for c in "\r\x85\u2028\u2029") and data == data.strip(" \t"):
            return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
        # Other line breaks (CR, NEL, LS, PS) would be folded in plain or single-quoted style: escape them.
        breaks = any(c in data for c in "\n\r\x85\u2028\u2029")
        style = '"' if breaks or _needs_quotes(data) else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)

    def represent_float(dumper: yaml.SafeDumper, data: float) -> yaml.Node:
        if math.isfinite(data) and data == int(data) and abs(data) < 2**53:
            return dumper.represent_scalar("tag:yaml.org,2002:float", f"{data:.1f}")
        return yaml.SafeDumper.represent_float(dumper, data)

    Dumper.add_representer(str, represent_str)
    Dumper.add_representer(float, represent_float)
    return yaml, Dumper


def dump_yaml(obj: Any) -> str:
    """One YAML document, block style, keys in insertion order, no anchors."""
    yaml, dumper = _yaml()
    return yaml.dump(obj, Dumper=dumper, sort_keys=False, default_flow_style=False, allow_unicode=True, width=4096)


def dump_yaml_stream(docs: Iterable[Any], comments: Sequence[str | None] | None = None) -> str:
    """A multi-document stream (`---` separated), each optionally preceded by `# comment` lines."""
    out: list[str] = []
    for i, doc in enumerate(docs):
        head = ""
        if comments and i < len(comments) and comments[i]:
            head = "".join(f"# {line}\n" if line else "#\n" for line in comments[i].splitlines())
        out.append("---\n" + head + dump_yaml(doc))
    return "".join(out)


def dump_json(obj: Any, *, indent: int | None = 2) -> str:
    return json.dumps(obj, indent=indent, default=_json_default, ensure_ascii=False) + "\n"


def _json_default(o: Any) -> Any:
    # numpy scalars, pandas timestamps, dataclasses and paths, without importing those libraries here.
    if hasattr(o, "item") and callable(o.item):
        return o.item()
    if hasattr(o, "isoformat"):
        return o.isoformat()
    if hasattr(o, "__dataclass_fields__"):
        import dataclasses

        return dataclasses.asdict(o)
    if isinstance(o, (set, frozenset, tuple)):
        return sorted(o) if isinstance(o, (set, frozenset)) else list(o)
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serializable: {type(o).__name__}")


def write_text(text: str, path: str | Path | None = None) -> None:
    """Write to a file, or to stdout when path is None or '-'."""
    if path is None or str(path) == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text, encoding="utf-8")


def console(stderr: bool = False, file: TextIO | None = None, width: int | None = None):
    """A rich Console (imported lazily: rich costs ~25 ms). `width` overrides rich's guess (80 columns
    when the output is not a terminal)."""
    from rich.console import Console

    return Console(file=file, stderr=stderr, soft_wrap=False, width=width)


def print_table(
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    title: str | None = None,
    caption: str | None = None,
    file: TextIO | None = None,
    width: int | None = None,
    to: Any = None,
) -> None:
    """A rich table on stdout; numbers right-aligned, None shown as '-'. `width`: see console().
    `to`: print on this rich Console instead (e.g. one recording the output for a screenshot).
    Cells are plain text, never rich markup: a value such as `[/tmp/x]` (a path, a rejected log
    line) is shown as it is."""
    from rich.table import Table
    from rich.text import Text

    rows = list(rows)
    table = Table(title=title, caption=caption, show_lines=False, header_style="bold")
    for i, col in enumerate(columns):
        numeric = bool(rows) and all(isinstance(r[i], (int, float)) or r[i] is None for r in rows)
        table.add_column(col, justify="right" if numeric else "left", overflow="fold")
    for r in rows:
        table.add_row(*(Text(_cell(v)) for v in r))
    (to or console(file=file, width=width)).print(table)


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if math.isnan(v):
            return "-"
        return f"{v:.4g}" if abs(v) < 1e6 else f"{v:,.0f}"
    return str(v)


def progress(transient: bool = True):
    """A rich progress display on stderr for long work (collect, demo)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    return Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        console=console(stderr=True),
        transient=transient,
    )
