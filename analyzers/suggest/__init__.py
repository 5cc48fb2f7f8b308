"""Circuit-breaker, rate-limit and Sidecar-scope suggestions from the requests table, with a what-if replay.

Pure analysis (no I/O, no click): a requests-table DataFrame and a `SuggestConfig` in, a
`SuggestResult` out. `meshctl suggest` is a thin command over `analyze`.

    from analyzers.suggest import analyze, SuggestConfig
    result = analyze("circuit-breaker", df, SuggestConfig(headroom=2.0), replay=True)
    for s in result.suggestions:
        print(s.target.label(), [(x.field, x.value) for x in s.settings], s.replay["suggested"])

Kinds live in `registry.REGISTRY` (metadata + one suggest and one replay function each); findings
come from the catalog in `messages.py`; `limits.parse_documents` reads existing DestinationRule /
EnvoyFilter / Sidecar YAML for `--current`; `resources.py` turns suggestions into Istio and Linkerd
resource values for the templates.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from analyzers.suggest.config import SuggestConfig
from analyzers.suggest.model import (
    ConnectionPool,
    Evidence,
    Message,
    OutlierDetection,
    ReplayResult,
    Setting,
    Suggestion,
    SuggestResult,
    Target,
    TokenBucket,
    TrafficPolicy,
)

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from analyzers.suggest.limits import CurrentConfig

__all__ = [
    "ConnectionPool", "Evidence", "Message", "OutlierDetection", "ReplayResult", "Setting", "SuggestConfig",
    "SuggestResult", "Suggestion", "Target", "TokenBucket", "TrafficPolicy", "analyze", "kinds",
]


def kinds() -> list[str]:
    from analyzers.suggest.registry import REGISTRY

    return list(REGISTRY)


def analyze(
    kind: str,
    df: pd.DataFrame,
    config: SuggestConfig | None = None,
    *,
    replay: bool = True,
    current: list[CurrentConfig] | None = None,
) -> SuggestResult:
    """Suggest `kind` (circuit-breaker | rate-limit | sidecar) from a requests-table frame and,
    with `replay`, run the recorded requests through the suggested (and each `current`) limits."""
    from analyzers.suggest.messages import msg
    from analyzers.suggest.registry import REGISTRY
    from analyzers.suggest.traffic import COLUMNS, Traffic

    cfg = config or SuggestConfig()
    if kind not in REGISTRY:
        raise ValueError(f"unknown suggestion kind {kind!r} (one of {', '.join(REGISTRY)})")
    if cfg.headroom < 1:
        raise ValueError(f"headroom {cfg.headroom} is below 1: limits would reject the observed peak")
    k = REGISTRY[kind]
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        from analyzers.table import conform_frame

        df = conform_frame(df)
    tr = Traffic(df, prefer=k.prefer)
    result = SuggestResult(kind=kind, config=cfg.to_dict(), rows=len(df), used_rows=tr.n,
                           window=(tr.iso(0.0), tr.iso(float(tr.start.max()))) if tr.n else None)
    if tr.skipped_no_service:
        result.messages.append(msg("SG014", count=tr.skipped_no_service))
    for cur in current or []:
        result.messages += [Message("SG017", "warning", p) for p in cur.problems]
    result.suggestions = k.suggest(tr, cfg)
    if replay:
        for s in result.suggestions:
            k.replay(tr, s, cfg, list(current or []))
    return result
