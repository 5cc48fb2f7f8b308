"""The embedded Parquet store: append, dedup, windows, rejects, info."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

from analyzers import table as rt
from meshctl.parsers.base import Reject
from meshctl.store import Dataset, SourceSummary


def _rows(n: int, *, start: str = "2026-01-01T00:00:00Z", direction: str = "inbound", prefix: str = "r") -> pa.Table:
    df = rt.conform_frame(pd.DataFrame({
        "timestamp": pd.date_range(start, periods=n, freq="1s", tz="UTC"),
        "duration_ms": [10.0] * n,
        "response_code": [200] * n,
        "request_id": [f"{prefix}{i}" for i in range(n)],
        "direction": [direction] * n,
        "record_kind": ["access_log"] * n,
    }))
    return pa.Table.from_pandas(df, preserve_index=False)


def test_append_dedups_same_rows_but_keeps_both_sides(tmp_path):
    ds = Dataset(tmp_path / "data")
    r1 = ds.append([_rows(10)], sources=[SourceSummary("a.log", "istio-json", rows=10)])
    assert (r1.rows, r1.duplicates) == (10, 0)
    r2 = ds.append([_rows(10)])  # the same log again
    assert (r2.rows, r2.duplicates) == (0, 10)
    r3 = ds.append([_rows(10, direction="outbound")])  # the client side of the same requests
    assert (r3.rows, r3.duplicates) == (10, 0)
    df = ds.read()
    assert len(df) == 20
    assert list(df.columns) == rt.COLUMN_NAMES


def test_window_is_anchored_at_newest_row(tmp_path):
    ds = Dataset(tmp_path)
    ds.append([_rows(600)])  # 10 minutes of data, one row per second
    assert len(ds.read_window("1m")) == 61  # [max-60s, max]
    assert len(ds.read_window("2026-01-01T00:00:00Z", "2026-01-01T00:00:10Z")) == 10


def test_rejects_and_info(tmp_path):
    ds = Dataset(tmp_path)
    ds.append([_rows(3)], rejects=[Reject.of("x.log", 7, "truncated JSON", b'{"a":')],
              sources=[SourceSummary("x.log", "istio-json", rows=3, rejected=1)])
    info = ds.info()
    assert info["rows"] == 3 and info["rejected"] == 1
    assert info["sources"][0]["source"] == "x.log"
    assert list(ds.iter_rejects()) == [{"file": "x.log", "line": 7, "reason": "truncated JSON", "field": None,
                                        "sample": '{"a":'}]
