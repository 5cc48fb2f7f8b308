"""Group-weighted scoring and score classification (Kayenta's WeightedSumScorer semantics).

* A group's score is the share of Pass among its Pass, High, Low and NodataFailMetric metrics
  (Nodata and Error metrics do not count); a group with none of those has no data.
* Groups without a configured weight share what the configured weights leave of 100 equally.
* The summary score is the weighted sum of group scores, where a group without data counts as
  100 (it neither helps nor hurts), rounded to two decimals.
* Any critical metric that is not Pass, or 50 % or more Nodata metrics, zeroes the score.
* Muted (report-only) metrics take no part.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from analyzers.canary.result import (
    HIGH,
    LOW,
    NODATA,
    NODATA_FAIL,
    PASS,
    GroupScore,
    MetricResult,
    ScoreResult,
)

NODATA_THRESHOLD = 50.0


def _round2(x: float) -> float:
    # Commons Math MathUtils.round(x, 2): half-up on the decimal representation.
    from decimal import ROUND_HALF_UP, Decimal

    return float(Decimal(repr(x)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def group_scores(results: Sequence[MetricResult]) -> list[GroupScore]:
    labels: dict[str, list[str]] = {}
    for r in results:
        if r.muted:
            continue
        for g in r.groups:
            labels.setdefault(g, []).append(r.classification)
    out = []
    for name, ls in labels.items():
        counts = {lab: ls.count(lab) for lab in sorted(set(ls))}
        n_pass = counts.get(PASS, 0)
        total = n_pass + counts.get(HIGH, 0) + counts.get(LOW, 0) + counts.get(NODATA_FAIL, 0)
        no_data = total == 0
        out.append(GroupScore(name, 0.0 if no_data else n_pass / total * 100.0, no_data, counts))
    return out


def score(results: Sequence[MetricResult], group_weights: Mapping[str, float]) -> ScoreResult:
    scored = [r for r in results if not r.muted]
    groups = group_scores(scored)
    weight_sum = sum(group_weights.values())
    unweighted = [g.name for g in groups if g.name not in group_weights]
    share = (100.0 - weight_sum) / len(unweighted) if unweighted else 0.0
    for g in groups:
        g.weight = group_weights.get(g.name, share)
    criticals = [r for r in scored if r.critical and r.classification != PASS]
    if criticals:
        first = criticals[0]
        return ScoreResult(0.0, groups, f"critical metric {first.name} is {first.classification}: {first.reason}",
                           "critical", first.name)
    if scored:
        nodata = sum(1 for r in scored if r.classification == NODATA)
        if nodata / len(scored) * 100.0 >= NODATA_THRESHOLD:
            return ScoreResult(0.0, groups, f"{nodata} of {len(scored)} metrics have no data "
                               f"({NODATA_THRESHOLD:g}% or more)", "too_many_nodata")
    total = sum((100.0 if g.no_data else g.score) * (g.weight / 100.0) for g in groups)
    return ScoreResult(_round2(total), groups)


def classify_score(value: float, pass_threshold: float, marginal_threshold: float) -> str:
    """Pass at or above the pass threshold, Marginal at or above the marginal one, else Fail."""
    if value >= pass_threshold:
        return "Pass"
    if value >= marginal_threshold:
        return "Marginal"
    return "Fail"


def aggregated_judgment(final_score: float, marginal: float | None, pass_: float | None) -> bool:
    """Kayenta standalone canary analysis: did the final score pass the thresholds?"""
    if marginal is None and pass_ is None:
        return True
    if marginal is not None and final_score <= marginal:
        return False
    if pass_ is None:
        return True
    return final_score >= pass_
