"""End to end with real Envoys: a backend canary that returns 503 for 5% of its requests fails the
gate; a healthy canary passes.

Traffic goes gateway -> frontend -> reviews (v1 baseline, v2 canary, 50/50) through Istio-like
sidecars (meshctl.mesh); the proxies' JSON access logs are parsed by meshctl's access-log parser and
stored through meshctl.ingest, and the verdict comes from the real CLI entry point.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = [pytest.mark.envoy, pytest.mark.slow]

REQUESTS = 1200

# Sized to this traffic (about 600 requests per cohort): with 98% confidence and 80% power it can
# tell a 2-point rise of the error rate and a 50% slower median; the defaults' 0.5-point error-rate
# change and the p90/p99 quantile tests need thousands of requests per cohort and would (rightly)
# call a run this small inconclusive. The latency allowance is wide because the two pods share two
# CPU cores with everything else the test machine runs: one of them can be descheduled for a while.
CONFIG = """\
builtins: [error_rate, latency, latency_p50]
metrics:
  - name: error_rate
    effectSize: {measure: difference, allowedIncrease: 0.02, criticalIncrease: 0.02}
  - name: latency
    effectSize: {allowedIncrease: 1.5}
  - name: latency_p50
    effectSize: {allowedIncrease: 1.5}
"""


def _topology(canary_faults: dict) -> dict:
    return {
        "gateway": {"service": "frontend"},
        "telemetry": {"access_logs": ["json"], "tracing": False},
        "services": {
            "frontend": {"calls": [{"host": "reviews", "path": "/reviews/7"}]},
            "reviews": {
                "versions": {"v1": {}, "v2": {"faults": canary_faults}},
                "weights": {"v1": 50, "v2": 50},
                "faults": {"latency_ms": 6, "latency_sigma": 0.35},
            },
        },
    }


def _mesh_dataset(tmp_path: Path, canary_faults: dict) -> tuple[Path, int]:
    from meshctl.ingest import ingest
    from meshctl.mesh import Mesh, load_topology, log_sources
    from meshctl.parsers.accesslog import AccessLogParser
    from meshctl.store import Dataset

    topo = load_topology(_topology(canary_faults))
    with Mesh(topo, workdir=tmp_path / "mesh", receiver=False) as mesh:
        traffic = mesh.drive(requests=REQUESTS, concurrency=8, duration=120)
        mesh.stop()  # flushes the access-log files
        logs = list(mesh.access_logs("json"))
    data = tmp_path / "data"
    report = ingest(log_sources(logs), AccessLogParser("auto"), Dataset(data), progress=False)
    assert report.rows > REQUESTS, "every request leaves rows at several proxies"
    return data, traffic.requests


def _analyze(run_cli, data: Path, tmp_path: Path) -> tuple[int, dict]:
    cfg = tmp_path / "canary.yaml"
    cfg.write_text(CONFIG)
    code, out, err = run_cli("analyze", "canary", "--data", str(data), "--service", "reviews",
                             "--baseline", "version=v1", "--canary", "version=v2", "--config", str(cfg),
                             "--junit", str(tmp_path / "junit.xml"), "-o", "json")
    assert code in (0, 1, 2), err
    return code, json.loads(out)


def test_canary_returning_503_for_five_percent_fails(run_cli, envoy_bin, tmp_path):
    data, sent = _mesh_dataset(tmp_path, {"error_rate": 0.05, "error_code": 503})
    code, res = _analyze(run_cli, data, tmp_path)
    assert res["cohorts"]["reporter"] == "inbound"
    b, c = res["cohorts"]["baseline"], res["cohorts"]["canary"]
    assert b["requests"] + c["requests"] == pytest.approx(sent, abs=5)
    assert 0.025 < c["error_rate"] < 0.09 and b["error_rate"] == 0
    er = next(m for m in res["metrics"] if m["name"] == "error_rate")
    assert er["classification"] == "High" and er["critical"]
    assert code == 1 and res["verdict"] == "fail"


def test_healthy_canary_passes(run_cli, envoy_bin, tmp_path):
    data, _ = _mesh_dataset(tmp_path, {})
    code, res = _analyze(run_cli, data, tmp_path)
    assert res["cohorts"]["canary"]["requests"] > 400
    detail = [(m["name"], m["classification"], m["effect"], m["ci"], m["power"], m["baseline"].get("mean"),
               m["canary"].get("mean")) for m in res["metrics"]]
    assert all(m["classification"] == "Pass" for m in res["metrics"]), (res["reasons"], detail)
    assert code == 0 and res["verdict"] == "pass"
