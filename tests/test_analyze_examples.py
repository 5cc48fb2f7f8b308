"""examples/ci: the files parse, every meshctl flag they use exists, and the Flagger gate answers
Flagger with the status codes its README promises (run against real `meshctl analyze canary`)."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from meshctl.store import Dataset
from tests.test_canary_scenarios import cohort_rows, requests_table

CI = Path(__file__).resolve().parent.parent / "examples" / "ci"


def _docs(path: Path) -> list:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def _meshctl_flags(text: str) -> dict[str, set[str]]:
    """{"analyze canary": {"--service", ...}, "collect logs": {...}} from meshctl command lines."""
    out: dict[str, set[str]] = {}
    joined = re.sub(r"\\\n\s*", " ", text)
    for m in re.finditer(r"meshctl (analyze canary|analyze bluegreen|collect logs)([^\n&|;\"]*)", joined):
        out.setdefault(m.group(1), set()).update(re.findall(r"(?<![\w-])(--[a-z][a-z-]*|-[a-zA-Z])\b", m.group(2)))
    return out


def _known_flags(cmd: str) -> set[str]:
    from meshctl.cli import cli

    group, sub = cmd.split()
    import click

    ctx = click.Context(cli)
    command = cli.get_command(ctx, group).get_command(ctx, sub)
    return {opt for p in command.params for opt in (*p.opts, *p.secondary_opts)}


@pytest.mark.parametrize("path", sorted(p for p in CI.rglob("*") if p.suffix in (".yml", ".yaml", ".py")),
                         ids=lambda p: str(p.relative_to(CI)))
def test_meshctl_flags_in_examples_exist(path: Path) -> None:
    used = _meshctl_flags(path.read_text())
    for cmd, flags in used.items():
        assert flags <= _known_flags(cmd), (cmd, flags - _known_flags(cmd))


def test_github_workflow_gates_on_the_exit_code():
    wf = _docs(CI / "github-actions" / "canary-gate.yml")[0]
    steps = wf["jobs"]["judge"]["steps"]
    judge = next(s for s in steps if s.get("id") == "judge")
    assert "meshctl analyze canary" in judge["run"] and "--junit" in judge["run"]
    gate = steps[-1]["run"]
    assert "0) echo" in gate and "exit 1" in gate
    assert {"analyze canary", "collect logs"} <= set(_meshctl_flags((CI / "github-actions" / "canary-gate.yml")
                                                                    .read_text()))


def test_argo_template_uses_the_job_provider():
    docs = {d["kind"]: d for d in _docs(CI / "argo-rollouts" / "analysis-template.yaml")}
    assert {"AnalysisTemplate", "Rollout", "Role", "RoleBinding", "ServiceAccount"} <= set(docs)
    metric = docs["AnalysisTemplate"]["spec"]["metrics"][0]
    job = metric["provider"]["job"]["spec"]["template"]["spec"]
    assert "meshctl analyze canary" in job["containers"][0]["args"][0]
    assert job["serviceAccountName"] == docs["ServiceAccount"]["metadata"]["name"]
    rules = docs["Role"]["rules"][0]
    assert set(rules["verbs"]) == {"get", "list"}  # read-only
    steps = docs["Rollout"]["spec"]["strategy"]["canary"]["steps"]
    assert any(s.get("analysis", {}).get("templates", [{}])[0].get("templateName") == "meshctl-canary" for s in steps)


def test_flagger_canary_has_both_webhooks():
    docs = {d["kind"]: d for d in _docs(CI / "flagger" / "canary.yaml")}
    hooks = {h["type"]: h for h in docs["Canary"]["spec"]["analysis"]["webhooks"]}
    assert set(hooks) == {"rollout", "confirm-promotion"}
    assert hooks["confirm-promotion"]["metadata"]["mode"] == "promote"


# ---- the gate service, live ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def gate_module():
    spec = importlib.util.spec_from_file_location("meshctl_gate", CI / "flagger" / "gate.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


@pytest.fixture
def gate(gate_module, tmp_path, monkeypatch):
    """The gate on an ephemeral port, judging datasets in place (no cluster: collection off)."""
    from http.server import ThreadingHTTPServer

    shim = tmp_path / "meshctl"
    shim.write_text(f"#!/bin/sh\nexec {sys.executable} -m meshctl \"$@\"\n")
    shim.chmod(0o755)
    gate_module.Handler.meshctl = str(shim)
    monkeypatch.setenv("MESHCTL_GATE_COLLECT", "0")
    server = ThreadingHTTPServer(("127.0.0.1", 0), gate_module.Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def post(dataset: Path, mode: str | None = None, **meta: str) -> tuple[int, dict]:
        monkeypatch.setenv("MESHCTL_DATA", str(dataset))
        payload = {"name": "reviews", "namespace": "shop", "phase": "Progressing",
                   "metadata": {"baseline": "version=v1", "canary": "version=v2", "window": "1d", **meta,
                                **({"mode": mode} if mode else {})}}
        req = urllib.request.Request(f"http://127.0.0.1:{server.server_address[1]}/",
                                     data=json.dumps(payload).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    yield post
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def _data(tmp_path: Path, name: str, *cohorts: dict) -> Path:
    d = tmp_path / name
    Dataset(d).append([requests_table(*cohorts)])
    return d


def test_gate_answers_flagger(gate, tmp_path):
    healthy = _data(tmp_path, "healthy", cohort_rows("v1", 20_000, seed=1), cohort_rows("v2", 5_000, seed=2))
    failing = _data(tmp_path, "failing", cohort_rows("v1", 20_000, seed=1),
                    cohort_rows("v2", 5_000, seed=2, error_rate=0.05))
    tiny = _data(tmp_path, "tiny", cohort_rows("v1", 40, seed=1), cohort_rows("v2", 40, seed=2))
    code, body = gate(healthy)
    assert code == 200 and body == {"verdict": "pass", "score": 100.0, "reasons": []}
    code, body = gate(failing)
    assert code == 500 and body["verdict"] == "fail" and body["score"] == 0
    code, body = gate(tiny)
    assert code == 200 and body["verdict"] == "inconclusive"  # no evidence against it: not a failed check
    code, body = gate(tiny, mode="promote")
    assert code == 403 and body["verdict"] == "inconclusive"  # but never promoted on it
    assert gate(healthy, mode="promote")[0] == 200
    code, body = gate(healthy, canary="version=v2; rm -rf /")
    assert code == 400 and "unexpected characters" in body["error"]


def test_gate_status_table(gate_module):
    s = gate_module.status_for
    assert [s(v, "check") for v in ("pass", "marginal", "inconclusive", "fail", "error")] == [200, 200, 200, 500, 500]
    assert [s(v, "promote") for v in ("pass", "marginal", "inconclusive", "fail")] == [200, 403, 403, 403]
