"""Result dataclasses of the canary judge, and their JSON form."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

PASS, HIGH, LOW, NODATA, NODATA_FAIL, ERROR = "Pass", "High", "Low", "Nodata", "NodataFailMetric", "Error"
LABELS = (PASS, HIGH, LOW, NODATA, NODATA_FAIL, ERROR)
VERDICTS = ("pass", "marginal", "fail", "inconclusive")


def _num(v: Any) -> Any:
    """JSON has no NaN/inf: they become null."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _num(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_num(x) for x in v]
    return v


@dataclass
class MetricResult:
    name: str
    kind: str
    classification: str
    reason: str = ""
    test: str = ""  # rank-sum | two-proportion | quantile | identical | none
    critical: bool = False  # a critical failure: zeroes the score (Kayenta's `critical` result flag)
    is_critical: bool = False  # configured as critical
    muted: bool = False
    groups: tuple[str, ...] = ()
    direction: str = "either"
    confidence: float = math.nan
    tolerance: float = math.nan
    p_value: float = math.nan
    p_method: str = ""
    ci: tuple[float, float] = (math.nan, math.nan)
    ci_of: str = ""  # what the interval is for
    estimate: float = math.nan
    effect_measure: str = "meanRatio"
    effect: float = math.nan
    effect_size: dict[str, Any] = field(default_factory=dict)
    baseline: dict[str, Any] = field(default_factory=dict)
    canary: dict[str, Any] = field(default_factory=dict)
    power: float | None = None
    power_target: float | None = None
    detectable: dict[str, float] | None = None
    more_needed: dict[str, int] | None = None
    inconclusive: bool = False  # Nodata because the data could not have shown the configured effect
    resolution: float = 0.0
    unit: str = ""
    description: str = ""

    @property
    def failed(self) -> bool:
        return self.classification in (HIGH, LOW, NODATA_FAIL, ERROR)

    def as_dict(self) -> dict[str, Any]:
        d = {
            "name": self.name,
            "kind": self.kind,
            "classification": self.classification,
            "reason": self.reason,
            "test": self.test,
            "p_value": self.p_value,
            "p_method": self.p_method,
            "ci": list(self.ci),
            "ci_of": self.ci_of,
            "estimate": self.estimate,
            "confidence": self.confidence,
            "tolerance": self.tolerance,
            "effect": {"measure": self.effect_measure, "value": self.effect, **self.effect_size},
            "direction": self.direction,
            "critical": self.critical,
            "critical_metric": self.is_critical,
            "muted": self.muted,
            "groups": list(self.groups),
            "baseline": self.baseline,
            "canary": self.canary,
            "power": self.power,
            "power_target": self.power_target,
            "detectable": self.detectable,
            "more_needed": self.more_needed,
            "inconclusive": self.inconclusive,
            "unit": self.unit,
        }
        if self.resolution:
            d["resolution"] = self.resolution
        if self.description:
            d["description"] = self.description
        return _num(d)


@dataclass
class GroupScore:
    name: str
    score: float
    no_data: bool
    counts: dict[str, int]
    weight: float = 0.0


@dataclass
class ScoreResult:
    score: float
    groups: list[GroupScore]
    reason: str | None = None
    zeroed_because: str | None = None  # critical | too_many_nodata
    zeroed_by: str | None = None  # the critical metric that zeroed the score


@dataclass
class ThresholdResult:
    description: str
    figure: str
    value: float
    baseline_value: float
    passed: bool | None  # None: no data to evaluate
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return _num({"threshold": self.description, "figure": self.figure, "canary": self.value,
                     "baseline": self.baseline_value, "passed": self.passed, "reason": self.reason})


@dataclass
class RouteRow:
    route: str
    baseline: dict[str, Any]
    canary: dict[str, Any]
    error_rate: MetricResult | None = None
    latency: MetricResult | None = None

    def as_dict(self) -> dict[str, Any]:
        return _num({
            "route": self.route, "baseline": self.baseline, "canary": self.canary,
            "error_rate": None if self.error_rate is None else {
                "classification": self.error_rate.classification, "p_value": self.error_rate.p_value,
                "ci": list(self.error_rate.ci)},
            "latency": None if self.latency is None else {
                "classification": self.latency.classification, "p_value": self.latency.p_value,
                "ci": list(self.latency.ci)},
        })


@dataclass
class JudgeResult:
    verdict: str  # pass | marginal | fail | inconclusive
    score: float
    score_classification: str  # Pass | Marginal | Fail (Kayenta's)
    judge: str
    reasons: list[str]
    metrics: list[MetricResult]
    groups: list[GroupScore]
    thresholds: list[ThresholdResult] = field(default_factory=list)
    cohorts: dict[str, Any] = field(default_factory=dict)
    routes: list[RouteRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    kind: str = "canary"  # canary | bluegreen
    labels: tuple[str, str] = ("baseline", "canary")
    # Raw material for plots (not part of the JSON): name -> (baseline, canary) WeightedSamples or arrays.
    samples: dict[str, Any] = field(default_factory=dict, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return _num({
            "verdict": self.verdict,
            "score": self.score,
            "score_classification": self.score_classification,
            "judge": self.judge,
            "analysis": self.kind,
            "labels": {"baseline": self.labels[0], "canary": self.labels[1]},
            "reasons": self.reasons,
            "metrics": [m.as_dict() for m in self.metrics],
            "groups": [{"name": g.name, "score": g.score, "no_data": g.no_data, "weight": g.weight,
                        "counts": g.counts} for g in self.groups],
            "thresholds": [t.as_dict() for t in self.thresholds],
            "cohorts": self.cohorts,
            "routes": [r.as_dict() for r in self.routes],
            "notes": self.notes,
            "config": self.config,
        })
