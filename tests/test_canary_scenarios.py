"""Canary and blue-green scenarios with known truth, on generated requests tables.

`requests_table()` builds rows in the requests-table schema (the helpers are imported by the other
canary test modules). Every scenario states what a correct judge must conclude.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import numpy as np
import pyarrow as pa
import pytest

from analyzers.canary import JudgeConfig, assign, judge, parse_selector
from analyzers.canary.config import ConfigError, parse_meshctl_config
from analyzers.canary.extract import BUILTINS, path_template
from analyzers.table import conform_arrow

T0 = datetime(2026, 1, 1, 10, 0, tzinfo=timezone.utc)


def cohort_rows(version: str, n: int, *, seed: int, error_rate: float = 0.001, scale: float = 1.0,
                tail_factor: float = 1.0, direction: str = "inbound", start: datetime = T0, seconds: float = 1800,
                service: str = "reviews.shop.svc.cluster.local", error_code: int = 503, **extra: object) -> dict:
    """Columns for n requests to one version: lognormal latency (median ~20 ms, whole ms as Envoy logs
    them) times `scale`; requests above the cohort's 95th percentile are slowed by `tail_factor`."""
    rng = np.random.default_rng(seed)
    lat = rng.lognormal(3.0, 0.5, n) * scale
    if tail_factor != 1.0:
        cut = np.quantile(lat, 0.95)
        lat = np.where(lat > cut, cut + (lat - cut) * tail_factor + cut * (tail_factor - 1), lat)
    lat = np.maximum(np.round(lat), 1.0)
    errors = rng.random(n) < error_rate
    ts = [start + timedelta(seconds=float(s)) for s in np.sort(rng.uniform(0, seconds, n))]
    paths = np.array([f"/reviews/{i}" for i in range(1, 40)] + ["/reviews", "/health"])[rng.integers(0, 41, n)]
    cols = {
        "timestamp": ts,
        "duration_ms": lat,
        "response_code": np.where(errors, error_code, 200).astype(np.int32),
        "method": np.where(rng.random(n) < 0.8, "GET", "POST").tolist(),
        "path": paths.tolist(),
        "destination_service": [service] * n,
        "destination_app": [service.split(".")[0]] * n,
        "destination_namespace": ["shop"] * n,
        "destination_version": [version] * n,
        "destination_workload": [f"{service.split('.')[0]}-{version}"] * n,
        "direction": [direction] * n,
        "reporter_workload": [f"{service.split('.')[0]}-{version}" if direction == "inbound" else "productpage-v1"] * n,
        "record_kind": ["access_log"] * n,
        "record_source": [f"shop/{service.split('.')[0]}-{version}-7d9f8b-{i % 3}/istio-proxy" for i in range(n)],
    }
    for k, v in extra.items():
        cols[k] = v if isinstance(v, list) else [v] * n
    return cols


def requests_table(*cohorts: dict) -> pa.Table:
    names = list(dict.fromkeys(k for c in cohorts for k in c))
    merged = {}
    for name in names:
        vals: list = []
        for c in cohorts:
            n = len(c["duration_ms"])
            v = c.get(name)
            vals += list(v) if v is not None else [None] * n
        merged[name] = vals
    arrays = {}
    for name, vals in merged.items():
        if name == "timestamp":
            arrays[name] = pa.array(vals, pa.timestamp("us", tz="UTC"))
        elif name in ("duration_ms",):
            arrays[name] = pa.array([None if v is None else float(v) for v in vals], pa.float64())
        elif name in ("response_code", "grpc_status"):
            arrays[name] = pa.array([None if v is None else int(v) for v in vals], pa.int32())
        elif name in ("bytes_sent", "bytes_received"):
            arrays[name] = pa.array([None if v is None else int(v) for v in vals], pa.int64())
        else:
            arrays[name] = pa.array(vals, pa.string())
    return conform_arrow(pa.table(arrays))


def run(table: pa.Table, cfg: JudgeConfig | None = None, baseline: str = "version=v1", canary: str = "version=v2",
        **kw: object):
    cohorts = assign(table, "reviews", baseline=parse_selector(baseline), canary=parse_selector(canary),
                     **kw)  # type: ignore[arg-type]
    return judge(cfg or JudgeConfig(), cohorts)


def metric(res, name: str):
    return next(m for m in res.metrics if m.name == name)


# ---- the scenarios of the issue -------------------------------------------------------------------

def test_identical_cohorts_pass():
    t = requests_table(cohort_rows("v1", 20_000, seed=1), cohort_rows("v2", 5_000, seed=2))
    res = run(t)
    assert res.verdict == "pass", res.reasons
    assert res.score == 100
    assert all(m.classification == "Pass" and m.power >= 0.8 for m in res.metrics)


def test_canary_with_five_percent_503s_fails():
    t = requests_table(cohort_rows("v1", 20_000, seed=1, error_rate=0.001),
                       cohort_rows("v2", 5_000, seed=2, error_rate=0.05))
    res = run(t)
    assert res.verdict == "fail"
    er = metric(res, "error_rate")
    assert er.classification == "High" and er.critical
    assert er.p_value < 1e-20 and er.ci[0] > 0.04
    assert res.score == 0
    assert any("error_rate" in r for r in res.reasons)


def test_canary_p99_forty_percent_slower_fails():
    t = requests_table(cohort_rows("v1", 20_000, seed=1), cohort_rows("v2", 5_000, seed=2, tail_factor=1.4))
    res = run(t)
    p99 = metric(res, "latency_p99")
    assert p99.canary["p99"] / p99.baseline["p99"] == pytest.approx(1.4, abs=0.1)
    assert p99.classification == "High" and p99.critical
    assert metric(res, "latency_p50").classification == "Pass"  # only the tail moved
    assert res.verdict == "fail"


def test_shift_smaller_than_the_effect_size_passes():
    # 4% slower everywhere: statistically clear with these volumes, but under the 10% / 20% allowed.
    t = requests_table(cohort_rows("v1", 40_000, seed=1), cohort_rows("v2", 40_000, seed=2, scale=1.04))
    res = run(t)
    lat = metric(res, "latency")
    assert lat.ci[0] > 0  # the shift is detected ...
    assert lat.classification == "Pass" and lat.effect < 1.1  # ... and allowed
    assert res.verdict == "pass", res.reasons


def test_thirty_requests_per_cohort_are_inconclusive():
    t = requests_table(cohort_rows("v1", 30, seed=1), cohort_rows("v2", 30, seed=2))
    res = run(t)
    assert res.verdict == "inconclusive"
    under = [m for m in res.metrics if m.inconclusive]
    assert under and all(m.classification == "Nodata" for m in under)
    er = metric(res, "error_rate")
    assert er.inconclusive and er.more_needed["canary"] > 100
    assert "more canary" in er.reason
    # Kayenta semantics judge the same data without a power check.
    kay = run(t, JudgeConfig(judge="kayenta"))
    assert kay.verdict in ("pass", "marginal", "fail")
    assert not any(m.inconclusive for m in kay.metrics)


def test_a_canary_that_got_no_traffic_is_inconclusive_never_pass():
    t = requests_table(cohort_rows("v1", 5_000, seed=1))
    res = run(t)
    assert res.verdict == "inconclusive"
    assert res.cohorts["canary"]["requests"] == 0
    assert all(m.classification == "Nodata" for m in res.metrics)


def test_a_faster_canary_is_not_a_failure():
    t = requests_table(cohort_rows("v1", 20_000, seed=1), cohort_rows("v2", 20_000, seed=2, scale=0.6))
    res = run(t)
    assert metric(res, "latency").estimate < 0
    assert res.verdict == "pass"  # latency metrics judge increases only


# ---- kayenta mode on a table ----------------------------------------------------------------------

def test_kayenta_mode_judges_error_rate_as_per_interval_rates():
    t = requests_table(cohort_rows("v1", 20_000, seed=1, error_rate=0.001),
                       cohort_rows("v2", 5_000, seed=2, error_rate=0.05))
    res = run(t, JudgeConfig(judge="kayenta", interval_s=10))
    er = metric(res, "error_rate")
    assert er.test == "rank-sum" and "per-10s rate" in er.ci_of
    assert er.baseline["count"] == pytest.approx(180, abs=2)  # 30 min of 10 s buckets
    assert er.classification == "High" and res.verdict == "fail"
    assert metric(res, "latency_p99").kind == "quantile" and metric(res, "latency_p99").test == "rank-sum"


# ---- cohorts -----------------------------------------------------------------------------------------

def test_inbound_rows_are_preferred_and_outbound_rows_are_not_double_counted():
    b_in = cohort_rows("v1", 3_000, seed=1)
    c_in = cohort_rows("v2", 3_000, seed=2)
    b_out = cohort_rows("v1", 3_000, seed=3, direction="outbound", scale=1.5)
    c_out = cohort_rows("v2", 3_000, seed=4, direction="outbound", scale=1.5)
    t = requests_table(b_in, c_in, b_out, c_out)
    cohorts = assign(t, "reviews", baseline=parse_selector("version=v1"), canary=parse_selector("version=v2"))
    assert cohorts.reporter == "inbound"
    assert (cohorts.baseline.rows, cohorts.canary.rows) == (3_000, 3_000)
    out = assign(t, "reviews", baseline=parse_selector("version=v1"), canary=parse_selector("version=v2"),
                 reporter="outbound")
    assert out.reporter == "outbound" and out.baseline.rows == 3_000


def test_outbound_rows_are_used_when_the_destination_has_no_inbound_rows():
    t = requests_table(cohort_rows("v1", 1_000, seed=1, direction="outbound"),
                       cohort_rows("v2", 1_000, seed=2, direction="outbound"))
    cohorts = assign(t, "reviews", baseline=parse_selector("version=v1"), canary=parse_selector("version=v2"))
    assert cohorts.reporter == "outbound"
    assert any("outbound" in n for n in cohorts.notes)


def test_mixed_reporters_are_flagged():
    t = requests_table(cohort_rows("v1", 1_000, seed=1, direction="inbound"),
                       cohort_rows("v2", 1_000, seed=2, direction="outbound"))
    cohorts = assign(t, "reviews", baseline=parse_selector("version=v1"), canary=parse_selector("version=v2"))
    assert cohorts.reporter == "mixed"
    assert any("not directly comparable" in n for n in cohorts.notes)


def test_spans_of_the_same_requests_are_not_counted_twice():
    logs_b, logs_c = cohort_rows("v1", 2_000, seed=1), cohort_rows("v2", 2_000, seed=2)
    spans_b = cohort_rows("v1", 500, seed=3, record_kind="span", error_rate=0.5)
    spans_c = cohort_rows("v2", 500, seed=4, record_kind="span", error_rate=0.5)
    t = requests_table(logs_b, logs_c, spans_b, spans_c)
    cohorts = assign(t, "reviews", baseline=parse_selector("version=v1"), canary=parse_selector("version=v2"))
    assert (cohorts.baseline.rows, cohorts.canary.rows) == (2_000, 2_000)
    assert any("record kind: access_log rows (1000 rows of other kinds" in n for n in cohorts.notes)
    only_spans = assign(requests_table(spans_b, spans_c), "reviews", baseline=parse_selector("version=v1"),
                        canary=parse_selector("version=v2"))
    assert only_spans.canary.rows == 500


def test_client_side_failures_invisible_inbound_are_reported():
    c_out = cohort_rows("v2", 200, seed=4, direction="outbound", response_flags="UF")
    t = requests_table(cohort_rows("v1", 1_000, seed=1), cohort_rows("v2", 1_000, seed=2), c_out)
    cohorts = assign(t, "reviews", baseline=parse_selector("version=v1"), canary=parse_selector("version=v2"))
    assert any("200 client-side requests to the canary failed before reaching it" in n for n in cohorts.notes)


@pytest.mark.parametrize(("baseline", "canary"), [
    ("subset=stable", "subset=canary"),
    ("workload=reviews-v1", "workload=reviews-v2"),
    ("pod=reviews-v1-*", "pod=reviews-v2-*"),
    ("version=v1,namespace=shop", "version!=v1"),
])
def test_selectors(baseline: str, canary: str) -> None:
    b = cohort_rows("v1", 500, seed=1, destination_subset="stable")
    c = cohort_rows("v2", 300, seed=2, destination_subset="canary")
    cohorts = assign(requests_table(b, c), "reviews", baseline=parse_selector(baseline),
                     canary=parse_selector(canary))
    assert (cohorts.baseline.rows, cohorts.canary.rows) == (500, 300)


def test_service_names_match_short_fqdn_and_app():
    t = requests_table(cohort_rows("v1", 100, seed=1), cohort_rows("v2", 100, seed=2),
                       cohort_rows("v2", 50, seed=3, service="ratings.shop.svc.cluster.local"))
    for name in ("reviews", "reviews.shop", "reviews.shop.svc.cluster.local"):
        c = assign(t, name, baseline=parse_selector("version=v1"), canary=parse_selector("version=v2"))
        assert (c.baseline.rows, c.canary.rows) == (100, 100)
    other_ns = assign(t, "reviews", baseline=parse_selector("version=v1"), canary=parse_selector("version=v2"),
                      namespace="default")
    assert other_ns.canary.rows == 0


def test_selector_errors():
    with pytest.raises(ConfigError, match="not key=value"):
        parse_selector("v2")
    with pytest.raises(ConfigError, match="did you mean 'version'"):
        parse_selector("versoin=v2")
    t = requests_table(cohort_rows("v1", 10, seed=1))
    with pytest.raises(ConfigError, match="match both"):
        assign(t, "reviews", baseline=parse_selector("app=reviews"), canary=parse_selector("version=v1"))


def test_bluegreen_switch_compares_before_and_after():
    before = cohort_rows("blue", 8_000, seed=1, start=T0, seconds=900)
    after = cohort_rows("green", 8_000, seed=2, start=T0 + timedelta(seconds=900), seconds=900, error_rate=0.04)
    t = requests_table(before, after)
    cohorts = assign(t, "reviews", baseline=None, canary=None, switch_at=T0 + timedelta(seconds=900),
                     labels=("blue", "green"))
    assert (cohorts.baseline.rows, cohorts.canary.rows) == (8_000, 8_000)
    res = judge(JudgeConfig(), cohorts, kind="bluegreen", labels=("blue", "green"))
    assert res.verdict == "fail" and metric(res, "error_rate").classification == "High"
    assert res.as_dict()["labels"] == {"baseline": "blue", "canary": "green"}


# ---- errors, routes, thresholds, custom metrics ---------------------------------------------------

def test_error_definition():
    n = 8
    rows = cohort_rows("v1", n, seed=1, error_rate=0.0)
    rows["response_code"] = np.array([200, 503, 0, 0, 200, 200, 404, 200], dtype=np.int32)
    rows["response_flags"] = [None, None, "DC", "UF", "UO", "RL", None, None]
    rows["grpc_status"] = [None, None, None, None, None, None, None, 14]
    rows["span_status"] = [None] * 7 + ["error"]
    from analyzers.canary.cohorts import Columns
    from analyzers.canary.extract import error_mask

    got = error_mask(Columns(requests_table(rows))).tolist()
    # 503; 0 after the client left (DC) is not the server's fault; 0 with UF is; UO is a failure flag;
    # RL (rate limited, 200 here) and 404 are not errors; gRPC UNAVAILABLE (14) is.
    assert got == [False, True, False, True, True, False, False, True]


def test_path_templates():
    # the rules of analyzers.routes (tests/test_routes.py), shared with the route-tagger Wasm plugin
    assert path_template("/reviews/123?x=1") == "/reviews/{id}"
    assert path_template("/u/550e8400-e29b-41d4-a716-446655440000/orders") == "/u/{uuid}/orders"
    assert path_template("/blob/9f86d081884c7d659a2feaa0c55ad015ab12cd34") == "/blob/{hex}"
    assert path_template("/day/2026-01-02") == "/day/{date}"
    assert path_template("/t/AbC123xYz987QwE456") == "/t/{token}"
    assert path_template("/productpage") == "/productpage"
    assert path_template(None) == "-"


def test_route_breakdown_finds_the_failing_route():
    b = cohort_rows("v1", 10_000, seed=1)
    c = cohort_rows("v2", 10_000, seed=2)
    c["response_code"] = np.where(np.array(c["path"]) == "/health", 500, c["response_code"]).astype(np.int32)
    res = run(requests_table(b, c))
    routes = {r.route: r for r in res.routes}
    assert {"GET /reviews/{id}", "POST /reviews/{id}", "GET /health"} <= set(routes)
    assert routes["GET /health"].error_rate.classification == "High"
    assert routes["GET /reviews/{id}"].error_rate.classification == "Pass"
    total = sum(r.baseline["requests"] for r in res.routes)
    assert total == 10_000


def test_flagger_thresholds():
    t = requests_table(cohort_rows("v1", 5_000, seed=1, error_rate=0.001),
                       cohort_rows("v2", 5_000, seed=2, error_rate=0.003, scale=1.15))
    doc = {"thresholds": [{"metric": "error_rate", "max": 0.01}, {"metric": "success_rate", "min": 0.99},
                          {"metric": "latency_p99", "max": 1000}, {"metric": "latency_p99", "maxRatio": 1.1}]}
    cfg = parse_meshctl_config(doc, builtin=BUILTINS)
    res = run(t, cfg)
    passed = [t.passed for t in res.thresholds]
    assert passed == [True, True, True, False]
    assert res.verdict == "fail" and any("threshold latency_p99 <= 1.1 x baseline" in r for r in res.reasons)


def test_custom_metrics_from_config():
    b = cohort_rows("v1", 6_000, seed=1, bytes_sent=[1000] * 6_000)
    c = cohort_rows("v2", 6_000, seed=2, bytes_sent=[1500] * 6_000)
    c["response_code"] = np.where(np.array(c["method"]) == "POST", 500, 200).astype(np.int32)
    doc = {
        "builtins": ["latency"],
        "metrics": [
            {"name": "post_errors", "filter": "method == 'POST'", "events": "response_code >= 500",
             "critical": True},
            {"name": "payload", "value": "bytes_sent", "aggregation": "distribution",
             "effectSize": {"allowedIncrease": 1.2}},
            {"name": "slow_share", "events": "duration_ms > 100 and path.startswith('/reviews')"},
            {"name": "latency", "effectSize": {"allowedIncrease": 1.3}},
        ],
        "groupWeights": {"custom": 80},
    }
    cfg = parse_meshctl_config(doc, builtin=BUILTINS)
    res = run(requests_table(b, c), cfg)
    names = [m.name for m in res.metrics]
    assert names == ["latency", "post_errors", "payload", "slow_share"]
    assert metric(res, "latency").effect_size["allowedIncrease"] == 1.3
    pe = metric(res, "post_errors")
    assert pe.kind == "proportion" and pe.canary["rate"] == 1.0 and pe.classification == "High" and pe.critical
    assert metric(res, "payload").classification == "High"
    assert metric(res, "slow_share").classification == "Pass"
    assert res.verdict == "fail"


def test_custom_metric_config_errors_name_the_field():
    with pytest.raises(ConfigError) as e:
        parse_meshctl_config({"metrics": [{"name": "x", "events": "respons_code >= 500"}]}, builtin=BUILTINS)
    assert e.value.field == "metrics[0].events" and "did you mean 'response_code'" in e.value.message
    with pytest.raises(ConfigError) as e:
        parse_meshctl_config({"metrics": [{"name": "x", "value": "path", "aggregation": "p95"}]}, builtin=BUILTINS)
    assert e.value.field == "metrics[0].value"
    with pytest.raises(ConfigError) as e:
        parse_meshctl_config({"metrics": [{"name": "x", "events": "__import__('os')"}]}, builtin=BUILTINS)
    assert "not allowed" in e.value.message or "unknown function" in e.value.message
    with pytest.raises(ConfigError) as e:
        parse_meshctl_config({"groupWeights": {"a": 70, "b": 40}}, builtin=BUILTINS)
    assert e.value.field == "groupWeights"


def test_power_knobs_change_what_is_enough():
    t = requests_table(cohort_rows("v1", 2_000, seed=1), cohort_rows("v2", 400, seed=2))
    strict = run(t, JudgeConfig(power=0.99))
    lax = run(t, JudgeConfig(power=0.5))
    assert sum(m.inconclusive for m in strict.metrics) >= sum(m.inconclusive for m in lax.metrics)
    assert strict.verdict == "inconclusive"


def test_result_json_shape():
    t = requests_table(cohort_rows("v1", 3_000, seed=1), cohort_rows("v2", 3_000, seed=2))
    d = run(t).as_dict()
    assert d["verdict"] in ("pass", "marginal", "fail", "inconclusive") and isinstance(d["score"], float)
    for m in d["metrics"]:
        assert {"name", "classification", "p_value", "ci", "baseline", "canary"} <= set(m)
        assert len(m["ci"]) == 2
    assert d["cohorts"]["baseline"]["requests"] == 3_000
    import json

    json.dumps(d, allow_nan=False)  # no NaN leaks into JSON


def test_underpowered_quantile_reports_the_needed_requests():
    t = requests_table(cohort_rows("v1", 800, seed=1), cohort_rows("v2", 200, seed=2))
    res = run(t)
    p99 = metric(res, "latency_p99")
    assert p99.inconclusive and p99.more_needed["canary"] > 0
    # The suggestion is consistent: that much more data reaches the target power.
    more = p99.more_needed
    assert more["baseline"] / more["canary"] == pytest.approx(800 / 200, rel=0.05)


def test_kayenta_config_settings_apply_to_table_metrics():
    from analyzers.canary import parse_kayenta_config, resolve_kayenta

    doc = {"name": "reviews", "judge": {"name": "NetflixACAJudge-v1.0"},
           "metrics": [{"name": "error_rate", "groups": ["errors"], "query": {"type": "prometheus"},
                        "analysisConfigurations": {"canary": {"direction": "increase", "critical": True}}},
                       {"name": "p99", "groups": ["latency"], "query": {"type": "meshctl", "metric": "latency_p99"},
                        "analysisConfigurations": {"canary": {"direction": "increase",
                                                              "effectSize": {"allowedIncrease": 1.3}}}}],
           "classifier": {"groupWeights": {"errors": 60, "latency": 40}}}
    cfg, kms = parse_kayenta_config(doc)
    assert cfg.group_weights == {"errors": 60, "latency": 40}
    table_mcs, arrays = resolve_kayenta(kms, [], table_available=True)
    assert [m.name for m in table_mcs] == ["error_rate", "p99"] and not arrays
    assert table_mcs[1].source.quantile == 0.99 and table_mcs[1].effect_size.allowed_increase == 1.3
    t = requests_table(cohort_rows("v1", 5_000, seed=1), cohort_rows("v2", 5_000, seed=2, error_rate=0.05))
    cohorts = assign(t, "reviews", baseline=parse_selector("version=v1"), canary=parse_selector("version=v2"))
    res = judge(replace(cfg, judge="kayenta"), cohorts, table_metric_configs=table_mcs)
    assert [m.name for m in res.metrics] == ["error_rate", "p99"]
    assert res.verdict == "fail"


def test_nan_safe_summary_of_empty_cohort():
    t = requests_table(cohort_rows("v1", 100, seed=1))
    d = run(t).as_dict()
    assert d["cohorts"]["canary"]["requests"] == 0
    assert d["cohorts"]["canary"]["error_rate"] is None
    assert not any(isinstance(v, float) and math.isnan(v) for v in d["cohorts"]["canary"].values())
