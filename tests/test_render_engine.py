"""The template engine: values are data (one quoted scalar each), templates are sandboxed and strict."""

from __future__ import annotations

import dataclasses
import math

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from meshctl.output import dump_yaml_stream
from meshctl.render.engine import Engine, TemplateError, check_template_source, encode_node
from meshctl.render.istio import build_context, effective_values

json_scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.text() | st.floats(allow_nan=False, allow_infinity=False)
json_values = st.recursive(json_scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(), c, max_size=4), max_leaves=12)


@given(json_values)
def test_encode_node_round_trips(value):
    assert yaml.safe_load(encode_node(value)) == value


@pytest.mark.parametrize("value", ["x\nkind: Secret", "{{ 7*7 }}", "---\napiVersion: v1", "a: b", "- item", "*alias",
                                   "&anchor x", "!!python/object:os.system", "%START_TIME%", "on", "1e3", "0x10",
                                   "\u2028line", "\x85nel", "tab\there", "quote\"back\\slash", "\ud800"])
def test_encode_node_tricky_strings(value):
    assert yaml.safe_load(encode_node(value)) == value


def test_encode_node_floats_stay_floats():
    for f in (1e-07, 1e16, 5.0, 0.1, -2.5e-300):
        out = yaml.safe_load(encode_node(f))
        assert isinstance(out, float) and math.isclose(out, f)
    with pytest.raises(TemplateError):
        encode_node(float("nan"))


def _engine(tmp_path, name, text):
    (tmp_path / name).write_text(text)
    return Engine([tmp_path])


def test_values_cannot_add_keys_or_documents(tmp_path):
    eng = _engine(tmp_path, "t.yaml.j2", "a: {{ v }}\nb:\n- {{ v }}\n{{ v }}: 1\n")
    for evil in ["x\nkind: Secret", "{{ 7*7 }}", "y\n---\nkind: Secret", "} , c: {"]:
        docs = eng.render("t.yaml.j2", {"v": evil})
        assert docs == [{"a": evil, "b": [evil], evil: 1}]


def test_expression_is_never_evaluated_twice(tmp_path):
    eng = _engine(tmp_path, "t.yaml.j2", "a: {{ v }}\n")
    assert eng.render("t.yaml.j2", {"v": "{{ 7*7 }}"}) == [{"a": "{{ 7*7 }}"}]
    assert eng.render("t.yaml.j2", {"v": "{% raw %}x"}) == [{"a": "{% raw %}x"}]


def test_strict_undefined(tmp_path):
    eng = _engine(tmp_path, "t.yaml.j2", "a: {{ missing }}\n")
    with pytest.raises(TemplateError, match="missing"):
        eng.render("t.yaml.j2", {})


def test_sandbox_blocks_unsafe_attributes(tmp_path):
    eng = _engine(tmp_path, "t.yaml.j2", "a: {{ v.__class__.__mro__ }}\n")
    with pytest.raises(TemplateError, match="unsafe"):
        eng.render("t.yaml.j2", {"v": "x"})


@pytest.mark.parametrize("line", ['a: "{{ v }}"', "a: otel-{{ v }}", "a: {{ v }}-x", "a: '{{ v }}'"])
def test_glued_expressions_are_rejected(line):
    with pytest.raises(TemplateError, match="whole YAML node"):
        check_template_source(line + "\n", "t.yaml.j2")


def test_expression_in_block_scalar_is_rejected():
    with pytest.raises(TemplateError, match="block scalar"):
        check_template_source("a: |\n  text {{ v }}\nb: 1\n", "t.yaml.j2")


def test_accepted_template_forms():
    check_template_source("a: {{ v }}\n- {{ v }}\n{{ k }}: {{ v }}\nb: [{{ v }}, {{ w }}]\nc: {x: {{ v }}}\n", "t")


def test_shipped_templates_pass_the_source_check():
    from meshctl.render.engine import templates_dirs

    files = [p for d in templates_dirs() for p in d.rglob("*.j2")]
    assert len(files) >= 10
    for p in files:
        check_template_source(p.read_text(), str(p))


# ---- every string slot of the Istio templates, with arbitrary text --------------------------------

SENTINEL = "SENTINELvalue"
CONTROL_KEYS = {"kind", "protocol", "mode", "mesh_config_format", "version", "api_version"}


def _replace(obj, new):
    if isinstance(obj, str):
        return obj.replace(SENTINEL, new)
    if isinstance(obj, dict):
        return {_replace(k, new): _replace(v, new) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_replace(v, new) for v in obj]
    return obj


def _fill(obj, value, key=None):
    """Every data string in a template context -> `value` (control switches kept)."""
    if isinstance(obj, str):
        return obj if key in CONTROL_KEYS else value
    if isinstance(obj, dict):
        return {(_fill(k, value) if isinstance(k, str) and not k.isidentifier() else k): _fill(v, value, k) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_fill(v, value, key) for v in obj]
    if dataclasses.is_dataclass(obj):
        return {"service": value, "host": value, "port": obj.port}
    return obj


ISTIO_VALUES = [
    {"sampling": 5, "customTags": {"t": {"literal": "x"}, "h": {"header": "x-h"}}, "accessLogFilter": "true"},
    {"protocol": "http", "headers": {"k": "v"}, "resourceDetectors": ["environment"], "meshConfigFormat": "helm"},
    {"namespace": "shop", "selector": {"app": "x"}, "mode": "envoyfilter", "serviceName": "s",
     "customTags": {"e": {"environment": {"name": "E", "defaultValue": "d"}}}, "accessLogFilter": "x"},
    {"mode": "envoyfilter", "accessLog": "file-json", "protocol": "http", "headers": {"a": "b"}},
    {"mode": "envoyfilter", "accessLog": "file-text"},
]
TEMPLATES = ["istio/telemetry.yaml.j2", "istio/mesh-config.yaml.j2", "istio/envoyfilter-tracing.yaml.j2",
             "istio/envoyfilter-accesslog.yaml.j2"]


def _contexts():
    out = []
    for vals in ISTIO_VALUES:
        ctx = build_context(effective_values(vals))
        c = ctx["collector"]
        extra = {"cluster": {"name": "c", "host": c.host, "port": c.port, "http2": True}, "cluster_contexts": ["GATEWAY"],
                 "priority": None, "sampling": 1.0, "max_tag_length": None, "custom_tags": [{"tag": "t", "literal": {"value": "v"}}],
                 "http_uri": "http://h/v1", "timeout": "5s", "headers": [{"name": "n", "value": "v"}],
                 "resource_detectors": ["environment"], "authority": "a", "log_name": "l", "text_format": "t",
                 "log_labels": {"k": "v"}, "filter": "f", "kind": (ctx["access_log"] or {}).get("kind", "otlp")}
        out.append({**extra, **ctx})
    return out


CONTEXTS = _contexts()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(min_size=1), st.sampled_from(range(len(CONTEXTS))), st.sampled_from(TEMPLATES))
def test_any_string_in_any_slot_is_one_scalar(value, ci, template):
    assume(SENTINEL not in value)
    eng = Engine()
    base = _fill(CONTEXTS[ci], SENTINEL)
    try:
        expected = eng.render(template, base)
    except TemplateError:
        return  # a combination the template does not support (e.g. missing keys for this mode)
    got = eng.render(template, _fill(CONTEXTS[ci], value))
    assert got == _replace(expected, value)
    # and the YAML meshctl prints parses back to the same documents
    assert list(yaml.safe_load_all(dump_yaml_stream(got))) == got


@pytest.mark.parametrize("value", ["0\x850", "a\u2028b", "x\ry", "p\u2029", "\x85"])
def test_printed_yaml_keeps_unusual_line_breaks(value):
    # meshctl.output used to print these plain or single-quoted, where YAML folds the break into a space.
    doc = {"spec": {"value": value, "list": [value]}}
    assert list(yaml.safe_load_all(dump_yaml_stream([doc]))) == [doc]
