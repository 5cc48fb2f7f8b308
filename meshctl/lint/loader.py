"""YAML input for `meshctl lint`: documents with their source file and the line of every field.

A stream is split at its `---` separators and each document is parsed on its own, so one document
with a syntax error is reported (file, line, problem) while the documents around it are still
checked. Every mapping key and sequence item gets its 1-based line, so a finding can point at the
field it is about. Values are read as Go's YAML reads them (`meshctl.goyaml`). Mappings that repeat a
key are reported too: PyYAML keeps the last value, Go's YAML libraries (kubectl, istiod) refuse or keep
another one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from meshctl.goyaml import compose, node_key

Path = tuple[Any, ...]

_SEPARATOR = re.compile(r"^---(?:[ \t].*)?$")
_END = re.compile(r"^\.\.\.[ \t]*$")


@dataclass
class Document:
    """One parsed YAML document and where it came from."""

    file: str
    index: int  # 0-based position in its file
    line: int  # 1-based line of the document's first line (after any `---`)
    obj: Any
    lines: dict[Path, int] = field(default_factory=dict, repr=False)
    default_namespace: str = "default"

    def __post_init__(self) -> None:
        obj = self.obj if isinstance(self.obj, dict) else {}
        kind, api = obj.get("kind"), obj.get("apiVersion")
        self._kind = kind if isinstance(kind, str) else None
        self._api = api if isinstance(api, str) else ""

    # ---- identity --------------------------------------------------------------------------------
    @property
    def kind(self) -> str | None:
        return self._kind

    @property
    def api_version(self) -> str:
        return self._api

    @property
    def group(self) -> str:
        return self._api.rpartition("/")[0] if "/" in self._api else ""

    @property
    def metadata(self) -> Mapping[str, Any]:
        m = self.obj.get("metadata") if isinstance(self.obj, Mapping) else None
        return m if isinstance(m, Mapping) else {}

    @property
    def name(self) -> str | None:
        n = self.metadata.get("name")
        return str(n) if n is not None else None

    @property
    def namespace(self) -> str:
        """metadata.namespace, else the namespace kubectl would use (-n, or "default")."""
        ns = self.metadata.get("namespace")
        return str(ns) if ns else self.default_namespace

    @property
    def spec(self) -> Mapping[str, Any]:
        s = self.obj.get("spec") if isinstance(self.obj, Mapping) else None
        return s if isinstance(s, Mapping) else {}

    @property
    def is_resource(self) -> bool:
        return self.kind is not None and bool(self.api_version)

    @property
    def resource(self) -> str:
        if self.is_resource:
            return f"{self.kind} {self.namespace}/{self.name}"
        return f"document {self.index + 1} of {self.file}"

    # ---- lines -------------------------------------------------------------------------------------
    def line_of(self, path: Path = ()) -> int:
        """Line of the deepest recorded prefix of `path` (the document start if none)."""
        path = tuple(path)
        while path:
            line = self.lines.get(path)
            if line is not None:
                return line
            path = path[:-1]
        return self.lines.get((), self.line)

    def get(self, path: Path, default: Any = None) -> Any:
        cur = self.obj
        for p in path:
            found = (isinstance(cur, Mapping) and p in cur) or (
                isinstance(cur, list) and isinstance(p, int) and -len(cur) <= p < len(cur))
            if not found:
                return default
            cur = cur[p]
        return cur


@dataclass
class SyntaxProblem:
    file: str
    line: int
    column: int | None
    problem: str
    document: int  # 0-based index in the file


@dataclass
class DuplicateKey:
    doc: Document
    path: Path
    key: str
    first_line: int
    line: int


@dataclass
class Loaded:
    documents: list[Document] = field(default_factory=list)
    syntax: list[SyntaxProblem] = field(default_factory=list)
    duplicate_keys: list[DuplicateKey] = field(default_factory=list)


def split_documents(text: str) -> Iterator[tuple[int, str]]:
    """(0-based first line, text) of each document of a YAML stream, split at `---` / `...` lines."""
    lines = text.splitlines(keepends=True)
    start, buf = 0, []
    for i, ln in enumerate(lines):
        bare = ln.rstrip("\r\n")
        if _SEPARATOR.match(bare) or _END.match(bare):
            if buf:
                yield start, "".join(buf)
            # Content after `--- ` on the same line (`--- !tag`, `--- |`) stays with its document.
            rest = bare[3:].strip() if bare.startswith("---") else ""
            buf = [ln] if rest and not rest.startswith("#") else []
            start = i if buf else i + 1
            continue
        if not buf:
            start = i
        buf.append(ln)
    if buf:
        yield start, "".join(buf)


def _blank(text: str) -> bool:
    return all(not ln.strip() or ln.lstrip().startswith("#") or ln.startswith("%") for ln in text.splitlines())


def parse_text(text: str, file: str, *, default_namespace: str = "default", line_offset: int = 0,
               first_index: int = 0) -> Loaded:
    """Parse a YAML stream. Syntax errors and duplicate keys are returned, not raised."""
    import yaml

    out = Loaded()
    index = first_index
    for start, chunk in split_documents(text):
        if _blank(chunk):
            continue
        try:
            node, obj = compose(chunk)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = line_offset + start + (mark.line + 1 if mark else 1)
            col = mark.column + 1 if mark else None
            out.syntax.append(SyntaxProblem(file, line, col, _describe(exc, line_offset + start), index))
            index += 1
            continue
        except yaml.YAMLError as exc:  # e.g. a reader error: bad characters
            out.syntax.append(SyntaxProblem(file, line_offset + start + 1, None, str(exc).splitlines()[0], index))
            index += 1
            continue
        if node is None:
            continue
        doc = Document(file=file, index=index, line=line_offset + start + 1, obj=obj,
                       default_namespace=default_namespace)
        dups: list[tuple[Path, str, int, int]] = []
        _record_lines(node, obj, (), doc.lines, line_offset + start, dups)
        out.duplicate_keys += [DuplicateKey(doc, p, k, a, b) for p, k, a, b in dups]
        out.documents.append(doc)
        index += 1
    return out


def _describe(exc: Any, offset: int) -> str:
    problem = (exc.problem or "").strip() or str(exc).splitlines()[0]
    if exc.context:
        ctx = exc.context.strip()
        if exc.context_mark is not None and exc.problem_mark is not None and exc.context_mark.line != exc.problem_mark.line:
            ctx += f" started at line {offset + exc.context_mark.line + 1}"
        return f"{problem} ({ctx})"
    return problem


def _record_lines(node: Any, data: Any, path: Path, lines: dict[Path, int], offset: int,
                  dups: list[tuple[Path, str, int, int]]) -> None:
    """Walk the node tree next to the constructed data, recording the line of every path."""
    import yaml

    lines.setdefault(path, offset + node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode) and isinstance(data, Mapping):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            if getattr(key_node, "tag", "") == "tag:yaml.org,2002:merge":
                continue
            key = node_key(key_node, data)
            line = offset + key_node.start_mark.line + 1
            if key in seen:
                dups.append((path, str(key), seen[key], line))
                continue
            seen[key] = line
            sub = (*path, key)
            lines[sub] = line
            if key in data:
                _record_lines(value_node, data[key], sub, lines, offset, dups)
    elif isinstance(node, yaml.SequenceNode) and isinstance(data, list):
        for i, (item_node, item) in enumerate(zip(node.value, data, strict=False)):
            lines[(*path, i)] = offset + item_node.start_mark.line + 1
            _record_lines(item_node, item, (*path, i), lines, offset, dups)


@lru_cache(maxsize=4)
def _lines(text: str) -> list[str]:
    return text.splitlines()


def block_scalar_offset(text: str, doc: Document, path: Path) -> int | None:
    """0-based file line just before the content of the block scalar at `path` (`key: |`), so that an
    embedded document's line n is at file line offset+n. None when the value is not a block scalar."""
    key_line = doc.lines.get(tuple(path))
    if key_line is None:
        return None
    all_lines = _lines(text)
    if key_line - 1 >= len(all_lines):
        return None
    head = all_lines[key_line - 1]
    after = head.split(":", 1)[1].strip() if ":" in head else ""
    if after[:1] in ("|", ">"):
        return key_line  # content starts on the next line
    return None


def parse_path(text: str) -> Path:
    """`$.spec.configPatches[0]['a.b']` -> ('spec', 'configPatches', 0, 'a.b')."""
    out: list[Any] = []
    i = 1 if text.startswith("$") else 0
    while i < len(text):
        ch = text[i]
        if ch == ".":
            j = i + 1
            while j < len(text) and text[j] not in ".[":
                j += 1
            out.append(text[i + 1:j])
            i = j
        elif ch == "[":
            j = text.index("]", i) if "]" in text[i:] else len(text)
            inner = text[i + 1:j]
            if inner.isdigit():
                out.append(int(inner))
            else:
                out.append(inner.strip("'\""))
            i = j + 1
        else:
            i += 1
    return tuple(out)
