"""Route templates (analyzers.routes): the rules the route-tagger Wasm plugin shares."""

from __future__ import annotations

import pandas as pd
import pytest

from analyzers.routes import route_template, route_templates


@pytest.mark.parametrize(("path", "expected"), [
    ("/reviews/123", "/reviews/{id}"),
    ("/api/v1/users/550e8400-e29b-41d4-a716-446655440000/orders?x=1", "/api/v1/users/{uuid}/orders"),
    ("/blob/deadbeefdeadbeef00", "/blob/{hex}"),
    ("/blob/deadbeef", "/blob/deadbeef"),
    ("/t/abcdefghijklmnopqrstuvw1xyz", "/t/abcdefghijklmnopqrstuvw1xyz"),  # one digit: a word
    ("/t/AbC123xYz987QwE456", "/t/{token}"),
    ("/t/abcdefghijklmnopqrstuvwxyz", "/t/abcdefghijklmnopqrstuvwxyz"),
    ("/blob/9f86d081884c7d659a2feaa0c55ad015", "/blob/{uuid}"),  # a dashless uuid
    ("/day/2026-01-02", "/day/{date}"),
    ("/day/2026-01-02T10:00:00Z", "/day/{date}"),
    ("/productpage", "/productpage"),
    ("/reviews.v1.Reviews/Get", "/reviews.v1.Reviews/Get"),
    ("/frag#12/34", "/frag"),
    ("", "/"),
    ("/a/b/c/d/e/f/g/h/i/j", "/a/b/c/d/e/f/g/h/{...}"),
    ("/a/b/c/d/e/f/g/h/", "/a/b/c/d/e/f/g/h/"),
    (None, None),
])
def test_route_template_rules(path, expected):
    assert route_template(path) == expected


def test_route_templates_vectorized_keeps_nulls_and_index():
    s = pd.Series(["/a/1", None, "/a/2", "/b"], index=[10, 11, 12, 13], dtype="string")
    out = route_templates(s)
    assert out.index.tolist() == [10, 11, 12, 13]
    assert out.tolist()[0] == "/a/{id}" and out.isna().tolist() == [False, True, False, False]
