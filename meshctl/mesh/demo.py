"""`meshctl demo` as a library: render -> run a real mesh -> drive a canary -> collect -> graph -> canary -> suggest.

Every stage calls the library that owns it (render: `meshctl.render`; collect: `meshctl.ingest` and the
trace parsers; graph: `analyzers.graph` + `meshctl.reports`; canary: `analyzers.canary` + its report
writers; suggest: `analyzers.suggest`). A stage whose library is not installed is reported as
missing, never faked. `run_demo(DemoOptions(...), reporter)` returns a `DemoResult`; the command
(`meshctl/commands/demo.py`) only draws progress and prints the summary.

Output folder (default ./meshctl-demo/):

    rendered/        envoyfilters.yaml (what the proxies ran), telemetry.yaml + istio-operator.yaml
                     (the same telemetry for the Telemetry API)
    mesh/            logs/json|text/<ns>_<pod>_<uid>/istio-proxy/0.log, otlp/traces.jsonl, mesh.json,
                     envoy/ (bootstraps, logs)
    data/            the requests table (Parquet dataset)
    graph.svg, graph.html, graph.json (and graph-versions.*)
    canary.md, canary.json, canary.svg, canary-config.yaml
    suggestions.yaml, suggestions.json, suggestions-validation.json
    summary.json
    report.html      the whole run on one self-contained page (meshctl.reports.demo_html)
"""

from __future__ import annotations

import importlib.util
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meshctl.errors import EXIT_FAIL, EXIT_INCONCLUSIVE, EXIT_OK, MeshctlError

DEMO_TOPOLOGY = Path(__file__).with_name("demo-topology.yaml")
DEMO_CANARY_CONFIG = Path(__file__).with_name("demo-canary.yaml")
CANARY_SERVICE = "reviews"
CANARY_FAULT = {"error_rate": 0.05, "error_code": 503}
VERDICT_EXIT = {"pass": EXIT_OK, "fail": EXIT_FAIL, "marginal": EXIT_INCONCLUSIVE, "inconclusive": EXIT_INCONCLUSIVE}


@dataclass
class DemoOptions:
    out_dir: Path = Path("meshctl-demo")
    healthy: bool = False
    requests: int = 1500
    concurrency: int = 8
    topology: Path | None = None      # default: the packaged demo topology
    duration: float = 90.0             # cap on the traffic phase


@dataclass
class Stage:
    name: str
    title: str
    owner: str                          # the library (and helper area) the stage calls
    status: str = "pending"             # pending | running | ok | missing | failed | skipped
    seconds: float = 0.0
    detail: str = ""
    files: list[Path] = field(default_factory=list)


@dataclass
class DemoResult:
    out_dir: Path
    stages: list[Stage]
    healthy: bool
    verdict: str | None = None
    score: float | None = None
    traffic: Any = None
    edges: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    canary: Any = None
    suggestions: Any = None
    seconds: float = 0.0
    report: Path | None = None          # report.html, once written
    report_error: str | None = None     # why it was not

    @property
    def exit_code(self) -> int:
        if self.verdict is None:
            return EXIT_INCONCLUSIVE
        return VERDICT_EXIT.get(self.verdict, EXIT_INCONCLUSIVE)

    def stage(self, name: str) -> Stage:
        return next(s for s in self.stages if s.name == name)


class Reporter:
    """Progress callbacks (the command draws them with rich); the default does nothing."""

    def stage_started(self, stage: Stage) -> None: ...

    def stage_finished(self, stage: Stage) -> None: ...

    def traffic(self, done: int, total: int, errors: int) -> None: ...


STAGES = [
    ("render", "Render telemetry config", "meshctl.render"),
    ("mesh", "Start the mesh", "meshctl.mesh"),
    ("traffic", "Drive canary traffic", "meshctl.mesh.traffic"),
    ("flush", "Flush spans, stop the mesh", "meshctl.mesh"),
    ("collect", "Collect logs and spans", "meshctl.ingest"),
    ("graph", "Service graph", "analyzers.graph"),
    ("canary", "Judge the canary", "analyzers.canary"),
    ("suggest", "Suggest limits", "analyzers.suggest"),
]


class _Missing(Exception):
    """A stage's library is not available."""


def _require(*modules: str) -> None:
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise _Missing(f"{', '.join(missing)} not available")


def run_demo(opts: DemoOptions, reporter: Reporter | None = None) -> DemoResult:
    from meshctl.mesh import Mesh, load_topology

    rep = reporter or Reporter()
    out = Path(opts.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    result = DemoResult(out_dir=out, stages=[Stage(n, t, o) for n, t, o in STAGES], healthy=opts.healthy)
    t_start = time.monotonic()
    topo = load_topology(opts.topology or DEMO_TOPOLOGY)
    if not opts.healthy:
        svc = topo.service(CANARY_SERVICE)
        v2 = svc.version("v2")
        v2.faults = v2.faults.merged(CANARY_FAULT)
    ctx: dict[str, Any] = {"topology": topo}

    def run(name: str, fn: Callable[[Stage], None]) -> bool:
        stage = result.stage(name)
        stage.status = "running"
        rep.stage_started(stage)
        t0 = time.monotonic()
        try:
            fn(stage)
            stage.status = "ok"
        except _Missing as exc:
            stage.status, stage.detail = "missing", str(exc)
        except MeshctlError as exc:
            stage.status, stage.detail = "failed", str(exc)
        except (KeyboardInterrupt, SystemExit):
            stage.status, stage.detail = "failed", "interrupted"
            stage.seconds = time.monotonic() - t0
            rep.stage_finished(stage)
            raise
        except Exception as exc:  # a stage's bug must not hide the others' results
            stage.status, stage.detail = "failed", f"{type(exc).__name__}: {exc}"
        stage.seconds = time.monotonic() - t0
        rep.stage_finished(stage)
        return stage.status == "ok"

    def skip(name: str, why: str) -> None:
        stage = result.stage(name)
        stage.status, stage.detail = "skipped", why
        rep.stage_finished(stage)

    run("render", lambda st: _render(st, topo, out))
    mesh = Mesh(topo, out / "mesh")
    try:
        if run("mesh", lambda st: _start(st, mesh)):
            run("traffic", lambda st: _traffic(st, mesh, opts, rep, result))
            run("flush", lambda st: _flush(st, mesh))
        else:
            for n in ("traffic", "flush"):
                skip(n, "the mesh did not start")
    finally:
        mesh.stop()
    ctx["mesh"] = mesh
    have_traffic = result.stage("traffic").status == "ok"
    if have_traffic and run("collect", lambda st: _collect(st, mesh, out, ctx)):
        run("graph", lambda st: _graph(st, out, ctx, result))
        run("canary", lambda st: _canary(st, out, ctx, result))
        run("suggest", lambda st: _suggest(st, out, ctx, result))
    else:
        why = "no traffic" if not have_traffic else "nothing collected"
        for n in ("collect", "graph", "canary", "suggest"):
            if result.stage(n).status == "pending":
                skip(n, why)
    result.seconds = time.monotonic() - t_start
    _write_report(result, ctx)
    _write_summary(result)
    return result


# ---- stages -----------------------------------------------------------------------------------

def _render(stage: Stage, topo: Any, out: Path) -> None:
    _require("meshctl.render", "meshctl.envoyfilter")
    from meshctl.mesh.telemetry import COLLECTOR_PORTS, render_envoyfilters
    from meshctl.output import dump_yaml_stream
    from meshctl.render.istio import render_istio

    tel = topo.telemetry
    rdir = out / "rendered"
    rdir.mkdir(parents=True, exist_ok=True)
    efs = render_envoyfilters(tel)
    path = rdir / "envoyfilters.yaml"
    path.write_text(dump_yaml_stream([r.obj for r in efs], [r.comment_text() for r in efs]), encoding="utf-8")
    stage.files.append(path)
    # The same telemetry through the Telemetry API (what a cluster on Istio >= 1.22 should apply instead).
    tele = render_istio({"collector": f"{tel.collector_service}:{COLLECTOR_PORTS[tel.otlp_protocol]}",
                         "protocol": tel.otlp_protocol, "sampling": float(tel.sampling),
                         "accessLog": "otlp" if tel.otel_access_log else "file-json"})
    path = rdir / "telemetry.yaml"
    path.write_text(dump_yaml_stream([r.obj for r in tele.resources], [r.comment_text() for r in tele.resources]),
                    encoding="utf-8")
    stage.files.append(path)
    for side in tele.side:
        p = rdir / (side.filename or "mesh-config.yaml")
        p.write_text(dump_yaml_stream([side.obj], [side.comment_text()]), encoding="utf-8")
        stage.files.append(p)
    stage.detail = f"{len(efs)} EnvoyFilters applied to the proxies; Telemetry API variant alongside"


def _start(stage: Stage, mesh: Any) -> None:
    mesh.start()
    n_sidecars = len(mesh.pods)
    stage.detail = f"{n_sidecars} sidecars + gateway, {len(mesh.standins)} external stand-in(s), OTLP receiver"
    stage.files.append(mesh.workdir / "mesh.json")


def _traffic(stage: Stage, mesh: Any, opts: DemoOptions, rep: Reporter, result: DemoResult) -> None:
    import threading

    lock = threading.Lock()
    counts = {"done": 0, "errors": 0}

    def on_response(i: int, status: int, ms: float) -> None:
        with lock:
            counts["done"] += 1
            counts["errors"] += int(status == 0 or status >= 500)
            done, errors = counts["done"], counts["errors"]
        if done % 25 == 0 or done == opts.requests:
            rep.traffic(done, opts.requests, errors)

    host = mesh.topology.gateway.hosts[0] if mesh.topology.gateway.hosts[0] != "*" else "shop.example.com"
    paths = ["/productpage", "/productpage?u=normal", "/api/v1/products/0", "/api/v1/products/1"]
    traffic = mesh.drive(requests=opts.requests, concurrency=opts.concurrency, duration=opts.duration,
                         paths=paths, headers={"host": host, "user-agent": "meshctl-demo/1"}, on_response=on_response)
    result.traffic = traffic
    codes = ", ".join(f"{c}: {n}" for c, n in sorted(traffic.by_code.items()))
    stage.detail = f"{traffic.sent} requests in {traffic.seconds:.1f}s ({traffic.rps:.0f}/s); {codes}"
    if traffic.stopped_by == "duration":  # a slow machine: fewer requests than asked, less power for the canary
        stage.detail += f"; stopped at the {opts.duration:.0f}s cap ({traffic.sent} of {opts.requests})"
    if traffic.requests == 0:
        raise MeshctlError("no request got an answer through the gateway")


def _flush(stage: Stage, mesh: Any) -> None:
    ok = mesh.flush_telemetry(timeout=15)
    rx = mesh.receiver
    stage.detail = (f"{rx.stats.traces.items} spans received" if rx else "no receiver") + ("" if ok else " (timed out)")
    mesh.stop()
    stage.files += [f.path for f in mesh.access_logs()]
    if rx:
        stage.files.append(rx.traces_path)


def _collect(stage: Stage, mesh: Any, out: Path, ctx: dict[str, Any]) -> None:
    _require("meshctl.ingest", "meshctl.identity", "meshctl.parsers.accesslog")
    import shutil

    from meshctl.ingest import ingest
    from meshctl.mesh import log_sources
    from meshctl.parsers.accesslog import AccessLogParser
    from meshctl.store import Dataset

    data = out / "data"
    if data.exists():
        shutil.rmtree(data)  # a fresh table per run: the demo's figures are this run's
    dataset = Dataset(data)
    # A sidecar's log does not say whose proxy wrote it: the pod (as Kubernetes would tell) does.
    # The JSON and TEXT files hold the same requests; the JSON ones are collected (they carry traceparent).
    sources = log_sources(mesh.access_logs("json"))
    report = ingest(sources, AccessLogParser("auto"), dataset, progress=False)
    failed = [s for s in report.sources if s.error]
    if failed:
        raise MeshctlError("could not collect " + "; ".join(f"{s.source}: {s.error}" for s in failed))
    if report.rows == 0:
        raise MeshctlError(f"no rows collected from {len(sources)} access-log files ({report.rejected} rejected)")
    ctx["dataset"] = dataset
    ctx["collect"] = report
    stage.detail = (f"{report.rows} access-log rows from {len(sources)} proxies"
                    + (f", {report.rejected} rejected" if report.rejected else ""))
    # Spans: client/server span pairs become rows of the same table (record_kind=span).
    traces = mesh.receiver.traces_path if mesh.receiver is not None else None
    if traces is not None and traces.exists():
        _require("meshctl.parsers.traces")
        from meshctl.parsers.traces import trace_file_rows
        from meshctl.store import SourceSummary

        t0 = time.perf_counter()
        res = trace_file_rows(traces)
        appended = dataset.append([res.table], rejects=res.rejects, sources=[SourceSummary(
            str(traces), format="otlp-json", rows=res.table.num_rows, rejected=len(res.rejects),
            seconds=time.perf_counter() - t0)])
        ctx["span_rows"] = appended.rows
        stage.detail += f"; {appended.rows} span rows from {res.lines} spans"
    stage.files.append(data)


def _graph(stage: Stage, out: Path, ctx: dict[str, Any], result: DemoResult) -> None:
    _require("analyzers.graph", "meshctl.reports.graph_render", "meshctl.reports.graph_html")
    from analyzers.graph import GRAPH_COLUMNS, build_graph
    from meshctl.reports import graph_render as gr
    from meshctl.reports.graph_html import to_html

    frame = ctx["dataset"].read(columns=GRAPH_COLUMNS)
    notes = []
    # Access-log and span rows together: each request counts once (see analyzers.graph).
    for group_by, stem, title in (("app", "graph", "meshctl demo: service graph"),
                                  ("app-version", "graph-versions", "meshctl demo: service graph by version")):
        g = build_graph(frame, group_by=group_by)
        if group_by == "app":
            result.edges = [(a, b, dict(d)) for a, b, d in g.edges(data=True)]
            ctx["graph"] = g
        else:
            ctx["graph_versions"] = g
        files = {f"{stem}.json": gr.to_json(g), f"{stem}.html": to_html(g, title=title)}
        try:
            files[f"{stem}.svg"] = gr.to_svg(g, title=title)
        except Exception as exc:  # graphviz missing: the HTML page has its own layout
            notes.append(f"no {stem}.svg ({exc})")
        for name, text in files.items():
            (out / name).write_text(text, encoding="utf-8")
            stage.files.append(out / name)
    g = ctx["graph"]
    stage.detail = f"{g.number_of_nodes()} nodes, {g.number_of_edges()} edges" + (f"; {'; '.join(notes)}" if notes else "")


def _access_log_rows(ctx: dict[str, Any]) -> Any:
    """The access-log rows of the demo's table (Arrow). Every request is in them; spans are sampled
    and would count requests twice, so the canary and the suggestions use the logs."""
    import pyarrow.compute as pc

    table = ctx["dataset"].arrow()
    return table.filter(pc.equal(table.column("record_kind"), "access_log"))


def _canary(stage: Stage, out: Path, ctx: dict[str, Any], result: DemoResult) -> None:
    _require("analyzers.canary", "meshctl.reports.canary_markdown", "meshctl.reports.canary_plot")
    import yaml

    from analyzers import canary as ac
    from analyzers.canary.extract import BUILTINS
    from meshctl.output import dump_json
    from meshctl.reports.canary_markdown import render_markdown
    from meshctl.reports.canary_plot import plot

    topo = ctx["topology"]
    svc = topo.service(CANARY_SERVICE)
    try:
        cfg = ac.parse_meshctl_config(yaml.safe_load(DEMO_CANARY_CONFIG.read_text(encoding="utf-8")),
                                      ac.JudgeConfig(), builtin=BUILTINS)
    except ac.ConfigError as exc:
        raise MeshctlError(exc.message, file=str(DEMO_CANARY_CONFIG), field=exc.field) from None
    cohorts = ac.assign(_access_log_rows(ctx), CANARY_SERVICE, baseline=ac.parse_selector("version=v1", "--baseline"),
                        canary=ac.parse_selector("version=v2", "--canary"), namespace=svc.namespace)
    res = ac.judge(cfg, cohorts, kind="canary")
    result.canary, result.verdict, result.score = res, res.verdict, res.score
    files = {"canary.md": render_markdown(res), "canary.json": dump_json(res.as_dict()),
             "canary-config.yaml": DEMO_CANARY_CONFIG.read_text(encoding="utf-8")}
    for name, text in files.items():
        (out / name).write_text(text, encoding="utf-8")
        stage.files.append(out / name)
    plot(res, str(out / "canary.svg"))
    stage.files.append(out / "canary.svg")
    stage.detail = (f"{CANARY_SERVICE} v1 ({cohorts.baseline.rows} requests) vs v2 ({cohorts.canary.rows}): "
                    f"{res.verdict}, score {res.score:g}")


SUGGEST_KINDS = ("circuit-breaker", "rate-limit", "sidecar")


def _suggest(stage: Stage, out: Path, ctx: dict[str, Any], result: DemoResult) -> None:
    _require("analyzers.suggest", "meshctl.render.engine", "meshctl.validate")
    from analyzers.suggest import SuggestConfig, analyze
    from analyzers.suggest.resources import resources
    from analyzers.table import to_frame
    from meshctl.output import dump_json, dump_yaml_stream
    from meshctl.render.engine import render_documents

    df = to_frame(_access_log_rows(ctx))
    docs: list[Any] = []
    comments: list[str | None] = []
    results = {}
    for kind in SUGGEST_KINDS:
        res = analyze(kind, df, SuggestConfig(namespace=None), replay=True)
        results[kind] = res
        for r in resources(res, "istio").resources:
            rendered = render_documents(r.template, r.context)
            docs += rendered
            comments += [r.comment] + [None] * (len(rendered) - 1)
    result.suggestions = results
    path = out / "suggestions.yaml"
    path.write_text(dump_yaml_stream(docs, comments), encoding="utf-8")
    (out / "suggestions.json").write_text(dump_json({k: r.to_dict() for k, r in results.items()}), encoding="utf-8")
    stage.files += [path, out / "suggestions.json"]
    checks = validate_suggestions(docs, ctx["mesh"])
    ctx["suggest_checks"] = checks
    (out / "suggestions-validation.json").write_text(dump_json(checks), encoding="utf-8")
    stage.files.append(out / "suggestions-validation.json")
    bad = [c for c in checks if not c["ok"]]
    kinds = ", ".join(f"{sum(1 for d in docs if d.get('kind') == k)} {k}" for k in ("DestinationRule", "EnvoyFilter",
                                                                                      "Sidecar"))
    stage.detail = f"{kinds}; " + (f"{len(bad)} failed validation" if bad else
                                   f"validated ({sum(c['proxies'] for c in checks)} proxy configs checked by Envoy)")
    if bad:
        raise MeshctlError("suggested configuration failed validation: "
                           + "; ".join(f"{c['object']}: {c['message']}" for c in bad))


def validate_suggestions(docs: list[dict[str, Any]], mesh: Any) -> list[dict[str, Any]]:
    """Check the suggested resources the way they would be used: schema-less checks of the Envoy
    types (meshctl.validate), then each DestinationRule's traffic policy and each EnvoyFilter applied
    to the configuration of every proxy of the demo mesh it concerns, checked by `envoy --mode validate`."""
    from meshctl.envoy import validate_bootstrap
    from meshctl.envoyfilter import apply_envoyfilters
    from meshctl.mesh.bootstrap import apply_destination_rule
    from meshctl.validate import Validator

    checks: list[dict[str, Any]] = []
    problems = Validator(envoy_types=True, envoy=False).validate(docs)
    for p in problems:
        checks.append({"object": str(getattr(p, "object", "")), "check": "envoy-types", "ok": p.severity != "error",
                       "proxies": 0, "message": str(p)})
    pods = mesh.all_pods
    for doc in docs:
        meta = doc.get("metadata") or {}
        name = f"{doc.get('kind')}/{meta.get('namespace')}/{meta.get('name')}"
        if doc.get("kind") == "DestinationRule":
            tested, failed = 0, []
            for pod in pods:
                boot, changed = apply_destination_rule(pod.envoy.bootstrap, doc)
                if not changed:
                    continue
                tested += 1
                verdict = validate_bootstrap(boot)
                if not verdict.ok:
                    failed.append(f"{pod.name}: {verdict.message}")
            note = "" if tested else f"no proxy of the demo mesh has a cluster for host {doc['spec'].get('host')}"
            checks.append({"object": name, "check": "envoy --mode validate (callers' clusters)", "ok": not failed,
                           "proxies": tested, "message": "; ".join(failed) or note})
        elif doc.get("kind") == "EnvoyFilter":
            tested, failed = 0, []
            for pod in pods:
                applied = apply_envoyfilters(pod.envoy.bootstrap, [doc], labels=pod.labels, namespace=pod.namespace,
                                             proxy_type="gateway" if pod.role == "gateway" else "sidecar")
                if not applied.applied:
                    continue
                tested += 1
                verdict = validate_bootstrap(applied.bootstrap)
                if not verdict.ok:
                    failed.append(f"{pod.name}: {verdict.message}")
            checks.append({"object": name, "check": "envoy --mode validate (selected proxies)", "ok": not failed,
                           "proxies": tested, "message": "; ".join(failed) or ("" if tested else "selects no proxy")})
    return checks


def _write_summary(result: DemoResult) -> None:
    doc = {
        "verdict": result.verdict, "score": result.score, "exit_code": result.exit_code,
        "scenario": "healthy canary" if result.healthy else "faulty canary (reviews v2: 5% 503)",
        "seconds": round(result.seconds, 1),
        "stages": [{"name": s.name, "status": s.status, "seconds": round(s.seconds, 2), "detail": s.detail,
                    "files": [str(f) for f in s.files]} for s in result.stages],
    }
    if result.traffic is not None:
        t = result.traffic
        doc["traffic"] = {"requests": t.sent, "by_code": {str(k): v for k, v in sorted(t.by_code.items())},
                          "failures": t.failures, "seconds": round(t.seconds, 2), "p50_ms": t.percentile(50),
                          "p99_ms": t.percentile(99)}
    if result.report is not None:
        doc["report"] = str(result.report)
    elif result.report_error:
        doc["report_error"] = result.report_error
    if result.edges:
        doc["edges"] = [{"source": a, "destination": b, **{k: v for k, v in d.items() if _plain(v)}}
                        for a, b, d in result.edges]
    (result.out_dir / "summary.json").write_text(json.dumps(doc, indent=1, default=str), encoding="utf-8")


def _plain(v: Any) -> bool:
    return isinstance(v, (str, int, float, bool)) or v is None


def canary_command(out: Path, namespace: str | None) -> str:
    """`meshctl analyze canary` on the demo's dataset and config: the same judgment from the shell."""
    import shlex

    return shlex.join(["meshctl", "analyze", "canary", "--data", str(out / "data"), *(["-n", namespace] if namespace
                       else []), "--service", CANARY_SERVICE, "--baseline", "version=v1", "--canary", "version=v2",
                       "--config", str(out / "canary-config.yaml")])


def _write_report(result: DemoResult, ctx: dict[str, Any]) -> None:
    """report.html from this run's results and files (never a previous run's files left in the folder).
    A failure here costs the run only its report: the summary says why."""
    try:
        from meshctl.reports.demo_html import output_files, render_demo_html

        def own(stage: str, name: str) -> str | None:
            path = result.out_dir / name
            st = result.stage(stage)
            return path.read_text(encoding="utf-8") if st.status == "ok" and path in st.files else None

        svc = ctx["topology"].service(CANARY_SERVICE) if result.canary is not None else None
        path = result.out_dir / "report.html"
        path.write_text(render_demo_html(
            result, graph=ctx.get("graph_versions"), graph_svg=own("graph", "graph-versions.svg"),
            canary_svg=own("canary", "canary.svg"), checks=ctx.get("suggest_checks"),
            canary_command=canary_command(result.out_dir, svc.namespace) if svc else None,
            files=output_files(result)), encoding="utf-8")
        result.report = path
    except Exception as exc:  # the report must not hide the run's results
        result.report_error = f"{type(exc).__name__}: {exc}"
        (result.out_dir / "report.html").unlink(missing_ok=True)  # not a previous run's page in its place


def _svg_size(svg: str, default: tuple[int, int]) -> tuple[int, int]:
    import re

    m = re.search(r'viewBox="[-\d.]+ [-\d.]+ ([\d.]+) ([\d.]+)"', svg)
    return (int(float(m.group(1))) + 1, int(float(m.group(2))) + 1) if m else default


REPORT_SHOT_SIZE = (1280, 2400)  # report.png: the verdict, traffic, graph and canary metrics


def take_screenshots(result: DemoResult, *, summary_svg: str | None = None) -> tuple[list[Path], list[str]]:
    """PNG pictures of a finished run for a README: the graph pages and report.html (headless Chromium),
    the canary plot, and the terminal summary (`summary_svg`, recorded by the command). Returns files and notes."""
    import tempfile

    shots_dir = result.out_dir / "screenshots"
    shots_dir.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    notes: list[str] = []
    if result.canary is not None:
        from meshctl.reports.canary_plot import plot

        plot(result.canary, str(shots_dir / "canary.png"))
        files.append(shots_dir / "canary.png")
    from meshctl.reports.screenshot import NOT_FOUND, find_chromium, screenshot

    exe = find_chromium()
    if exe is None:
        notes.append(f"{NOT_FOUND}: no graph.png / report.png / summary.png")
        return files, notes
    with tempfile.TemporaryDirectory(prefix="meshctl-chromium-") as profile:
        pages = [(f"{stem}.html", (1400, 820)) for stem in ("graph", "graph-versions")]
        if result.report is not None:
            pages.append((result.report.name, REPORT_SHOT_SIZE))
        for name, size in pages:
            page = result.out_dir / name
            if page.exists():
                png = shots_dir / f"{page.stem}.png"
                files.append(screenshot(page, png, size, profile=Path(profile), exe=exe))
        if summary_svg:
            svg = shots_dir / "summary.svg"
            svg.write_text(summary_svg, encoding="utf-8")
            files.append(screenshot(svg, shots_dir / "summary.png", _svg_size(summary_svg, (1000, 700)),
                                    profile=Path(profile), exe=exe))
    return files, notes
