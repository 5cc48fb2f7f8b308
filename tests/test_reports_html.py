"""The self-contained HTML reports: `meshctl analyze ... --html` (canary_html) and the demo's report.html
(demo_html). Structure, no external requests, escaping (also over arbitrary strings), the CLI option
and its exit codes, the reproduce command, and the pages rendered by headless Chromium.

The demo report of a real demo run is checked by `check_demo_report`, called from tests/test_demo.py on
the demo output that module already produces (no extra demo run)."""

from __future__ import annotations

import copy
import dataclasses
import html
import json
import re
import shlex
from html.parser import HTMLParser
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshctl.reports import canary_format as cf
from meshctl.reports import canary_html, demo_html
from meshctl.store import Dataset
from tests.chromium import assert_self_contained, chromium, colour_pixels, screenshot_stats
from tests.test_canary_scenarios import cohort_rows, requests_table, run

HOSTILE = '<script>alert("x")</script>'
HOSTILE_PATH = "/q/<img src=x onerror=alert(1)>"
HOSTILE_NODE = '<svg onload=alert(1)>"&'  # no "/" or ":": a node id is ns/app:version
NAMESPACE_URIS = ("http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink")


# ---- parsing helpers ------------------------------------------------------------------------------

class Page(HTMLParser):
    """Start tags (with attributes), text and ids of a page, as a browser's tokenizer sees them."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.structure: list[str] = []
        self.text: list[str] = []
        self._in: list[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self.structure.append(f"<{tag} {' '.join(sorted(k for k, _ in attrs))}>")
        self._in.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self.structure.append(f"<{tag} {' '.join(sorted(k for k, _ in attrs))}/>")

    def handle_endtag(self, tag: str) -> None:
        self.structure.append(f"</{tag}>")

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    @property
    def alltext(self) -> str:
        return "".join(self.text)

    def ids(self) -> list[str]:
        return [a["id"] for _, a in self.tags if a.get("id")]

    def section_ids(self, nested: bool = True) -> list[str]:
        """Ids of the sections; nested=False leaves out the embedded canary report's (canary-*)."""
        return [a["id"] for t, a in self.tags if t == "section" and a.get("id")
                and (nested or not a["id"].startswith("canary-"))]


def assert_offline(page: str) -> None:
    """Nothing to fetch: besides the shared checks, no http(s) URL anywhere but XML namespace names,
    no <img>/<iframe>/<object>/<embed>, one inline script without src."""
    assert_self_contained(page)
    urls = re.findall(r"https?://[^\s\"'<>)]*", page)
    assert set(urls) <= set(NAMESPACE_URIS), sorted(set(urls) - set(NAMESPACE_URIS))
    p = Page(page)
    tags = [t for t, _ in p.tags]
    assert not {"img", "iframe", "object", "embed", "link", "base", "audio", "video"} & set(tags)
    scripts = [a for t, a in p.tags if t == "script"]
    assert len(scripts) == 1 and "src" not in scripts[0]
    assert tags.count("style") >= 1 and not any("src" in a for _, a in p.tags)


def assert_ids_resolve(page: str) -> None:
    """Element ids are unique (two inline SVGs cannot clash) and every #reference points at one."""
    ids = Page(page).ids()
    dup = {i for i in ids if ids.count(i) > 1}
    assert not dup, sorted(dup)[:10]
    refs = set(re.findall(r'href="#([^"]+)"', page)) | set(re.findall(r"url\(#([^)]+)\)", page))
    assert refs <= set(ids), sorted(refs - set(ids))[:10]


# ---- judged results -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tables() -> dict:
    return {
        "fail": requests_table(cohort_rows("v1", 20_000, seed=1), cohort_rows("v2", 5_000, seed=2, error_rate=0.05)),
        "tiny": requests_table(cohort_rows("v1", 30, seed=1), cohort_rows("v2", 30, seed=2)),
    }


@pytest.fixture(scope="module")
def results(tables) -> dict:
    return {name: run(t) for name, t in tables.items()}


@pytest.fixture(scope="module")
def datasets(tables, tmp_path_factory) -> dict[str, str]:
    out = {}
    for name, t in tables.items():
        d = tmp_path_factory.mktemp("html") / name
        Dataset(d).append([t])
        out[name] = str(d)
    return out


def test_canary_page_says_everything_a_release_manager_needs(results):
    res = results["fail"]
    svg = canary_html.plot_svg(res)
    page = canary_html.render_html(res, command="meshctl analyze canary --service reviews", exit_code=1, plot_svg=svg)
    assert_offline(page)
    assert_ids_resolve(page)
    p = Page(page)
    # verdict first, in its colour, then the sections in reading order
    first = p.tags[[t for t, _ in p.tags].index("main") + 1]
    assert first[0] == "div" and first[1]["data-verdict"] == "fail"
    assert canary_html.VERDICT_COLOUR["fail"] in first[1]["style"]
    assert p.section_ids() == ["why", "cohorts", "metrics", "score", "plot", "routes", "notes", "settings",
                               "reproduce"]  # no thresholds configured: no thresholds section
    text = html.unescape(re.sub(r"\s+", " ", p.alltext))
    assert "FAIL" in text and "score 0/100 (Fail)" in text and "exit code 1" in text
    assert "Rows used: inbound" in text
    # the figures are the shared formatter's, metric by metric (one source, several writers)
    for m in res.metrics:
        for figure in (cf.value(m, "baseline"), cf.value(m, "canary"), cf.effect(m), cf.ci(m), cf.p_value(m),
                       cf.label(m)):
            assert figure in text, (m.name, figure)
    for c in ("baseline", "canary"):
        assert cf.num(res.cohorts[c]["requests"]) in text
    for r in res.routes:
        assert r.route in text
    for n in res.notes + res.reasons:
        assert n in text
    assert "meshctl analyze canary --service reviews" in text
    # one table row per metric (plus its reason row), the plot inline as SVG
    assert sum(1 for t, a in p.tags if t == "tr" and "metric" in (a.get("class") or "")) == len(res.metrics)
    assert sum(1 for t, a in p.tags if t == "svg" and a.get("class") == "picture") == 1


def test_inconclusive_page_says_how_many_more_requests(results):
    res = results["tiny"]
    page = canary_html.render_html(res, exit_code=2)
    text = html.unescape(Page(page).alltext)
    assert "INCONCLUSIVE" in text
    under = [m for m in res.metrics if m.more_needed]
    assert under
    for m in under:
        assert f"needs ≈{cf.num(m.more_needed['canary'])} more canary and {cf.num(m.more_needed['baseline'])} " \
               "more baseline requests" in text
    assert 'data-verdict="inconclusive"' in page and canary_html.VERDICT_COLOUR["inconclusive"] in page
    assert "reproduce" not in Page(page).section_ids()  # no command given, no empty section


def _hostile(res, s: str):
    """A copy of `res` with `s` in every string a report shows from the data or the config."""
    r = copy.deepcopy(dataclasses.replace(res, samples={}))
    r.labels = (s + " base", s + " canary")
    r.cohorts = copy.deepcopy(r.cohorts)
    r.cohorts["service"] = s
    for side in ("baseline", "canary"):
        r.cohorts[side]["selector"] = f"version={s}"
    r.reasons = [f"{s} reason", *r.reasons]
    r.notes = [*r.notes, f"note {s}"]
    r.config = {**r.config, "judge": s}
    for m in r.metrics:
        m.name, m.description, m.reason = f"{m.name}{s}", s, f"{m.reason} {s}"
        m.groups = tuple(f"{g}{s}" for g in m.groups) or (s,)
        m.unit = f"ms{s}"
    for t in r.thresholds:
        t.description, t.reason = f"{t.description} {s}", f"{t.reason} {s}"
    for rt in r.routes:
        rt.route = f"GET /{s}"
    return r


def test_hostile_names_come_out_as_text(results):
    res = _hostile(results["fail"], HOSTILE)
    page = canary_html.render_html(res, command=f"meshctl analyze canary --service {shlex.quote(HOSTILE)}")
    p = Page(page)
    assert [t for t, _ in p.tags].count("script") == 1  # only the page's own
    assert HOSTILE in p.alltext and "<script>alert" not in page
    assert f'title="{html.escape(HOSTILE, quote=True)}"' in page  # attributes are quoted and escaped too
    # control characters and lone surrogates cannot break the page or its UTF-8 encoding
    odd = _hostile(results["fail"], "a\x00b\x1b[31m\ud800c")
    text = canary_html.render_html(odd)
    text.encode("utf-8")
    assert "\x00" not in text and "\x1b" not in text and "ab[31m?c" in text


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(s=st.text(min_size=1, max_size=30))
def test_any_string_in_names_and_paths_is_text(results, s):
    """Whatever a service, selector, route, note or metric is called, the page's structure is the
    structure of the same page with plain names, and the string is in the page's text."""
    base = results["fail"]
    plain = Page(canary_html.render_html(_hostile(base, "x"), command="meshctl x"))
    page = Page(canary_html.render_html(_hostile(base, s), command=f"meshctl {s}"))
    assert page.structure == plain.structure
    shown = canary_html._CONTROL.sub("", s)
    if shown.strip():
        assert shown in page.alltext


# ---- the CLI option -------------------------------------------------------------------------------

def _canary(run_cli, data: str, *extra: str):
    return run_cli("analyze", "canary", "--data", data, "--service", "reviews", "--baseline", "version=v1",
                   "--canary", "version=v2", *extra)


def test_cli_html_written_exit_code_unchanged_and_reproducible(run_cli, datasets, tmp_path):
    page_file = tmp_path / "out" / "report.html"
    code_plain, json_plain, _ = _canary(run_cli, datasets["fail"], "-o", "json")
    code, out, err = _canary(run_cli, datasets["fail"], "-o", "json", "--html", str(page_file), "--routes", "5")
    assert code == code_plain == 1, err
    assert json.loads(out)["verdict"] == json.loads(json_plain)["verdict"] == "fail"
    page = page_file.read_text(encoding="utf-8")
    assert_offline(page)
    assert 'data-verdict="fail"' in page and "exit code <b>1</b>" in page
    assert sum(1 for t, a in Page(page).tags if t == "svg" and a.get("class") == "picture") == 1
    # the page's command reproduces the judgment
    cmd = html.unescape(re.search(r'<div class="cmd"><pre><code>(.*?)</code>', page, re.S).group(1))
    args = shlex.split(cmd)
    assert args[:3] == ["meshctl", "analyze", "canary"] and "--html" not in args and "-o" not in args
    assert args[args.index("--routes") + 1] == "5" and args[args.index("--data") + 1] == datasets["fail"]
    code2, out2, _ = run_cli(*args[1:], "-o", "json")
    a, b = json.loads(out), json.loads(out2)
    assert code2 == code and (a["verdict"], a["score"]) == (b["verdict"], b["score"])
    assert [m["p_value"] for m in a["metrics"]] == [m["p_value"] for m in b["metrics"]]


def test_cli_html_inconclusive_with_plot_reused(run_cli, datasets, tmp_path):
    page_file, svg = tmp_path / "r.html", tmp_path / "r.svg"
    code, _, err = _canary(run_cli, datasets["tiny"], "--html", str(page_file), "--plot", str(svg))
    assert code == 2, err
    page = page_file.read_text(encoding="utf-8")
    assert 'data-verdict="inconclusive"' in page and "needs ≈" in page
    # the --plot file's picture, inline (its ids prefixed), not a second drawing
    inline = re.search(r'<svg [^>]*class="picture".*?</svg>', page, re.S).group(0)
    assert inline.count("<path") == svg.read_text().count("<path") > 10


def test_cli_bluegreen_and_metrics_arrays(run_cli, datasets, tmp_path):
    page_file = tmp_path / "bg.html"
    code, _, err = run_cli("analyze", "bluegreen", "--data", datasets["fail"], "--service", "reviews",
                           "--blue", "version=v1", "--green", "version=v2", "--html", str(page_file))
    assert code == 1, err
    page = page_file.read_text(encoding="utf-8")
    text = html.unescape(Page(page).alltext)
    assert "Blue-green analysis of reviews" in text and "blue" in text and "green" in text
    assert "meshctl analyze bluegreen" in text and "--blue version=v1 --green version=v2" in text
    metrics = tmp_path / "m.json"
    metrics.write_text(json.dumps({"metrics": [{"name": "cpu <b>", "baseline": [0.2, 0.21, 0.19, 0.2, 0.22] * 4,
                                                "canary": [0.2, 0.2, 0.21, 0.19, 0.2] * 4}]}))
    page_file = tmp_path / "m.html"
    code, _, err = run_cli("analyze", "canary", "--metrics", str(metrics), "--html", str(page_file))
    assert code in (0, 2), err
    page = page_file.read_text(encoding="utf-8")
    assert_offline(page)
    assert "cpu &lt;b&gt;" in page and "cohorts" not in Page(page).section_ids()


def test_cli_hostile_service_and_path_through_the_pipeline(run_cli, tmp_path):
    rows = [cohort_rows(v, n, seed=i, service=HOSTILE, error_rate=e)
            for i, (v, n, e) in enumerate((("v1", 3000, 0.001), ("v2", 1000, 0.05)))]
    for r in rows:
        r["path"] = [HOSTILE_PATH] * len(r["path"])
    data = tmp_path / "data"
    Dataset(data).append([requests_table(*rows)])
    page_file = tmp_path / "r.html"
    code, _, err = run_cli("analyze", "canary", "--data", str(data), "--service", HOSTILE, "--baseline",
                           "version=v1", "--canary", "version=v2", "--html", str(page_file), "-o", "json")
    assert code == 1, err
    page = page_file.read_text(encoding="utf-8")
    p = Page(page)
    assert [t for t, _ in p.tags].count("script") == 1 and "img" not in {t for t, _ in p.tags}
    assert HOSTILE in p.alltext and "onerror=alert(1)>" in p.alltext


# ---- the demo report ------------------------------------------------------------------------------

@pytest.fixture
def fake_demo(results, tmp_path):
    """A finished demo run without Envoy: real result objects, hostile names in the graph and the
    suggestions, graphviz-free graph picture."""
    from analyzers.graph import build_graph
    from analyzers.suggest.model import Message, ReplayResult, Setting, Suggestion, SuggestResult, Target
    from meshctl.mesh.demo import STAGES, DemoResult, Stage
    from meshctl.mesh.traffic import TrafficResult
    from tests.test_graph import frame, row

    g = build_graph(frame([row("shop/front:v1", f"shop/{HOSTILE_NODE}:v1", rid=f"r{i}", t=i, code=503 if i % 9 == 0 else 200)
                           for i in range(60)]), group_by="app-version")
    out = tmp_path / "demo"
    out.mkdir()
    stages = [Stage(n, t, o, status="ok", seconds=0.5, detail=f"{n} done") for n, t, o in STAGES]
    stages[-1].status, stages[-1].detail = "failed", f"suggested configuration failed validation: {HOSTILE}"
    stages[0].files = [out / "rendered" / "envoyfilters.yaml", out / "data", out / "mesh" / "a.log", Path("/elsewhere")]
    sugg = Suggestion("circuit-breaker", Target(service=f"{HOSTILE}.shop.svc.cluster.local"),
                      settings=[Setting("connectionPool.tcp.maxConnections", 16, f"rule {HOSTILE}")],
                      messages=[Message("SG003", "warning", HOSTILE)],
                      replay={"suggested": ReplayResult("suggested", requests=100, rejected_overflow=2)})
    res = DemoResult(out_dir=out, stages=stages, healthy=False, verdict=results["fail"].verdict,
                     score=results["fail"].score, canary=results["fail"], seconds=12.3,
                     traffic=TrafficResult(requests=990, failures=10, by_code={200: 950, 503: 40}, seconds=5.0,
                                           latencies_ms=[float(i % 50) for i in range(990)]),
                     suggestions={"circuit-breaker": SuggestResult("circuit-breaker", {}, 100, 100, None, [sugg])})
    checks = [{"object": f"DestinationRule/shop/{HOSTILE}", "check": "envoy --mode validate (callers' clusters)",
               "ok": False, "proxies": 1, "message": HOSTILE}]
    return res, g, checks


def test_demo_page_without_envoy(fake_demo, monkeypatch):
    from meshctl.reports import graph_html

    res, g, checks = fake_demo
    page = demo_html.render_demo_html(res, graph=g, graph_svg=None, canary_svg=None, checks=checks,
                                      canary_command="meshctl analyze canary --data demo/data",
                                      files=demo_html.output_files(res))
    assert_offline(page)
    assert_ids_resolve(page)
    p = Page(page)
    assert p.section_ids(nested=False) == ["traffic", "graph", "canary", "suggestions", "stages", "files"]
    assert [t for t, _ in p.tags].count("script") == 1 and HOSTILE in p.alltext and HOSTILE_NODE in p.alltext
    assert [a.get("class") for t, a in p.tags if t == "svg"] == ["picture"]  # built-in layout; no injected <svg>
    assert graph_html.builtin_svg(g).count("<g ") == page.split('id="graph-svg"')[1].split("</svg>")[0].count("<g ")
    text = html.unescape(p.alltext)
    assert "1,000" in text and "5xx or no answer" in text  # traffic: 990 answered + 10 without an answer
    assert "maxConnections 16" in re.sub(r"\s+", " ", text) and "100 requests: 2 rejected (overflow)" in text
    assert "invalid" in text and "failed" in text
    hrefs = [a["href"] for t, a in p.tags if t == "a" and a.get("href") and not a["href"].startswith("#")]
    assert "rendered/envoyfilters.yaml" in hrefs and "data/" in hrefs and "mesh/" in hrefs
    assert not any(h.startswith(("/", "file:")) for h in hrefs)  # relative: the folder can move
    # ids of the canary part are prefixed, so they cannot clash with the page's own sections
    assert {"canary-metrics", "canary-cohorts", "canary-reproduce"} <= set(p.ids())
    # no verdict: a grey banner that says which stage failed
    res.verdict, res.canary, res.score = None, None, None
    page = demo_html.render_demo_html(res, graph=g)
    assert 'data-verdict="none"' in page and "NO VERDICT" in page and "suggest failed" in html.unescape(page)


@pytest.mark.slow
def test_pages_render_in_headless_chromium(results, fake_demo, tmp_path):
    """Both pages as a browser draws them: a rendered page (ink, colours) with the verdict colour up top."""
    res = results["fail"]
    canary_page = tmp_path / "canary.html"
    canary_page.write_text(canary_html.render_html(res, command="meshctl analyze canary", exit_code=1,
                                                   plot_svg=canary_html.plot_svg(res)), encoding="utf-8")
    demo, g, checks = fake_demo
    demo_page = tmp_path / "demo.html"
    demo_page.write_text(demo_html.render_demo_html(demo, graph=g, checks=checks), encoding="utf-8")
    for page in (canary_page, demo_page):
        check_screenshot(page, "fail", tmp_path)


def check_screenshot(page: Path, verdict: str, tmp_path: Path, size: tuple[int, int] = (1280, 1600)) -> None:
    png = tmp_path / f"{page.stem}.png"
    res = chromium([f"--screenshot={png}", f"--window-size={size[0]},{size[1]}", page.as_uri()], tmp_path)
    assert png.exists(), res.stderr.decode()[-2000:]
    got, ink, colours = screenshot_stats(png)
    assert got == size
    assert ink > 0.06 * size[0] * size[1], ink  # text, tables, pictures: not a blank page
    assert colours > 20, colours
    colour = canary_html.VERDICT_COLOUR[verdict]
    banner = colour_pixels(png, colour)
    assert banner > 40_000, banner  # the verdict block, in its colour
    from PIL import Image

    top = tmp_path / "top.png"
    Image.open(png).crop((0, 0, size[0], 240)).save(top)
    assert colour_pixels(top, colour) > 40_000  # ... at the top of the page


def check_demo_report(out: Path, tmp_path: Path, run_cli=None) -> None:
    """A real demo run's report.html (called by tests/test_demo.py on the output it already made)."""
    summary = json.loads((out / "summary.json").read_text())
    page = (out / "report.html").read_text(encoding="utf-8")
    assert summary["report"] == str(out / "report.html")
    assert_offline(page)
    assert_ids_resolve(page)
    p = Page(page)
    assert f'data-verdict="{summary["verdict"]}"' in page
    assert p.section_ids(nested=False) == ["traffic", "graph", "canary", "suggestions", "stages", "files"]
    pictures = [a for t, a in p.tags if t == "svg" and a.get("class") == "picture"]
    assert [a["id"] for a in pictures] == ["graph-svg", "canary-plot-svg"]  # graph and canary plot inline
    text = html.unescape(p.alltext)
    assert f"{summary['traffic']['requests']:,}" in text and "envoy --mode validate" in text
    for e in summary["edges"]:  # by app there; by version (app:version) in the page
        assert e["source"] in text and e["destination"] in text
    for href in (a["href"] for t, a in p.tags if t == "a" and a.get("href") and not a["href"].startswith("#")):
        assert (out / href).exists(), href  # every link points at a file of this run
    if run_cli is not None:  # the canary section's command gives the demo's judgment
        cmd = html.unescape(re.search(r'<div class="cmd"><pre><code>(.*?)</code>', page, re.S).group(1))
        code, outp, err = run_cli(*shlex.split(cmd)[1:], "-o", "json")
        doc, canary = json.loads(outp), json.loads((out / "canary.json").read_text())
        assert code == summary["exit_code"], err
        assert (doc["verdict"], doc["score"]) == (canary["verdict"], canary["score"])
        assert [m["p_value"] for m in doc["metrics"]] == [m["p_value"] for m in canary["metrics"]]
    check_screenshot(out / "report.html", summary["verdict"], tmp_path)
