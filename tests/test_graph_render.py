"""Graph writers: DOT (checked through graphviz itself), Mermaid, GraphML round trip, SVG, and the
self-contained HTML page loaded in headless Chromium (screenshot + hover data)."""

from __future__ import annotations

import json
import re
import subprocess
import xml.etree.ElementTree as ET

import networkx as nx
import pytest

from analyzers.graph import build_graph, from_dependency_links
from meshctl.reports import graph_html, graph_render
from tests.chromium import assert_self_contained, chromium, screenshot_stats
from tests.test_graph import frame, row

SVG_NS = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def mesh() -> nx.DiGraph:
    rows = []
    for i in range(200):
        rows.append(row("istio-system/istio-ingressgateway:v1", "shop/front:v1", direction="gateway", rid=f"g{i}", t=i))
        rows.append(row("shop/front:v1", "shop/cart:v1", rid=f"c{i}", t=i, ms=20 + i % 7))
        rows.append(row("shop/cart:v1", "pay/bill:v1", rid=f"b{i}", t=i, code=503 if i % 4 == 0 else 200))
        if i % 50 == 0:
            rows.append(row("pay/bill:v1", None, rid=f"d{i}", t=i, destination_service="postgres",
                            destination_kind="database", code=0, flags="UF"))
    rows.append(row("shop/front:v1", "shop/cat\"|<b>:v1", rid="x", t=3))  # hostile name: quoting everywhere
    return build_graph(frame(rows))


def test_band_and_width():
    assert graph_render.error_band(0.0)[0] == "ok"
    assert graph_render.error_band(0.01)[0] == "degraded"
    assert graph_render.error_band(0.25)[0] == "failing"
    assert graph_render.error_band(None)[0] == "no data"
    assert graph_render.edge_width(0, 10) == 1.0 and graph_render.edge_width(10, 10) == 7.0
    assert 1.0 < graph_render.edge_width(1, 10) < graph_render.edge_width(5, 10) < 7.0


def test_dot_is_valid_for_graphviz_and_carries_the_styling(mesh):
    dot = graph_render.to_dot(mesh, title="t")
    out = subprocess.run(["dot", "-Tjson0"], input=dot.encode(), capture_output=True, check=True).stdout
    laid = json.loads(out)
    names = {o["name"] for o in laid["objects"] if "nodes" not in o}  # nodes (clusters have members)
    assert set(mesh.nodes) <= names
    assert len(laid["edges"]) == mesh.number_of_edges()
    colour_of = {}
    objs = laid["objects"]
    for e in laid["edges"]:
        colour_of[(objs[e["tail"]]["name"], objs[e["head"]]["name"])] = e["color"]
    assert colour_of[("shop/cart", "pay/bill")] == graph_render.error_band(0.25)[1]  # 25% errors: failing
    assert colour_of[("shop/front", "shop/cart")] == graph_render.error_band(0.0)[1]
    # namespaces are clusters
    assert {o.get("label") for o in objs if o["name"].startswith("cluster_ns")} >= {"shop", "pay", "istio-system"}


def test_mermaid(mesh):
    text = graph_render.to_mermaid(mesh)
    lines = text.splitlines()
    assert lines[0] == "flowchart LR"
    assert sum(" -->|" in ln for ln in lines) == mesh.number_of_edges()
    assert sum(ln.strip().startswith("linkStyle") for ln in lines) == mesh.number_of_edges()
    assert "database" in text and "[(" in text  # database as a cylinder
    hostile = next(ln for ln in lines if "cat" in ln and "-->" not in ln)
    assert hostile.count('"') == 2 and "|" not in hostile and "<b>" not in hostile


def test_graphml_round_trip(mesh):
    h = nx.parse_graphml(graph_render.to_graphml(mesh))
    assert set(h.edges) == set(mesh.edges)
    for s, t, a in mesh.edges(data=True):
        assert h.edges[s, t]["requests"] == a["requests"]
        assert json.loads(h.edges[s, t]["flags"]) == a["flags"]
    assert h.nodes["database:postgres"]["kind"] == "database"


def test_svg(mesh):
    svg = graph_render.to_svg(mesh, title="mesh")
    root = ET.fromstring(svg)
    edges = [g for g in root.iter(f"{SVG_NS}g") if g.get("class") == "edge"]
    assert len(edges) == mesh.number_of_edges()
    texts = " ".join(t.text or "" for t in root.iter(f"{SVG_NS}text"))
    for label in ("front", "cart", "bill", "postgres", "Legend"):
        assert label in texts


@pytest.mark.slow
def test_large_real_topology_uses_sfdp(oracles_dir):
    links = json.loads((oracles_dir / "data/jaeger-ui/dependencygraph-large.json").read_text())
    g = from_dependency_links(links)
    assert graph_render.layout_engine(g) == "sfdp"
    svg = graph_render.to_svg(g)
    root = ET.fromstring(svg)
    assert sum(1 for x in root.iter(f"{SVG_NS}g") if x.get("class") == "edge") == g.number_of_edges()
    assert sum(1 for x in root.iter(f"{SVG_NS}g") if x.get("class") == "node") == g.number_of_nodes() == 1238


# ---- HTML -------------------------------------------------------------------------------------
def embedded_data(page: str) -> dict:
    m = re.search(r'<script type="application/json" id="graph-data">(.*?)</script>', page, re.S)
    assert m
    return json.loads(m.group(1))


@pytest.mark.parametrize("with_graphviz", [True, False], ids=["graphviz", "builtin-layout"])
def test_html_page_in_headless_chromium(mesh, tmp_path, monkeypatch, with_graphviz):
    if not with_graphviz:
        monkeypatch.setattr(graph_html, "graphviz_available", lambda engine: False)
    page = graph_html.to_html(mesh, title="Shop mesh")
    assert_self_contained(page)
    assert "<script>alert" not in page and 'cat"|<b>' not in page.split('id="graph-data"')[0]
    data = embedded_data(page)
    assert len(data["edges"]) == mesh.number_of_edges() and len(data["nodes"]) == mesh.number_of_nodes()
    for e in data["edges"].values():  # the hover figures, per edge, as the analyzer computed them
        a = mesh.edges[e["source"], e["target"]]
        assert (e["requests"], e["errors"], e["p99_ms"], e["rps"]) == (a["requests"], a["errors"], a["p99_ms"], a["rps"])
    # each data key has its element in the picture
    for key in list(data["edges"]) + list(data["nodes"]):
        assert f'id="{key}"' in page
    if with_graphviz:
        assert "layout: graphviz dot" in page
    else:
        assert "layout: built-in" in page

    path = tmp_path / "mesh.html"
    path.write_text(page)
    png = tmp_path / "shot.png"
    res = chromium([f"--screenshot={png}", "--window-size=1400,1000", path.as_uri()], tmp_path)
    assert png.exists(), res.stderr.decode()[-2000:]
    size, ink, colours = screenshot_stats(png)
    assert size == (1400, 1000)
    assert ink > 20_000, ink  # a drawn graph, legend and table, not a blank page
    assert colours > 12, colours  # band colours, fills, text

    # The page's script runs: pin an edge via the URL and read the tooltip from the live DOM.
    res = chromium(["--dump-dom", path.as_uri() + "#edge=shop/cart->pay/bill"], tmp_path)
    dom = res.stdout.decode()
    assert 'data-ready="1"' in dom
    tip = re.search(r'<div id="tip" class="pinned"[^>]*>(.*?)</div>', dom, re.S)
    assert tip, dom[-3000:]
    text = re.sub(r"<[^>]+>", " ", tip.group(1))
    assert "shop/cart" in text and "pay/bill" in text
    assert "200" in text and "50 (25.0%)" in text  # requests and errors of that edge
    assert f"{mesh.edges['shop/cart', 'pay/bill']['p99_ms']:.1f} ms" in text
    # the edge table is filled by the script too
    assert len(re.findall(r'<tr data-k="e\d+"', dom)) == mesh.number_of_edges()


def test_html_of_an_empty_graph():
    page = graph_html.to_html(nx.DiGraph(), title="empty")
    assert "no requests in the selection" in page
    assert embedded_data(page)["edges"] == {}


def test_builtin_layout_orders_layers_by_call_depth(mesh):
    pos = graph_html.builtin_layout(mesh)
    assert pos["istio-system/istio-ingressgateway"][0] < pos["shop/front"][0] < pos["shop/cart"][0] < pos["pay/bill"][0]
    cyc = nx.DiGraph([("a", "b"), ("b", "a"), ("b", "c")])
    p = graph_html.builtin_layout(cyc)
    assert p["a"][0] == p["b"][0] < p["c"][0]  # a cycle collapses into one layer


def test_table_output(mesh, capsys):
    graph_render.print_graph_table(mesh)
    out = capsys.readouterr().out
    assert "SOURCE" in out and "REPORTER" in out and "shop/cart" in out
    assert "server-side rows" in out or "requests from" in out


def test_dependency_links_have_unknown_errors_drawn_grey(oracles_dir):
    links = json.loads((oracles_dir / "data/jaeger-ui/dependencygraph-small.json").read_text())
    g = from_dependency_links(links)
    assert all(a["errors"] is None and a["error_rate"] is None for _, _, a in g.edges(data=True))
    dot = graph_render.to_dot(g)
    assert graph_render.NO_DATA_COLOUR in dot and graph_render.ERROR_BANDS[0][2] not in dot.split("cluster_legend")[0]
    page = graph_html.to_html(g)
    assert '<b>-</b><span>error rate</span>' in page
    from analyzers.graph_checks import run_checks

    assert [f.code for f in run_checks(g).findings] == []
