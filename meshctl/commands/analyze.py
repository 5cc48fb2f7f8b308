"""`meshctl analyze canary|bluegreen`: score a rollout from the requests table; a CI gate.

Each subcommand: options -> config documents (meshctl or Kayenta canary config, `--metrics` arrays)
-> cohorts of the requests table (`analyzers.canary.assign`) -> one judge call
(`analyzers.canary.judge`) -> the chosen writer (`-o table|json`) plus optional report files
(`--markdown`, `--junit`, `--plot`, `--html`). Exit codes: 0 pass, 1 fail, 2 inconclusive (and marginal,
unless `--marginal pass`), 3 usage or input error. Heavy modules are imported only when a
subcommand runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from meshctl.errors import EXIT_FAIL, EXIT_INCONCLUSIVE, EXIT_OK, InputError
from meshctl.options import Globals, data_option, namespace_option, output_option, pass_globals
from meshctl.yamlpath import text_line

EXIT_BY_VERDICT = {"pass": EXIT_OK, "fail": EXIT_FAIL, "inconclusive": EXIT_INCONCLUSIVE}
# Columns a table run always needs (selectors, expressions and custom values add theirs).
BASE_COLUMNS = ["timestamp", "duration_ms", "response_code", "grpc_status", "response_flags", "span_status",
                "method", "path", "direction", "destination_service", "destination_app", "destination_namespace",
                "record_kind"]


@click.group()
def analyze() -> None:
    """Score a canary or blue-green rollout against its baseline (a CI gate).

    \b
    Exit codes: 0 pass, 1 fail, 2 inconclusive (too little data to judge; also a marginal score
    unless --marginal pass), 3 usage or input error. A rollout is never passed on too little data.
      meshctl analyze canary --service reviews --baseline version=v1 --canary version=v2 || rollback
      meshctl analyze canary --service reviews --baseline version=v1 --canary version=v2 \\
          --since 30m --junit report.xml --markdown comment.md --plot canary.svg
      meshctl analyze canary --metrics prometheus-export.json --judge kayenta
      meshctl analyze bluegreen --service web --switch-at 2026-01-02T15:04:05Z --window 15m
      meshctl analyze canary --service reviews --baseline version=v1 --canary version=v2 --html report.html
    """


def _common(f: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        data_option,
        namespace_option,
        output_option("table", "json", default="table"),
        click.option("--service", metavar="NAME",
                     help="Destination service (short name, FQDN, or app name)."),
        click.option("--since", metavar="WHEN", help="Start of the window: a duration back from the newest row "
                     "(30m, 2h) or a time (RFC 3339, epoch)."),
        click.option("--until", metavar="WHEN", help="End of the window (same forms as --since)."),
        click.option("--judge", type=click.Choice(["meshctl", "kayenta"]), default=None,
                     help="meshctl (default): p-values, power check, proportion and quantile tests, fails closed. "
                          "kayenta: Netflix Kayenta's NetflixACAJudge semantics exactly."),
        click.option("--config", "config_file", metavar="FILE", type=click.Path(dir_okay=False, allow_dash=True),
                     help="A meshctl canary config (YAML/JSON: metrics, thresholds, weights) or a Kayenta canary "
                          "config JSON (detected)."),
        click.option("--metrics", "metrics_file", metavar="FILE", type=click.Path(dir_okay=False, allow_dash=True),
                     help="JSON with named metrics and raw baseline/canary arrays (e.g. exported from Prometheus)."),
        click.option("--confidence", type=float, help="Confidence level of the tests (default 0.98)."),
        click.option("--tolerance", type=float, help="Kayenta's tolerance fraction of the shift estimate "
                     "(default 0.25)."),
        click.option("--power", type=float, help="Power the meshctl judge wants before it passes a metric "
                     "(default 0.8)."),
        click.option("--interval", metavar="DURATION",
                     help="Bucket for per-interval series (kayenta judge; default 10s)."),
        click.option("--pass-threshold", type=float, help="Score to pass (default 95)."),
        click.option("--marginal-threshold", type=float, help="Score below which the rollout fails (default 75)."),
        click.option("--marginal", "marginal_as", type=click.Choice(["pass", "inconclusive", "fail"]),
                     default="inconclusive", show_default=True, help="Exit code of a marginal score."),
        click.option("--reporter", type=click.Choice(["auto", "inbound", "outbound"]), default="auto",
                     show_default=True, help="Which proxy's rows: the destination's (inbound) or the callers' "
                     "(outbound). auto: inbound when both cohorts have them."),
        click.option("--routes", type=click.IntRange(min=0), default=20, show_default=True,
                     help="Per-route breakdown of the N busiest routes (0: none)."),
        click.option("--markdown", "markdown_file", metavar="FILE", type=click.Path(dir_okay=False),
                     help="Also write a Markdown report (a pull-request comment)."),
        click.option("--junit", "junit_file", metavar="FILE", type=click.Path(dir_okay=False),
                     help="Also write a JUnit XML report (one test case per metric)."),
        click.option("--plot", "plot_file", metavar="FILE.svg|png", type=click.Path(dir_okay=False),
                     help="Also draw baseline vs canary latency distributions and error rates."),
        click.option("--html", "html_file", metavar="FILE", type=click.Path(dir_okay=False),
                     help="Also write one self-contained HTML report (verdict, metrics, plot, routes; works offline)."),
    ]
    for o in reversed(options):
        f = o(f)
    return f


@analyze.command()
@_common
@click.option("--baseline", metavar="SELECTOR", help="Baseline destinations: version=v1, subset=stable, "
              "workload=reviews-v1, pod=reviews-v1-*, or any requests-table column (comma = and).")
@click.option("--canary", metavar="SELECTOR", help="Canary destinations (same forms as --baseline).")
@pass_globals
def canary(g: Globals, **opts: Any) -> int:
    """Judge a canary against its baseline: error rate, latency (distribution, p50/p90/p99), custom
    metrics; group-weighted score; Flagger-style thresholds.

    \b
    Cohorts are the requests to --service whose destination matches --baseline / --canary. Without
    --service, --metrics arrays alone are judged.
    """
    return _run("canary", g, opts, ("baseline", "canary"))


@analyze.command()
@_common
@click.option("--blue", metavar="SELECTOR", help="Blue (current) destinations, e.g. version=blue.")
@click.option("--green", metavar="SELECTOR", help="Green (new) destinations, e.g. version=green.")
@click.option("--switch-at", metavar="WHEN",
              help="Traffic switch time: compare the window before it (blue) with the window after it (green).")
@click.option("--window", metavar="DURATION", help="With --switch-at: this long before vs this long after.")
@pass_globals
def bluegreen(g: Globals, **opts: Any) -> int:
    """Judge a blue-green switch: green against blue, by selector or before/after --switch-at.

    \b
      meshctl analyze bluegreen --service web --blue version=blue --green version=green
      meshctl analyze bluegreen --service web --switch-at 2026-01-02T15:04:05Z --window 15m
    """
    opts["baseline"], opts["canary"] = opts.pop("blue"), opts.pop("green")
    return _run("bluegreen", g, opts, ("blue", "green"))


# ---- the run ---------------------------------------------------------------------------------------

def _run(kind: str, g: Globals, opts: dict[str, Any], labels: tuple[str, str]) -> int:
    from analyzers import canary as ac

    if opts["plot_file"]:
        from meshctl.reports.canary_plot import check_path

        try:
            check_path(opts["plot_file"])
        except ValueError as exc:
            raise InputError(str(exc), field="--plot") from None
    cfg, kmetrics, arrays = _configs(opts)
    if opts["service"] is None:
        if not arrays:
            raise InputError("nothing to judge: give --service with cohorts, or --metrics FILE",
                             field="--service", hint=f"e.g. --service reviews --{labels[0]} version=v1 "
                                                     f"--{labels[1]} version=v2")
        if kmetrics:
            from analyzers.canary.config import ConfigError

            try:
                _, arrays = ac.resolve_kayenta(kmetrics, arrays, table_available=False)
            except ConfigError as exc:
                raise InputError(exc.message, file=opts["config_file"], field=exc.field) from None
        result = ac.judge_arrays(cfg, arrays)
    else:
        result = _judge_table(kind, g, opts, labels, cfg, kmetrics, arrays)
    return _emit(result, opts, command=_command_line(kind, g) if opts["html_file"] else None)


def _configs(opts: dict[str, Any]) -> tuple[Any, list[Any], list[Any]]:
    from dataclasses import replace

    from analyzers.canary import config as cc
    from analyzers.canary.extract import BUILTINS

    cfg = cc.JudgeConfig()
    kmetrics: list[Any] = []
    arrays: list[Any] = []
    if opts["config_file"]:
        path = opts["config_file"]
        doc, text = _load_doc(path, "--config")
        try:
            if cc.is_kayenta_config(doc):
                cfg, kmetrics = cc.parse_kayenta_config(doc, cfg)
            else:
                cfg = cc.parse_meshctl_config(doc, cfg, builtin=BUILTINS)
        except cc.ConfigError as exc:
            raise InputError(exc.message, file=path, line=text_line(text, exc.field), field=exc.field) from None
    if opts["metrics_file"]:
        path = opts["metrics_file"]
        doc, text = _load_doc(path, "--metrics")
        try:
            mcfg, arrays = cc.parse_metrics_document(doc, cfg)
        except cc.ConfigError as exc:
            raise InputError(exc.message, file=path, line=text_line(text, exc.field), field=exc.field) from None
        # Top-level figures of the file (confidence, weights, score thresholds) apply to the run; the
        # arrays' own settings travel with them; the config file's metrics stay.
        cfg = replace(mcfg, metrics=cfg.metrics)
    return _overrides(cfg, opts), kmetrics, arrays


def _overrides(cfg: Any, opts: dict[str, Any]) -> Any:
    for key in ("confidence", "power"):
        v = opts.get(key)
        if v is not None and not 0 < v < 1:
            raise InputError(f"must be between 0 and 1 (exclusive), not {v:g}", field=f"--{key}")
    if opts.get("tolerance") is not None and opts["tolerance"] < 0:
        raise InputError("must not be negative", field="--tolerance")
    interval = None
    if opts.get("interval"):
        from meshctl.timewindow import parse_duration

        d = parse_duration(opts["interval"])
        if d is None or d.total_seconds() <= 0:
            raise InputError(f"{opts['interval']!r} is not a duration such as 10s or 1m", field="--interval")
        interval = d.total_seconds()
    cfg = cfg.with_overrides(judge=opts.get("judge"), confidence=opts.get("confidence"),
                             tolerance=opts.get("tolerance"), power=opts.get("power"), interval_s=interval,
                             pass_threshold=opts.get("pass_threshold"),
                             marginal_threshold=opts.get("marginal_threshold"))
    for key, v in (("--pass-threshold", cfg.pass_threshold), ("--marginal-threshold", cfg.marginal_threshold)):
        if not 0 <= v <= 100:
            raise InputError(f"a score threshold is between 0 and 100, not {v:g}", field=key)
    if cfg.marginal_threshold > cfg.pass_threshold:
        raise InputError(f"the marginal threshold ({cfg.marginal_threshold:g}) is above the pass threshold "
                         f"({cfg.pass_threshold:g})", field="--marginal-threshold")
    return cfg


def _judge_table(kind: str, g: Globals, opts: dict[str, Any], labels: tuple[str, str], cfg: Any,
                 kmetrics: list[Any], arrays: list[Any]) -> Any:
    from analyzers import canary as ac
    from analyzers.canary.config import ConfigError
    from meshctl.store import Dataset
    from meshctl.timewindow import parse_duration, parse_time, resolve_window

    ds = Dataset(opts["data_dir"]).require()
    try:
        baseline = ac.parse_selector(opts["baseline"], f"--{labels[0]}") if opts.get("baseline") else None
        canary = ac.parse_selector(opts["canary"], f"--{labels[1]}") if opts.get("canary") else None
    except ConfigError as exc:
        raise InputError(exc.message, field=exc.field) from None
    switch_at = None
    tr = ds.time_range()
    anchor = tr[1] if tr else None
    since, until = resolve_window(opts["since"], opts["until"], anchor=anchor)
    if kind == "bluegreen" and opts.get("switch_at"):
        text = opts["switch_at"]
        d = parse_duration(text)
        switch_at = (anchor - d) if (d is not None and anchor is not None) else parse_time(text, option="--switch-at")
        if opts.get("window"):
            w = parse_duration(opts["window"])
            if w is None or w.total_seconds() <= 0:
                raise InputError(f"{opts['window']!r} is not a duration such as 15m", field="--window")
            since, until = max(filter(None, [since, switch_at - w])), min(filter(None, [until, switch_at + w]))
    elif kind == "bluegreen" and opts.get("window"):
        raise InputError("--window goes with --switch-at", field="--window")
    if baseline is None and canary is None and switch_at is None:
        raise InputError(f"give --{labels[0]} and --{labels[1]} selectors"
                         + (" or --switch-at" if kind == "bluegreen" else ""), field=f"--{labels[1]}",
                         hint=f"e.g. --{labels[0]} version=v1 --{labels[1]} version=v2")
    if switch_at is None and (baseline is None or canary is None):
        missing = labels[0] if baseline is None else labels[1]
        raise InputError(f"--{missing} is missing", field=f"--{missing}")
    table_mcs = None
    if kmetrics:
        try:
            table_mcs, arrays = ac.resolve_kayenta(kmetrics, arrays, table_available=True,
                                                   custom={m.name: m for m in cfg.metrics if m.source is not None})
        except ConfigError as exc:
            raise InputError(exc.message, file=opts["config_file"], field=exc.field) from None
    mcs = table_mcs if table_mcs is not None else ac.table_metrics(cfg)
    columns = _columns(mcs, [baseline, canary])
    table = ds.arrow(columns=columns, since=since, until=until, dictionary=True)
    try:
        cohorts = ac.assign(table, opts["service"], baseline=baseline, canary=canary, namespace=g.namespace,
                            reporter=opts["reporter"], switch_at=switch_at, labels=labels)
    except ConfigError as exc:
        raise InputError(exc.message, field=exc.field) from None
    _check_cohorts(ds, table, cohorts, opts, labels, [baseline, canary], g.namespace)
    try:
        return ac.judge(cfg, cohorts, table_metric_configs=mcs, arrays=arrays, routes=opts["routes"], kind=kind,
                        labels=labels)
    except ConfigError as exc:
        raise InputError(exc.message, file=opts.get("config_file"), field=exc.field) from None


def _columns(mcs: list[Any], selectors: list[Any]) -> list[str]:
    from analyzers.canary.expr import DERIVED, parse_expr
    from analyzers.table import COLUMN_NAMES

    cols = [c for c in BASE_COLUMNS if c in COLUMN_NAMES]
    for sel in selectors:
        for term in sel.terms if sel else ():
            cols += ["record_source", "record_file"] if term.column == "pod" else [term.column]
    for mc in mcs:
        src = mc.source
        if src is None:
            continue
        for text in (src.filter, src.events):
            if text:
                cols += [c for c in parse_expr(text).columns if c not in DERIVED]
        if src.value:
            cols.append(src.value)
    cols += ["destination_version", "destination_subset", "destination_workload"]
    return list(dict.fromkeys(c for c in cols if c in COLUMN_NAMES))


def _check_cohorts(ds: Any, table: Any, cohorts: Any, opts: dict[str, Any], labels: tuple[str, str],
                   selectors: list[Any], namespace: str | None) -> None:
    """A service that is nowhere in the data is a usage error (a typo). An empty cohort of a known
    service is not (the canary may have had no traffic yet): the judge reports it as no data, and
    the values seen for the selector columns go into the notes as a hint."""
    from analyzers.canary.cohorts import Columns, seen_services, seen_values, service_mask

    if cohorts.baseline.rows and cohorts.canary.rows:
        return
    service = opts["service"]
    if table.num_rows and service_mask(cohorts.cols, service, namespace).any():
        seen = seen_values(table, service, selectors, namespace)
        hint = "; ".join(f"{k}: {', '.join(v) or '-'}" for k, v in seen.items())
        empty = [lab for lab, info in zip(labels, (cohorts.baseline, cohorts.canary), strict=True) if not info.rows]
        cohorts.notes.append(f"no {' or '.join(empty)} requests matched; values seen for {service}: {hint}")
        return
    whole = ds.arrow(columns=["destination_service", "destination_app", "destination_namespace"])
    if service_mask(Columns(whole), service, namespace).any():
        cohorts.notes.append(f"no requests to {service} in the window; widen --since/--until")
        return
    known = seen_services(whole)
    raise InputError(f"no requests to service {service!r} in the dataset", file=opts["data_dir"],
                     field="--service", hint=f"services seen: {', '.join(known) or 'none'}")


# ---- config documents ------------------------------------------------------------------------------

def _load_doc(path: str, option: str) -> tuple[Any, str]:
    import json
    import sys

    try:
        text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()  # noqa: SIM115
    except OSError as e:
        raise InputError(f"cannot read: {e.strerror}", file=path, field=option) from None
    if text.lstrip().startswith(("{", "[")):
        try:
            return json.loads(text), text
        except json.JSONDecodeError as e:
            raise InputError(f"not valid JSON: {e.msg}", file=path, line=e.lineno, field=option) from None
    import yaml

    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise InputError(f"not valid YAML: {getattr(e, 'problem', e)}", file=path,
                         line=mark.line + 1 if mark else None, field=option) from None
    if not isinstance(doc, dict):
        raise InputError("expected a mapping at the top", file=path, line=1, field=option)
    return doc, text


# ---- output ----------------------------------------------------------------------------------------

def _command_line(kind: str, g: Globals) -> str:
    """The command that reproduces this run's figures (for the HTML report): the options given,
    without the report files, and always the dataset."""
    import shlex

    ctx = click.get_current_context()
    args = ["meshctl", "analyze", kind]
    if g.namespace:
        args += ["-n", g.namespace]
    for p in ctx.command.params:
        if not isinstance(p, click.Option) or not p.expose_value or p.name in _REPORT_OPTIONS:
            continue
        v = ctx.params.get(p.name)
        if p.name != "data_dir" and (v is None or v is False or v == p.default):
            continue
        flag = max(p.opts, key=len)
        args += [flag] if p.is_flag else [flag, str(v)]
    return shlex.join(args)


_REPORT_OPTIONS = {"output", "markdown_file", "junit_file", "plot_file", "html_file"}


def _emit(result: Any, opts: dict[str, Any], command: str | None = None) -> int:
    from meshctl.output import dump_json, write_text

    verdict = result.verdict
    if verdict == "marginal":
        verdict = opts["marginal_as"]
    code = EXIT_BY_VERDICT[verdict]
    if opts["markdown_file"]:
        from meshctl.reports.canary_markdown import render_markdown

        write_text(render_markdown(result), opts["markdown_file"])
    if opts["junit_file"]:
        from meshctl.reports.junit import canary_suite, render_junit

        write_text(render_junit([canary_suite(result, marginal_as=opts["marginal_as"])]), opts["junit_file"])
    if opts["plot_file"]:
        from meshctl.reports.canary_plot import plot

        plot(result, opts["plot_file"])
    if opts["html_file"]:
        from pathlib import Path

        from meshctl.reports import canary_html

        plot_file = opts["plot_file"]  # an SVG plot already drawn is reused
        svg = (Path(plot_file).read_text(encoding="utf-8") if plot_file and plot_file.lower().endswith(".svg")
               else canary_html.plot_svg(result))
        write_text(canary_html.render_html(result, command=command, exit_code=code, plot_svg=svg), opts["html_file"])
    if opts["output"] == "json":
        write_text(dump_json(result.as_dict()))
    else:
        from meshctl.reports.canary_text import print_result

        print_result(result)
    return code
