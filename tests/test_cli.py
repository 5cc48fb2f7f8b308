"""The CLI skeleton: lazy subcommands, kubectl-like global options, exit codes."""

from __future__ import annotations

import subprocess
import sys

from meshctl.cli import COMMANDS


def test_help_lists_every_command(run_cli):
    code, out, _ = run_cli("--help")
    assert code == 0
    for name in COMMANDS:
        assert name in out


def test_help_imports_no_heavy_module():
    # `meshctl --help` must not import the libraries only some commands need.
    heavy = ["pandas", "pyarrow", "kubernetes", "networkx", "envoy_data_plane", "jinja2", "yaml", "rich",
             "numpy", "scipy", "matplotlib", "grpc"]
    code = (
        "import sys\n"
        "from meshctl.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        f"print('HEAVY=' + ','.join(m for m in {heavy!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "Commands:" in out
    assert out.splitlines()[-1] == "HEAVY=", out.splitlines()[-1]


def test_unknown_command_is_usage_error(run_cli):
    code, _, err = run_cli("no-such-command")
    assert code == 3
    assert "No such command" in err


def test_every_registered_command_imports():
    import importlib

    for name, (module, attr, _help) in COMMANDS.items():
        cmd = getattr(importlib.import_module(module), attr)
        assert cmd.name == name or name in (cmd.name or ""), name


def test_demo_progress_shows_stage_details_as_text(monkeypatch):
    """A failed stage's detail (an Envoy log tail, a path) goes to the progress line as it is: rich
    markup would raise on a closing tag such as `[/tmp/x]` and end the demo with a traceback."""
    import io

    from rich.console import Console

    from meshctl.commands.demo import _ProgressReporter
    from meshctl.mesh.demo import DemoOptions, Stage

    buf = io.StringIO()
    monkeypatch.setattr("meshctl.output.console", lambda **kw: Console(file=buf, width=200))
    reporter = _ProgressReporter(DemoOptions())
    with reporter:
        stage = Stage("mesh", "Start the mesh", "meshctl.mesh")
        reporter.stage_started(stage)
        stage.status, stage.detail = "failed", "envoy 'x' exited with 1: [/tmp/x] [critical]"
        reporter.stage_finished(stage)
    assert "failed envoy 'x' exited with 1: [/tmp/x] [critical]" in buf.getvalue()
