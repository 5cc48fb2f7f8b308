"""Canary config documents (meshctl, Kayenta, `--metrics`) and filter expressions."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest

from analyzers.canary import config as cc
from analyzers.canary.expr import ExprError, evaluate, parse_expr
from analyzers.canary.extract import BUILTINS


def test_metrics_document_defaults_are_kaynetas():
    cfg, arrays = cc.parse_metrics_document({"metrics": [{"name": "m", "baseline": [1, None, "NaN"],
                                                          "canary": [2.5]}]})
    mc = arrays[0].config
    assert (mc.direction, mc.critical, mc.must_have_data, mc.nan_strategy) == ("either", False, False, "remove")
    assert mc.effect_size == cc.EffectSize("meanRatio", 1.0, 1.0, 1.0, 1.0)
    assert mc.outliers == cc.Outliers("keep", 3.0)
    assert (cfg.confidence, cfg.tolerance, cfg.pass_threshold, cfg.marginal_threshold) == (0.98, 0.25, 95, 75)
    assert arrays[0].baseline == [1, None, "NaN"]


def test_metrics_document_per_metric_and_top_level_settings():
    doc = {"confidence": 0.9, "tolerance": 0.1, "groupWeights": {"a": 60, "b": 40},
           "scoreThresholds": {"pass": 90, "marginal": 50},
           "metrics": [{"name": "m", "groups": ["a"], "baseline": [1], "canary": [1], "direction": "increase",
                        "critical": True, "mustHaveData": True, "nanStrategy": "replace", "confidence": 0.95,
                        "tolerance": 0.2, "effectSize": {"measure": "cles", "allowedIncrease": 0.7},
                        "outliers": {"strategy": "remove", "outlierFactor": 1.5}}]}
    cfg, arrays = cc.parse_metrics_document(doc)
    mc = arrays[0].config
    assert cfg.group_weights == {"a": 60, "b": 40} and (cfg.pass_threshold, cfg.marginal_threshold) == (90, 50)
    assert cfg.metric_confidence(mc) == 0.95 and cfg.metric_tolerance(mc) == 0.2
    assert mc.effect_size.measure == "cles" and mc.effect_size.allowed_increase == 0.7
    assert mc.effect_size.allowed_decrease == 0.5  # the neutral value of the measure it switched to
    assert mc.outliers == cc.Outliers("remove", 1.5) and mc.groups == ("a",)


@pytest.mark.parametrize(("doc", "field", "needle"), [
    ({"metrics": []}, "metrics", "non-empty"),
    ({"metrics": [{"name": "m", "baseline": [1]}]}, "metrics[0].canary", "array"),
    ({"metrics": [{"name": "m", "baseline": [1], "canary": [True]}]}, "metrics[0].canary[0]", "number or null"),
    ({"metrics": [{"name": "m", "baseline": [], "canary": [], "direction": "up"}]}, "metrics[0].direction",
     "one of increase, decrease, either"),
    ({"metrics": [{"name": "m", "baseline": [], "canary": [], "effectSize": {"measure": "cles",
                                                                            "allowedIncrease": 1.2}}]},
     "metrics[0].effectSize.allowedIncrease", "probability"),
    ({"metrics": [{"name": "m", "baseline": [], "canary": []}, {"name": "m", "baseline": [], "canary": []}]},
     "metrics[1].name", "duplicate"),
    ({"metrics": [{"name": "m", "baseline": [], "canary": [], "critcal": True}]}, "metrics[0].critcal",
     "did you mean 'critical'"),
    ({"confidence": 1.5, "metrics": [{"name": "m", "baseline": [], "canary": []}]}, "confidence", "between 0 and 1"),
    ({"scoreThresholds": {"pass": 50, "marginal": 75}, "metrics": [{"name": "m", "baseline": [], "canary": []}]},
     "scoreThresholds.marginal", "above pass"),
    ({"metrics": [{"name": "m", "baseline": [], "canary": [], "outliers": {"outlierFactor": 0}}]},
     "metrics[0].outliers.outlierFactor", "greater than zero"),
])
def test_metrics_document_errors_name_the_field(doc, field, needle):
    with pytest.raises(cc.ConfigError) as e:
        cc.parse_metrics_document(doc)
    assert e.value.field == field and needle in e.value.message


@pytest.mark.parametrize(("parse", "doc", "field", "needle"), [
    (cc.parse_meshctl_config, {"metrics": {"errors": {"events": "error"}}}, "metrics", "list of metrics"),
    (cc.parse_meshctl_config, {"metrics": [{"name": "x", "events": "error"}, {"name": "x", "events": "error"}]},
     "metrics[1].name", "duplicate"),
    (cc.parse_meshctl_config, {"metrics": [{"name": "", "events": "error"}]}, "metrics[0].name", "needs a name"),
    (cc.parse_kayenta_config, {"classifier": {}, "metrics": []}, "metrics", "non-empty"),
    (cc.parse_kayenta_config, {"classifier": {}, "metrics": [{"name": "a"}, {"name": "a"}]}, "metrics[1].name",
     "duplicate"),
    (cc.parse_kayenta_config, {"classifier": {}, "metrics": ["cpu"]}, "metrics[0]", "must be an object"),
])
def test_metric_list_errors_name_the_field(parse, doc, field, needle):
    with pytest.raises(cc.ConfigError) as e:
        parse(doc)
    assert e.value.field == field and needle in e.value.message


def test_kayenta_config_detection_and_parsing():
    doc = {"name": "c", "configVersion": "1", "judge": {"name": "NetflixACAJudge-v1.0"},
           "metrics": [{"name": "cpu", "groups": ["system"], "scopeName": "default",
                        "query": {"type": "atlas", "q": "name,CpuRawUser,:eq"},
                        "analysisConfigurations": {"canary": {"direction": "increase", "nanStrategy": "none",
                                                              "critical": True, "effectSize": {"allowedIncrease": 1.2},
                                                              "outliers": {"strategy": "remove"}}}}],
           "classifier": {"groupWeights": {"system": 100}}}
    assert cc.is_kayenta_config(doc) and not cc.is_kayenta_config({"metrics": [{"name": "x", "filter": "true"}]})
    cfg, kms = cc.parse_kayenta_config(doc)
    mc = kms[0].config
    assert (mc.direction, mc.critical, mc.nan_strategy, mc.groups) == ("increase", True, "remove", ("system",))
    assert mc.outliers.strategy == "remove" and mc.effect_size.allowed_increase == 1.2
    assert kms[0].query["type"] == "atlas" and cfg.group_weights == {"system": 100}
    with pytest.raises(cc.ConfigError, match="only NetflixACAJudge"):
        cc.parse_kayenta_config({**doc, "judge": {"name": "dredd-v1.0"}})


def test_kayenta_metric_without_values_is_an_error():
    from analyzers.canary import resolve_kayenta

    _, kms = cc.parse_kayenta_config({"metrics": [{"name": "cpu", "analysisConfigurations": {"canary": {}}}]})
    with pytest.raises(cc.ConfigError, match="no values for Kayenta metric 'cpu'") as e:
        resolve_kayenta(kms, [], table_available=True)
    assert e.value.field == "metrics[0].query"


def test_meshctl_config_overrides_and_custom_metrics():
    cfg = cc.parse_meshctl_config({
        "judge": "kayenta", "interval": "30s", "builtins": ["error_rate", "latency_p99"],
        "metrics": [{"name": "latency_p99", "critical": False},
                    {"name": "p95", "value": "duration_ms", "aggregation": "p95"},
                    {"name": "bytes", "value": "bytes_sent", "aggregation": "mean"}]}, builtin=BUILTINS)
    assert cfg.judge == "kayenta" and cfg.interval_s == 30 and cfg.builtins == ("error_rate", "latency_p99")
    by = {m.name: m for m in cfg.metrics}
    assert by["latency_p99"].critical is False and by["latency_p99"].source.quantile == 0.99
    assert by["p95"].kind == "quantile" and by["p95"].source.quantile == pytest.approx(0.95)
    assert by["bytes"].kind == "series" and by["bytes"].source.aggregation == "mean"
    with pytest.raises(cc.ConfigError, match="no built-in metric 'latency_p95'"):
        cc.parse_meshctl_config({"builtins": ["latency_p95"]}, builtin=BUILTINS)
    with pytest.raises(cc.ConfigError, match="is a built-in metric"):
        cc.parse_meshctl_config({"metrics": [{"name": "latency", "value": "bytes_sent"}]}, builtin=BUILTINS)
    with pytest.raises(cc.ConfigError) as e:
        cc.parse_meshctl_config({"thresholds": [{"metric": "p99_latency", "max": 1}]}, builtin=BUILTINS)
    assert e.value.field == "thresholds[0].metric" and "latency_p99" in e.value.message


# ---- filter expressions --------------------------------------------------------------------------

def _table() -> pa.Table:
    return pa.table({
        "response_code": pa.array([200, 503, None, 404, 500], pa.int32()),
        "path": pa.array(["/api/a", "/api/b", "/health", None, "/API/c"], pa.string()),
        "method": pa.array(["GET", "POST", "GET", "GET", "PUT"], pa.string()),
        "duration_ms": pa.array([1.0, 250.0, 3.0, math.nan, 40.0], pa.float64()),
    })


@pytest.mark.parametrize(("text", "expected"), [
    ("response_code >= 500", [False, True, False, False, True]),
    ("response_code != 200", [False, True, False, True, True]),  # null never matches
    ("not response_code == 200", [False, True, False, True, True]),
    ("path.startswith('/api')", [True, True, False, False, False]),
    ("startswith(lower(path), '/api')", [True, True, False, False, True]),
    ("match(path, '^/api/[ab]$') and method in ['GET', 'POST']", [True, True, False, False, False]),
    ("method not in ['GET']", [False, True, False, False, True]),
    ("200 <= response_code < 500", [True, False, False, True, False]),
    ("isnull(path) or duration_ms > 100", [False, True, False, True, False]),
    ("response_code in [500, 503]", [False, True, False, False, True]),
    ("path == None", [False, False, False, True, False]),
    ("contains(path, 'b') or endswith(path, 'c')", [False, True, False, False, True]),
])
def test_expressions(text, expected):
    assert evaluate(parse_expr(text), _table()).tolist() == expected


@pytest.mark.parametrize(("text", "needle"), [
    ("response_code >= ", "invalid expression"),
    ("__import__('os').system('x')", "unknown function"),
    ("path[0] == '/'", "not allowed"),
    ("path.upper() == 'X'", "unknown function"),
    ("open('x')", "unknown function"),
    ("lambda: 1", "not allowed"),
    ("respone_code == 1", "did you mean 'response_code'"),
    ("path.__class__", "attributes are not allowed"),
])
def test_expression_errors(text, needle):
    with pytest.raises(ExprError) as e:
        parse_expr(text)
    assert needle in str(e.value)


def test_expression_type_errors_are_reported_not_raised_raw():
    with pytest.raises(ExprError, match="cannot evaluate"):
        evaluate(parse_expr("path > 5"), _table())
    with pytest.raises(ExprError, match="not a condition"):
        evaluate(parse_expr("duration_ms"), _table())


def test_derived_columns_in_custom_metrics():
    from analyzers.canary import JudgeConfig, assign, judge, parse_selector
    from tests.test_canary_scenarios import cohort_rows, requests_table

    b, c = cohort_rows("v1", 3_000, seed=1), cohort_rows("v2", 3_000, seed=2)
    c["response_code"] = np.where(np.array(c["path"]) == "/health", 503, c["response_code"]).astype(np.int32)
    cfg = cc.parse_meshctl_config({"builtins": False, "metrics": [
        {"name": "health_errors", "filter": "route == 'GET /health'", "events": "error"},
        {"name": "api_errors", "filter": "route != 'GET /health' and route != 'POST /health'", "events": "error"}]},
        JudgeConfig(), builtin=BUILTINS)
    cohorts = assign(requests_table(b, c), "reviews", baseline=parse_selector("version=v1"),
                     canary=parse_selector("version=v2"))
    res = judge(cfg, cohorts, routes=0)
    by = {m.name: m for m in res.metrics}
    assert by["health_errors"].canary["rate"] == 1.0 and by["health_errors"].classification == "High"
    assert by["api_errors"].canary["events"] < 20
