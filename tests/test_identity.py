"""Identity resolution: clusters, SNI, pod names, labels, Kubernetes IPs — and reviews-v2 → version v2."""

from __future__ import annotations

import io

import pyarrow as pa
import pytest

from analyzers import table as rt
from meshctl.identity import (
    Identity,
    PodIndex,
    Workload,
    parse_cluster,
    parse_sni,
    pod_workload,
    principal_namespace,
    version_from,
    workload_from_pod,
    workload_of,
)
from meshctl.parsers.accesslog import AccessLogParser
from tests.kubeapi import pod


def parsed(path) -> pa.Table:
    with open(path, "rb") as f:
        results = list(AccessLogParser().parse_stream(f, file=str(path)))
    return pa.concat_tables([r.table for r in results if r.rows], promote_options="default")


def parsed_bytes(data: bytes) -> pa.Table:
    results = list(AccessLogParser().parse_stream(io.BytesIO(data), file="x"))
    return pa.concat_tables([r.table for r in results if r.rows], promote_options="default")


def by_line(table: pa.Table) -> dict[int, dict]:
    return {r["record_line"]: r for r in table.to_pylist()}


# ---- names ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("pod_name", "labels", "owner", "expected"), [
    ("reviews-v2-5f7d9b8c4-x2x9p", None, None, "reviews-v2"),                       # Deployment pod, no metadata
    ("ambassador-76c58d9df4-jwhsg", None, None, "ambassador"),
    ("reviews-v2-5f7d9b8c4-x2x9p", {"pod-template-hash": "5f7d9b8c4"}, None, "reviews-v2"),
    ("checkout-6c8b7f9d5d-2v9xk", {"rollouts-pod-template-hash": "6c8b7f9d5d"}, None, "checkout"),  # Argo Rollout
    ("web-0", {"statefulset.kubernetes.io/pod-name": "web-0"}, None, "web"),
    ("fluentd-x7k2p", None, None, "fluentd"),                                          # DaemonSet-like suffix
    ("reviews-v2", None, None, "reviews-v2"),                                          # a bare pod keeps its name
    ("productpage", None, None, "productpage"),
    ("api-abcde", None, None, "api-abcde"),                                            # vowels: not a generated suffix
    ("cart-7d4b9c8f5-q2w4e", {"pod-template-hash": "7d4b9c8f5"}, ("ReplicaSet", "cart-7d4b9c8f5"), "cart"),
    ("canary-pod", {"rollouts-pod-template-hash": "77f9c6d9b4"}, ("ReplicaSet", "shop-77f9c6d9b4"), "shop"),
    ("db-1", {}, ("StatefulSet", "db"), "db"),
])
def test_workload_from_pod(pod_name, labels, owner, expected):
    assert workload_from_pod(pod_name, labels, owner) == expected


def test_versions_from_labels_and_names():
    assert version_from({"version": "v2"}, "reviews") == "v2"
    assert version_from({"app.kubernetes.io/version": "1.4.2"}, None) == "1.4.2"
    assert version_from({"service.istio.io/canonical-revision": "canary"}, None) == "canary"
    assert version_from({"rollouts-pod-template-hash": "6c8b7f9d5d"}, "checkout") == "6c8b7f9d5d"
    assert version_from(None, "reviews-v2") == "v2"
    assert version_from(None, "reviews") is None
    w = workload_of(pod="reviews-v2-5f7d9b8c4-x2x9p", namespace="default")
    assert (w.workload, w.app, w.version) == ("reviews-v2", "reviews", "v2")


def test_clusters_and_sni():
    c = parse_cluster("outbound|9080|v2|reviews.default.svc.cluster.local")
    assert (c.direction, c.port, c.subset, c.host, c.external) == ("outbound", "9080", "v2", "reviews.default.svc.cluster.local", False)
    assert parse_cluster("inbound|9080||").direction == "inbound"
    assert parse_cluster("outbound|443||api.stripe.com").external
    assert parse_cluster("PassthroughCluster").external
    assert parse_cluster("InboundPassthroughCluster").direction == "inbound"
    assert parse_cluster("local_service").direction is None
    s = parse_sni("outbound_.9080_.v2_.reviews.default.svc.cluster.local")
    assert (s.direction, s.subset, s.host) == ("inbound", "v2", "reviews.default.svc.cluster.local")
    assert parse_sni("outbound_.9080_._.reviews.default.svc.cluster.local").subset is None
    assert principal_namespace("spiffe://cluster.local/ns/shop/sa/web") == "shop"
    assert principal_namespace("traffic.booksapp.serviceaccount.identity.linkerd.cluster.local") == "booksapp"


# ---- enrichment on real logs ------------------------------------------------------------------
def test_enrich_istio_docs_client_and_server(oracles_dir):
    table = parsed(oracles_dir / "data/istio-docs/access-log-task.excerpt.log")
    # Line 1 was written by sleep's proxy (client), line 2 by httpbin's (server): one file per proxy.
    client = Identity(reporter=workload_of(pod="sleep-557747455f-xk2pq", namespace="foo")).enrich(table.slice(0, 1))
    server = Identity(reporter=workload_of(pod="httpbin-74fb669cc6-qvlb4", namespace="foo")).enrich(table.slice(1, 1))
    c, s = client.to_pylist()[0], server.to_pylist()[0]
    assert client.schema.equals(rt.arrow_schema()) and "_requested_server_name" not in client.column_names
    assert (c["direction"], c["source_workload"], c["source_namespace"]) == ("outbound", "sleep", "foo")
    assert (c["destination_service"], c["destination_namespace"]) == ("httpbin.foo.svc.cluster.local", "foo")
    assert (c["reporter_workload"], c["reporter_namespace"]) == ("sleep", "foo")
    assert (s["direction"], s["destination_workload"], s["destination_namespace"]) == ("inbound", "httpbin", "foo")
    assert s["destination_service"] == "httpbin.foo.svc.cluster.local"  # from the mTLS SNI
    assert c["request_id"] == s["request_id"]


def test_enrich_without_reporter_uses_what_the_line_says(oracles_dir):
    t = Identity().enrich(parsed(oracles_dir / "data/elastic-integrations/istio/test-access-failed.log"))
    r = by_line(t)
    assert r[1]["direction"] == "outbound" and r[1]["destination_service"] == "httpbin.default.svc.cluster.local"
    assert r[1]["source_workload"] is None  # the proxy that wrote it is unknown
    assert r[3]["direction"] is None and r[3]["destination_service"] is None  # authority is an IP
    assert r[7]["direction"] == "inbound" and r[7]["destination_service"] == "reviews.default.svc.cluster.local"
    # Envoy default format, Emissary in a shipper envelope naming its pod.
    e = by_line(Identity().enrich(parsed(oracles_dir / "data/elastic-integrations/envoyproxy/test-log.log")))
    assert e[2]["destination_service"] == "localhost"
    assert (e[6]["reporter_workload"], e[6]["reporter_namespace"]) == ("ambassador", "default")
    assert e[6]["destination_service"] == "httpbin.org"


def test_linkerd_source_namespace_from_identity(oracles_dir):
    t = Identity(reporter=workload_of("webapp", "booksapp")).enrich(
        parsed(oracles_dir / "data/linkerd-docs/access-log-json.excerpt.log"))
    r = by_line(t)
    assert r[1]["direction"] == "inbound" and r[1]["source_namespace"] == "booksapp"
    assert (r[1]["destination_workload"], r[1]["destination_service"]) == ("webapp", "webapp.booksapp.svc.cluster.local")


def test_peer_metadata_from_the_log_wins():
    line = ('{"start_time":"2024-05-01T10:00:00Z","response_code":200,'
            '"upstream_cluster":"outbound|9080|v2|reviews.default.svc.cluster.local",'
            '"upstream_peer":{"workload":"reviews-v2","namespace":"default","app":"reviews","version":"v2"},'
            '"downstream_peer":"{\\"workload\\":\\"productpage-v1\\",\\"namespace\\":\\"default\\",\\"app\\":\\"productpage\\"}"}\n')
    r = Identity().enrich(parsed_bytes(line.encode())).to_pylist()[0]
    assert (r["destination_workload"], r["destination_app"], r["destination_version"]) == ("reviews-v2", "reviews", "v2")
    assert (r["source_workload"], r["source_app"]) == ("productpage-v1", "productpage")


# ---- reviews-v2 → version v2, every way -------------------------------------------------------
OUT = ('[2024-05-01T10:00:00.000Z] "GET /reviews/0 HTTP/1.1" 200 - via_upstream - "-" 0 442 12 12 "-" "curl" "r-{i}" '
       '"reviews:9080" "{ip}:9080" outbound|9080|{subset}|reviews.default.svc.cluster.local 10.0.0.5:50960 '
       '10.96.0.18:9080 10.0.0.5:52930 - default\n')
IN = ('[2024-05-01T10:00:00.000Z] "GET /reviews/0 HTTP/1.1" 200 - via_upstream - "-" 0 442 10 9 "-" "curl" "r-{i}" '
      '"reviews:9080" "{ip}:9080" inbound|9080|| 127.0.0.6:51000 {ip}:9080 10.0.0.5:52930 '
      'outbound_.9080_._.reviews.default.svc.cluster.local default\n')


def test_reviews_v2_attributed_to_v2_from_kubernetes_ips():
    pods = [pod("reviews-v1-6b8f9d7c5-aaaaa", "default", labels={"app": "reviews", "version": "v1",
                                                                 "pod-template-hash": "6b8f9d7c5"}, ip="10.0.1.1"),
            pod("reviews-v2-5f7d9b8c4-bbbbb", "default", labels={"app": "reviews", "version": "v2",
                                                                 "pod-template-hash": "5f7d9b8c4"}, ip="10.0.1.2"),
            pod("productpage-v1-7d4b9c8f5-ccccc", "default", labels={"app": "productpage", "version": "v1"},
                ip="10.0.0.5")]
    index = PodIndex(pods, [{"metadata": {"name": "reviews", "namespace": "default"},
                             "spec": {"clusterIP": "10.96.0.18"}}], cluster="kind")
    data = (OUT.format(i=1, ip="10.0.1.1", subset="") + OUT.format(i=2, ip="10.0.1.2", subset="")).encode()
    reporter = pod_workload(pods[2], "kind")
    rows = Identity(reporter=reporter, pods=index, cluster="kind").enrich(parsed_bytes(data)).to_pylist()
    assert [(r["destination_workload"], r["destination_version"]) for r in rows] == [("reviews-v1", "v1"), ("reviews-v2", "v2")]
    assert {(r["source_workload"], r["source_app"], r["source_version"], r["source_cluster"]) for r in rows} == \
        {("productpage-v1", "productpage", "v1", "kind")}
    # The server side: the peer IP names the caller.
    inbound = IN.format(i=2, ip="10.0.1.2").encode()
    r = Identity(reporter=pod_workload(pods[1]), pods=index).enrich(parsed_bytes(inbound)).to_pylist()[0]
    assert (r["destination_workload"], r["destination_app"], r["destination_version"]) == ("reviews-v2", "reviews", "v2")
    assert (r["source_workload"], r["source_version"]) == ("productpage-v1", "v1")


def test_reviews_v2_attributed_to_v2_without_kubernetes():
    # Files: the inbound log of reviews-v2's proxy (--workload reviews-v2), and a subset named v2.
    inbound = IN.format(i=3, ip="10.0.1.2").encode()
    r = Identity(reporter=workload_of("reviews-v2", "default")).enrich(parsed_bytes(inbound)).to_pylist()[0]
    assert (r["destination_workload"], r["destination_version"]) == ("reviews-v2", "v2")
    outbound = OUT.format(i=4, ip="10.0.1.2", subset="v2").encode()
    r = Identity(reporter=workload_of("productpage-v1", "default")).enrich(parsed_bytes(outbound)).to_pylist()[0]
    assert (r["destination_subset"], r["destination_version"]) == ("v2", "v2")
    # Node log path / pod name: the ReplicaSet hash is taken off.
    w = workload_of(pod="reviews-v2-5f7d9b8c4-bbbbb", namespace="default")
    r = Identity(reporter=w).enrich(parsed_bytes(inbound)).to_pylist()[0]
    assert (r["destination_workload"], r["destination_version"], r["reporter_workload"]) == ("reviews-v2", "v2", "reviews-v2")


def test_gateway_rows_and_external_destinations():
    gw = Workload(workload="istio-ingressgateway", namespace="istio-system", gateway=True)
    out = OUT.format(i=5, ip="10.0.1.2", subset="").encode()
    ext = out.replace(b"outbound|9080||reviews.default.svc.cluster.local", b"PassthroughCluster").replace(
        b'"reviews:9080"', b'"api.partner.example"')
    rows = Identity(reporter=gw).enrich(parsed_bytes(out + ext)).to_pylist()
    assert [r["direction"] for r in rows] == ["gateway", "gateway"]
    assert rows[0]["source_workload"] is None  # the caller of a gateway is outside the mesh
    assert (rows[1]["destination_service"], rows[1]["destination_kind"]) == ("api.partner.example", "external")


def test_existing_values_are_not_overwritten():
    t = rt.conform_arrow(pa.table({"direction": ["outbound"], "destination_version": ["canary"],
                                   "upstream_cluster": ["outbound|80|v2|web.shop.svc.cluster.local"]}))
    r = Identity().enrich(t).to_pylist()[0]
    assert (r["destination_version"], r["destination_subset"], r["destination_namespace"]) == ("canary", "v2", "shop")


def test_inbound_service_from_the_proxy_not_a_public_host_header():
    # frontend's own proxy, behind an ingress that forwarded `Host: shop.example.com`, no mTLS SNI
    line = ('[2024-05-01T10:00:00.000Z] "GET / HTTP/1.1" 200 - via_upstream - "-" 0 10 5 4 "-" "curl" "r-1" '
            '"{host}" "10.0.2.1:9080" inbound|9080|| 127.0.0.6:51000 10.0.2.1:9080 10.0.0.9:52930 - default\n')
    w = workload_of(pod="frontend-v1-5f7d9b8c4-bbbbb", namespace="shop", labels={"app": "frontend", "version": "v1"})
    got = {}
    for host in ("shop.example.com", "frontend:9080", "frontend.shop:9080", "frontend.shop.svc.cluster.local"):
        r = Identity(reporter=w).enrich(parsed_bytes(line.format(host=host).encode())).to_pylist()[0]
        got[host] = r["destination_service"]
    assert got == {"shop.example.com": "frontend.shop.svc.cluster.local",
                   "frontend:9080": "frontend.shop.svc.cluster.local",
                   "frontend.shop:9080": "frontend.shop.svc.cluster.local",
                   "frontend.shop.svc.cluster.local": "frontend.shop.svc.cluster.local"}


def test_gateway_by_name_without_labels():
    # The node log path names the pod; no labels say it is a gateway, its name does.
    line = ('[2024-05-01T10:00:00.000Z] "GET / HTTP/1.1" 200 - via_upstream - "-" 0 10 5 4 "-" "curl" "r-1" '
            '"shop.example.com" "10.0.2.1:9080" outbound|9080||frontend.shop.svc.cluster.local 10.0.0.9:1 '
            '10.0.0.9:8080 10.0.0.1:52930 - default\n')
    w = workload_of(pod="istio-ingressgateway-5f7d9b8c4-bbbbb", namespace="istio-system")
    r = Identity(reporter=w).enrich(parsed_bytes(line.encode())).to_pylist()[0]
    assert r["direction"] == "gateway" and r["reporter_workload"] == "istio-ingressgateway"
    assert r["source_workload"] is None  # a gateway row's caller is whoever called the gateway
