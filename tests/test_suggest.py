"""Suggestions on generated traffic with known truth, evidence, --current parsing."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from analyzers.suggest import SuggestConfig, analyze
from analyzers.suggest.limits import ConfigProblem, parse_documents
from analyzers.suggest.synthetic import ServiceTraffic, generate
from analyzers.table import conform_frame
from meshctl.output import dump_json


@pytest.fixture(scope="module")
def steady():
    # 100 rps, 50 ms median latency, 3 hosts, two calling workloads with two pods each
    return generate([ServiceTraffic(rps=100, seconds=60, latency_ms=50, hosts=3,
                                    callers=["productpage", "web"], caller_pods=2)])


@pytest.fixture(scope="module")
def one_failing():
    return generate([ServiceTraffic(service="ratings", rps=80, seconds=40, hosts=4, failing_hosts={2: 1.0})])


def setting(s, name):
    found = s.setting(name)
    assert found is not None, f"no {name} in {[x.field for x in s.settings]}"
    return found.value


def test_steady_service_limits_above_peak_and_replay_rejects_nothing(steady):
    res = analyze("circuit-breaker", steady, SuggestConfig(headroom=2.0))
    (s,) = res.suggestions
    f = s.figures
    assert 95 <= f["rps_mean"] <= 101 and f["rps_peak"] <= 110
    assert 45 <= f["latency"]["p50_ms"] <= 55
    # in-flight of one calling proxy: ~25 rps × 50 ms ≈ 1.3 on average, a few at peak
    assert 1 <= f["inflight_peak"] <= 10
    assert f["littles_law_mean"] == pytest.approx(f["rps_mean"] * f["latency"]["mean_ms"] / 1000)
    max_conn = setting(s, "connectionPool.tcp.maxConnections")
    assert max_conn == int(-(-2 * f["inflight_peak"] // 1)) > f["inflight_peak"]
    assert setting(s, "connectionPool.http.http2MaxRequests") == max_conn
    assert setting(s, "connectionPool.http.http1MaxPendingRequests") >= max_conn
    assert setting(s, "outlierDetection.consecutive5xxErrors") == 5  # no errors: Envoy's default floor
    rep = s.replay["suggested"]
    assert rep.requests == len(steady)
    assert (rep.rejected_overflow, rep.queued, rep.ejections, rep.sent_to_ejected) == (0, 0, 0, 0)

    rl = analyze("rate-limit", steady, SuggestConfig(headroom=2.0))
    (r,) = rl.suggestions
    assert r.limits.rate >= 2 * r.figures["instance_rps_p99"]
    assert r.limits.max_tokens >= r.limits.tokens_per_fill
    assert r.replay["suggested"].rate_limited == 0


def test_headroom_one_is_tight_and_still_passes_the_recording(steady):
    (s,) = analyze("circuit-breaker", steady, SuggestConfig(headroom=1.0)).suggestions
    assert setting(s, "connectionPool.tcp.maxConnections") == s.figures["inflight_peak"]
    assert s.replay["suggested"].rejected_overflow == 0
    (r,) = analyze("rate-limit", steady, SuggestConfig(headroom=1.0)).suggestions
    assert r.replay["suggested"].rate_limited == 0  # the bucket depth covers the recorded bursts exactly


def test_failing_host_is_ejected_in_the_replay(one_failing):
    (s,) = analyze("circuit-breaker", one_failing).suggestions
    hosts = {h["host"]: h for h in s.figures["host_figures"]}
    bad = [h for h in hosts.values() if h["failing"]]
    assert len(bad) == 1 and bad[0]["errors_5xx"] == bad[0]["requests"] == 800
    assert any(m.code == "SG004" for m in s.messages)
    assert setting(s, "outlierDetection.consecutive5xxErrors") == 5
    assert setting(s, "outlierDetection.maxEjectionPercent") >= 25  # enough to eject 1 of 4
    rep = s.replay["suggested"]
    assert rep.ejections >= 1
    ejected = {d["host"] for d in rep.details if "ejected_at" in d}
    assert ejected == {bad[0]["host"]}
    # all but the first 5 errors (and those around the re-admission sweeps) are avoided
    assert rep.errors_avoided >= 0.9 * 800 and rep.sent_to_ejected == rep.errors_avoided
    assert rep.no_healthy_upstream == 0


def test_healthy_bursts_raise_the_threshold_and_are_not_ejected():
    df = generate([ServiceTraffic(service="cart", rps=60, seconds=30, hosts=3)])
    # host 0 answers 7 consecutive 500s twice: a healthy host's burst (its error rate stays low)
    codes = df["response_code"].to_numpy().copy()
    h0 = (df["upstream_host"] == df["upstream_host"].iloc[0]).to_numpy()
    idx = [i for i in range(len(df)) if h0[i]]
    for start in (30, 300):
        for i in idx[start:start + 7]:
            codes[i] = 500
    df["response_code"] = pd.array(codes, dtype="Int32")
    (s,) = analyze("circuit-breaker", df).suggestions
    assert setting(s, "outlierDetection.consecutive5xxErrors") == 8
    assert setting(s, "outlierDetection.consecutiveGatewayErrors") == 5  # 500s are not gateway errors
    assert any(m.code == "SG005" for m in s.messages)
    assert s.replay["suggested"].ejections == 0


def test_evidence_on_every_setting_and_json_round_trip(steady, one_failing):
    both = pd.concat([steady, one_failing], ignore_index=True)
    for kind in ("circuit-breaker", "rate-limit", "sidecar"):
        res = analyze(kind, both)
        assert res.suggestions
        for s in res.suggestions:
            for st in s.settings:
                assert st.rule
                if st.field not in ("outlierDetection.baseEjectionTime", "token_bucket.fill_interval"):
                    assert st.evidence, (kind, st.field)
        data = json.loads(dump_json(res.to_dict()))
        assert data["kind"] == kind and data["suggestions"][0]["settings"]


def test_one_perspective_per_request():
    out = generate([ServiceTraffic(rps=50, seconds=20)])
    inbound = out.copy()
    inbound["direction"] = "inbound"
    both = pd.concat([out, inbound], ignore_index=True)
    (a,) = analyze("circuit-breaker", out).suggestions
    (b,) = analyze("circuit-breaker", both).suggestions
    assert a.figures["requests"] == b.figures["requests"] == len(out)
    (r,) = analyze("rate-limit", both).suggestions  # the serving side for the rate limit
    assert r.figures["requests"] == len(out)


def test_subset_from_upstream_cluster():
    df = generate([ServiceTraffic(service="reviews", version="v1", rps=30, seconds=20),
                   ServiceTraffic(service="reviews", version="v2", rps=10, seconds=20)])
    res = analyze("circuit-breaker", df)
    subsets = sorted((s.target.subset, s.target.version) for s in res.suggestions)
    assert subsets == [("v1", "v1"), ("v2", "v2")]


def test_sidecar_lists_called_services_and_warns_on_rare_ones():
    df = generate([ServiceTraffic(service="reviews", callers=["productpage"], rps=20, seconds=30),
                   ServiceTraffic(service="ratings", callers=["reviews"], rps=5, seconds=30),
                   ServiceTraffic(service="details", callers=["productpage"], rps=0.1, seconds=30)])
    res = analyze("sidecar", df)
    by = {s.target.workload: s for s in res.suggestions}
    assert set(by) == {"productpage", "reviews"}
    assert by["productpage"].limits == ["istio-system/*", "shop/details.shop.svc.cluster.local",
                                        "shop/reviews.shop.svc.cluster.local"]
    assert by["reviews"].limits == ["istio-system/*", "shop/ratings.shop.svc.cluster.local"]
    rare = [m for m in by["productpage"].messages if m.code == "SG010"]
    assert len(rare) == 1 and "details" in rare[0].text
    assert by["productpage"].replay["suggested"].outside_scope == 0
    ns = analyze("sidecar", df, SuggestConfig(by="namespace")).suggestions
    assert len(ns) == 1 and ns[0].target.workload is None and len(ns[0].limits) == 4


def test_current_sidecar_replay_counts_calls_outside_scope():
    df = generate([ServiceTraffic(service="reviews", callers=["productpage"], rps=20, seconds=10),
                   ServiceTraffic(service="details", callers=["productpage"], rps=5, seconds=10)])
    cur = parse_documents([{"apiVersion": "networking.istio.io/v1", "kind": "Sidecar",
                            "metadata": {"name": "default", "namespace": "shop"},
                            "spec": {"egress": [{"hosts": ["./reviews.shop.svc.cluster.local", "istio-system/*"]}]}}],
                          "sidecar.yaml")
    (s,) = analyze("sidecar", df, current=[cur]).suggestions
    (label,) = [k for k in s.replay if k.startswith("current")]
    assert s.replay[label].outside_scope == 50


def test_current_destination_rule_from_the_istio_docs(oracles_dir, steady):
    path = oracles_dir / "configs/istio/docs/circuit-breaking.doc.destinationrule.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["spec"]["host"] = "reviews"  # the task's httpbin rule, pointed at our generated service
    doc["metadata"]["namespace"] = "shop"
    cur = parse_documents([doc], path.name)
    dr = cur.destination_rules[0]
    assert dr.policy.connection_pool.max_connections == 1
    assert dr.policy.outlier_detection.consecutive_gateway == 1  # deprecated consecutiveErrors
    (s,) = analyze("circuit-breaker", steady, current=[cur]).suggestions
    current = next(v for k, v in s.replay.items() if k.startswith("current"))
    # maxConnections 1 + 1 pending per calling proxy: overlapping requests are rejected
    assert current.rejected_overflow > 0
    assert s.replay["suggested"].rejected_overflow == 0


def test_current_envoyfilter_docs_misplaced_listener_is_reported(oracles_dir, steady):
    path = oracles_dir / "configs/istio/docs/local-ratelimit.doc-listener-misplaced.envoyfilter.yaml"
    cur = parse_documents([yaml.safe_load(path.read_text())], path.name)
    assert cur.problems and "listener" in cur.problems[0]
    rl = cur.rate_limits[0]
    assert (rl.bucket.max_tokens, rl.bucket.tokens_per_fill, rl.bucket.fill_interval_s) == (10, 10, 60.0)
    df = steady.copy()
    df["destination_app"] = "productpage"
    res = analyze("rate-limit", df, current=[cur])
    assert any(m.code == "SG017" for m in res.messages)
    (s,) = res.suggestions
    current = next(v for k, v in s.replay.items() if k.startswith("current"))
    # 10 tokens per minute on each instance: nearly everything is limited
    assert current.rate_limited > 0.9 * current.requests


def test_current_per_route_envoyfilter(oracles_dir):
    path = oracles_dir / "configs/istio/repo/tests/integration/telemetry/policy/testdata/enable_envoy_local_ratelimit_per_route.yaml"
    cur = parse_documents([yaml.safe_load(path.read_text())], path.name)
    rl = cur.rate_limits[0]
    assert rl.bucket is None and rl.bucket_for("anything").max_tokens == 1


@pytest.mark.parametrize(("doc", "field"), [
    ({"kind": "DestinationRule", "spec": {}}, "spec.host"),
    ({"kind": "DestinationRule", "spec": {"host": "a", "trafficPolicy": {"connectionPool": {"tcp": {"maxConnections": "x"}}}}},
     "spec.trafficPolicy.connectionPool.tcp.maxConnections"),
    ({"kind": "DestinationRule", "spec": {"host": "a", "trafficPolicy": {"outlierDetection": {"interval": "soon"}}}},
     "spec.trafficPolicy.outlierDetection.interval"),
    ({"kind": "EnvoyFilter", "spec": {"configPatches": [{"applyTo": "HTTP_FILTER", "patch": {"value": {
        "name": "envoy.filters.http.local_ratelimit", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
            "token_bucket": {"max_tokens": 5}}}}}]}},
     "spec.configPatches[0].patch.value.typed_config.token_bucket.fill_interval"),
    # a value of the wrong shape is a problem at its field, not a crash
    ({"kind": "DestinationRule", "spec": {"host": "a", "trafficPolicy": {"connectionPool": "x"}}},
     "spec.trafficPolicy.connectionPool"),
    ({"kind": "DestinationRule", "spec": {"host": "a", "trafficPolicy": {"connectionPool": {"http": [1]}}}},
     "spec.trafficPolicy.connectionPool.http"),
    ({"kind": "DestinationRule", "spec": {"host": "a", "trafficPolicy": {"outlierDetection": [1]}}},
     "spec.trafficPolicy.outlierDetection"),
    ({"kind": "DestinationRule", "spec": {"host": "a", "subsets": [{"name": "v1", "labels": ["x"]}]}},
     "spec.subsets[0].labels"),
    ({"kind": "EnvoyFilter", "spec": ["x"]}, "spec"),
    ({"kind": "EnvoyFilter", "spec": {"configPatches": [{"patch": "x"}]}}, "spec.configPatches[0].patch"),
    ({"kind": "EnvoyFilter", "spec": {"configPatches": [{"applyTo": "HTTP_ROUTE", "match": {
        "routeConfiguration": {"vhost": "x"}}, "patch": {"value": {"typed_per_filter_config": {
            "envoy.filters.http.local_ratelimit": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
                "token_bucket": {"max_tokens": 1, "fill_interval": "1s"}}}}}}]}},
     "spec.configPatches[0].match.routeConfiguration.vhost"),
    ({"kind": "Sidecar", "spec": {"workloadSelector": {"labels": ["app=a"]}}}, "spec.workloadSelector.labels"),
    ({"kind": "List", "items": [{"kind": "Sidecar"}, {"kind": "Sidecar", "metadata": ["x"]}]}, "items[1].metadata"),
])
def test_bad_current_config_names_the_field(doc, field):
    with pytest.raises(ConfigProblem) as e:
        parse_documents([{"apiVersion": "x/v1", "metadata": {"name": "n"}, **doc}], "f.yaml")
    assert e.value.field == field


def test_bad_config_values():
    df = generate([ServiceTraffic(rps=5, seconds=5)])
    with pytest.raises(ValueError, match="headroom"):
        analyze("circuit-breaker", df, SuggestConfig(headroom=0.5))
    with pytest.raises(ValueError, match="unknown suggestion kind"):
        analyze("retry", df)


def test_rows_without_service_and_weak_data_are_flagged():
    df = conform_frame(pd.DataFrame({"timestamp": pd.to_datetime(["2026-01-01T00:00:00Z"] * 3),
                                     "duration_ms": [1.0, 2.0, 3.0],
                                     "destination_service": [None, "a", "a"], "response_code": [200] * 3}))
    res = analyze("circuit-breaker", df)
    assert [m.code for m in res.messages] == ["SG014"]
    (s,) = res.suggestions
    assert "SG001" in [m.code for m in s.messages]


def test_inbound_rows_never_make_the_callee_a_caller():
    # The frontend's own sidecar logged requests from an unknown caller (an ingress it has no identity
    # for): that is traffic *into* frontend, not a call frontend makes.
    inbound = generate([ServiceTraffic(service="frontend", callers=["gateway"], rps=10, seconds=20,
                                       direction="inbound")])
    inbound["source_workload"] = None
    inbound["source_namespace"] = None
    outbound = generate([ServiceTraffic(service="reviews", callers=["frontend"], rps=10, seconds=20)])
    df = pd.concat([inbound, outbound], ignore_index=True)
    by = {s.target.workload: s for s in analyze("sidecar", df).suggestions}
    assert set(by) == {"frontend"}
    assert by["frontend"].limits == ["istio-system/*", "shop/reviews.shop.svc.cluster.local"]


def test_services_outside_the_mesh():
    df = generate([ServiceTraffic(service="api.payments.example", callers=["frontend"], rps=10, seconds=20)])
    df["destination_kind"] = "external"
    (cb,) = analyze("circuit-breaker", df).suggestions
    assert any(m.code == "SG019" and "ServiceEntry" in m.text for m in cb.messages)
    assert analyze("rate-limit", df).suggestions == []  # no sidecar of ours serves it


def test_gateways_get_no_sidecar():
    gw = generate([ServiceTraffic(service="frontend", callers=["istio-ingressgateway"], rps=10, seconds=20,
                                  direction="gateway")])
    gw["reporter_workload"] = "istio-ingressgateway"
    gw["reporter_namespace"] = "istio-system"
    gw["source_workload"] = None
    out = generate([ServiceTraffic(service="reviews", callers=["frontend"], rps=10, seconds=20)])
    df = pd.concat([gw, out], ignore_index=True)
    assert {s.target.workload for s in analyze("sidecar", df).suggestions} == {"frontend"}
    assert {s.target.namespace for s in analyze("sidecar", df, SuggestConfig(by="namespace")).suggestions} == {"shop"}
