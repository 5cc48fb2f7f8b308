"""`meshctl collect logs` on files and stdin: summaries, JSON report, exit codes."""

from __future__ import annotations

import json


def test_collect_files_and_info(tmp_path, oracles_dir, run_cli):
    data = oracles_dir / "data"
    code, out, err = run_cli("collect", "logs", str(data / "elastic-integrations"), str(data / "istio-docs"),
                             "--data", str(tmp_path / "d"), "-q")
    assert code == 0, err
    assert "istio-text" in out and "envoy-text" in out and "rows stored" in out
    code, out, _ = run_cli("dataset", "info", "--data", str(tmp_path / "d"), "-o", "json")
    info = json.loads(out)
    assert info["rows"] == 43 and info["rejected"] == 0
    assert {s["format"] for s in info["sources"]} == {"istio-text", "istio-json", "envoy-text"}
    code, out, _ = run_cli("dataset", "info", "--data", str(tmp_path / "d"))
    assert code == 0 and "rows      43" in out


def test_collect_json_report_and_workload(tmp_path, oracles_dir, run_cli):
    src = str(oracles_dir / "data/istio-docs/access-log-task.excerpt.log")
    code, out, err = run_cli("collect", "logs", src, "--workload", "httpbin", "-n", "foo",
                             "--data", str(tmp_path / "d"), "-o", "json", "-q")
    assert code == 0, err
    doc = json.loads(out)
    assert (doc["rows"], doc["rejected"], doc["lines"]) == (2, 0, 2)
    assert doc["sources"][0]["format"] == "istio-text"


def test_collect_stdin_with_forced_format(tmp_path, oracles_dir, run_cli):
    text = (oracles_dir / "data/linkerd-docs/access-log-apache.excerpt.log").read_text()
    code, out, err = run_cli("collect", "logs", "-", "--format", "linkerd-apache", "--workload", "webapp",
                             "-n", "booksapp", "--data", str(tmp_path / "d"), "-o", "json", "-q", input=text)
    assert code == 0, err
    assert json.loads(out)["rows"] == 5


def test_collect_custom_format_string(tmp_path, run_cli):
    log = tmp_path / "custom.log"
    log.write_text("2024-03-01T10:00:00Z 200 12 web\n2024-03-01T10:00:01Z 503 30 web\n")
    code, out, err = run_cli("collect", "logs", str(log), "--log-format-string",
                             "%START_TIME% %RESPONSE_CODE% %DURATION% %REQ(:AUTHORITY)%",
                             "--data", str(tmp_path / "d"), "-o", "json", "-q")
    assert code == 0, err
    assert json.loads(out)["sources"][0]["format"] == "envoy-format"


def test_collect_exit_codes(tmp_path, run_cli):
    junk = tmp_path / "junk.log"
    junk.write_text("hello\nworld\n")
    code, out, err = run_cli("collect", "logs", str(junk), "--data", str(tmp_path / "d"), "-q")
    assert code == 3 and "no line could be read as an access log" in err
    assert "rejected" in out  # the summary still shows what happened
    code, _, err = run_cli("collect", "logs", str(tmp_path / "missing.log"), "--data", str(tmp_path / "d"))
    assert code == 3 and "no such file" in err
    code, _, err = run_cli("collect", "logs", str(junk), "--workload", "web", "--data", str(tmp_path / "d"))
    assert code == 3 and "--workload needs -n" in err
    code, _, err = run_cli("collect", "logs", "--data", str(tmp_path / "d"))
    assert code == 3
    code, _, err = run_cli("collect", "logs", str(junk), "--format", "envoy-format")
    assert code == 3 and "--log-format-string" in err
