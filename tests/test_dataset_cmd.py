"""`meshctl dataset info|export|rejects`."""

from __future__ import annotations

import csv
import io
import json

import pyarrow.parquet as pq

from analyzers import table as rt


def collect(run_cli, tmp_path, oracles_dir) -> str:
    data = tmp_path / "d"
    bad = tmp_path / "mixed.log"
    good = (oracles_dir / "data/elastic-integrations/istio/test-access-logs.log").read_text()
    bad.write_text(good + "garbage here\n")
    code, _, err = run_cli("collect", "logs", str(bad), "--data", str(data), "-q")
    assert code == 0, err
    return str(data)


def test_info_json_has_rows_rejected_sources(tmp_path, oracles_dir, run_cli):
    data = collect(run_cli, tmp_path, oracles_dir)
    code, out, _ = run_cli("dataset", "info", "--data", data, "-o", "json")
    info = json.loads(out)
    assert code == 0 and info["rows"] == 8 and info["rejected"] == 1
    assert info["sources"][0]["rows"] == 8 and info["sources"][0]["rejected"] == 1
    assert info["time_range"][0].startswith("2022-07-20T09:52:24.955")
    code, out, _ = run_cli("dataset", "info", "--data", data, "-o", "yaml")
    assert code == 0 and "rows: 8" in out


def test_export_csv_jsonl_parquet(tmp_path, oracles_dir, run_cli):
    data = collect(run_cli, tmp_path, oracles_dir)
    code, out, _ = run_cli("dataset", "export", "--data", data, "-o", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and len(rows) == 8 and list(rows[0]) == rt.COLUMN_NAMES
    assert {r["timestamp"][-1] for r in rows} == {"Z"}
    assert any(r["request_id"] == "00bcf1d7-12c4-93b9-b36a-bc0faac8e428" for r in rows)
    code, out, _ = run_cli("dataset", "export", "--data", data, "-o", "jsonl", "--columns",
                           "timestamp,response_code,upstream_cluster")
    docs = [json.loads(x) for x in out.splitlines()]
    assert len(docs) == 8 and set(docs[0]) <= {"timestamp", "response_code", "upstream_cluster"}
    assert all(d["response_code"] == 200 for d in docs)
    target = tmp_path / "out.parquet"
    code, _, _ = run_cli("dataset", "export", "--data", data, "-o", "parquet", "--file", str(target))
    table = pq.read_table(target)
    assert code == 0 and table.num_rows == 8 and table.column_names == rt.COLUMN_NAMES
    code, out, _ = run_cli("dataset", "export", "--data", data, "-o", "jsonl", "--since", "2022-08-22T00:00:00Z")
    assert len(out.splitlines()) == 6  # the lines of 2022-08-22
    code, _, err = run_cli("dataset", "export", "--data", data, "--columns", "nope")
    assert code == 3 and "unknown requests-table columns" in err


def test_rejects_listing(tmp_path, oracles_dir, run_cli):
    data = collect(run_cli, tmp_path, oracles_dir)
    code, out, _ = run_cli("dataset", "rejects", "--data", data, "-o", "jsonl")
    (r,) = [json.loads(x) for x in out.splitlines()]
    assert code == 0 and r["line"] == 9 and r["sample"] == "garbage here"
    code, out, _ = run_cli("dataset", "rejects", "--data", data)
    assert code == 0 and "garbage here" in out


def test_missing_dataset_is_an_input_error(tmp_path, run_cli):
    code, _, err = run_cli("dataset", "info", "--data", str(tmp_path / "none"))
    assert code == 3 and "no requests table here yet" in err
