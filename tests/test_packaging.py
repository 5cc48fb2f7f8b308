"""The wheel: one distribution with `meshctl` and `analyzers`, templates and schemas inside, working
when installed away from the source tree."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(REPO)],
                   check=True, capture_output=True)
    (whl,) = out.glob("meshctl-*.whl")
    return whl


def test_wheel_contents(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    tops = {n.split("/")[0] for n in names if not n.startswith("meshctl-")}
    assert tops == {"meshctl", "analyzers"}, tops
    shipped = {n.removeprefix("meshctl/") for n in names if n.startswith("meshctl/templates/")}
    in_repo = {str(p.relative_to(REPO)) for p in (REPO / "templates").rglob("*.j2")}
    assert shipped == in_repo
    assert any(n.startswith("meshctl/render/schemas/") and n.endswith(".json") for n in names)
    # test data from ../shared never ships
    assert not any("oracles" in n or "shared/schemas" in n for n in names)


def test_installed_wheel_renders_without_the_source_tree(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, capture_output=True)
    env = {**os.environ, "PYTHONPATH": str(target)}
    code = ("import meshctl, sys; assert meshctl.__file__.startswith(sys.argv[1]), meshctl.__file__\n"
            "from meshctl.cli import main\n"
            "main(['render', 'istio', '--collector', 'otel.observability:4317', '--sampling', '5', '--no-validate'])")
    proc = subprocess.run([sys.executable, "-c", code, str(target)], env=env, cwd=tmp_path, capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    assert "kind: Telemetry" in proc.stdout and "randomSamplingPercentage: 5.0" in proc.stdout
