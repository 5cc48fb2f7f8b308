"""The `meshctl` command line: a root group whose subcommands are imported only when used.

Every subcommand lives in `meshctl/commands/<name>.py` and is listed once in COMMANDS below, with
its one-line help, so `meshctl --help` imports nothing but click and a few small modules.
"""

from __future__ import annotations

import sys

import click

from meshctl import __version__
from meshctl.lazy import LazyGroup, Registry
from meshctl.options import Globals

# name -> (module, attribute, short help). The short help is here so that listing the commands
# does not import them.
COMMANDS: Registry = {
    "render": ("meshctl.commands.render", "render", "Render OTLP telemetry config for Istio or Linkerd."),
    "lint": ("meshctl.commands.lint", "lint", "Check mesh telemetry YAML for mistakes Istio accepts silently."),
    "collect": ("meshctl.commands.collect", "collect", "Collect access logs and traces into the requests table."),
    "dataset": ("meshctl.commands.dataset", "dataset", "Inspect and export the stored requests table."),
    "graph": ("meshctl.commands.graph", "graph", "Service dependency graph with per-edge rate, errors, latency."),
    "analyze": ("meshctl.commands.analyze", "analyze", "Score a canary or blue-green rollout (CI gate)."),
    "suggest": ("meshctl.commands.suggest", "suggest", "Suggest circuit-breaker, rate-limit and Sidecar settings."),
    "receive": ("meshctl.commands.receive", "receive", "Run an OTLP receiver that writes spans and logs to files."),
    "demo": ("meshctl.commands.demo", "demo", "Run the local Envoy mesh demo end to end."),
}


@click.group(cls=LazyGroup, lazy_commands=COMMANDS, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, "--version", prog_name="meshctl")
@click.option("--context", "kube_context", metavar="NAME", help="Kubernetes context (as kubectl --context).")
@click.option("--kubeconfig", metavar="FILE", help="Path to a kubeconfig file (as kubectl --kubeconfig).")
@click.option("-n", "--namespace", metavar="NS", help="Namespace scope for commands that take one.")
@click.option("-A", "--all-namespaces", is_flag=True, default=False, help="All namespaces.")
@click.option("-o", "--output", metavar="FORMAT", help="Output format; each command lists the ones it supports.")
@click.pass_context
def cli(
    ctx: click.Context,
    kube_context: str | None,
    kubeconfig: str | None,
    namespace: str | None,
    all_namespaces: bool,
    output: str | None,
) -> None:
    """meshctl: OpenTelemetry config, telemetry collection and rollout analysis for Istio and Linkerd.

    \b
    Typical flow:
      meshctl render istio --collector otel.observability:4317 | kubectl apply -f -
      meshctl collect logs --k8s -n shop --since 30m
      meshctl graph -o svg > mesh.svg
      meshctl analyze canary --service reviews --baseline version=v1 --canary version=v2
      meshctl suggest circuit-breaker -o yaml
    """
    ctx.obj = Globals(
        kube_context=kube_context,
        kubeconfig=kubeconfig,
        namespace=namespace,
        all_namespaces=all_namespaces,
        output=output,
    )


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: maps errors to meshctl's exit codes (usage/input errors are 3)."""
    from meshctl.errors import EXIT_USAGE, MeshctlError

    try:
        rv = cli.main(args=argv, prog_name="meshctl", standalone_mode=False)
    except MeshctlError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        # Usage errors share exit code 3 with input errors, so that 1 and 2 keep their CI meaning.
        sys.exit(EXIT_USAGE if exc.exit_code == 2 else exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except BrokenPipeError:
        # `meshctl ... | head`: the reader went away; nothing to report.
        sys.stderr.close()
        sys.exit(0)
    sys.exit(rv if isinstance(rv, int) else 0)
