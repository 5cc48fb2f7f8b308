"""Where a field is in a YAML (or JSON) text: the 1-based line of a path such as
`metrics[2].effectSize.allowedIncrease`, so that errors about config files can name the line.

Used by every command that reads a config file (values files, canary configs, --current limits).
"""

from __future__ import annotations

import re
from typing import Any

_PART = re.compile(r"[^.\[\]$]+|\[\d+\]")


def node_line(node: Any, field: str | None) -> int | None:
    """The line of `field` inside a composed YAML node: the deepest part of the path that exists."""
    if node is None:
        return None
    line = node.start_mark.line + 1
    for part in _PART.findall(field or ""):
        kind = getattr(node, "id", "")
        if part.startswith("[") and kind == "sequence":
            i = int(part[1:-1])
            if i >= len(node.value):
                break
            node = node.value[i]
        elif kind == "mapping":
            hit = next((v for k, v in node.value if getattr(k, "value", None) == part), None)
            if hit is None:
                break
            node = hit
        else:
            break
        line = node.start_mark.line + 1
    return line


def text_line(text: str, field: str | None) -> int | None:
    """The line of `field` in the first document of a YAML/JSON text (None when unparseable)."""
    if not field:
        return None
    import yaml

    try:
        return node_line(yaml.compose(text, Loader=yaml.SafeLoader), field)
    except yaml.YAMLError:
        return None


def line_index(text: str) -> dict[tuple[str, ...], int]:
    """Key path -> 1-based line of every key and list item of a YAML mapping document (best effort)."""
    import yaml

    index: dict[tuple[str, ...], int] = {}
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return index

    def walk(node: Any, path: tuple[str, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                key = str(k.value)
                index[(*path, key)] = k.start_mark.line + 1
                walk(v, (*path, key))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                index[(*path, str(i))] = item.start_mark.line + 1
                walk(item, (*path, str(i)))

    if root is not None:
        walk(root, ())
    return index
