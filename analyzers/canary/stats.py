"""Descriptive statistics, effect sizes, NaN handling and outlier detectors (Kayenta semantics).

Percentiles are R-7 (linear interpolation between order statistics, numpy's default). Summary
statistics of an empty sample are zeros, as Kayenta reports them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from analyzers.canary.mannwhitney import WeightedSample, cles


def as_array(values: Sequence[float | None] | np.ndarray) -> np.ndarray:
    """Floats with None (JSON null) and the string "NaN" read as NaN."""
    if isinstance(values, np.ndarray):
        return values.astype(np.float64, copy=False)
    return np.array([math.nan if v is None or v == "NaN" else float(v) for v in values], dtype=np.float64)


# ---- transforms -----------------------------------------------------------------------------------

def remove_nans(values: np.ndarray) -> np.ndarray:
    return values[~np.isnan(values)]


def replace_nans(values: np.ndarray, replacement: float = 0.0) -> np.ndarray:
    out = values.copy()
    out[np.isnan(out)] = replacement
    return out


def percentile(values: np.ndarray, p: float) -> float:
    """R-7 percentile, p in [0, 100]."""
    if values.size == 0:
        return math.nan
    return float(np.percentile(values, p))


def iqr_outliers(values: np.ndarray, factor: float = 1.5, reduce_sensitivity: bool = False) -> np.ndarray:
    """Tukey fences Q1 - f*IQR, Q3 + f*IQR; with reduce_sensitivity the fences are widened to at least
    the 1st and 99th percentiles (Kayenta's IQRDetector, used by the judge with f = 3)."""
    if factor <= 0:
        raise ValueError("outlier factor must be greater than zero")
    if values.size == 0:
        return np.zeros(0, dtype=bool)
    q1, q3 = np.percentile(values, [25, 75])
    lower, upper = q1 - factor * (q3 - q1), q3 + factor * (q3 - q1)
    if reduce_sensitivity:
        p01, p99 = np.percentile(values, [1, 99])
        lower, upper = min(p01, lower), max(p99, upper)
    return (values > upper) | (values < lower)


def ksigma_outliers(values: np.ndarray, k: float = 3.0) -> np.ndarray:
    """|x - mean| > k * population standard deviation."""
    if values.size == 0:
        return np.zeros(0, dtype=bool)
    return np.abs(values - values.mean()) > k * values.std()


def remove_outliers(values: np.ndarray, detector: str = "iqr", factor: float = 3.0,
                    reduce_sensitivity: bool = True) -> np.ndarray:
    if detector == "ksigma":
        mask = ksigma_outliers(values, factor)
    else:
        mask = iqr_outliers(values, factor, reduce_sensitivity)
    return values[~mask]


def remove_outliers_weighted(sample: WeightedSample, factor: float = 3.0) -> WeightedSample:
    """IQR outlier removal (reduced sensitivity) on a weighted sample, same fences as on raw values."""
    if sample.empty:
        return sample
    q1, q3 = sample.quantile(0.25), sample.quantile(0.75)
    lower, upper = q1 - factor * (q3 - q1), q3 + factor * (q3 - q1)
    lower, upper = min(sample.quantile(0.01), lower), max(sample.quantile(0.99), upper)
    keep = (sample.values >= lower) & (sample.values <= upper)
    return WeightedSample(sample.values[keep], sample.counts[keep], sample.resolution)


# ---- summaries and effect sizes -------------------------------------------------------------------

@dataclass(frozen=True)
class Summary:
    count: int
    mean: float
    std: float
    min: float
    max: float
    median: float
    p90: float
    p99: float

    def as_dict(self) -> dict[str, float | int]:
        return {"count": self.count, "mean": self.mean, "std": self.std, "min": self.min, "max": self.max,
                "median": self.median, "p50": self.median, "p90": self.p90, "p99": self.p99}


def summary(sample: WeightedSample) -> Summary:
    if sample.empty:
        return Summary(0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    return Summary(
        count=sample.n, mean=sample.mean(), std=sample.std(), min=float(sample.values[0]),
        max=float(sample.values[-1]), median=sample.quantile(0.5), p90=sample.quantile(0.9),
        p99=sample.quantile(0.99),
    )


def mean_ratio(control_mean: float, experiment_mean: float) -> float:
    """experiment / control means; NaN when either mean is zero (the ratio says nothing then)."""
    if control_mean == 0.0 or experiment_mean == 0.0 or math.isnan(control_mean) or math.isnan(experiment_mean):
        return math.nan
    return experiment_mean / control_mean


def cohen_d(control: WeightedSample, experiment: WeightedSample) -> float:
    """|mean difference| / pooled sample standard deviation."""
    nc, ne = control.n, experiment.n
    if nc + ne <= 2:
        return math.nan
    pooled = math.sqrt(((ne - 1) * experiment.std() ** 2 + (nc - 1) * control.std() ** 2) / (nc + ne - 2))
    return abs(experiment.mean() - control.mean()) / pooled if pooled else math.nan


def cles_effect(control: WeightedSample, experiment: WeightedSample) -> float:
    """Common-language effect size of the experiment over the control (0.5 = no effect)."""
    return cles(experiment, control)
