"""`meshctl demo`, scaled down: real Envoys, the whole pipeline, the verdicts, and nothing left running."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

pytestmark = [pytest.mark.envoy, pytest.mark.slow]

GATEWAY = "istio-system/istio-ingressgateway"
APP_EDGES = {
    ("user", GATEWAY),
    (GATEWAY, "default/frontend"),
    ("default/frontend", "default/reviews"),
    ("default/frontend", "external:api.payments.example"),
    ("default/reviews", "default/ratings"),
}
VERSION_EDGES = {
    ("user", GATEWAY),
    (GATEWAY, "default/frontend:v1"),
    ("default/frontend:v1", "default/reviews:v1"),
    ("default/frontend:v1", "default/reviews:v2"),
    ("default/frontend:v1", "external:api.payments.example"),
    ("default/reviews:v1", "default/ratings:v1"),
    ("default/reviews:v2", "default/ratings:v1"),
}


def _children() -> set[int]:
    """PIDs of this process's live child processes (Linux /proc)."""
    me, out = os.getpid(), set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == me and fields[0] != "Z":
            out.add(int(entry.name))
    return out


def _edges(path: Path) -> dict[tuple[str, str], dict]:
    doc = json.loads(path.read_text())
    return {(e["source"], e["target"]): e for e in doc["edges"]}


@pytest.fixture(scope="module")
def demos(tmp_path_factory, envoy_bin):
    """A faulty and a healthy demo run through the real CLI entry point (exit codes included)."""
    import click
    from click.testing import CliRunner

    from meshctl.cli import main

    @click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
    @click.pass_context
    def entry(ctx: click.Context) -> None:
        main(list(ctx.args))  # the console script's entry point, with its exit-code mapping

    before = _children()
    runs = {}
    for name, extra, n in (("faulty", [], 1000), ("healthy", ["--healthy"], 1200)):
        out = tmp_path_factory.mktemp(name)
        res = CliRunner().invoke(entry, ["demo", "--out", str(out), "--requests", str(n), *extra],
                                 catch_exceptions=False)
        runs[name] = (out, res)
    runs["children_left"] = _children() - before
    return runs


def _summary(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text())


def test_every_stage_ran_and_wrote_its_files(demos):
    for name in ("faulty", "healthy"):
        out, _ = demos[name]
        summary = _summary(out)
        assert {s["name"]: s["status"] for s in summary["stages"]} == {
            "render": "ok", "mesh": "ok", "traffic": "ok", "flush": "ok", "collect": "ok", "graph": "ok",
            "canary": "ok", "suggest": "ok"}, summary["stages"]
        for f in ("rendered/envoyfilters.yaml", "rendered/telemetry.yaml", "graph.svg", "graph.html", "graph.json",
                  "graph-versions.svg", "canary.md", "canary.json", "canary.svg", "suggestions.yaml"):
            assert (out / f).stat().st_size > 0, f
        assert (out / "graph.svg").read_text().lstrip().startswith(("<?xml", "<svg"))
        assert summary["seconds"] < 120


def test_the_faulty_canary_fails_and_the_healthy_one_passes(demos):
    faulty_out, faulty = demos["faulty"]
    healthy_out, healthy = demos["healthy"]
    assert faulty.exit_code == 1, faulty.output
    assert healthy.exit_code == 0, healthy.output
    f, h = (json.loads((o / "canary.json").read_text()) for o in (faulty_out, healthy_out))
    assert f["verdict"] == "fail" and h["verdict"] == "pass"
    err = {m["name"]: m["classification"] for m in f["metrics"]}
    assert err["error_rate"] == "High"
    assert "verdict: FAIL" in faulty.output and "verdict: PASS" in healthy.output


def test_graph_has_exactly_the_configured_edges(demos):
    for name in ("faulty", "healthy"):
        out, _ = demos[name]
        assert set(_edges(out / "graph.json")) == APP_EDGES
        assert set(_edges(out / "graph-versions.json")) == VERSION_EDGES
    faulty = _edges(demos["faulty"][0] / "graph-versions.json")
    assert 0.015 < faulty[("default/frontend:v1", "default/reviews:v2")]["error_rate"] < 0.12
    assert faulty[("default/frontend:v1", "default/reviews:v1")]["error_rate"] == 0
    healthy = _edges(demos["healthy"][0] / "graph-versions.json")
    assert all(e["error_rate"] == 0 for e in healthy.values())


def test_suggested_circuit_breaker_validates(demos):
    import yaml

    out, _ = demos["faulty"]
    docs = [d for d in yaml.safe_load_all((out / "suggestions.yaml").read_text()) if d]
    rules = {d["spec"]["host"]: d for d in docs if d["kind"] == "DestinationRule"}
    spec = rules["reviews.default.svc.cluster.local"]["spec"]
    # one policy per version (subset), or one for the whole host
    policies = [s["trafficPolicy"] for s in spec.get("subsets", [])] or [spec["trafficPolicy"]]
    for policy in policies:
        assert policy["connectionPool"]["http"]["http2MaxRequests"] >= 1
        assert policy["outlierDetection"]["consecutive5xxErrors"] >= 1
    checks = {c["object"]: c for c in json.loads((out / "suggestions-validation.json").read_text())}
    dr = checks["DestinationRule/default/reviews"]
    # applied to the caller's (frontend's) real Envoy configuration and accepted by envoy --mode validate
    assert dr["ok"] and dr["proxies"] >= 1
    assert all(c["ok"] for c in checks.values())


def test_report_html(demos, run_cli, tmp_path):
    """report.html of both runs: self-contained, the verdict colour up top, every link to a file of the run,
    and its canary command reproduces the judgment (the checks live in tests/test_reports_html.py)."""
    from tests.test_reports_html import check_demo_report

    check_demo_report(demos["faulty"][0], tmp_path / "faulty", run_cli)
    check_demo_report(demos["healthy"][0], tmp_path / "healthy")


def test_no_process_left_behind(demos):
    from meshctl.envoy import _LIVE

    assert demos["children_left"] == set()
    assert not _LIVE


def test_interrupted_demo_stops_everything(tmp_path, monkeypatch, envoy_bin):
    """Ctrl-C in the middle of the traffic: the exception propagates and every process is stopped."""
    from meshctl.mesh import demo as demo_mod
    from meshctl.mesh.runner import Mesh

    before = _children()
    seen: list[int] = []

    def interrupted(self, **kwargs):
        seen.extend(p.envoy.proc.pid for p in self.pods)
        raise KeyboardInterrupt

    monkeypatch.setattr(Mesh, "drive", interrupted)
    with pytest.raises(KeyboardInterrupt):
        demo_mod.run_demo(demo_mod.DemoOptions(out_dir=tmp_path, requests=100))
    assert seen and _children() - before == set()
