"""Judge configuration as plain data: metrics, groups, weights, score thresholds, Flagger-style limits.

Three documents map onto the same dataclasses:

* a meshctl canary config (YAML or JSON): built-in and custom table metrics, thresholds;
* a Kayenta canary config (`metrics[].analysisConfigurations.canary`, `classifier.groupWeights`),
  so Spinnaker users can bring theirs;
* a `--metrics` document: named metrics with raw baseline and canary arrays (`null` = NaN).

Every parse error is a `ConfigError` whose `field` is the JSON path of the offending value
(`metrics[2].effectSize.allowedIncrease`), so the CLI can name file, line and field.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

JUDGES = ("meshctl", "kayenta")
DIRECTIONS = ("increase", "decrease", "either")
NAN_STRATEGIES = ("remove", "replace")
OUTLIER_STRATEGIES = ("keep", "remove")
MEASURES = ("meanRatio", "cles", "difference")
# How a metric's two samples are compared:
#   series       values as given (a metric store's time series, `--metrics` arrays): rank test
#   distribution one value per request (latency): rank test
#   proportion   events among trials (error rate): two-proportion test (meshctl), per-interval rates (kayenta)
#   quantile     a quantile of per-request values (p99): quantile test (meshctl), per-interval quantiles (kayenta)
KINDS = ("series", "distribution", "proportion", "quantile")
AGGREGATIONS = ("rate", "distribution", "mean", "sum", "count")  # plus pNN (e.g. p99, p99.9)

DEFAULT_CONFIDENCE = 0.98  # NetflixACAJudge
DEFAULT_TOLERANCE = 0.25  # NetflixACAJudge
DEFAULT_POWER = 0.8
DEFAULT_INTERVAL_S = 10.0
# Effects the power check uses when a metric allows no change at all (Kayenta's default 1.0):
# a test cannot be powered to find "any" change, so meshctl asks for power against these.
DETECTABLE = {"meanRatio": (0.9, 1.1), "cles": (0.4, 0.6), "difference": (-0.005, 0.005)}
# The effect of no change, per measure.
NEUTRAL_EFFECT = {"meanRatio": 1.0, "cles": 0.5, "difference": 0.0}


class ConfigError(ValueError):
    """A configuration value is wrong; `field` is its JSON path."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


@dataclass(frozen=True)
class EffectSize:
    measure: str = "meanRatio"
    allowed_increase: float = 1.0
    allowed_decrease: float = 1.0
    critical_increase: float = 1.0
    critical_decrease: float = 1.0

    def as_dict(self) -> dict[str, Any]:
        return {"measure": self.measure, "allowedIncrease": self.allowed_increase,
                "allowedDecrease": self.allowed_decrease, "criticalIncrease": self.critical_increase,
                "criticalDecrease": self.critical_decrease}


@dataclass(frozen=True)
class Outliers:
    strategy: str = "keep"
    factor: float = 3.0


@dataclass(frozen=True)
class TableSource:
    """Where a metric's values come from in the requests table."""

    filter: str | None = None  # population (rows considered); None = every row of the cohort
    events: str | None = None  # for `rate`: which rows of the population count as events
    value: str | None = None  # numeric column for distribution / quantile / mean / sum
    aggregation: str = "distribution"
    quantile: float | None = None  # 0.99 for p99


@dataclass(frozen=True)
class MetricConfig:
    name: str
    kind: str = "series"
    groups: tuple[str, ...] = ("default",)
    direction: str = "either"
    critical: bool = False
    must_have_data: bool = False
    nan_strategy: str = "remove"
    effect_size: EffectSize = EffectSize()
    outliers: Outliers = Outliers()
    tolerance: float | None = None
    confidence: float | None = None
    muted: bool = False  # report only: shown, never scored
    source: TableSource | None = None
    description: str = ""


@dataclass(frozen=True)
class Threshold:
    """A Flagger-style limit on one figure (error_rate, success_rate, latency_p99, ...).

    `max`/`min` judge the canary alone; `max_ratio` (canary / baseline) and `max_delta`
    (canary - baseline) judge it relative to the baseline.
    """

    metric: str
    max: float | None = None
    min: float | None = None
    max_ratio: float | None = None
    max_delta: float | None = None

    def describe(self) -> str:
        parts = []
        if self.max is not None:
            parts.append(f"{self.metric} <= {self.max:g}")
        if self.min is not None:
            parts.append(f"{self.metric} >= {self.min:g}")
        if self.max_ratio is not None:
            parts.append(f"{self.metric} <= {self.max_ratio:g} x baseline")
        if self.max_delta is not None:
            parts.append(f"{self.metric} <= baseline + {self.max_delta:g}")
        return ", ".join(parts)


THRESHOLD_FIGURES = ("error_rate", "success_rate", "latency_mean", "latency_p50", "latency_p90", "latency_p99",
                     "requests")


@dataclass(frozen=True)
class JudgeConfig:
    judge: str = "meshctl"
    confidence: float = DEFAULT_CONFIDENCE
    tolerance: float = DEFAULT_TOLERANCE
    power: float = DEFAULT_POWER
    interval_s: float = DEFAULT_INTERVAL_S
    metrics: tuple[MetricConfig, ...] = ()
    group_weights: Mapping[str, float] = field(default_factory=dict)
    pass_threshold: float = 95.0
    marginal_threshold: float = 75.0
    thresholds: tuple[Threshold, ...] = ()
    builtins: tuple[str, ...] | None = None  # None: all built-in table metrics

    def metric_confidence(self, m: MetricConfig) -> float:
        return m.confidence if m.confidence is not None else self.confidence

    def metric_tolerance(self, m: MetricConfig) -> float:
        return m.tolerance if m.tolerance is not None else self.tolerance

    def with_overrides(self, **kw: Any) -> JudgeConfig:
        return replace(self, **{k: v for k, v in kw.items() if v is not None})


# ---- parsing helpers ----------------------------------------------------------------------------

def _get(doc: Mapping[str, Any], key: str, path: str, types: tuple[type, ...], default: Any = None) -> Any:
    if key not in doc or doc[key] is None:
        return default
    val = doc[key]
    if bool in types and isinstance(val, bool):
        return val
    if float in types and isinstance(val, (int, float)) and not isinstance(val, bool):
        if not math.isfinite(float(val)):
            raise ConfigError("must be a finite number", f"{path}.{key}" if path else key)
        return float(val)
    if isinstance(val, types) and not isinstance(val, bool):
        return val
    names = " or ".join({bool: "true/false", float: "a number", str: "a string", list: "a list",
                         dict: "an object", int: "an integer"}[t] for t in types)
    raise ConfigError(f"must be {names}, not {val!r}", f"{path}.{key}" if path else key)


def _choice(doc: Mapping[str, Any], key: str, path: str, choices: Sequence[str], default: str) -> str:
    val = _get(doc, key, path, (str,), default)
    if val not in choices:
        raise ConfigError(f"must be one of {', '.join(choices)}, not {val!r}", f"{path}.{key}" if path else key)
    return val


def _prob(val: float | None, where: str, *, open_low: bool = True) -> float | None:
    if val is None:
        return None
    if not (0.0 < val < 1.0):
        raise ConfigError(f"must be between 0 and 1 (exclusive), not {val:g}", where)
    return val


def _check_keys(doc: Mapping[str, Any], path: str, allowed: Sequence[str]) -> None:
    unknown = [k for k in doc if k not in allowed]
    if unknown:
        key = unknown[0]
        hint = _close(key, allowed)
        raise ConfigError(f"unknown key {key!r}" + (f" (did you mean {hint!r}?)" if hint else ""),
                          f"{path}.{key}" if path else key)


def _close(word: str, options: Sequence[str]) -> str | None:
    import difflib

    m = difflib.get_close_matches(word, list(options), n=1, cutoff=0.7)
    return m[0] if m else None


def _obj(val: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(val, Mapping):
        raise ConfigError(f"must be an object, not {type(val).__name__}", where)
    return val


def parse_effect_size(doc: Any, path: str, default: EffectSize = EffectSize()) -> EffectSize:
    if doc is None:
        return default
    d = _obj(doc, path)
    _check_keys(d, path, ("measure", "allowedIncrease", "allowedDecrease", "criticalIncrease", "criticalDecrease"))
    measure = _choice(d, "measure", path, MEASURES, default.measure)
    # A document that switches measure without numbers gets that measure's neutral values.
    base = default if measure == default.measure else neutral_effect(measure)
    es = EffectSize(
        measure=measure,
        allowed_increase=_get(d, "allowedIncrease", path, (float,), base.allowed_increase),
        allowed_decrease=_get(d, "allowedDecrease", path, (float,), base.allowed_decrease),
        critical_increase=_get(d, "criticalIncrease", path, (float,), base.critical_increase),
        critical_decrease=_get(d, "criticalDecrease", path, (float,), base.critical_decrease),
    )
    if measure == "cles":
        for key, v in (("allowedIncrease", es.allowed_increase), ("allowedDecrease", es.allowed_decrease),
                       ("criticalIncrease", es.critical_increase), ("criticalDecrease", es.critical_decrease)):
            if key in d and not 0.0 <= v <= 1.0:
                raise ConfigError(f"a CLES threshold is a probability (0..1), not {v:g}", f"{path}.{key}")
    if measure == "meanRatio":
        for key in ("allowedIncrease", "allowedDecrease", "criticalIncrease", "criticalDecrease"):
            if key in d and getattr(es, _snake(key)) < 0:
                raise ConfigError("a mean ratio cannot be negative", f"{path}.{key}")
    return es


def neutral_effect(measure: str) -> EffectSize:
    """Limits that allow no change at all in `measure` (Kayenta's default for meanRatio)."""
    v = NEUTRAL_EFFECT[measure]
    return EffectSize(measure, v, v, v, v)


def _snake(key: str) -> str:
    return re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), key)


def parse_outliers(doc: Any, path: str) -> Outliers:
    if doc is None:
        return Outliers()
    d = _obj(doc, path)
    _check_keys(d, path, ("strategy", "outlierFactor"))
    factor = _get(d, "outlierFactor", path, (float,), 3.0)
    if factor <= 0:
        raise ConfigError("must be greater than zero", f"{path}.outlierFactor")
    return Outliers(_choice(d, "strategy", path, OUTLIER_STRATEGIES, "keep"), factor)


_ANALYSIS_KEYS = ("direction", "critical", "mustHaveData", "nanStrategy", "effectSize", "outliers", "tolerance",
                  "confidence")


def _analysis(d: Mapping[str, Any], path: str, base: MetricConfig) -> MetricConfig:
    groups = base.groups
    if "groups" in d and d["groups"] is not None:
        gl = d["groups"]
        if not isinstance(gl, list) or not all(isinstance(g, str) and g for g in gl):
            raise ConfigError("must be a list of group names", f"{path}.groups")
        groups = tuple(gl) if gl else base.groups
    tolerance = _get(d, "tolerance", path, (float,), base.tolerance)
    if tolerance is not None and tolerance < 0:
        raise ConfigError("must not be negative", f"{path}.tolerance")
    return replace(
        base,
        groups=groups,
        direction=_choice(d, "direction", path, DIRECTIONS, base.direction),
        critical=_get(d, "critical", path, (bool,), base.critical),
        must_have_data=_get(d, "mustHaveData", path, (bool,), base.must_have_data),
        nan_strategy=_nan_strategy(d, path, base.nan_strategy),
        effect_size=parse_effect_size(d.get("effectSize"), f"{path}.effectSize", base.effect_size),
        outliers=parse_outliers(d.get("outliers"), f"{path}.outliers") if "outliers" in d else base.outliers,
        tolerance=tolerance,
        confidence=_prob(_get(d, "confidence", path, (float,), None), f"{path}.confidence") or base.confidence,
    )


def _nan_strategy(d: Mapping[str, Any], path: str, default: str) -> str:
    # Kayenta reads a missing or "none" nanStrategy as remove.
    if d.get("nanStrategy") == "none":
        return "remove"
    return _choice(d, "nanStrategy", path, NAN_STRATEGIES, default)


def _weights(doc: Any, path: str) -> dict[str, float]:
    if doc is None:
        return {}
    d = _obj(doc, path)
    out: dict[str, float] = {}
    for k, v in d.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
            raise ConfigError(f"a group weight is a non-negative number, not {v!r}", f"{path}.{k}")
        out[str(k)] = float(v)
    total = sum(out.values())
    if total > 100.0 + 1e-9:
        raise ConfigError(f"group weights add up to {total:g}; they share 100", path)
    return out


def _score_thresholds(doc: Any, path: str, cfg: JudgeConfig) -> JudgeConfig:
    if doc is None:
        return cfg
    d = _obj(doc, path)
    _check_keys(d, path, ("pass", "marginal"))
    p = _get(d, "pass", path, (float,), cfg.pass_threshold)
    m = _get(d, "marginal", path, (float,), cfg.marginal_threshold)
    for key, v in (("pass", p), ("marginal", m)):
        if not 0 <= v <= 100:
            raise ConfigError(f"a score threshold is between 0 and 100, not {v:g}", f"{path}.{key}")
    if m > p:
        raise ConfigError(f"marginal ({m:g}) is above pass ({p:g})", f"{path}.marginal")
    return replace(cfg, pass_threshold=p, marginal_threshold=m)


def _top_level(doc: Mapping[str, Any], cfg: JudgeConfig) -> JudgeConfig:
    conf = _prob(_get(doc, "confidence", "", (float,), None), "confidence")
    tol = _get(doc, "tolerance", "", (float,), None)
    if tol is not None and tol < 0:
        raise ConfigError("must not be negative", "tolerance")
    pw = _prob(_get(doc, "power", "", (float,), None), "power")
    judge = _choice(doc, "judge", "", JUDGES, cfg.judge) if isinstance(doc.get("judge"), str) else cfg.judge
    cfg = cfg.with_overrides(confidence=conf, tolerance=tol, power=pw, judge=judge)
    cfg = replace(cfg, group_weights=_weights(doc.get("groupWeights"), "groupWeights") or cfg.group_weights)
    return _score_thresholds(doc.get("scoreThresholds"), "scoreThresholds", cfg)


def _metric_entries(doc: Mapping[str, Any], allowed: Sequence[str] | None, *, required: bool
                    ) -> Iterator[tuple[str, Mapping[str, Any], str]]:
    """(path, entry, name) of each item of `metrics`: an object (with only `allowed` keys, when
    given) whose name is non-empty and unique. `required`: the list must be there and not empty."""
    items = doc.get("metrics")
    if required and (not isinstance(items, list) or not items):
        raise ConfigError("must be a non-empty list of metrics", "metrics")
    if items and not isinstance(items, list):
        raise ConfigError("must be a list of metrics", "metrics")
    seen: set[str] = set()
    for i, item in enumerate(items or []):
        path = f"metrics[{i}]"
        m = _obj(item, path)
        if allowed is not None:
            _check_keys(m, path, allowed)
        name = _get(m, "name", path, (str,))
        if not name:
            raise ConfigError("every metric needs a name", f"{path}.name")
        if name in seen:
            raise ConfigError(f"duplicate metric name {name!r}", f"{path}.name")
        seen.add(name)
        yield path, m, name


# ---- `--metrics` arrays -------------------------------------------------------------------------

@dataclass(frozen=True)
class ArrayMetric:
    config: MetricConfig
    baseline: list[float | None]
    canary: list[float | None]


def parse_metrics_document(doc: Any, base: JudgeConfig | None = None) -> tuple[JudgeConfig, list[ArrayMetric]]:
    """The `--metrics FILE` document: named metrics with raw baseline and canary arrays."""
    d = _obj(doc, "$")
    _check_keys(d, "", ("metrics", "groupWeights", "scoreThresholds", "tolerance", "confidence", "judge", "power"))
    cfg = _top_level(d, base or JudgeConfig())
    out: list[ArrayMetric] = []
    keys = ("name", "groups", "baseline", "canary", "description", "muted", *_ANALYSIS_KEYS)
    for path, m, name in _metric_entries(d, keys, required=True):
        arrays = {}
        for side in ("baseline", "canary"):
            arr = m.get(side)
            if not isinstance(arr, list):
                raise ConfigError("must be an array of numbers (null for a missing point)", f"{path}.{side}")
            for j, v in enumerate(arr):
                if v is not None and v != "NaN" and (isinstance(v, bool) or not isinstance(v, (int, float))):
                    raise ConfigError(f"must be a number or null, not {v!r}", f"{path}.{side}[{j}]")
            arrays[side] = arr
        mc = _analysis(m, path, MetricConfig(name=name, kind="series",
                                             muted=bool(_get(m, "muted", path, (bool,), False)),
                                             description=_get(m, "description", path, (str,), "")))
        out.append(ArrayMetric(mc, arrays["baseline"], arrays["canary"]))
    return replace(cfg, metrics=tuple(a.config for a in out)), out


# ---- Kayenta canary config ----------------------------------------------------------------------

def is_kayenta_config(doc: Any) -> bool:
    if not isinstance(doc, Mapping):
        return False
    if isinstance(doc.get("judge"), Mapping) or "classifier" in doc or "configVersion" in doc:
        return True
    ms = doc.get("metrics")
    return isinstance(ms, list) and any(isinstance(m, Mapping) and "analysisConfigurations" in m for m in ms)


@dataclass(frozen=True)
class KayentaMetric:
    config: MetricConfig
    query: Mapping[str, Any]
    scope: str | None


def parse_kayenta_config(doc: Any, base: JudgeConfig | None = None) -> tuple[JudgeConfig, list[KayentaMetric]]:
    """A Kayenta canary config. Analysis settings come from `analysisConfigurations.canary`; the
    values of each metric come from a `--metrics` array or a meshctl table metric of the same name,
    or from `query: {type: meshctl, metric: NAME}`."""
    d = _obj(doc, "$")
    cfg = base or JudgeConfig()
    judge = d.get("judge")
    if isinstance(judge, Mapping) and judge.get("name") and "NetflixACAJudge" not in str(judge.get("name")):
        raise ConfigError(f"judge {judge.get('name')!r} is not supported (only NetflixACAJudge)", "judge.name")
    classifier = d.get("classifier") or {}
    classifier = _obj(classifier, "classifier")
    cfg = replace(cfg, group_weights=_weights(classifier.get("groupWeights"), "classifier.groupWeights"))
    cfg = _score_thresholds(classifier.get("scoreThresholds"), "classifier.scoreThresholds", cfg)
    cfg = _score_thresholds(d.get("scoreThresholds"), "scoreThresholds", cfg)
    out: list[KayentaMetric] = []
    for path, m, name in _metric_entries(d, None, required=True):  # Kayenta's metric keys are open
        ac = m.get("analysisConfigurations") or {}
        ac = _obj(ac, f"{path}.analysisConfigurations")
        canary = _obj(ac.get("canary") or {}, f"{path}.analysisConfigurations.canary")
        cpath = f"{path}.analysisConfigurations.canary"
        _check_keys(canary, cpath, _ANALYSIS_KEYS)
        groups = m.get("groups")
        if groups is not None and (not isinstance(groups, list) or not all(isinstance(g, str) for g in groups)):
            raise ConfigError("must be a list of group names", f"{path}.groups")
        mc = MetricConfig(name=name, kind="series", groups=tuple(groups) if groups else ("default",))
        mc = _analysis(canary, cpath, mc)
        query = m.get("query") or {}
        out.append(KayentaMetric(mc, _obj(query, f"{path}.query"), m.get("scopeName")))
    return replace(cfg, metrics=tuple(k.config for k in out)), out


# ---- meshctl canary config ----------------------------------------------------------------------

_QUANTILE = re.compile(r"^p(\d{1,2}(?:\.\d+)?)$")


def parse_quantile(text: str) -> float | None:
    m = _QUANTILE.match(text)
    if not m:
        return None
    q = float(m.group(1)) / 100.0
    return q if 0 < q < 1 else None


def parse_meshctl_config(doc: Any, base: JudgeConfig | None = None,
                         builtin: Mapping[str, MetricConfig] | None = None) -> JudgeConfig:
    """A meshctl canary config: overrides of built-in metrics (by name), custom table metrics
    (`filter` + `events`/`value` + `aggregation`), groups, weights, score thresholds, Flagger-style
    thresholds."""
    d = _obj(doc, "$")
    _check_keys(d, "", ("judge", "confidence", "tolerance", "power", "interval", "builtins", "metrics",
                        "groupWeights", "scoreThresholds", "thresholds"))
    cfg = _top_level(d, base or JudgeConfig())
    if "interval" in d:
        cfg = replace(cfg, interval_s=_interval(d["interval"], "interval"))
    builtin = dict(builtin or {})
    if "builtins" in d:
        b = d["builtins"]
        if b is False:
            cfg = replace(cfg, builtins=())
        elif b is True or b is None:
            cfg = replace(cfg, builtins=None)
        elif isinstance(b, list) and all(isinstance(x, str) for x in b):
            for j, x in enumerate(b):
                if x not in builtin:
                    hint = _close(x, list(builtin))
                    raise ConfigError(f"no built-in metric {x!r}" + (f" (did you mean {hint!r}?)" if hint else "")
                                      + f"; built-ins: {', '.join(builtin)}", f"builtins[{j}]")
            cfg = replace(cfg, builtins=tuple(b))
        else:
            raise ConfigError("must be true, false or a list of built-in metric names", "builtins")
    metrics: dict[str, MetricConfig] = {}
    keys = ("name", "groups", "description", "muted", "filter", "events", "value", "aggregation", *_ANALYSIS_KEYS)
    for path, m, name in _metric_entries(d, keys, required=False):
        custom = any(k in m for k in ("filter", "events", "value", "aggregation"))
        if name in builtin and not custom:
            mc = builtin[name]
        elif name in builtin:
            raise ConfigError(f"{name!r} is a built-in metric: override its analysis settings only, or pick "
                              "another name for a custom metric", f"{path}.name")
        else:
            mc = _custom_metric(m, path, name)
        mc = _analysis(m, path, mc)
        mc = replace(mc, muted=_get(m, "muted", path, (bool,), mc.muted),
                     description=_get(m, "description", path, (str,), mc.description))
        metrics[name] = mc
    cfg = replace(cfg, metrics=tuple(metrics.values()))
    ths = d.get("thresholds") or []
    if not isinstance(ths, list):
        raise ConfigError("must be a list", "thresholds")
    cfg = replace(cfg, thresholds=tuple(parse_threshold(t, f"thresholds[{i}]") for i, t in enumerate(ths)))
    return cfg


def _interval(val: Any, where: str) -> float:
    if isinstance(val, (int, float)) and not isinstance(val, bool) and val > 0:
        return float(val)
    if isinstance(val, str):
        m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)", val.strip())
        if m:
            return float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[m.group(2)]
    raise ConfigError(f"must be a duration such as 10s or 1m, not {val!r}", where)


def _custom_metric(m: Mapping[str, Any], path: str, name: str) -> MetricConfig:
    from analyzers.canary.expr import ExprError, parse_expr

    agg = _get(m, "aggregation", path, (str,), None)
    flt = _get(m, "filter", path, (str,), None)
    events = _get(m, "events", path, (str,), None)
    value = _get(m, "value", path, (str,), None)
    for key, text in (("filter", flt), ("events", events)):
        if text is not None:
            try:
                parse_expr(text)
            except ExprError as exc:
                raise ConfigError(str(exc), f"{path}.{key}") from None
    if agg is None:
        agg = "rate" if events is not None else "distribution"
    q = parse_quantile(agg)
    if q is None and agg not in AGGREGATIONS:
        raise ConfigError(f"must be one of {', '.join(AGGREGATIONS)} or a quantile such as p99, not {agg!r}",
                          f"{path}.aggregation")
    if agg == "rate":
        if events is None:
            raise ConfigError("a rate needs `events`: the expression that marks an event (e.g. response_code >= 500)",
                              f"{path}.events")
        kind, effect = "proportion", EffectSize("difference", 0.0, 0.0, 0.0, 0.0)
    else:
        if events is not None:
            raise ConfigError(f"`events` only goes with aggregation rate, not {agg}", f"{path}.events")
        if agg != "count" and value is None:
            raise ConfigError(f"aggregation {agg} needs `value`: a numeric column such as duration_ms", f"{path}.value")
        if value is not None:
            from analyzers.table import COLUMNS

            numeric = [n for n, t in COLUMNS if t in ("float64", "int32", "int64")]
            if value not in numeric:
                hint = _close(value, numeric)
                raise ConfigError(f"{value!r} is not a numeric requests-table column" +
                                  (f" (did you mean {hint!r}?)" if hint else f"; numeric columns: {', '.join(numeric)}"),
                                  f"{path}.value")
        kind = "quantile" if q is not None else ("distribution" if agg == "distribution" else "series")
        effect = EffectSize()
    return MetricConfig(name=name, kind=kind, groups=("custom",), direction="increase", effect_size=effect,
                        source=TableSource(filter=flt, events=events, value=value, aggregation=agg, quantile=q))


def parse_threshold(doc: Any, path: str) -> Threshold:
    d = _obj(doc, path)
    _check_keys(d, path, ("metric", "max", "min", "maxRatio", "maxDelta"))
    metric = _get(d, "metric", path, (str,))
    if metric not in THRESHOLD_FIGURES:
        hint = _close(metric or "", THRESHOLD_FIGURES)
        raise ConfigError(f"unknown figure {metric!r}" + (f" (did you mean {hint!r}?)" if hint else "")
                          + f"; one of {', '.join(THRESHOLD_FIGURES)}", f"{path}.metric")
    t = Threshold(metric, _get(d, "max", path, (float,)), _get(d, "min", path, (float,)),
                  _get(d, "maxRatio", path, (float,)), _get(d, "maxDelta", path, (float,)))
    if t.max is None and t.min is None and t.max_ratio is None and t.max_delta is None:
        raise ConfigError("a threshold needs max, min, maxRatio or maxDelta", path)
    return t
