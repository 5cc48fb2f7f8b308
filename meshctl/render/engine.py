"""The template engine: sandboxed jinja2 in which every `{{ expression }}` is data, never YAML text.

Other commands render their own templates with it (they live in `templates/istio|linkerd`, shipped in
the wheel as `meshctl/templates`) and validate the result with `meshctl.validate`:

    from meshctl.render.engine import render_documents
    docs = render_documents("istio/destinationrule.yaml.j2", {"name": "reviews", "max_requests": 100})
    # -> [ {"apiVersion": ..., "kind": "DestinationRule", ...} ]   plain dicts / lists / scalars

    from meshctl.output import dump_yaml_stream
    print(dump_yaml_stream(docs))

How values stay data:
1. The jinja2 environment is a `SandboxedEnvironment` with `StrictUndefined` (a misspelled variable is
   an error, not an empty string) and no autoescape.
2. Its `finalize` hook encodes the value of every `{{ }}` expression as one YAML flow node: strings
   become double-quoted scalars with every line break, quote, backslash and non-printable character
   escaped; mappings and lists become flow collections of such nodes; numbers, booleans and None stay
   typed. Jinja never re-evaluates its output, so a value `"{{ 7*7 }}"` stays those nine characters.
3. The rendered text is parsed with `yaml.safe_load_all` (no tags, no objects) and callers re-emit the
   documents with `meshctl.output.dump_yaml_stream`, so the output is always well-formed YAML whatever
   a value contains: no value can add a key, a document or an anchor.

Rules for template authors (checked when a template is loaded, `TemplateError` otherwise):
- write each expression as a whole YAML node: `name: {{ name }}`, `- {{ item }}`, `{{ key }}: {{ v }}`;
- never quote an expression or glue it to other text (`"{{ x }}"`, `otel-{{ x }}`): build such strings
  in the expression (`{{ "otel-" ~ name }}`) or in Python;
- mappings and lists may be passed whole (`matchLabels: {{ selector }}`);
- never put an expression inside a block scalar (`|`, `>`).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from meshctl.errors import MeshctlError

__all__ = [
    "Engine",
    "TemplateError",
    "encode_node",
    "render_documents",
    "templates_dirs",
]


class TemplateError(MeshctlError):
    """A template is malformed or breaks the data-only rules (a bug in meshctl, or in a user template)."""


def templates_dirs() -> list[Path]:
    """Where templates are looked up, first match wins.

    `MESHCTL_TEMPLATES` (a directory laid out like `templates/`, to override single templates), then the
    wheel's `meshctl/templates`, then the source checkout's `templates/`.
    """
    here = Path(__file__).resolve().parent.parent  # meshctl/
    dirs: list[Path] = []
    env = os.environ.get("MESHCTL_TEMPLATES")
    if env:
        dirs.append(Path(env))
    for cand in (here / "templates", here.parent / "templates"):
        if cand.is_dir() and cand not in dirs:
            dirs.append(cand)
    return dirs


# ---- the finalize encoder -----------------------------------------------------------------------

# Characters PyYAML (and go-yaml) accept literally inside a double-quoted scalar. Everything else is
# escaped: C0/C1 controls, DEL, the YAML line breaks NEL/LS/PS, BOM, surrogates and non-characters.
_SAFE_CHAR = re.compile("[\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]")
_SHORT_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r", "\0": "\\0"}


def _quote(s: str) -> str:
    out = ['"']
    for ch in s:
        esc = _SHORT_ESCAPES.get(ch)
        if esc is not None:
            out.append(esc)
        elif _SAFE_CHAR.match(ch):
            out.append(ch)
        else:
            cp = ord(ch)
            out.append(f"\\x{cp:02x}" if cp < 0x100 else f"\\u{cp:04x}" if cp < 0x10000 else f"\\U{cp:08x}")
    out.append('"')
    return "".join(out)


def _float(f: float) -> str:
    if not math.isfinite(f):
        raise TemplateError(f"refusing to render a non-finite number ({f!r})")
    r = repr(f)
    # YAML 1.1 (PyYAML, kubectl's go-yaml v2) only reads a float when it has a dot: 1e-07 -> 1.0e-07.
    if "." not in r:
        mant, _, exp = r.partition("e")
        r = f"{mant}.0" + (f"e{exp}" if exp else "")
    return r


def encode_node(value: Any) -> str:
    """One YAML flow node that `yaml.safe_load` reads back as exactly `value`."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, Mapping):
        items = []
        for k, v in value.items():
            if not isinstance(k, str):
                raise TemplateError(f"mapping keys must be strings, got {type(k).__name__} {k!r}")
            items.append(f"{_quote(k)}: {encode_node(v)}")
        return "{" + ", ".join(items) + "}"
    if isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
        return "[" + ", ".join(encode_node(v) for v in value) + "]"
    raise TemplateError(f"cannot render a value of type {type(value).__name__} ({value!r}) as YAML data")


# ---- the template source check -----------------------------------------------------------------

_EXPR = re.compile(r"\{\{.*?\}\}")
# What may stand right before / after an expression so that it is a whole YAML node.
_BEFORE = re.compile(r"(^\s*(-\s+)*|:\s+|\[\s*|,\s*|\{\s*|-\s+)$")
_AFTER = re.compile(r"^(\s*$|\s*#|:(\s|$)|\s*,|\s*\]|\s*\})")


def check_template_source(source: str, name: str) -> None:
    """Reject templates that would glue a value into a larger scalar (see the module docstring)."""
    in_block: int | None = None  # indentation of a block scalar's parent line
    for lineno, line in enumerate(source.splitlines(), start=1):
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if in_block is not None:
            if stripped and indent <= in_block and not stripped.startswith("{%"):
                in_block = None
            elif "{{" in line:
                raise TemplateError("expression inside a block scalar", file=name, line=lineno)
        if stripped.startswith("{#") or stripped.startswith("{%"):
            continue
        for m in _EXPR.finditer(line):
            before, after = line[: m.start()], line[m.end():]
            if not _BEFORE.search(before) or not _AFTER.match(after):
                raise TemplateError(
                    f"expression {m.group(0)!r} is not a whole YAML node (quoted or glued to text)",
                    file=name, line=lineno,
                    hint="write `key: {{ value }}`; build composite strings inside the expression",
                )
        if re.search(r":\s*[|>][-+0-9]*\s*$", line):
            in_block = indent


# ---- the environment ---------------------------------------------------------------------------


class Engine:
    """A sandboxed jinja2 environment over template directories; `render()` returns parsed documents."""

    def __init__(self, search_path: Sequence[str | os.PathLike[str]] | None = None) -> None:
        from jinja2 import FileSystemLoader, StrictUndefined
        from jinja2.sandbox import SandboxedEnvironment

        dirs = [Path(p) for p in search_path] if search_path is not None else templates_dirs()
        if not dirs:
            raise TemplateError("no template directory found (meshctl/templates or templates/)")
        self.search_path = dirs

        engine = self

        class _Loader(FileSystemLoader):
            def get_source(self, environment, template):  # type: ignore[no-untyped-def]
                source, filename, uptodate = super().get_source(environment, template)
                engine._check(source, filename or template)
                return source, filename, uptodate

        from jinja2 import Undefined

        def finalize(value: Any) -> str:
            if isinstance(value, Undefined):
                str(value)  # StrictUndefined raises UndefinedError naming the variable
            return encode_node(value)

        self.env = SandboxedEnvironment(
            loader=_Loader([str(d) for d in dirs]),
            undefined=StrictUndefined,
            autoescape=False,
            finalize=finalize,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )

    @staticmethod
    def _check(source: str, name: str) -> None:
        check_template_source(source, name)

    def render_text(self, template: str, context: Mapping[str, Any]) -> str:
        """The intermediate YAML text (values already encoded as flow nodes)."""
        from jinja2 import TemplateNotFound, TemplateSyntaxError, UndefinedError
        from jinja2.exceptions import SecurityError

        try:
            return self.env.get_template(template).render(**dict(context))
        except TemplateNotFound as exc:
            raise TemplateError(f"template not found: {template} (searched {', '.join(map(str, self.search_path))})") from exc
        except TemplateSyntaxError as exc:
            raise TemplateError(f"template syntax error: {exc.message}", file=exc.filename or template, line=exc.lineno) from exc
        except UndefinedError as exc:
            raise TemplateError(f"undefined value in template {template}: {exc.message}") from exc
        except SecurityError as exc:
            raise TemplateError(f"template {template} tried an unsafe operation: {exc}") from exc

    def render(self, template: str, context: Mapping[str, Any]) -> list[Any]:
        """Render `template` with `context` and parse it: a list of documents (empty ones dropped)."""
        import yaml

        text = self.render_text(template, context)
        try:
            docs = list(yaml.safe_load_all(text))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            raise TemplateError(
                f"template {template} rendered invalid YAML: {getattr(exc, 'problem', exc)}",
                file=template, line=(mark.line + 1) if mark else None,
            ) from exc
        return [d for d in docs if d is not None]


@lru_cache(maxsize=4)
def _default_engine(key: tuple[str, ...]) -> Engine:
    return Engine([Path(p) for p in key])


def render_documents(template: str, context: Mapping[str, Any], *, search_path: Sequence[str | os.PathLike[str]] | None = None) -> list[Any]:
    """Render a template (path relative to the templates directory, e.g. `istio/telemetry.yaml.j2`)."""
    dirs = [str(p) for p in (search_path if search_path is not None else templates_dirs())]
    return _default_engine(tuple(dirs)).render(template, context)
