"""`meshctl lint FILE...|-`: mistakes in mesh telemetry YAML that Istio and Linkerd accept silently.

options -> meshctl.lint.lint() -> one writer (table, json, yaml). Exit code 1 when a finding reaches
--failure-threshold (Error by default), 3 for usage errors and unreadable input.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from meshctl.options import Globals, kube_options, output_option, pass_globals

CHECKS = ("auto", "schemas", "cluster", "types", "envoy", "none")
LEVELS = ("error", "warning", "info")


def _checks(validate: str | None, schemas_dir: str | None) -> set[str]:
    wanted = {c.strip().lower() for c in (validate or "auto").split(",") if c.strip()}
    unknown = wanted - set(CHECKS)
    if unknown:
        raise click.BadParameter(f"unknown check(s) {', '.join(sorted(unknown))}; use {', '.join(CHECKS)} "
                                 "(comma-separated)", param_hint="--validate")
    if "none" in wanted:
        return set()
    if "auto" in wanted:
        wanted.discard("auto")
        wanted.add("types")
        if schemas_dir:
            wanted.add("schemas")
    if "schemas" in wanted and not schemas_dir:
        raise click.UsageError("--validate=schemas needs --schemas DIR (or MESHCTL_SCHEMAS)")
    return wanted


def _list_codes(output: str) -> None:
    from meshctl.lint.messages import CATALOG
    from meshctl.lint.registry import RULES
    from meshctl.output import dump_json, dump_yaml, print_table

    by_code: dict[str, list[str]] = {}
    for rule in RULES:
        for code in rule.codes:
            by_code.setdefault(code, []).append(rule.name)
    rows = [{"code": m.code, "name": m.name, "severity": m.severity, "rule": ", ".join(by_code.get(m.code, ["-"])),
             "description": m.description} for m in CATALOG.values()]
    if output == "json":
        click.echo(dump_json(rows), nl=False)
    elif output == "yaml":
        click.echo(dump_yaml(rows), nl=False)
    else:
        print_table(["CODE", "NAME", "SEVERITY", "RULE", "DESCRIPTION"], [list(r.values()) for r in rows])


def _write(result: Any, output: str, shown: list[Any]) -> None:
    from meshctl.output import dump_json, dump_yaml

    if output in ("json", "yaml"):
        body = {"summary": result.summary(), "findings": [f.to_dict() for f in shown]}
        click.echo(dump_json(body) if output == "json" else dump_yaml(body), nl=False)
        return
    if not shown:
        return
    # kubectl-style aligned columns; the message is last and never wrapped, so output stays greppable.
    rows = [("SEVERITY", "CODE", "RESOURCE", "LOCATION", "MESSAGE")]
    rows += [(f.severity, f.code, f.resource, f.location, f.message) for f in shown]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        click.echo("   ".join(c.ljust(w) for c, w in zip(r[:4], widths, strict=True)) + "   " + r[4])


def _summary_line(result: Any) -> str:
    s = result.summary()
    what = f"{s['documents']} document(s) in {s['files']} file(s)"
    if not result.findings:
        return f"No problems found in {what}."
    parts = [f"{s['errors']} error(s)", f"{s['warnings']} warning(s)", f"{s['info']} info"]
    return f"{', '.join(parts)} in {what}."


@click.command("lint")
@click.argument("inputs", nargs=-1, metavar="FILE...|-")
@kube_options
@output_option("table", "json", "yaml", default="table")
@click.option("--mesh-config", "mesh_config", multiple=True, metavar="FILE",
              help="Mesh config to check references against (IstioOperator, istiod Helm values, istio ConfigMap "
                   "or a MeshConfig fragment), if it is not among the inputs. Repeatable.")
@click.option("--schemas", "schemas_dir", metavar="DIR", envvar="MESHCTL_SCHEMAS",
              help="CRD / JSON Schema files for structural checks (env MESHCTL_SCHEMAS).")
@click.option("--validate", "validate", metavar="CHECKS",
              help="Structural checks: auto (default: types, plus schemas with --schemas), schemas, cluster (CRDs "
                   "of --context), types (EnvoyFilter patch values vs. Envoy API), envoy (real envoy --mode "
                   "validate), none. Comma-separated.")
@click.option("-i", "--istio-namespace", default="istio-system", show_default=True, metavar="NS",
              help="Namespace of istiod, whose mesh-config ConfigMap is read with --context when the inputs "
                   "carry no mesh config.")
@click.option("-r", "--revision", metavar="REV",
              help="Control-plane revision: read the istio-REV ConfigMap instead of istio.")
@click.option("--ignore", multiple=True, metavar="CODE", help="Drop findings with this code or name. Repeatable.")
@click.option("--only", multiple=True, metavar="CODE|RULE", help="Report only these codes or rules. Repeatable.")
@click.option("--failure-threshold", type=click.Choice(LEVELS, case_sensitive=False), default="error",
              show_default=True, help="Exit 1 when a finding is at least this severe.")
@click.option("--output-threshold", type=click.Choice(LEVELS, case_sensitive=False), default="info",
              show_default=True, help="Show findings at least this severe.")
@click.option("--list", "list_codes", is_flag=True, help="List every check (code, severity, rule) and exit.")
@pass_globals
def lint(g: Globals, inputs: tuple[str, ...], output: str, mesh_config: tuple[str, ...], schemas_dir: str | None,
         validate: str | None, istio_namespace: str, revision: str | None, ignore: tuple[str, ...],
         only: tuple[str, ...], failure_threshold: str,
         output_threshold: str, list_codes: bool) -> int:
    """Check mesh telemetry YAML for mistakes Istio and Linkerd accept silently.

    Reads Telemetry, EnvoyFilter, IstioOperator / istiod Helm values / the istio ConfigMap / MeshConfig
    fragments, Services, ServiceEntries, DestinationRules and Linkerd values from files, directories
    or stdin (-). Each finding has a stable code (meshctl lint --list), a severity and the object,
    file and line it concerns.

    \b
    With --context/--kubeconfig, collector addresses are also checked against the cluster's Services,
    and inputs without mesh config are checked against istiod's ConfigMap (read-only). Exit codes: 0 clean, 1 findings at --failure-threshold, 3 usage or unreadable input.

    \b
    Examples:
      meshctl lint istio/ telemetry.yaml
      meshctl render istio --all | meshctl lint -
      meshctl lint --mesh-config iop.yaml -o json telemetry/ | jq '.findings[].code'
    """
    from meshctl.errors import EXIT_FAIL, EXIT_OK

    if list_codes:
        _list_codes(output)
        return EXIT_OK
    if not inputs:
        raise click.UsageError("give at least one FILE, directory, glob or - (stdin)")
    checks = _checks(validate, schemas_dir)
    kube = None
    if g.kube_context or g.kubeconfig or "cluster" in checks:
        from meshctl.kube import connect

        kube = connect(kubeconfig=g.kubeconfig, context=g.kube_context)
    schemas = None
    if "schemas" in checks or "cluster" in checks:
        from meshctl.validate.schemas import SchemaStore

        schemas = SchemaStore.from_dir(schemas_dir) if "schemas" in checks else None
        if "cluster" in checks:
            cluster_store = SchemaStore.from_cluster(kube)
            schemas = cluster_store if schemas is None else schemas.merge(cluster_store)

    from meshctl.lint import lint as run_lint
    from meshctl.lint import mesh_configmap
    from meshctl.lint.messages import severity_rank

    result = run_lint(list(inputs), mesh_config=list(mesh_config), default_namespace=g.namespace or "default",
                      kube=kube, schemas=schemas, envoy_types="types" in checks, envoy="envoy" in checks,
                      only=only or None, ignore=ignore, configmap=mesh_configmap(istio_namespace, revision))
    shown = result.at_least(output_threshold.capitalize())
    _write(result, output, shown)
    click.echo(_summary_line(result), err=True)
    failing = [f for f in result.findings if severity_rank(f.severity) <= severity_rank(failure_threshold.capitalize())]
    sys.stdout.flush()
    return EXIT_FAIL if failing else EXIT_OK
