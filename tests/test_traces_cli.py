"""`meshctl collect traces` on files: directories, stdin, .gz, forced formats, bad input, re-collection."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from meshctl.store import Dataset


def test_collect_directory_then_again(oracles_dir: Path, tmp_path: Path, run_cli) -> None:
    zipkin = oracles_dir / "data" / "zipkin"
    data = tmp_path / "d"
    code, out, err = run_cli("collect", "traces", str(zipkin), "--data", str(data), "-q", "-o", "json")
    assert code == 0, err
    doc = json.loads(out)
    names = sorted(Path(s["source"]).name for s in doc["sources"])
    assert names == sorted(p.name for p in zipkin.glob("*.json"))  # the README is not a trace file
    spans = sum(len(json.loads(p.read_text())) for p in zipkin.glob("*.json"))
    assert doc["spans"] == doc["lines"] == spans and doc["rejected"] == 0
    stored = Dataset(data).read()
    assert len(stored) == doc["rows"] == sum(s["rows"] for s in doc["sources"])
    assert set(stored["record_kind"]) == {"span"} and set(stored["record_format"]) == {"zipkin"}
    per_file = {Path(s["source"]).name: s["rows"] for s in doc["sources"]}
    assert per_file["smartthings-mobile-web-install.json"] == 664 and per_file["yelp.json"] == 12
    # The same traces again: nothing new.
    code, out, _ = run_cli("collect", "traces", str(zipkin), "--data", str(data), "-q", "-o", "json")
    again = json.loads(out)
    assert code == 0 and again["rows"] == 0 and again["duplicates"] == doc["rows"]
    assert len(Dataset(data).read()) == doc["rows"]
    info = Dataset(data).info()
    assert info["rows"] == doc["rows"] and len(info["sources"]) == len(names)


def test_collect_gzip_from_stdin(oracles_dir: Path, tmp_path: Path, run_cli) -> None:
    blob = gzip.compress((oracles_dir / "data" / "deathstarbench" / "traces-1695947455229.json").read_bytes())
    code, out, err = run_cli("collect", "traces", "-", "--data", str(tmp_path / "d"), "-q", "-o", "json", input=blob)
    assert code == 0, err
    doc = json.loads(out)
    assert doc["rows"] == 240 and doc["spans"] == 660
    assert doc["sources"] == [{"source": "<stdin>", "format": "jaeger", "rows": 240, "rejected": 0,
                               "duplicates": 0, "seconds": doc["sources"][0]["seconds"], "error": None}]


def test_bad_files_are_rejects_and_good_ones_land(oracles_dir: Path, tmp_path: Path, run_cli) -> None:
    good = oracles_dir / "data" / "tempo" / "trace-with-queue-database.json"
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(bytes(range(256)) * 4)
    cut = tmp_path / "cut.json"
    raw = (oracles_dir / "data" / "zipkin" / "yelp.json").read_bytes()
    cut.write_bytes(raw[: len(raw) // 2])
    data = tmp_path / "d"
    code, out, err = run_cli("collect", "traces", str(good), str(garbage), str(cut), "--data", str(data), "-q")
    assert code == 0, err
    assert "garbage.bin:1: not a trace file" in out
    assert "cut.json:" in out and "damaged at line" in out
    rejects = list(Dataset(data).iter_rejects())
    assert {Path(r["file"]).name for r in rejects} == {"garbage.bin", "cut.json"}
    stored = Dataset(data).read()
    assert set(stored["record_file"].map(lambda f: Path(f).name)) == {"trace-with-queue-database.json", "cut.json"}


def test_nothing_readable_is_an_input_error(tmp_path: Path, run_cli) -> None:
    bad = tmp_path / "x.json"
    bad.write_text('{"not": "traces"}')
    code, _, err = run_cli("collect", "traces", str(bad), "--data", str(tmp_path / "d"), "-q")
    assert code == 3 and "no span could be read" in err


def test_forced_format(oracles_dir: Path, tmp_path: Path, run_cli) -> None:
    path = oracles_dir / "data" / "jaeger-ui" / "flamegraph-testTrace.json"
    code, out, _ = run_cli("collect", "traces", str(path), "--format", "jaeger", "--data", str(tmp_path / "a"),
                           "-q", "-o", "json")
    assert code == 0 and json.loads(out)["rows"] == 1
    code, _, err = run_cli("collect", "traces", str(path), "--format", "zipkin", "--data", str(tmp_path / "b"), "-q")
    assert code == 3 and "no span could be read" in err
