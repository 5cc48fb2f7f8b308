"""Compile an Envoy access-log format string into a parser plan.

Envoy formats are literal text with command operators `%OPERATOR%`, `%OPERATOR(arg)%` and
`%OPERATOR(arg):N%` (N truncates the value). Istio's `meshConfig.accessLogFormat`, Envoy's default
format and any custom format compile the same way:

    fmt = compile_format('[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" ...')

The compiled format carries three ways to read a line, fastest first:
- a *CSV plan*: most formats are space-separated tokens where multi-word values sit in double quotes,
  which is exactly what Arrow's multi-threaded CSV reader parses at hundreds of MB/s; each CSV column
  is then a single operator, an operator with literal affixes (`[%START_TIME%]`), or a few operators
  split on spaces inside one quoted token;
- a strict regular expression (`[^"]*` inside quotes, `\\S*`-like elsewhere), RE2-compatible so that
  Arrow can run it vectorized when there is no CSV plan;
- a loose regular expression (lazy groups) for the odd line with a quote or space inside a value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from meshctl.errors import InputError
from meshctl.parsers.fields import Field, operator_field

ENVOY_DEFAULT_FORMAT = (
    '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" '
    "%RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% "
    '%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" '
    '"%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%"\n'
)

# Istio's default TEXT format (pilot/pkg/model/telemetry_logging.go, EnvoyTextLogFormat; Istio >= 1.9).
ISTIO_DEFAULT_FORMAT = (
    '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" '
    "%RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% "
    '"%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% '
    '%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" '
    '"%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER_RAW% '
    "%UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% "
    "%REQUESTED_SERVER_NAME% %ROUTE_NAME%\n"
)

_OP_RE = re.compile(r"%([A-Z][A-Z0-9_]*)(?:\((.*?)\))?(?::(\d+))?%")
_META = set(".^$*+?()[]{}|\\/")


def rx_escape(text: str) -> str:
    """Escape for both Python `re` and RE2 (Python's re.escape writes `\\ ` which RE2 rejects)."""
    return "".join("\\" + c if c in _META else c for c in text)


@dataclass(frozen=True)
class Operator:
    name: str
    arg: str | None
    maxlen: int | None
    text: str  # as written, e.g. %REQ(:METHOD)%

    @property
    def field(self) -> Field | None:
        return operator_field(self.name, self.arg)


Part = "str | Operator"


@dataclass
class CsvColumn:
    """How one space-separated CSV column maps back to operators.

    mode: skip (literal only) | direct (one operator) | affix (literal prefix/suffix) |
          split (operators separated by single spaces) | regex (anything else, vectorized RE2)
    """

    mode: str
    ops: list[int] = field(default_factory=list)  # operator indexes, in order
    prefix: str = ""
    suffix: str = ""
    literal: str = ""  # for skip: the literal text the column must hold
    regex: str | None = None  # for regex mode (named groups f<index>)


@dataclass
class CompiledFormat:
    source: str
    name: str
    parts: list[str | Operator]
    operators: list[Operator]
    strict: re.Pattern[str]
    loose: re.Pattern[str]
    strict_rx: str  # RE2-compatible source of `strict`
    csv: list[CsvColumn] | None
    quotes: int = 0  # double quotes a line has when no value contains one (the CSV plan's guard)

    def fields(self) -> dict[str, Field]:
        """f<i> → Field for every operator that fills a requests-table (or auxiliary) column."""
        out = {}
        for i, op in enumerate(self.operators):
            f = op.field
            if f is not None:
                out[f"f{i}"] = f
        return out

    def match(self, line: str) -> dict[str, str] | None:
        """Values of the mapped operators in one line, or None when the line does not fit."""
        m = self.strict.match(line) or self.loose.match(line)
        if m is None:
            return None
        return m.groupdict()


def tokenize(fmt: str) -> list[str | Operator]:
    """Split a format string into literal strings and operators (`%%` is a literal percent)."""
    parts: list[str | Operator] = []
    pos = 0
    lit: list[str] = []
    while pos < len(fmt):
        if fmt.startswith("%%", pos):
            lit.append("%")
            pos += 2
            continue
        m = _OP_RE.match(fmt, pos) if fmt[pos] == "%" else None
        if m is None:
            lit.append(fmt[pos])
            pos += 1
            continue
        if lit:
            parts.append("".join(lit))
            lit = []
        parts.append(Operator(m.group(1), m.group(2), int(m.group(3)) if m.group(3) else None, m.group(0)))
        pos = m.end()
    if lit:
        parts.append("".join(lit))
    return parts


# strftime specifiers → what they print (START_TIME with a custom format may contain spaces).
_STRFTIME = {"Y": r"\d{4}", "m": r"\d\d", "d": r"\d\d", "H": r"\d\d", "M": r"\d\d", "S": r"\d\d",
             "y": r"\d\d", "j": r"\d{3}", "e": r"[ \d]\d", "z": r"[+-]\d{4}", "Z": r"[A-Za-z]+",
             "s": r"\d+", "f": r"\d+", "b": r"[A-Za-z]+", "a": r"[A-Za-z]+", "T": r"\d\d:\d\d:\d\d",
             "F": r"\d{4}-\d\d-\d\d", "p": r"[AP]M"}


def _time_rx(fmt: str) -> str:
    out = []
    i = 0
    while i < len(fmt):
        if fmt[i] == "%" and i + 1 < len(fmt):
            j = i + 1
            while j < len(fmt) and (fmt[j].isdigit() or fmt[j] == "E"):
                j += 1  # %3f, %Es
            spec = fmt[j] if j < len(fmt) else ""
            out.append(_STRFTIME.get(spec, r".+?") if spec != "%" else "%")
            i = j + 1
        else:
            out.append(rx_escape(fmt[i]))
            i += 1
    return "".join(out)


def _group(i: int, nxt: str | None, *, loose: bool, op: Operator | None = None) -> str:
    if op is not None and op.name == "START_TIME" and op.arg:
        return f"(?P<f{i}>{_time_rx(op.arg)}|-)"
    if loose:
        return f"(?P<f{i}>.*?)"
    if not nxt:
        return f"(?P<f{i}>.*)"
    c = nxt[0]
    cls = "\\" + c if c in "]\\^-" else c
    return f"(?P<f{i}>[^{cls}]*)"


def _regex(parts: list[str | Operator], *, loose: bool) -> str:
    out = ["^"]
    idx = 0
    for k, p in enumerate(parts):
        if isinstance(p, str):
            out.append(rx_escape(p))
            continue
        nxt = parts[k + 1] if k + 1 < len(parts) and isinstance(parts[k + 1], str) else None
        out.append(_group(idx, nxt, loose=loose, op=p))
        idx += 1
    out.append("$")
    return "".join(out)


def _csv_plan(parts: list[str | Operator]) -> list[CsvColumn] | None:
    """Columns of the format read as space-delimited CSV with `"` quoting, or None if it does not fit."""
    # Template with operator placeholders \x00<i>\x00, then split on spaces outside quotes.
    tpl: list[str] = []
    idx = 0
    for p in parts:
        if isinstance(p, str):
            if "\x00" in p:
                return None
            tpl.append(p)
        else:
            if p.name == "START_TIME" and p.arg and " " in p.arg:
                return None  # a value with spaces in an unquoted token: no CSV plan
            tpl.append(f"\x00{idx}\x00")
            idx += 1
    text = "".join(tpl)
    operators = [p for p in parts if isinstance(p, Operator)]
    tokens: list[str] = []
    cur: list[str] = []
    quoted = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == " " and not quoted:
            tokens.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    tokens.append("".join(cur))
    if quoted:
        return None
    columns: list[CsvColumn] = []
    for tok in tokens:
        is_quoted = tok.startswith('"')
        if is_quoted:
            if len(tok) < 2 or not tok.endswith('"') or '"' in tok[1:-1]:
                return None
            tok = tok[1:-1]
        elif '"' in tok:
            return None
        pieces = re.split(r"\x00(\d+)\x00", tok)  # literal, op, literal, op, ..., literal
        lits, ops = pieces[0::2], [int(x) for x in pieces[1::2]]
        if not ops:
            columns.append(CsvColumn("skip", literal=tok))
        elif len(ops) == 1:
            mode = "direct" if not lits[0] and not lits[1] else "affix"
            columns.append(CsvColumn(mode, ops, prefix=lits[0], suffix=lits[1]))
        elif is_quoted and all(lit == " " for lit in lits[1:-1]):
            columns.append(CsvColumn("split", ops, prefix=lits[0], suffix=lits[-1]))
        else:
            rx = ["^"]
            for k, lit in enumerate(lits):
                rx.append(rx_escape(lit))
                if k < len(ops):
                    nxt = lits[k + 1]
                    rx.append(_group(ops[k], nxt or None, loose=False, op=operators[ops[k]]))
            rx.append("$")
            columns.append(CsvColumn("regex", ops, regex="".join(rx)))
    return columns


@lru_cache(maxsize=64)
def compile_format(fmt: str, name: str = "envoy-format") -> CompiledFormat:
    """Compile an Envoy format string. Raises InputError if it cannot describe one log line."""
    source = fmt
    fmt = fmt[:-1] if fmt.endswith("\n") else fmt
    fmt = fmt.rstrip("\r")
    if "\n" in fmt:
        raise InputError("an access-log format string must describe one line (it contains a newline)",
                         field="--log-format-string")
    parts = tokenize(fmt)
    operators = [p for p in parts if isinstance(p, Operator)]
    if not operators:
        raise InputError(f"no Envoy command operator (%NAME%) in format string {source!r}",
                         field="--log-format-string")
    mapped = [op for op in operators if op.field is not None]
    if not mapped:
        names = ", ".join(op.text for op in operators[:5])
        raise InputError(f"format string has no operator meshctl can use ({names})",
                         field="--log-format-string",
                         hint="include at least one of %START_TIME%, %RESPONSE_CODE%, %REQ(:METHOD)%, ...")
    strict_rx = _regex(parts, loose=False)
    return CompiledFormat(
        source=source,
        name=name,
        parts=parts,
        operators=operators,
        strict=re.compile(strict_rx, re.DOTALL),
        loose=re.compile(_regex(parts, loose=True), re.DOTALL),
        strict_rx=strict_rx,
        csv=_csv_plan(parts),
        quotes=sum(p.count('"') for p in parts if isinstance(p, str)),
    )


def istio_text() -> CompiledFormat:
    return compile_format(ISTIO_DEFAULT_FORMAT, "istio-text")


def envoy_text() -> CompiledFormat:
    return compile_format(ENVOY_DEFAULT_FORMAT, "envoy-text")
