"""Options shared by commands, in kubectl's spirit.

`--context`, `--kubeconfig`, `-n/--namespace`, `-A/--all-namespaces` and `-o/--output` are accepted
both before the subcommand (`meshctl -n shop graph`) and after it (`meshctl graph -n shop`); the
value given last wins. Commands receive them as one `Globals` object.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_DATA_DIR = os.path.join(".meshctl", "data")


class Globals:
    """Values of the kubectl-like options, merged from the root group and the subcommand.

    A plain class rather than a dataclass: importing dataclasses costs start-up time on `--help`.
    """

    def __init__(
        self,
        kube_context: str | None = None,
        kubeconfig: str | None = None,
        namespace: str | None = None,
        all_namespaces: bool = False,
        output: str | None = None,
    ) -> None:
        self.kube_context = kube_context
        self.kubeconfig = kubeconfig
        self.namespace = namespace
        self.all_namespaces = all_namespaces
        self.output = output

    def __repr__(self) -> str:
        return f"Globals({vars(self)!r})"


pass_globals = click.make_pass_decorator(Globals, ensure=True)


def _store(attr: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        if value is None or value is False:
            return
        setattr(ctx.ensure_object(Globals), attr, value)

    return callback


def kube_options(f: F) -> F:
    """Add --context/--kubeconfig/-n/-A to a subcommand; values land in `Globals`."""
    decorators = [
        click.option("--context", "kube_context", metavar="NAME", expose_value=False,
                     callback=_store("kube_context"), help="Kubernetes context."),
        click.option("--kubeconfig", metavar="FILE", expose_value=False,
                     callback=_store("kubeconfig"), help="Path to a kubeconfig file."),
        click.option("-n", "--namespace", metavar="NS", expose_value=False,
                     callback=_store("namespace"), help="Namespace."),
        click.option("-A", "--all-namespaces", is_flag=True, default=False, expose_value=False,
                     callback=_store("all_namespaces"), help="All namespaces."),
    ]
    for d in reversed(decorators):
        f = d(f)
    return f


def namespace_option(f: F) -> F:
    """Only `-n/--namespace` (for commands that scope by namespace but never talk to a cluster)."""
    return click.option("-n", "--namespace", metavar="NS", expose_value=False,
                        callback=_store("namespace"), help="Namespace.")(f)


def output_option(*choices: str, default: str) -> Callable[[F], F]:
    """`-o/--output` limited to `choices`; falls back to the root `-o`, then to `default`.

    The command receives the resolved format as its `output` argument.
    """

    def callback(ctx: click.Context, param: click.Parameter, value: str | None) -> str:
        chosen = value or ctx.ensure_object(Globals).output or default
        if chosen not in choices:
            raise click.BadParameter(f"{chosen!r} is not one of {', '.join(choices)}", ctx=ctx, param=param)
        return chosen

    def decorator(f: F) -> F:
        return click.option(
            "-o", "--output", "output", metavar="|".join(choices), default=None, callback=callback,
            help=f"Output format: {', '.join(choices)} (default {default}).",
        )(f)

    return decorator


def data_option(f: F) -> F:
    """`--data DIR`: the requests-table dataset (env MESHCTL_DATA, default ./.meshctl/data)."""
    return click.option(
        "--data", "data_dir", metavar="DIR", envvar="MESHCTL_DATA", default=DEFAULT_DATA_DIR,
        show_default=True, help="Requests-table dataset directory.",
    )(f)
