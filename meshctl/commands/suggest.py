"""`meshctl suggest circuit-breaker|rate-limit|sidecar`: limits from observed traffic, with a what-if replay.

Each subcommand: options -> `analyzers.suggest.analyze` (one library call, pure) -> one writer:
`-o table` explains every value with its evidence and shows the replay; `-o json` carries the same
data; `-o yaml` renders DestinationRule / EnvoyFilter / Sidecar (or the Linkerd equivalents with
`--mesh linkerd`) through templates/istio|linkerd/suggest-*.j2 and validates them before writing.
Heavy modules (pandas, numpy, jinja2, yaml) are imported only when a subcommand runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from meshctl.errors import InputError
from meshctl.options import Globals, data_option, namespace_option, output_option, pass_globals
from meshctl.yamlpath import node_line


@click.group()
def suggest() -> None:
    """Suggest circuit-breaker, rate-limit and Sidecar settings from the requests table.

    \b
    Every value comes with the evidence it was derived from, and the recorded requests are replayed
    through the suggested limits (and through existing ones with --current FILE) to show what they
    would have rejected.
      meshctl suggest circuit-breaker -n shop
      meshctl suggest circuit-breaker --service reviews -o yaml | kubectl apply -f -
      meshctl suggest rate-limit --per-route --current ratelimit.yaml
      meshctl suggest sidecar -n shop -o yaml
    """


def _common(f: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        data_option,
        namespace_option,
        output_option("table", "json", "yaml", default="table"),
        click.option("--since", metavar="WHEN", help="Start of the window: a duration back from the newest row "
                     "(30m, 2h) or a time (RFC 3339, epoch)."),
        click.option("--until", metavar="WHEN", help="End of the window (same forms as --since)."),
        click.option("--service", "services", multiple=True, metavar="NAME",
                     help="Only this destination service (short name or FQDN; repeatable)."),
        click.option("--headroom", type=float, default=2.0, show_default=True,
                     help="Limits are this factor above the observed peak."),
        click.option("--replay/--no-replay", "replay", default=None,
                     help="Replay the recorded requests through the limits (default: on for table output "
                          "and whenever --current is given)."),
        click.option("--current", "current_files", multiple=True, metavar="FILE",
                     type=click.Path(dir_okay=False, allow_dash=True),
                     help="Existing DestinationRule / EnvoyFilter / Sidecar YAML to replay side by side "
                          "(repeatable; '-' for stdin)."),
        click.option("--mesh", type=click.Choice(["istio", "linkerd"]), default="istio", show_default=True,
                     help="What -o yaml renders."),
        click.option("--schemas", "schemas_dir", metavar="DIR", envvar="MESHCTL_SCHEMAS",
                     help="Validate -o yaml against the CRD JSON Schemas in DIR."),
        click.option("--no-validate", is_flag=True, help="Write -o yaml without validating it."),
    ]
    for o in reversed(options):
        f = o(f)
    return f


def _run(kind: str, g: Globals, opts: dict[str, Any], **config: Any) -> None:
    from analyzers.suggest import SuggestConfig, analyze
    from analyzers.suggest.traffic import COLUMNS
    from meshctl.store import Dataset

    cfg = SuggestConfig(headroom=opts["headroom"], services=list(opts["services"]), namespace=g.namespace, **config)
    if opts["headroom"] < 1:
        raise InputError(f"--headroom {opts['headroom']:g} is below 1: the limits would reject the observed peak",
                         field="--headroom")
    current = [_load_current(f) for f in opts["current_files"]]
    output = opts["output"]
    replay = opts["replay"] if opts["replay"] is not None else (output == "table" or bool(current))
    df = Dataset(opts["data_dir"]).require().read_window(opts["since"], opts["until"], columns=list(COLUMNS))
    if df.empty:
        raise InputError("no requests in the window", file=opts["data_dir"], hint="widen --since/--until")
    result = analyze(kind, df, cfg, replay=replay, current=current)
    if not result.suggestions:
        what = ", ".join(cfg.services) or (f"namespace {cfg.namespace}" if cfg.namespace else "any service")
        raise InputError(f"no traffic for {what} in the window ({result.used_rows} usable rows of {result.rows})",
                         file=opts["data_dir"], hint="check --service / -n, or widen --since")
    if output == "json":
        from meshctl.output import dump_json, write_text

        write_text(dump_json(result.to_dict()))
    elif output == "yaml":
        _yaml(result, opts)
    else:
        _table(result)


def _load_current(path: str) -> Any:
    """Read a --current YAML file; errors name the file, the document's line and the field."""
    import sys

    import yaml

    from analyzers.suggest.limits import ConfigProblem, parse_documents

    try:
        text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()  # noqa: SIM115
    except OSError as e:
        raise InputError(f"cannot read: {e.strerror}", file=path, field="--current") from None
    try:
        nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
        docs = list(yaml.safe_load_all(text))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise InputError(f"not valid YAML: {getattr(e, 'problem', e)}", file=path,
                         line=mark.line + 1 if mark else None) from None
    try:
        cfg = parse_documents(docs, "-" if path == "-" else path)
    except ConfigProblem as p:
        line = node_line(nodes[p.doc], p.field) if p.doc < len(nodes) else None
        raise InputError(str(p), file=path, line=line, field=p.field) from None
    if not (cfg.destination_rules or cfg.rate_limits or cfg.sidecars):
        raise InputError("no DestinationRule, local rate limit EnvoyFilter or Sidecar found", file=path,
                         field="--current")
    return cfg


# ---- writers ------------------------------------------------------------------------------------
_REPLAY_COLUMNS = [
    ("requests", "requests"), ("rejected_overflow", "503 UO"), ("queued", "queued"),
    ("max_queue_wait_ms", "max wait ms"), ("rate_limited", "429 RL"), ("ejections", "ejections"),
    ("sent_to_ejected", "to ejected host"), ("errors_avoided", "errors avoided"),
    ("no_healthy_upstream", "503 UH"), ("outside_scope", "outside scope"),
]
_REPLAY_BY_KIND = {
    "circuit-breaker": ("requests", "rejected_overflow", "queued", "max_queue_wait_ms", "ejections",
                        "sent_to_ejected", "errors_avoided", "no_healthy_upstream"),
    "rate-limit": ("requests", "rate_limited"),
    "sidecar": ("requests", "outside_scope"),
}


def _table(result: Any) -> None:
    from meshctl.output import console, print_table

    con = console()
    if result.window:
        con.print(f"[bold]{result.kind}[/bold]: {result.used_rows} of {result.rows} rows, "
                  f"{result.window[0]} .. {result.window[1]}, headroom {result.config['headroom']:g}")
    for m in result.messages:
        con.print(f"[yellow]{m.code}[/yellow] {m.text}", markup=True, highlight=False)
    for s in result.suggestions:
        rows = []
        for st in s.settings:
            value = "\n".join(st.value) if isinstance(st.value, list) else st.value
            rows.append((st.field, value, st.rule, "\n".join(e.text() for e in st.evidence[:6])))
        print_table(["setting", "value", "rule", "evidence"], rows, title=s.target.label())
        for m in s.messages:
            color = "yellow" if m.level == "warning" else "cyan"
            con.print(f"  [{color}]{m.code}[/{color}] {m.text}", highlight=False)
        if s.replay:
            cols = [c for c in _REPLAY_COLUMNS if c[0] in _REPLAY_BY_KIND[result.kind]]
            print_table(["replay", *[c[1] for c in cols]],
                        [(label, *[getattr(r, c[0]) for c in cols]) for label, r in s.replay.items()])


def _yaml(result: Any, opts: dict[str, Any]) -> None:
    from analyzers.suggest.resources import resources
    from meshctl.output import dump_yaml_stream, write_text
    from meshctl.render.engine import render_documents

    rendering = resources(result, opts["mesh"], enforce=not opts.get("shadow", False))
    docs: list[Any] = []
    comments: list[str | None] = []
    for r in rendering.resources:
        rendered = render_documents(r.template, r.context)
        docs += rendered
        comments += [r.comment] + [None] * (len(rendered) - 1)
    for m in [*result.messages, *rendering.messages]:
        click.echo(f"{m.code} {m.level}: {m.text}", err=True)
    if not opts["no_validate"]:
        _validate(docs, opts["schemas_dir"])
    if docs:
        write_text(dump_yaml_stream(docs, comments))


def _validate(docs: list[Any], schemas_dir: str | None) -> None:
    """Schema (with --schemas) and Envoy API type checks; errors abort before anything is written."""
    from meshctl.validate import Validator, refuse_invalid

    store = None
    if schemas_dir:
        from meshctl.validate.schemas import SchemaStore

        store = SchemaStore.from_dir(schemas_dir)
    problems = Validator(schemas=store, envoy_types=True, envoy=False).validate(docs)
    refuse_invalid(problems, hint="--no-validate writes it anyway")


# ---- subcommands --------------------------------------------------------------------------------
@suggest.command("circuit-breaker")
@_common
@click.option("--min-consecutive", type=click.IntRange(1), default=5, show_default=True,
              help="Floor for consecutive5xxErrors / consecutiveGatewayErrors.")
@click.option("--failing-error-rate", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="A host failing this share of its requests counts as failing, not healthy.")
@click.option("--outage", "outage_s", type=click.FloatRange(0, min_open=True), default=5.0, show_default=True,
              help="Errors without a break for this many seconds are an outage: that host counts as failing.")
@pass_globals
def circuit_breaker(g: Globals, min_consecutive: int, failing_error_rate: float, outage_s: float,
                    **opts: Any) -> None:
    """DestinationRule connectionPool and outlierDetection per service (and subset).

    \b
    Limits are enforced by each calling proxy, so they are sized on the busiest one:
      maxConnections, http2MaxRequests  headroom × peak in-flight requests
      http1MaxPendingRequests           maxConnections × p99 / mean latency
      consecutive5xxErrors              longest error burst of a healthy host + 1 (at least 5)
    Linkerd (--mesh linkerd -o yaml): failure-accrual annotations and a ServiceProfile.
    """
    _run("circuit-breaker", g, opts, min_consecutive=min_consecutive, failing_error_rate=failing_error_rate,
         outage_s=outage_s)


@suggest.command("rate-limit")
@_common
@click.option("--per-route", is_flag=True, help="Also one bucket per Envoy route name.")
@click.option("--per-service", "per_service", is_flag=True,
              help="Size the bucket on the whole service instead of the busiest serving pod.")
@click.option("--shadow", is_flag=True, help="Render the filter in shadow mode (counts, never rejects).")
@pass_globals
def rate_limit(g: Globals, per_route: bool, per_service: bool, shadow: bool, **opts: Any) -> None:
    """Envoy local rate limit (token bucket) per service, as an Istio EnvoyFilter.

    \b
    tokens_per_fill per 1s = headroom × p99 of the per-second request counts of the busiest pod;
    max_tokens covers the recorded sub-second bursts with the same headroom. Responses over the
    limit are 429 with `x-local-rate-limit: true`. Shows which callers dominate the load.
    """
    opts["shadow"] = shadow
    _run("rate-limit", g, opts, per_route=per_route, per_instance=not per_service)


@suggest.command("sidecar")
@_common
@click.option("--by", type=click.Choice(["workload", "namespace"]), default="workload", show_default=True,
              help="One Sidecar per calling workload, or one default Sidecar per namespace.")
@click.option("--rare", "rare_requests", type=click.IntRange(1), default=5, show_default=True,
              help="Warn about destinations seen fewer times than this.")
@pass_globals
def sidecar(g: Globals, by: str, rare_requests: int, **opts: Any) -> None:
    """Istio Sidecar whose egress.hosts lists only the services each workload was seen calling.

    -n filters on the calling workload's namespace.
    """
    _run("sidecar", g, opts, by=by, rare_requests=rare_requests)
