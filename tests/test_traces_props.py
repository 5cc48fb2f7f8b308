"""Property tests: trace parsers on mutated real trace files never crash and account for every span."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshctl.parsers.traces import parse_trace_bytes, trace_rows

FILES = ["zipkin/ascend.json", "zipkin/messaging-kafka.json", "tempo/trace-with-virtual-nodes.json",
         "jaeger-ui/flamegraph-testTrace.json", "otel-proto/trace.json"]
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def blobs(oracles_dir: Path) -> dict[str, bytes]:
    return {f: (oracles_dir / "data" / f).read_bytes() for f in FILES}


def _span_lists(doc, name: str) -> list[list]:
    """The lists that hold spans in each format (so a mutation can target one span)."""
    if name.startswith("zipkin"):
        return [doc]
    if name.startswith("jaeger"):
        return [doc["data"]["spans"]]
    return [ss["spans"] for rs in doc["resourceSpans"] for ss in rs["scopeSpans"]]


WRONG = st.one_of(st.none(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20), st.booleans(),
                  st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(), max_size=2))


@SETTINGS
@given(name=st.sampled_from(FILES), cut=st.floats(0.0, 1.0))
def test_truncated_files_never_crash(blobs, name: str, cut: float) -> None:
    blob = blobs[name]
    res = parse_trace_bytes(blob[: int(len(blob) * cut)], file=name)
    total = parse_trace_bytes(blob, file=name).count
    assert res.count <= total
    assert res.count <= res.records
    trace_rows(res)  # pairing whatever was kept never fails


@SETTINGS
@given(name=st.sampled_from(FILES), data=st.data())
def test_a_wrong_field_costs_at_most_its_span(blobs, name: str, data) -> None:
    doc = json.loads(blobs[name])
    lists = _span_lists(doc, name)
    total = sum(len(x) for x in lists)
    target = data.draw(st.sampled_from([x for x in lists if x]))
    i = data.draw(st.integers(0, len(target) - 1))
    span = copy.deepcopy(target[i])
    key = data.draw(st.sampled_from(sorted(span)))
    span[key] = data.draw(WRONG)
    target[i] = span
    res = parse_trace_bytes(json.dumps(doc).encode(), file=name, fmt="auto")
    assert res.records == total
    assert res.count + len(res.rejects) == total
    assert res.count >= total - 1
    for r in res.rejects:
        assert r.file == name and r.line >= 1 and r.reason
    trace_rows(res)


@SETTINGS
@given(blob=st.binary(max_size=2048))
def test_arbitrary_bytes(blob: bytes) -> None:
    res = parse_trace_bytes(blob, file="x")
    assert res.count == 0 or res.format is not None
    trace_rows(res)
