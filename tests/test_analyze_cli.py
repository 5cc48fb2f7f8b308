"""`meshctl analyze canary|bluegreen` through its real entry point: exit codes, outputs, reports, errors."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import timedelta
from pathlib import Path

import pytest

from meshctl.store import Dataset
from tests.test_canary_scenarios import T0, cohort_rows, requests_table

ORACLE_CLASSIFICATION = "kayenta/metric_classification.json"


def _dataset(tmp_path: Path, *cohorts: dict) -> str:
    d = tmp_path / "data"
    Dataset(d).append([requests_table(*cohorts)])
    return str(d)


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    base = tmp_path_factory.mktemp("analyze")
    out = {}
    specs = {
        "healthy": (cohort_rows("v1", 20_000, seed=1), cohort_rows("v2", 5_000, seed=2)),
        "errors": (cohort_rows("v1", 20_000, seed=1), cohort_rows("v2", 5_000, seed=2, error_rate=0.05)),
        "tiny": (cohort_rows("v1", 30, seed=1), cohort_rows("v2", 30, seed=2)),
        "slower": (cohort_rows("v1", 20_000, seed=1), cohort_rows("v2", 20_000, seed=2, scale=1.3)),
    }
    for name, cohorts in specs.items():
        d = base / name
        Dataset(d).append([requests_table(*cohorts)])
        out[name] = str(d)
    return out


def canary(run_cli, data: str, *extra: str):
    return run_cli("analyze", "canary", "--data", data, "--service", "reviews", "--baseline", "version=v1",
                   "--canary", "version=v2", *extra)


def test_help_lists_both_analyses(run_cli):
    code, out, _ = run_cli("analyze", "--help")
    assert code == 0 and "canary" in out and "bluegreen" in out and "inconclusive" in out


@pytest.mark.parametrize(("name", "code", "verdict"), [
    ("healthy", 0, "pass"), ("errors", 1, "fail"), ("tiny", 2, "inconclusive")])
def test_exit_codes_follow_the_verdict(run_cli, datasets, name, code, verdict):
    got, out, err = canary(run_cli, datasets[name], "-o", "json")
    assert got == code, err
    doc = json.loads(out)
    assert doc["verdict"] == verdict
    assert {"verdict", "score", "metrics"} <= set(doc)
    for m in doc["metrics"]:
        assert {"name", "classification", "p_value", "ci", "baseline", "canary"} <= set(m)


def test_table_output_explains_itself(run_cli, datasets):
    code, out, _ = run_cli("analyze", "canary", "--data", datasets["errors"], "--service", "reviews", "--baseline",
                           "version=v1", "--canary", "version=v2", "--routes", "3", env={"COLUMNS": "200"})
    assert code == 1
    assert "FAIL" in out and "error_rate" in out and "High (critical)" in out
    assert "rows used: inbound" in out and "why" in out and "routes" in out


def test_inconclusive_says_how_much_more_data(run_cli, datasets):
    code, out, _ = canary(run_cli, datasets["tiny"], "-o", "json")
    doc = json.loads(out)
    under = [m for m in doc["metrics"] if m["inconclusive"]]
    assert code == 2 and under and all(m["more_needed"]["canary"] > 0 for m in under if m["more_needed"])
    assert any("more canary" in r for r in doc["reasons"])


def test_marginal_maps_to_the_chosen_exit_code(run_cli, datasets, tmp_path):
    cfg = tmp_path / "canary.yaml"
    cfg.write_text("builtins: [error_rate, latency]\ngroupWeights: {errors: 80, latency: 20}\n")
    code, out, _ = canary(run_cli, datasets["slower"], "--config", str(cfg), "-o", "json")
    doc = json.loads(out)
    assert doc["verdict"] == "marginal" and doc["score"] == 80.0
    assert code == 2
    assert canary(run_cli, datasets["slower"], "--config", str(cfg), "--marginal", "pass")[0] == 0
    assert canary(run_cli, datasets["slower"], "--config", str(cfg), "--marginal", "fail")[0] == 1


def test_reports(run_cli, datasets, tmp_path):
    md, junit, svg, png = (tmp_path / "r.md", tmp_path / "r.xml", tmp_path / "r.svg", tmp_path / "r.png")
    code, _, err = canary(run_cli, datasets["errors"], "--markdown", str(md), "--junit", str(junit),
                          "--plot", str(svg), "-o", "json")
    assert code == 1, err
    text = md.read_text()
    assert text.startswith("### ❌ Canary analysis of reviews: FAIL")
    assert "| `error_rate` | ✗ High (critical) |" in text
    root = ET.parse(junit).getroot()
    cases = root.findall(".//testcase")
    assert [c.get("name") for c in cases] == ["error_rate", "latency", "latency_p50", "latency_p90",
                                              "latency_p99", "verdict"]
    assert cases[0].find("failure") is not None and cases[0].find("failure").get("type") == "High (critical)"
    assert cases[1].find("failure") is None
    assert cases[-1].find("failure").get("type") == "fail"
    assert root.get("failures") == "2"
    assert svg.read_text().lstrip().startswith(("<?xml", "<svg"))
    code, _, _ = canary(run_cli, datasets["healthy"], "--plot", str(png), "-o", "json")
    assert code == 0 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_junit_verdict_case_fails_for_inconclusive(run_cli, datasets, tmp_path):
    junit = tmp_path / "r.xml"
    canary(run_cli, datasets["tiny"], "--junit", str(junit), "-o", "json")
    root = ET.parse(junit).getroot()
    verdict = next(c for c in root.iter("testcase") if c.get("name") == "verdict")
    assert verdict.find("failure").get("type") == "inconclusive"
    assert any(c.find("skipped") is not None for c in root.iter("testcase"))


def test_metrics_arrays_with_both_judges(run_cli, oracles_dir, tmp_path):
    cases = {c["id"]: c for c in json.loads((oracles_dir / ORACLE_CLASSIFICATION).read_text())}
    high, ok = cases["KAY-CLS-02"]["input"], cases["KAY-CLS-01"]["input"]
    doc = {"confidence": 0.95, "tolerance": 0.1, "metrics": [
        {"name": "high", "baseline": high["control"], "canary": high["experiment"], "groups": ["g1"]},
        {"name": "ok", "baseline": ok["control"], "canary": ok["experiment"] + [None], "groups": ["g2"]}]}
    f = tmp_path / "m.json"
    f.write_text(json.dumps(doc))
    code, out, _ = run_cli("analyze", "canary", "--metrics", str(f), "--judge", "kayenta", "-o", "json")
    res = json.loads(out)
    assert [m["classification"] for m in res["metrics"]] == ["High", "Pass"]
    assert res["score"] == 50.0 and code == 1
    code, out, _ = run_cli("analyze", "canary", "--metrics", str(f), "-o", "json")
    res = json.loads(out)
    assert res["metrics"][1]["classification"] == "Nodata" and res["metrics"][1]["inconclusive"]
    assert code == 1  # still fails: the High metric is real whatever the power of the other


def test_kayenta_canary_config_with_metric_arrays(run_cli, oracles_dir, tmp_path):
    cases = {c["id"]: c for c in json.loads((oracles_dir / ORACLE_CLASSIFICATION).read_text())}
    low = cases["KAY-CLS-03"]["input"]
    kcfg = {"name": "cfg", "judge": {"name": "NetflixACAJudge-v1.0", "judgeConfigurations": {}},
            "metrics": [{"name": "throughput", "groups": ["traffic"], "query": {"type": "prometheus"},
                         "analysisConfigurations": {"canary": {"direction": "increase"}}}],
            "classifier": {"groupWeights": {"traffic": 100}}}
    arrays = {"metrics": [{"name": "throughput", "baseline": low["control"], "canary": low["experiment"]}]}
    (tmp_path / "k.json").write_text(json.dumps(kcfg))
    (tmp_path / "a.json").write_text(json.dumps(arrays))
    code, out, err = run_cli("analyze", "canary", "--config", str(tmp_path / "k.json"), "--metrics",
                             str(tmp_path / "a.json"), "--judge", "kayenta", "-o", "json")
    res = json.loads(out)
    # Low, but the config only judges increases: a pass.
    assert res["metrics"][0]["classification"] == "Pass" and code == 0, err


def test_bluegreen_switch(run_cli, tmp_path):
    data = _dataset(tmp_path, cohort_rows("blue", 6_000, seed=1, start=T0, seconds=600),
                    cohort_rows("green", 6_000, seed=2, start=T0 + timedelta(seconds=600), seconds=600,
                                error_rate=0.05))
    switch = (T0 + timedelta(seconds=600)).isoformat()
    code, out, _ = run_cli("analyze", "bluegreen", "--data", data, "--service", "reviews", "--switch-at", switch,
                           "--window", "5m", "-o", "json")
    doc = json.loads(out)
    assert code == 1 and doc["analysis"] == "bluegreen" and doc["labels"]["canary"] == "green"
    assert doc["cohorts"]["baseline"]["requests"] == pytest.approx(3_000, rel=0.1)  # 5 minutes of 10
    code, out, _ = run_cli("analyze", "bluegreen", "--data", data, "--service", "reviews", "--blue", "version=blue",
                           "--green", "version=green", "-o", "json")
    assert code == 1 and json.loads(out)["cohorts"]["canary"]["requests"] == 6_000


def test_empty_canary_cohort_is_inconclusive_with_a_hint(run_cli, datasets):
    code, out, _ = run_cli("analyze", "canary", "--data", datasets["healthy"], "--service", "reviews",
                           "--baseline", "version=v1", "--canary", "version=v3", "-o", "json")
    doc = json.loads(out)
    assert code == 2
    assert any("destination_version: v1, v2" in n for n in doc["notes"])


@pytest.mark.parametrize(("args", "needle"), [
    (["--service", "reviwes", "--baseline", "version=v1", "--canary", "version=v2"],
     "services seen: reviews.shop.svc.cluster.local"),
    (["--service", "reviews", "--baseline", "version=v1"], "--canary is missing"),
    (["--service", "reviews", "--baseline", "ver=v1", "--canary", "version=v2"], "unknown selector key"),
    (["--service", "reviews", "--baseline", "version=v1", "--canary", "version=v2", "--plot", "x.gif"], ".svg or .png"),
    (["--service", "reviews", "--baseline", "version=v1", "--canary", "version=v2", "--confidence", "2"],
     "between 0 and 1"),
    ([], "nothing to judge"),
])
def test_usage_errors_exit_3(run_cli, datasets, args, needle):
    code, _, err = run_cli("analyze", "canary", "--data", datasets["healthy"], *args)
    assert code == 3
    assert needle in err


def test_missing_dataset_exits_3(run_cli, tmp_path):
    code, _, err = run_cli("analyze", "canary", "--data", str(tmp_path / "none"), "--service", "reviews",
                           "--baseline", "version=v1", "--canary", "version=v2")
    assert code == 3 and "collect first" in err


def test_config_errors_name_file_line_and_field(run_cli, datasets, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("metrics:\n  - name: latency\n    effectSize:\n      measure: meanRatio\n"
                   "      allowedIncrease: fast\n")
    code, _, err = canary(run_cli, datasets["healthy"], "--config", str(cfg))
    assert code == 3
    assert f"{cfg}:5: metrics[0].effectSize.allowedIncrease: must be a number" in err
    bad = tmp_path / "m.json"
    bad.write_text('{"metrics": [\n {"name": "a", "baseline": [1, 2], "canary": [1, "x"]}\n]}\n')
    code, _, err = run_cli("analyze", "canary", "--metrics", str(bad))
    assert code == 3 and f"{bad}:2: metrics[0].canary[1]: must be a number or null" in err
    broken = tmp_path / "b.json"
    broken.write_text('{"metrics": [\n  {"name": "a",,}\n]}')
    code, _, err = run_cli("analyze", "canary", "--metrics", str(broken))
    assert code == 3 and f"{broken}:2" in err and "not valid JSON" in err
