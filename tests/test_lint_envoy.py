"""What meshctl lint claims about Envoy, checked against the real Envoy (`envoy --mode validate`).

- every %OPERATOR% in meshctl.lint.envoyformat's table is accepted, and the format checker agrees with
  Envoy on accepted and rejected format strings;
- an OTLP/HTTP tracer without a timeout (MSH0106) and a negative sampling percentage (MSH0202) are
  rejected, with and without the mistake;
- access-log CEL filters the lexical check calls malformed (MSH0305) are rejected, well-formed ones
  accepted.
"""

from __future__ import annotations

from typing import Any

import pytest

from meshctl.envoy import validate_bootstrap
from meshctl.lint import envoyformat
from meshctl.lint.rules.access_log_filter import cel_problem

pytestmark = pytest.mark.envoy

HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
ROUTER = {"name": "envoy.filters.http.router",
          "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}


def _bootstrap(*, access_log: list[dict] | None = None, tracing: dict | None = None) -> dict[str, Any]:
    hcm: dict[str, Any] = {"@type": HCM, "stat_prefix": "lint", "route_config": {"name": "r"}, "http_filters": [ROUTER]}
    if access_log:
        hcm["access_log"] = access_log
    if tracing:
        hcm["tracing"] = tracing
    return {"static_resources": {
        "listeners": [{"name": "l", "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
                       "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                                                       "typed_config": hcm}]}]}],
        "clusters": [{"name": "otel", "type": "STATIC", "connect_timeout": "1s",
                      "load_assignment": {"cluster_name": "otel", "endpoints": [{"lb_endpoints": [{"endpoint": {
                          "address": {"socket_address": {"address": "127.0.0.1", "port_value": 4318}}}}]}]}}]}}


def _file_log(fmt: str, filter_expr: str | None = None) -> list[dict]:
    log: dict[str, Any] = {"name": "envoy.access_loggers.file", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog", "path": "/dev/null",
        "log_format": {"text_format_source": {"inline_string": fmt}, "formatters": [
            # Istio adds this formatter when a format uses %REQ_WITHOUT_QUERY%.
            {"name": "envoy.formatter.req_without_query", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.formatter.req_without_query.v3.ReqWithoutQuery"}}]}}}
    if filter_expr is not None:
        log["filter"] = {"extension_filter": {"name": "envoy.access_loggers.extension_filters.cel", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter",
            "expression": filter_expr}}}
    return [log]


SAMPLE_ARGS = {
    "CEL": "request.path", "CLUSTER_METADATA": "istio:x", "COMMON_DURATION": "start:end:ms",
    "DYNAMIC_METADATA": "istio.mixer:x", "ENVIRONMENT": "HOME", "FILTER_STATE": "io.istio.peer_principal:PLAIN",
    "METADATA": "ROUTE:istio", "QUERY_PARAM": "q", "REQ": ":PATH", "REQUEST_HEADER": "x-request-id",
    "RESP": "content-type", "RESPONSE_HEADER": "content-type", "RESPONSE_TRAILER": "grpc-status",
    "STREAM_INFO_REQ": "x-request-id", "TRAILER": "grpc-status", "UPSTREAM_FILTER_STATE": "k",
    "UPSTREAM_METADATA": "istio:x", "REQ_WITHOUT_QUERY": ":PATH",
}


def test_every_operator_in_the_table_is_accepted_by_envoy(envoy_bin):
    assert set(SAMPLE_ARGS) == envoyformat.REQUIRED_ARGS
    parts = [f"%{n}%" for n in sorted(envoyformat.NO_ARGS | envoyformat.OPTIONAL_ARGS)]
    parts += [f"%{n}({a})%" for n, a in sorted(SAMPLE_ARGS.items())]
    parts += ["%START_TIME(%s.%3f)%", "%GRPC_STATUS(NUMBER)%", "%REQ(:AUTHORITY):10%", "100%% done"]
    fmt = " ".join(parts)
    assert envoyformat.check_format(fmt) == []
    check = validate_bootstrap(_bootstrap(access_log=_file_log(fmt)))
    assert check.ok, check.message


FORMATS = [
    "[%START_TIME%] %REQ(:METHOD)% %RESPONSE_CODE% %UPSTREAM_CLUSTER_RAW%\n",
    "%RESPONSE_FLAGZ%",
    "%REQ%",
    "%PROTOCOL(x)%",
    "%DURATION%:5",
    "50% done",
    "%lower%",
    "%FILTER_STATE(k:BINARY)%",
    "%GRPC_STATUS(LOUD)%",
    "%DYNAMIC_METADATA(envoy.lb)% %%",
    "%UPSTREAM_HOST",
]


@pytest.mark.parametrize("fmt", FORMATS)
def test_format_checker_agrees_with_envoy(envoy_bin, fmt):
    ours = envoyformat.check_format(fmt)
    check = validate_bootstrap(_bootstrap(access_log=_file_log(fmt)))
    assert check.ok == (ours == []), (fmt, ours, check.message)


def _otel_tracer(http_uri: dict) -> dict:
    return {"provider": {"name": "envoy.tracers.opentelemetry", "typed_config": {
        "@type": "type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig", "service_name": "lint",
        "http_service": {"http_uri": http_uri}}}}


def test_otlp_http_without_timeout_is_rejected(envoy_bin):
    """MSH0106: istiod copies http.timeout (unset) into HttpUri.timeout, which Envoy requires."""
    uri = {"uri": "otel.observability.svc.cluster.local:4318/v1/traces", "cluster": "otel"}
    check = validate_bootstrap(_bootstrap(tracing=_otel_tracer(uri)))
    assert not check.ok and "Timeout" in check.message
    assert validate_bootstrap(_bootstrap(tracing=_otel_tracer({**uri, "timeout": "10s"}))).ok


def test_negative_sampling_is_rejected(envoy_bin):
    """MSH0202: a negative defaultConfig.tracing.sampling reaches Envoy's random_sampling."""
    tracer = _otel_tracer({"uri": "otel:4318/v1/traces", "cluster": "otel", "timeout": "1s"})
    bad = validate_bootstrap(_bootstrap(tracing={**tracer, "random_sampling": {"value": -5}}))
    assert not bad.ok
    assert validate_bootstrap(_bootstrap(tracing={**tracer, "random_sampling": {"value": 5}})).ok


CEL = [
    "response.code >= 400",
    "response.code >= 400 || xds.cluster_name == 'BlackHoleCluster'",
    "response.code >= 400 && (request.headers['x-debug'] == 'true'",
    "request.useragent.startsWith(\"kube-probe)",
    "!(request.useragent.startsWith('kube-probe'))",
    "request.headers['x'] == 'a]'",
]


@pytest.mark.parametrize("expr", CEL)
def test_cel_check_agrees_with_envoy(envoy_bin, expr):
    ours = cel_problem(expr)
    check = validate_bootstrap(_bootstrap(access_log=_file_log("%RESPONSE_CODE%", filter_expr=expr)))
    assert check.ok == (ours is None), (expr, ours, check.message)
