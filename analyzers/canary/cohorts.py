"""Baseline and canary cohorts from the requests table.

A cohort is the requests to one service whose *destination* identity matches a selector:
`version=v2`, `subset=canary`, `workload=reviews-v2`, `app=reviews`, `namespace=shop`,
`cluster=east`, `pod=reviews-v2-*` (a pod-name pattern, matched against the pod the row was read
from), or any requests-table column (`upstream_cluster=outbound|9080|v2|*`). Terms are joined with
commas (all must hold), values may use `*` / `?` globs, `key!=value` negates. Blue-green runs may
instead split one service by time (`--switch-at`).

One request is often logged twice: by the caller's sidecar (direction outbound) and by the callee's
(direction inbound). Mixing both would count it twice and mix two different latencies, so each run
uses one side, explicitly: the destination proxy's inbound rows when both cohorts have them, else
the caller-side rows (outbound, gateway), else rows without a direction. The choice is reported.

String predicates are evaluated once per distinct value (dictionary codes), never per row.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from analyzers.canary.config import ConfigError
from analyzers.table import COLUMN_NAMES, STRING_COLUMNS

SELECTOR_KEYS = {
    "version": "destination_version",
    "subset": "destination_subset",
    "workload": "destination_workload",
    "app": "destination_app",
    "namespace": "destination_namespace",
    "cluster": "destination_cluster",
    "service": "destination_service",
    "host": "upstream_host",
    "pod": "pod",  # special: matched against the row's origin (record_source / record_file)
}
CLIENT_SIDE = ("outbound", "gateway")
# Response flags of requests that failed before reaching the callee (they exist only client-side).
UNREACHED_FLAGS = ("UF", "UH", "URX", "UC", "UO", "NR", "LH")


@dataclass(frozen=True)
class Term:
    column: str
    pattern: str
    negate: bool = False

    def matcher(self) -> Callable[[str | None], bool]:
        if any(c in self.pattern for c in "*?["):
            rx = re.compile(fnmatch.translate(self.pattern))

            def hit(v: str | None) -> bool:
                return v is not None and rx.match(v) is not None
        else:
            pat = self.pattern

            def hit(v: str | None) -> bool:
                return v == pat
        if self.negate:
            return lambda v: not hit(v)
        return hit


@dataclass(frozen=True)
class Selector:
    text: str
    terms: tuple[Term, ...]


def parse_selector(text: str, option: str = "--canary") -> Selector:
    terms = []
    for part in [p.strip() for p in text.split(",") if p.strip()]:
        m = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)\s*(!=|=)\s*(.+)", part)
        if not m:
            raise ConfigError(f"selector term {part!r} is not key=value (e.g. version=v2, subset=canary, pod=web-v2-*)",
                              option)
        key, op, value = m.group(1), m.group(2), m.group(3).strip()
        column = SELECTOR_KEYS.get(key)
        if column is None:
            if key in STRING_COLUMNS:
                column = key
            else:
                from analyzers.canary.config import _close

                hint = _close(key, [*SELECTOR_KEYS, *STRING_COLUMNS])
                raise ConfigError(f"unknown selector key {key!r}" + (f" (did you mean {hint!r}?)" if hint else "")
                                  + f"; use {', '.join(SELECTOR_KEYS)} or a requests-table column", option)
        terms.append(Term(column, value, op == "!="))
    if not terms:
        raise ConfigError("empty selector", option)
    return Selector(text, tuple(terms))


# ---- dictionary codes of string columns ---------------------------------------------------------

def string_codes(col: Any) -> tuple[np.ndarray, list[str | None]]:
    """(codes, values): codes[i] indexes values for row i; nulls get the last code (value None)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(col, pa.Array):
        col = pa.chunked_array([col])
    if not pa.types.is_dictionary(col.type):
        col = pc.dictionary_encode(col)
    col = col.unify_dictionaries()
    dictionary = col.chunk(0).dictionary if col.num_chunks else pa.array([], pa.string())
    values: list[str | None] = [*dictionary.to_pylist(), None]
    null_code = len(values) - 1
    parts = []
    for chunk in col.chunks:
        idx = chunk.indices
        arr = idx.to_numpy(zero_copy_only=False) if idx.null_count == 0 else \
            idx.fill_null(null_code).to_numpy(zero_copy_only=False)
        parts.append(arr.astype(np.int32, copy=False))
    if len(parts) == 1:
        return parts[0], values
    codes = np.concatenate(parts) if parts else np.zeros(0, np.int32)
    return codes, values


def apply_lut(codes: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """lut[codes], taking the cheap road when few codes are selected (a comparison costs a quarter
    of a gather over millions of rows)."""
    hits = np.flatnonzero(lut)
    if hits.size == 0:
        return np.zeros(codes.size, dtype=bool)
    if hits.size == lut.size:
        return np.ones(codes.size, dtype=bool)
    if hits.size <= 2:
        out = codes == hits[0]
        for h in hits[1:]:
            out |= codes == h
        return out
    if lut.size - hits.size <= 2:
        out = np.ones(codes.size, dtype=bool)
        for h in np.flatnonzero(~lut):
            out &= codes != h
        return out
    return lut[codes]


class Columns:
    """Per-table cache of string-column codes and numeric arrays."""

    def __init__(self, table: Any) -> None:
        self.table = table
        self._codes: dict[str, tuple[np.ndarray, list[str | None]]] = {}
        self._num: dict[str, np.ndarray] = {}

    def has(self, name: str) -> bool:
        return name in self.table.column_names

    def codes(self, name: str) -> tuple[np.ndarray, list[str | None]]:
        if name not in self._codes:
            if not self.has(name):
                n = self.table.num_rows
                self._codes[name] = (np.zeros(n, np.int32), [None])
            else:
                self._codes[name] = string_codes(self.table.column(name))
        return self._codes[name]

    def where(self, name: str, pred: Callable[[str | None], bool]) -> np.ndarray:
        codes, values = self.codes(name)
        lut = np.fromiter((bool(pred(v)) for v in values), dtype=bool, count=len(values))
        if lut.size > 1 and self.has(name) and self.table.column(name).null_count == 0:
            # The null code never occurs: give it whichever value keeps the fast paths of apply_lut.
            lut[-1] = bool(lut[:-1].all())
        return apply_lut(codes, lut)

    def all_null(self, name: str) -> bool:
        return not self.has(name) or self.table.column(name).null_count == self.table.num_rows

    def numeric(self, name: str) -> np.ndarray:
        """float64 with NaN for null."""
        if name not in self._num:
            if self.all_null(name):
                self._num[name] = np.full(self.table.num_rows, np.nan)
            else:
                col = self.table.column(name)
                arr = col.to_numpy() if col.null_count == 0 else col.cast("float64").to_numpy(zero_copy_only=False)
                self._num[name] = np.asarray(arr, dtype=np.float64)
        return self._num[name]

    def timestamps_us(self) -> np.ndarray:
        """int64 microseconds; null timestamps are the int64 minimum."""
        if "_ts" not in self._num:
            import pyarrow as pa

            col = self.table.column("timestamp")
            if col.null_count == 0:
                arr = col.to_numpy().view(np.int64) if pa.types.is_timestamp(col.type) and col.type.unit == "us" \
                    else col.cast(pa.timestamp("us", tz="UTC")).to_numpy().view(np.int64)
            else:
                arr = col.cast(pa.timestamp("us", tz="UTC")).cast(pa.int64()).fill_null(
                    np.iinfo(np.int64).min).to_numpy(zero_copy_only=False)
            self._num["_ts"] = np.asarray(arr, dtype=np.int64)
        return self._num["_ts"]


def _pod_match(cols: Columns, term: Term) -> np.ndarray:
    """pod=PATTERN: the row was read from a pod whose name matches (record_source / record_file hold
    the pod as `namespace/pod/container`, `pod:container` or a file path)."""
    base = Term("", term.pattern, False).matcher()

    def hit(v: str | None) -> bool:
        if v is None:
            return False
        return any(base(p) for p in re.split(r"[/:\s]+", v) if p) or base(v)

    m = cols.where("record_source", hit) | cols.where("record_file", hit)
    return ~m if term.negate else m


def selector_mask(cols: Columns, sel: Selector) -> np.ndarray:
    mask = np.ones(cols.table.num_rows, dtype=bool)
    for term in sel.terms:
        if term.column == "pod":
            mask &= _pod_match(cols, term)
        else:
            mask &= cols.where(term.column, term.matcher())
    return mask


def service_mask(cols: Columns, service: str, namespace: str | None = None) -> np.ndarray:
    """Rows whose destination is `service`: the exact name, its FQDN forms (`reviews` matches
    `reviews.shop.svc.cluster.local`), or the destination app of that name."""
    s = service.strip().lower()

    def svc(v: str | None) -> bool:
        if v is None:
            return False
        v = v.lower()
        return v == s or v.startswith(s + ".")

    mask = cols.where("destination_service", svc) | cols.where("destination_app", lambda v: v is not None and
                                                                 v.lower() == s)
    if namespace:
        ns = namespace

        def in_ns(v: str | None) -> bool:
            if v is None:
                return False
            parts = v.split(".")
            return len(parts) > 1 and parts[1] == ns

        mask &= cols.where("destination_namespace", lambda v: v == ns) | cols.where("destination_service", in_ns)
    return mask


# ---- assignment --------------------------------------------------------------------------------

@dataclass
class CohortInfo:
    name: str  # baseline | canary
    label: str  # baseline | canary | blue | green
    selector: str | None
    rows: int = 0
    side: str = "none"  # inbound | outbound | unknown | none
    since: datetime | None = None
    until: datetime | None = None
    first: datetime | None = None
    last: datetime | None = None
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"label": self.label, "selector": self.selector, "requests": self.rows, "reporter": self.side,
                "first": self.first.isoformat() if self.first else None,
                "last": self.last.isoformat() if self.last else None, "seconds": round(self.seconds, 3)}


@dataclass
class Cohorts:
    cols: Columns
    code: np.ndarray  # int8 per row: 0 not used, 1 baseline, 2 canary
    baseline: CohortInfo
    canary: CohortInfo
    reporter: str  # inbound | outbound | unknown | mixed
    service: str
    notes: list[str] = field(default_factory=list)

    @property
    def table(self) -> Any:
        return self.cols.table


def assign(
    table: Any,
    service: str,
    *,
    baseline: Selector | None,
    canary: Selector | None,
    namespace: str | None = None,
    reporter: str = "auto",
    switch_at: datetime | None = None,
    labels: tuple[str, str] = ("baseline", "canary"),
) -> Cohorts:
    """Split the table into baseline and canary rows of `service` (see the module docstring)."""
    if reporter not in ("auto", "inbound", "outbound"):
        raise ConfigError(f"reporter must be auto, inbound or outbound, not {reporter!r}", "--reporter")
    if baseline is None and canary is None and switch_at is None:
        raise ConfigError("give selectors for both cohorts, or a switch time", "--canary")
    cols = Columns(table)
    svc = service_mask(cols, service, namespace)
    b = svc.copy() if baseline is None else svc & selector_mask(cols, baseline)
    c = svc.copy() if canary is None else svc & selector_mask(cols, canary)
    if switch_at is not None:
        ts = cols.timestamps_us()
        cut = int(switch_at.timestamp() * 1_000_000)
        b &= ts < cut
        c &= ts >= cut
    notes: list[str] = []
    b, c = _one_record_kind(cols, b, c, labels, notes)
    both = b & c
    if both.any():
        raise ConfigError(f"{int(both.sum())} requests match both the {labels[0]} and the {labels[1]} selector: "
                          "make them exclusive (e.g. version=v1 and version=v2)", f"--{labels[1]}")
    dcodes, dvals = cols.codes("direction")
    side_lut = np.array([_side(v) for v in dvals], dtype=np.int8)  # 1 inbound, 2 client, 3 unknown
    constant_side = _constant(cols, "direction")
    if constant_side is not None:
        # One reporter side for every row (the common case): no per-row side at all.
        side = _side(constant_side)
        side_of = None
        counts = {name: {s: int(np.count_nonzero(m)) if s == side else 0 for s in (1, 2, 3)}
                  for name, m in (("baseline", b), ("canary", c))}
    else:
        side_of = side_lut[dcodes]
        # One pass: (cohort, side) pairs counted together.
        pair = (b.view(np.int8) + 2 * c.view(np.int8)) * 4 + side_of
        tally = np.bincount(pair, minlength=16)
        counts = {name: {s: int(tally[k * 4 + s]) for s in (1, 2, 3)}
                  for name, k in (("baseline", 1), ("canary", 2))}
    chosen: dict[str, int] = {}
    if reporter == "inbound":
        chosen = {"baseline": 1, "canary": 1}
    elif reporter == "outbound":
        chosen = {"baseline": 2, "canary": 2}
    else:
        for s in (1, 2, 3):
            if counts["baseline"][s] and counts["canary"][s]:
                chosen = {"baseline": s, "canary": s}
                break
        else:
            for name in ("baseline", "canary"):
                chosen[name] = next((s for s in (1, 2, 3) if counts[name][s]), 1)
    if side_of is None:
        keep_b, keep_c = chosen["baseline"] == side, chosen["canary"] == side
        code = (b if keep_b else np.zeros_like(b)).view(np.int8) + 2 * (c if keep_c else np.zeros_like(c)).view(np.int8)
    elif chosen["baseline"] == chosen["canary"]:
        keep = side_of == chosen["baseline"]
        code = (b & keep).view(np.int8) + 2 * (c & keep).view(np.int8)
    else:
        code = (b & (side_of == chosen["baseline"])).astype(np.int8) + \
            2 * (c & (side_of == chosen["canary"])).astype(np.int8)
    side_name = {1: "inbound", 2: "outbound", 3: "unknown"}
    if not any(counts["baseline"].values()) and not any(counts["canary"].values()):
        used = "none"  # nothing to choose from
    elif chosen["baseline"] == chosen["canary"]:
        used = side_name[chosen["baseline"]]
    else:
        used = "mixed"
        notes.append(f"the cohorts were seen from different sides ({labels[0]}: {side_name[chosen['baseline']]}, "
                     f"{labels[1]}: {side_name[chosen['canary']]}); latencies are not directly comparable — collect "
                     "the same proxies for both")
    if used == "inbound":
        notes.append("rows: inbound, as reported by the destination's own proxy (one row per request; latency "
                     "as the callee's sidecar measured it)")
        client_side = None if side_of is None else side_of == 2
        for m, label in ((b, labels[0]), (c, labels[1])):
            if client_side is None or not client_side.any():
                break
            unreached = cols.where("response_flags", lambda v: v is not None and
                                   any(f in UNREACHED_FLAGS for f in v.split(",")))
            k = int(np.count_nonzero(m & client_side & unreached))
            if k:
                notes.append(f"{k} client-side requests to the {label} failed before reaching it "
                             f"({'/'.join(UNREACHED_FLAGS)}); inbound rows cannot show them: use --reporter outbound "
                             "to count them")
    elif used == "outbound":
        notes.append("rows: outbound, as reported by the callers' proxies (no inbound rows of the destination "
                     "for both cohorts)")
    elif used == "unknown":
        notes.append("rows: without a reporter direction (e.g. spans); each request is assumed to appear once")
    infos = []
    for name, label, sel in (("baseline", labels[0], baseline), ("canary", labels[1], canary)):
        rows = counts[name][chosen[name]]
        info = CohortInfo(name, label, sel.text if sel else None, rows, side_name[chosen[name]] if rows else "none")
        infos.append(info)
    cohorts = Cohorts(cols, code, infos[0], infos[1], used, service, notes)
    _time_ranges(cohorts)
    return cohorts


RECORD_KIND_ORDER = ("access_log", "otlp_log", "span")


def _one_record_kind(cols: Columns, b: np.ndarray, c: np.ndarray, labels: tuple[str, str],
                     notes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Access logs, OTLP logs and spans of the same requests must not be counted together: keep one
    record kind, the first of access_log, otlp_log, span that both cohorts have."""
    if _constant(cols, "record_kind") is not None or not cols.has("record_kind"):
        return b, c
    codes, values = cols.codes("record_kind")
    rank = {k: i for i, k in enumerate(RECORD_KIND_ORDER)}
    lut = np.array([rank.get(v, len(RECORD_KIND_ORDER)) for v in values], dtype=np.int8)
    kind_of = lut[codes]
    nk = len(RECORD_KIND_ORDER) + 1
    have_b = np.bincount(kind_of[b], minlength=nk) > 0
    have_c = np.bincount(kind_of[c], minlength=nk) > 0
    both = np.flatnonzero(have_b & have_c)
    if both.size:
        kb = kc = int(both[0])
    else:
        kb = int(np.flatnonzero(have_b)[0]) if have_b.any() else 0
        kc = int(np.flatnonzero(have_c)[0]) if have_c.any() else 0
    name = {i: k for k, i in rank.items()}
    dropped = int(np.count_nonzero(b & (kind_of != kb)) + np.count_nonzero(c & (kind_of != kc)))
    if dropped:
        notes.append(f"record kind: {name.get(kb, 'other')} rows ({dropped} rows of other kinds describe the same "
                     "requests and are left out)")
    if kb != kc:
        notes.append(f"the cohorts come from different record kinds ({labels[0]}: {name.get(kb, 'other')}, "
                     f"{labels[1]}: {name.get(kc, 'other')})")
    return b & (kind_of == kb), c & (kind_of == kc)


def _constant(cols: Columns, name: str) -> str | None:
    """The one value of a column without nulls whose rows all hold the same value, else None."""
    if not cols.has(name) or cols.table.num_rows == 0 or cols.table.column(name).null_count:
        return None
    codes, values = cols.codes(name)
    if len(values) == 2:  # one value plus the null slot
        return values[0]
    present = np.flatnonzero(np.bincount(codes, minlength=len(values)))
    return values[present[0]] if present.size == 1 else None


def _side(direction: str | None) -> int:
    if direction == "inbound":
        return 1
    if direction in CLIENT_SIDE:
        return 2
    return 3


def _time_ranges(c: Cohorts) -> None:
    from datetime import timezone

    if c.table.num_rows == 0:
        return
    ts = c.cols.timestamps_us()
    missing = np.iinfo(np.int64).min
    for k, info in ((1, c.baseline), (2, c.canary)):
        if not info.rows:
            continue
        sel = ts[c.code == k]
        sel = sel[sel != missing] if sel.size and sel.min() == missing else sel
        if sel.size:
            lo, hi = int(sel.min()), int(sel.max())
            info.first = datetime.fromtimestamp(lo / 1e6, tz=timezone.utc)
            info.last = datetime.fromtimestamp(hi / 1e6, tz=timezone.utc)
            info.seconds = (hi - lo) / 1e6


def seen_values(table: Any, service: str, selectors: Sequence[Selector | None], namespace: str | None = None,
                limit: int = 12) -> dict[str, list[str]]:
    """Distinct values of the selector columns among the service's rows: the hint for a selector that
    matched nothing."""
    cols = Columns(table)
    svc = service_mask(cols, service, namespace)
    out: dict[str, list[str]] = {}
    for sel in selectors:
        for term in sel.terms if sel else ():
            name = "record_source" if term.column == "pod" else term.column
            if name in out or name not in COLUMN_NAMES:
                continue
            codes, values = cols.codes(name)
            present = np.unique(codes[svc])
            out[name] = sorted(str(values[i]) for i in present if values[i] is not None)[:limit]
    return out


def seen_services(table: Any, limit: int = 20) -> list[str]:
    cols = Columns(table)
    codes, values = cols.codes("destination_service")
    present = np.unique(codes)
    return sorted(str(values[i]) for i in present if values[i] is not None)[:limit]
