"""Route templates: `/reviews/123?x=1` → `/reviews/{id}`, so per-route figures group by route, not URL.

The same rules run inside the proxy in the meshctl route-tagger Wasm plugin
(wasm/route-tagger/route_tagger.c); tests/test_wasm_route_tagger.py checks that both agree on the
same paths through a real Envoy. Rules: the query string and fragment are dropped; a path segment
that is all digits becomes `{id}`, a UUID (dashed, or 32 hex digits) `{uuid}`, a date (`2026-01-02`,
`2026-01-02T10:00:00Z`) `{date}`, 16+ hex digits with a digit `{hex}`, 16+ characters of
`[A-Za-z0-9_-.~=]` with 2+ digits and a letter `{token}`; at most MAX_SEGMENTS segments are kept, the
rest collapse into one `{...}`. Canary per-route figures (analyzers.canary) group by these templates.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

MAX_SEGMENTS = 8
_UUID = re.compile(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}|[0-9A-Fa-f]{32}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9:.]+Z?)?")
_HEX = re.compile(r"[0-9A-Fa-f]{16,}")
_TOKEN = re.compile(r"[A-Za-z0-9_\-.~=]{16,}")


def _segment(seg: str) -> str:
    if not seg:
        return seg
    if seg.isascii() and seg.isdigit():
        return "{id}"
    if _UUID.fullmatch(seg):
        return "{uuid}"
    if _DATE.fullmatch(seg):
        return "{date}"
    digits = sum(c in "0123456789" for c in seg)
    if digits and _HEX.fullmatch(seg):
        return "{hex}"
    if digits >= 2 and _TOKEN.fullmatch(seg) and any(c.isascii() and c.isalpha() for c in seg):
        return "{token}"
    return seg


def route_template(path: str | None) -> str | None:
    """The route template of one request path (None stays None)."""
    if path is None:
        return None
    end = len(path)
    for sep in "?#":
        i = path.find(sep)
        if i != -1:
            end = min(end, i)
    path = path[:end]
    if not path:
        return "/"
    parts = path.split("/")
    out: list[str] = []
    segments = 0
    for i, part in enumerate(parts):
        if part:
            segments += 1
            if segments > MAX_SEGMENTS:
                out.append("{...}")
                break
        out.append(_segment(part))
        if i == len(parts) - 1:
            break
    return "/".join(out)


def route_templates(paths: pd.Series) -> pd.Series:
    """Vectorized over a column: each distinct path is templated once (paths repeat a lot)."""
    import pandas as pd

    codes, uniques = pd.factorize(paths, use_na_sentinel=True)
    mapped = [route_template(p) for p in uniques]
    values = pd.array(mapped, dtype="string").take(codes, allow_fill=True)  # code -1 (NA) stays NA
    return pd.Series(values, index=paths.index, name=paths.name)
