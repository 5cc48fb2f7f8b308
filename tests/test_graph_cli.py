"""`meshctl graph` end to end over a stored dataset: every output format, windows, diff, why, check."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import networkx as nx
import pyarrow as pa
import pytest

from meshctl.store import Dataset
from tests.test_graph import frame, row


def bookinfo_rows(hour: int, ratings_fail: float, n: int = 300) -> list[dict]:
    """Gateway -> productpage -> reviews v1/v2 -> ratings, both sidecars logging; in the given hour a
    share of ratings calls fail with UF (reviews passes them up as 503)."""
    rows = []
    for i in range(n):
        t = hour * 3600 + i * 2.0
        rid = f"h{hour}-{i}"
        ver = "v1" if i % 2 else "v2"
        bad = ver == "v2" and (i % 100) < ratings_fail * 100
        rows.append(row("istio-system/istio-ingressgateway:v1", "bookinfo/productpage:v1", direction="gateway",
                        rid=rid, t=t, ms=50, code=503 if bad else 200))
        rows.append(row("bookinfo/productpage:v1", f"bookinfo/reviews:{ver}", rid=rid, t=t, ms=30,
                        code=503 if bad else 200))
        rows.append(row("bookinfo/productpage:v1", f"bookinfo/reviews:{ver}", direction="inbound", rid=rid, t=t,
                        ms=28, code=503 if bad else 200))
        if ver == "v2":
            rows.append(row("bookinfo/reviews:v2", "bookinfo/ratings:v1", rid=rid, t=t, ms=5,
                            code=0 if bad else 200, flags="UF" if bad else None))
            if not bad:
                rows.append(row("bookinfo/reviews:v2", "bookinfo/ratings:v1", direction="inbound", rid=rid, t=t, ms=4))
    return rows


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("graph-cli") / "data"
    ds = Dataset(path)
    ds.append([pa.Table.from_pandas(frame(bookinfo_rows(0, 0.0)), preserve_index=False)])
    ds.append([pa.Table.from_pandas(frame(bookinfo_rows(1, 0.4)), preserve_index=False)])
    return path


def test_default_subcommand_table(run_cli, data):
    code, out, err = run_cli("graph", "--data", str(data))
    assert code == 0, err
    assert "SOURCE" in out and "bookinfo/productpage" in out and "REPORTER" in out
    assert "server-side rows already seen by the client not counted" in out.replace("\n", " ")


def test_json_and_windows(run_cli, data):
    code, out, err = run_cli("graph", "--data", str(data), "-o", "json")
    assert code == 0, err
    d = json.loads(out)
    edges = {(e["source"], e["target"]): e for e in d["edges"]}
    assert edges["bookinfo/productpage", "bookinfo/reviews"]["requests"] == 600
    assert edges["bookinfo/reviews", "bookinfo/ratings"]["requests"] == 300
    assert edges["bookinfo/reviews", "bookinfo/ratings"]["flags"] == {"UF": 60}
    for key in ("source", "target", "requests", "errors", "error_rate", "rps", "p50_ms", "p90_ms", "p99_ms"):
        assert key in edges["bookinfo/reviews", "bookinfo/ratings"]
    assert {n["id"] for n in d["nodes"]} >= {"istio-system/istio-ingressgateway", "bookinfo/ratings"}
    # --since as a duration counts back from the newest row: the second hour only; rps over that window
    code, out, _ = run_cli("graph", "--data", str(data), "--since", "15m", "--group-by", "app-version", "-o", "json")
    d = json.loads(out)
    edges = {(e["source"], e["target"]): e for e in d["edges"]}
    assert d["graph"]["window_seconds"] == 900.0
    e = edges["bookinfo/productpage:v1", "bookinfo/reviews:v2"]
    assert e["requests"] == 150 and e["rps"] == pytest.approx(150 / 900, rel=1e-3)
    # global options before the subcommand, as kubectl takes them
    code, out, _ = run_cli("-o", "json", "-n", "istio-system", "graph", "--data", str(data))
    d = json.loads(out)
    assert {(e["source"], e["target"]) for e in d["edges"]} == {("istio-system/istio-ingressgateway",
                                                                 "bookinfo/productpage")}


@pytest.mark.parametrize("fmt", ["dot", "mermaid", "graphml", "svg", "html"])
def test_picture_formats(run_cli, data, fmt):
    code, out, err = run_cli("graph", "show", "--data", str(data), "-o", fmt)
    assert code == 0, err
    if fmt == "dot":
        assert out.startswith("digraph mesh {") and '"bookinfo/reviews" -> "bookinfo/ratings"' in out
    elif fmt == "mermaid":
        assert out.startswith("flowchart LR")
    elif fmt == "graphml":
        g = nx.parse_graphml(out)
        assert g.edges["bookinfo/reviews", "bookinfo/ratings"]["requests"] == 300
    elif fmt == "svg":
        root = ET.fromstring(out)
        assert root.tag.endswith("svg")
    else:
        assert out.startswith("<!DOCTYPE html>") and 'id="graph-data"' in out and "https://" not in out


def test_diff_between_windows_and_datasets(run_cli, data, tmp_path):
    before, after = "2026-03-01T10:00:00Z..2026-03-01T11:00:00Z", "2026-03-01T11:00:00Z.."
    code, out, err = run_cli("graph", "diff", "--data", str(data), "--before", before, "--after", after, "-o", "json")
    assert code == 0, err
    d = json.loads(out)
    regressed = {(c["source"], c["target"]) for c in d["changes"] if c["change"] == "regressed"}
    assert regressed == {("istio-system/istio-ingressgateway", "bookinfo/productpage"),
                         ("bookinfo/productpage", "bookinfo/reviews"), ("bookinfo/reviews", "bookinfo/ratings")}
    code, out, _ = run_cli("graph", "diff", "--data", str(data), "--before", before, "--after", after, "--exit-code")
    assert code == 1
    assert "3 regressed" in out and "flags UF 0->60" in out
    # durations: the last 15 minutes against the 15 before the hour turned
    code, out, _ = run_cli("graph", "diff", "--data", str(data), "--before", "90m..60m", "--after", "15m", "-o", "json")
    assert json.loads(out)["summary"]["regressed"] == 3
    # two dataset directories (one of them DIR@WINDOW)
    other = Dataset(tmp_path / "other")
    extra = bookinfo_rows(0, 0.0) + [row("bookinfo/productpage:v1", "bookinfo/cache:v1", rid=f"c{i}", t=i) for i in range(30)]
    other.append([pa.Table.from_pandas(frame(extra), preserve_index=False)])
    code, out, err = run_cli("graph", "diff", "--before", f"{data}@..2026-03-01T11:00:00Z", "--after",
                             str(tmp_path / "other"), "-o", "json")
    assert code == 0, err
    d = json.loads(out)
    assert [(c["source"], c["target"]) for c in d["changes"] if c["change"] == "new"] == [
        ("bookinfo/productpage", "bookinfo/cache")]
    assert d["summary"]["regressed"] == 0


def test_why_and_errors(run_cli, data):
    code, out, err = run_cli("graph", "why", "productpage", "--data", str(data), "--since", "30m")
    assert code == 0, err
    flat = " ".join(out.split())
    assert "Error path" in flat and "origin-edge" in flat
    assert "bookinfo/ratings did not answer bookinfo/reviews" in flat
    code, out, _ = run_cli("graph", "why", "productpage", "--data", str(data), "--since", "30m", "-o", "json")
    w = json.loads(out)
    assert [h["verdict"] for h in w["error_path"]] == ["propagates", "origin-edge"]
    code, _, err = run_cli("graph", "why", "nosuch", "--data", str(data))
    assert code == 3 and "no service 'nosuch'" in err and "bookinfo/ratings" in err


def test_check_exit_codes(run_cli, data):
    code, out, _ = run_cli("graph", "check", "--data", str(data))
    assert code == 1 and "GRAPH006" in out  # failing edges are errors
    code, out, _ = run_cli("graph", "check", "--data", str(data), "--failure-threshold", "never", "-o", "json")
    assert code == 0
    assert {f["code"] for f in json.loads(out)["findings"]} >= {"GRAPH006", "GRAPH004"}  # only reviews v2 calls ratings
    code, out, _ = run_cli("graph", "check", "--data", str(data), "--until", "2026-03-01T11:00:00Z")
    assert code == 0  # the healthy hour has no error findings


def test_usage_and_input_errors(run_cli, tmp_path, data):
    code, _, err = run_cli("graph", "--data", str(tmp_path / "none"))
    assert code == 3 and "no requests table here yet" in err
    code, _, err = run_cli("graph", "--data", str(data), "--group-by", "pod")
    assert code == 3
    code, _, err = run_cli("graph", "--data", str(data), "-o", "yaml")
    assert code == 3 and "not one of" in err
    code, _, err = run_cli("graph", "--data", str(data), "--since", "yesterday")
    assert code == 3 and "--since" in err
    code, out, _ = run_cli("graph", "--help")
    assert code == 0 and "Options (of `graph show`" in out and "diff" in out and "why" in out and "--group-by" in out
