"""Canary and blue-green judging: Kayenta's pipeline as pure functions over plain-data config.

    NaN handling -> outlier removal -> metric classifier -> group scorer -> score classifier -> verdict

Entry points (no I/O, no click; usable from a notebook):

    from analyzers.canary import JudgeConfig, assign, parse_selector, judge, judge_arrays
    cohorts = assign(table, "reviews", baseline=parse_selector("version=v1"), canary=parse_selector("version=v2"))
    result = judge(JudgeConfig(), cohorts)          # -> JudgeResult (verdict, score, metrics, ...)
    result.as_dict()

Modules: `mannwhitney` (rank statistics, Kayenta/R confidence interval), `proportions`
(two-proportion test, power), `stats` (summaries, effect sizes, outliers), `classify` (per-metric
labels), `scorer` (group-weighted score), `config` (the three config documents), `cohorts`
(selecting baseline and canary rows), `extract` (built-in and custom table metrics), `expr` (filter
expressions), `judge` (the pipeline and the verdict), `result` (dataclasses).
"""

from __future__ import annotations

from analyzers.canary.cohorts import Cohorts, assign, parse_selector
from analyzers.canary.config import (
    ArrayMetric,
    ConfigError,
    JudgeConfig,
    MetricConfig,
    is_kayenta_config,
    parse_kayenta_config,
    parse_meshctl_config,
    parse_metrics_document,
)
from analyzers.canary.judge import judge, judge_arrays, resolve_kayenta, table_metrics
from analyzers.canary.result import JudgeResult, MetricResult

__all__ = [
    "ArrayMetric",
    "Cohorts",
    "ConfigError",
    "JudgeConfig",
    "JudgeResult",
    "MetricConfig",
    "MetricResult",
    "assign",
    "is_kayenta_config",
    "judge",
    "judge_arrays",
    "parse_kayenta_config",
    "parse_meshctl_config",
    "parse_metrics_document",
    "parse_selector",
    "resolve_kayenta",
    "table_metrics",
]
