"""Foundation pieces: the YAML writer, the requests-table contract, Envoy supervision, the kube interface."""

from __future__ import annotations

import urllib.request

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from analyzers import table
from meshctl.output import dump_yaml, dump_yaml_stream


@pytest.mark.parametrize(
    "value",
    ["x\nkind: Secret", "{{ 7*7 }}", "on", "yes", "NO", "0777", "1:20", "2001:db8::1", "%START_TIME%",
     "- item", "# not a comment", "a: b", "", " lead", "trail ", "---", "...", "null", "~", "1e3", ".inf",
     "'", '"', "|", ">", "*alias", "&anchor", "!tag", "@at", "`tick"],
)
def test_yaml_values_round_trip_as_strings(value):
    doc = {"metadata": {"name": "t"}, "value": value}
    text = dump_yaml_stream([doc])
    docs = list(yaml.safe_load_all(text))
    assert docs == [doc]


@given(st.text())
def test_yaml_never_injects(value):
    doc = {"a": value, "b": [value]}
    text = dump_yaml(doc)
    assert yaml.safe_load(text) == doc


def test_yaml_stream_comments_are_comments():
    text = dump_yaml_stream([{"a": 1}, {"b": 2}], comments=["apply with kubectl\nsecond line", None])
    assert text.startswith("---\n# apply with kubectl\n# second line\na: 1\n---\nb: 2\n")
    assert list(yaml.safe_load_all(text)) == [{"a": 1}, {"b": 2}]


def test_table_cells_are_text_not_markup():
    """A cell such as a rejected log line or a path in brackets is printed as it is (rich markup would
    swallow `[bold]` and raise on a closing tag like `[/tmp/x]`)."""
    import io

    from meshctl.output import print_table

    buf = io.StringIO()
    print_table(["file", "sample", "n"], [("a.log", "GET [/tmp/x] 200", 3), ("b.log", "[bold]x[/]", None)],
                file=buf, width=100)
    out = buf.getvalue()
    assert "GET [/tmp/x] 200" in out and "[bold]x[/]" in out


def test_requests_table_schema_round_trip():
    import pandas as pd

    df = table.conform_frame(pd.DataFrame({
        "timestamp": ["2026-01-01T00:00:00Z", "2026-01-01T00:00:01Z"],
        "duration_ms": [1.5, 2.0],
        "response_code": [200, 503],
        "response_flags": ["", "UF,URX"],
        "destination_service": ["reviews", None],
    }))
    assert list(df.columns) == table.COLUMN_NAMES
    assert df["response_flags"].isna().tolist() == [True, False]  # "" is not a value
    assert str(df["response_code"].dtype) == "Int32"
    assert str(df["timestamp"].dtype).startswith("datetime64[us, UTC]")
    arrow = table.conform_arrow(__import__("pyarrow").Table.from_pandas(df, preserve_index=False))
    assert arrow.schema.equals(table.arrow_schema(), check_metadata=False)


def test_requests_table_rejects_unknown_columns():
    import pyarrow as pa

    with pytest.raises(ValueError, match="not in the requests table"):
        table.conform_arrow(pa.table({"bogus": [1]}))


HTTP_BOOTSTRAP = {
    "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
    "static_resources": {"listeners": [{
        "name": "web",
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
        "filter_chains": [{"filters": [{
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                "stat_prefix": "web",
                "route_config": {"virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [
                    {"match": {"prefix": "/"}, "direct_response": {"status": 200, "body": {"inline_string": "ok"}}}]}]},
                "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}],
            },
        }]}],
    }]},
}


@pytest.mark.envoy
def test_envoy_validate_accepts_and_rejects(envoy_bin):
    from meshctl.envoy import validate_bootstrap

    assert validate_bootstrap(HTTP_BOOTSTRAP).ok
    import copy

    bad = copy.deepcopy(HTTP_BOOTSTRAP)
    bad["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]["stat_prefixx"] = "x"
    check = validate_bootstrap(bad)
    assert not check.ok
    assert "stat_prefixx" in check.message


@pytest.mark.envoy
def test_envoy_process_serves_and_stops(envoy_bin, tmp_path):
    from meshctl.envoy import _LIVE, EnvoyProcess

    with EnvoyProcess(HTTP_BOOTSTRAP, workdir=tmp_path, name="web") as envoy:
        port = envoy.listener_port("web")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
            assert r.read() == b"ok"
        proc = envoy.proc
    assert proc.poll() is not None
    assert envoy not in _LIVE


def test_kube_client_against_recorded_api(tmp_path):
    from meshctl.kube import ApiStatusError, KubernetesClient
    from tests.kubeapi import FakeKubeAPI, Reply, item_list, pod

    with FakeKubeAPI() as api:
        api.route("/api/v1/namespaces/shop/pods", Reply.json(item_list("PodList", [pod("web-1", "shop")])))
        api.route("/api/v1/namespaces/shop/pods/web-1/log", Reply.status_error(429),
                  Reply.text_chunks([b"line 1\n", b"line 2\n"]))
        client = KubernetesClient(kubeconfig=api.write_kubeconfig(tmp_path))
        pods = client.list_pods("shop", label_selector="app=web")
        assert [p["metadata"]["name"] for p in pods] == ["web-1"]
        assert api.requests[0][2]["labelSelector"] == ["app=web"]
        with pytest.raises(ApiStatusError) as exc:
            b"".join(client.stream_pod_log("shop", "web-1", "istio-proxy"))
        assert exc.value.status == 429
        assert b"".join(client.stream_pod_log("shop", "web-1", "istio-proxy")) == b"line 1\nline 2\n"
        assert all(method == "GET" for method, _, _ in api.requests)
