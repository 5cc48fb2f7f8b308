"""`collect logs --k8s` against the loopback recorded-response API server (tests/kubeapi.py): sidecar
detection, concurrent streaming, 429 / 500 / timeouts / a dropped stream retried without loss or
duplicates, a pod that keeps failing reported and skipped while the rest lands — read-only."""

from __future__ import annotations

import json

import pytest

from meshctl.identity import Identity, PodIndex
from meshctl.ingest import ingest
from meshctl.kube import KubernetesClient
from meshctl.parsers.accesslog import AccessLogParser
from meshctl.sources.kubernetes import PodLogSource, PodLogStream, RetryPolicy, discover
from meshctl.store import Dataset
from tests.kubeapi import FakeKubeAPI, Reply, item_list, pod

NS = "/api/v1/namespaces/shop"

PODS = [
    pod("productpage-v1-7d4b9c8f5-aaaaa", "shop", labels={"app": "productpage", "version": "v1",
                                                           "pod-template-hash": "7d4b9c8f5"}, ip="10.0.0.5"),
    pod("reviews-v1-6b8f9d7c5-bbbbb", "shop", labels={"app": "reviews", "version": "v1"}, ip="10.0.1.1"),
    pod("reviews-v2-5f7d9b8c4-ccccc", "shop", labels={"app": "reviews", "version": "v2"}, ip="10.0.1.2"),
    pod("ratings-v1-8c9d7b6f4-ddddd", "shop", labels={"app": "ratings", "version": "v1"}, ip="10.0.2.1",
        containers=["app", "linkerd-proxy"]),
    pod("db-0", "shop", labels={"app": "db"}, ip="10.0.3.1", containers=["postgres"]),
    pod("pending-7f8c9d6b5-eeeee", "shop", phase="Pending", ip=None),
]
SERVICES = item_list("ServiceList", [{"metadata": {"name": "reviews", "namespace": "shop"},
                                      "spec": {"clusterIP": "10.96.0.18"}}])


def out_line(i: int, ip: str, code: int = 200) -> str:
    return (f'[2024-05-01T10:00:{i % 60:02d}.{i:03d}Z] "GET /reviews/{i} HTTP/1.1" {code} - via_upstream - "-" 0 442 12 11 '
            f'"-" "curl" "req-{i}" "reviews:9080" "{ip}:9080" outbound|9080||reviews.shop.svc.cluster.local '
            f"10.0.0.5:5{i:04d} 10.96.0.18:9080 10.0.0.5:4{i:04d} - default")


def in_line(i: int, ip: str, code: int = 200, flags: str = "-") -> str:
    return (f'[2024-05-01T10:00:{i % 60:02d}.{i:03d}Z] "GET /reviews/{i} HTTP/1.1" {code} {flags} via_upstream - "-" 0 442 '
            f'10 9 "-" "curl" "req-{i}" "reviews:9080" "{ip}:9080" inbound|9080|| 127.0.0.6:5{i:04d} {ip}:9080 '
            f"10.0.0.5:4{i:04d} outbound_.9080_._.reviews.shop.svc.cluster.local default")


def kubelet(lines: list[str], start: int = 0) -> list[bytes]:
    """Log lines as the logs API sends them with timestamps=true, a few lines per chunk (split mid-line too)."""
    stamped = "".join(f"2024-05-01T10:01:{(start + k) // 10:02d}.{(start + k) % 10}00000000Z {ln}\n"
                      for k, ln in enumerate(lines)).encode()
    return [stamped[i:i + 700] for i in range(0, len(stamped), 700)]


def serve(api: FakeKubeAPI, logs: dict[str, list[Reply]]) -> None:
    api.route(f"{NS}/pods", Reply.json(item_list("PodList", PODS)))
    api.route("/api/v1/pods", Reply.json(item_list("PodList", PODS)))
    api.route("/api/v1/services", Reply.json(SERVICES))
    for name, replies in logs.items():
        api.route(f"{NS}/pods/{name}/log", *replies)


FAST = RetryPolicy(attempts=4, base=0.01, cap=0.05, timeout=1.0)


def test_discover_detects_the_proxy_container(tmp_path):
    with FakeKubeAPI() as api:
        serve(api, {})
        client = KubernetesClient(kubeconfig=api.write_kubeconfig(tmp_path))
        targets, skipped = discover(client, namespace="shop")
        linkerd_only, _ = discover(client, namespace="shop", container="linkerd-proxy")
    assert [(t.pod, t.container) for t in targets] == [
        ("productpage-v1-7d4b9c8f5-aaaaa", "istio-proxy"), ("ratings-v1-8c9d7b6f4-ddddd", "linkerd-proxy"),
        ("reviews-v1-6b8f9d7c5-bbbbb", "istio-proxy"), ("reviews-v2-5f7d9b8c4-ccccc", "istio-proxy")]
    assert targets[3].workload.workload == "reviews-v2" and targets[3].workload.version == "v2"
    assert {s.pod: s.reason for s in skipped} == {"db-0": "no istio-proxy or linkerd-proxy container",
                                                  "pending-7f8c9d6b5-eeeee": "pending: no log yet"}
    assert [t.pod for t in linkerd_only] == ["ratings-v1-8c9d7b6f4-ddddd"]


def test_native_sidecar_in_init_containers():
    obj = pod("web-1", "shop", containers=["app"])
    obj["spec"]["initContainers"] = [{"name": "istio-init"}, {"name": "istio-proxy", "restartPolicy": "Always"}]
    from meshctl.sources.kubernetes import sidecar_container

    assert sidecar_container(obj) == "istio-proxy"


def test_faults_are_retried_without_loss_or_duplicates(tmp_path):
    pp_lines = [out_line(i, "10.0.1.1" if i % 2 else "10.0.1.2") for i in range(60)]
    v1_lines = [in_line(i, "10.0.1.1") for i in range(1, 60, 2)]
    v2_lines = [in_line(i, "10.0.1.2", 429 if i % 10 == 0 else 200, "RL" if i % 10 == 0 else "-")
                for i in range(0, 60, 2)]
    pp_chunks = kubelet(pp_lines)
    logs = {
        # 429 with Retry-After, then a 500, then the log.
        "productpage-v1-7d4b9c8f5-aaaaa": [Reply.status_error(429, headers={"Retry-After": "0"}),
                                           Reply.status_error(500), Reply.text_chunks(pp_chunks)],
        # The connection drops after two chunks; the retry gets the whole log again.
        "reviews-v2-5f7d9b8c4-ccccc": [Reply.text_chunks(kubelet(v2_lines), drop_after_chunks=2),
                                       Reply.text_chunks(kubelet(v2_lines))],
        # Too slow to answer (client timeout 1 s), then fine.
        "reviews-v1-6b8f9d7c5-bbbbb": [Reply(delay=2.5), Reply.text_chunks(kubelet(v1_lines))],
        # Keeps failing: reported and skipped.
        "ratings-v1-8c9d7b6f4-ddddd": [Reply.status_error(503)],
    }
    with FakeKubeAPI() as api:
        serve(api, logs)
        client = KubernetesClient(kubeconfig=api.write_kubeconfig(tmp_path))
        targets, _ = discover(client, namespace="shop")
        sources = [PodLogSource(client, t, since_seconds=1800, policy=FAST) for t in targets]
        identity = Identity(pods=PodIndex.from_kube(client, ["shop"], "kind"), cluster="kind")
        report = ingest(sources, AccessLogParser(), Dataset(tmp_path / "data"), identity=identity, workers=4,
                        progress=False)
        requests = list(api.requests)
    by_pod = {s.source.split("/")[1]: s for s in report.sources}
    assert by_pod["productpage-v1-7d4b9c8f5-aaaaa"].rows == 60
    assert by_pod["reviews-v2-5f7d9b8c4-ccccc"].rows == 30  # nothing lost, nothing twice
    assert by_pod["reviews-v1-6b8f9d7c5-bbbbb"].rows == 30
    failed = by_pod["ratings-v1-8c9d7b6f4-ddddd"]
    assert failed.rows == 0 and "failed 4 times in a row" in failed.error and "503" in failed.error
    assert report.rows == 120 and report.rejected == 0 and len(report.failed) == 1
    # Read-only, and every log asked with timestamps for the right container and window.
    assert {m for m, _, _ in requests} == {"GET"}
    log_queries = [q for _, p, q in requests if p.endswith("/log")]
    assert all(q["timestamps"] == ["true"] for q in log_queries)
    assert all(int(q["sinceSeconds"][0]) >= 1800 for q in log_queries)
    assert {q["container"][0] for q in log_queries} == {"istio-proxy", "linkerd-proxy"}
    asked = {name: sum(1 for _, p, _ in requests if p == f"{NS}/pods/{name}/log") for name in logs}
    assert asked == {"productpage-v1-7d4b9c8f5-aaaaa": 3, "reviews-v2-5f7d9b8c4-ccccc": 2,
                     "reviews-v1-6b8f9d7c5-bbbbb": 2, "ratings-v1-8c9d7b6f4-ddddd": 4}

    df = Dataset(tmp_path / "data").read()
    out = df[df["direction"] == "outbound"]
    assert len(out) == 60 and set(out["source_workload"]) == {"productpage-v1"}
    v = out.groupby("destination_workload")["destination_version"].first().to_dict()
    assert v == {"reviews-v1": "v1", "reviews-v2": "v2"}
    inbound = df[(df["direction"] == "inbound") & (df["destination_workload"] == "reviews-v2")]
    assert len(inbound) == 30 and set(inbound["destination_version"]) == {"v2"}
    assert set(inbound["source_workload"]) == {"productpage-v1"}  # the caller's IP resolved to its pod
    assert (inbound["response_flags"] == "RL").sum() == 6
    assert set(df["source_cluster"].dropna()) == {"kind"}
    assert set(df["record_source"]) == {t.name for t in targets if not t.pod.startswith("ratings")}


def test_stream_resumes_after_the_last_delivered_line(tmp_path):
    lines = [in_line(i, "10.0.1.2") for i in range(40)]
    chunks = kubelet(lines)
    with FakeKubeAPI() as api:
        serve(api, {"reviews-v2-5f7d9b8c4-ccccc": [
            Reply.text_chunks(chunks, drop_after_chunks=3), Reply.status_error(500),
            Reply.text_chunks(chunks, drop_after_chunks=5), Reply.text_chunks(chunks)]})
        client = KubernetesClient(kubeconfig=api.write_kubeconfig(tmp_path))
        targets, _ = discover(client, namespace="shop")
        target = next(t for t in targets if t.pod.startswith("reviews-v2"))
        stream = PodLogStream(client, target, policy=FAST)
        data = stream.read()
    got = data.decode().splitlines()
    assert got == lines  # the kubelet timestamps are gone, every line once, in order
    assert stream.retries == 3 and stream.lines == 40


def test_keeps_failing_gives_up_and_names_the_pod(tmp_path):
    with FakeKubeAPI() as api:
        serve(api, {"reviews-v1-6b8f9d7c5-bbbbb": [Reply.status_error(429, headers={"Retry-After": "0"})]})
        client = KubernetesClient(kubeconfig=api.write_kubeconfig(tmp_path))
        targets, _ = discover(client, namespace="shop")
        target = next(t for t in targets if t.pod.startswith("reviews-v1"))
        slept: list[float] = []
        policy = RetryPolicy(attempts=3, sleep=slept.append)
        from meshctl.errors import KubeError

        with pytest.raises(KubeError, match=r"shop/reviews-v1-6b8f9d7c5-bbbbb/istio-proxy: log stream failed 3 times"):
            PodLogStream(client, target, policy=policy).read()
        assert slept == [0.0, 0.0]  # Retry-After honoured
        # A 404 (pod gone) is not retried.
        with pytest.raises(KubeError, match="404"):
            PodLogStream(client, targets[0], policy=policy).read()


def test_backoff_grows_and_is_capped():
    p = RetryPolicy(base=0.5, cap=4.0, jitter=0.0)
    assert [p.delay(n, None) for n in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert p.delay(3, 7.0) == 7.0 and RetryPolicy(max_retry_after=5).delay(1, 120) == 5


def test_cli_collect_k8s(tmp_path, run_cli):
    logs = {"productpage-v1-7d4b9c8f5-aaaaa": [Reply.status_error(429, headers={"Retry-After": "0"}),
                                               Reply.text_chunks(kubelet([out_line(i, "10.0.1.2") for i in range(10)]))],
            "reviews-v1-6b8f9d7c5-bbbbb": [Reply.text_chunks(kubelet([in_line(i, "10.0.1.1") for i in range(5)]))],
            "reviews-v2-5f7d9b8c4-ccccc": [Reply.text_chunks(kubelet([in_line(i, "10.0.1.2") for i in range(5)]))],
            "ratings-v1-8c9d7b6f4-ddddd": [Reply.status_error(500)]}
    with FakeKubeAPI() as api:
        serve(api, logs)
        kubeconfig = api.write_kubeconfig(tmp_path)
        code, out, err = run_cli("collect", "logs", "--k8s", "-n", "shop", "--since", "30m", "--kubeconfig", kubeconfig,
                                 "--data", str(tmp_path / "d"), "--retries", "2", "-o", "json", "-q")
        assert {m for m, _, _ in api.requests} == {"GET"}
    assert code == 1, err  # one pod failed as a whole; the others were stored
    doc = json.loads(out)
    assert doc["rows"] == 20 and doc["rejected"] == 0
    failed = [s for s in doc["sources"] if s["error"]]
    assert [s["source"] for s in failed] == ["shop/ratings-v1-8c9d7b6f4-ddddd/linkerd-proxy"]
    assert {s["pod"] for s in doc["skipped_pods"]} == {"db-0", "pending-7f8c9d6b5-eeeee"}
    code, out, _ = run_cli("dataset", "info", "--data", str(tmp_path / "d"), "-o", "json")
    info = json.loads(out)
    assert info["rows"] == 20 and len(info["sources"]) == 4


def test_cli_k8s_usage_errors(tmp_path, run_cli):
    code, _, err = run_cli("collect", "logs", "x.log", "--k8s")
    assert code == 3 and "either PATHs or --k8s" in err
    code, _, err = run_cli("collect", "logs", "x.log", "--since", "5m")
    assert code == 3 and "--since applies to --k8s" in err
    with FakeKubeAPI() as api:
        serve(api, {})
        code, _, err = run_cli("collect", "logs", "--k8s", "-n", "shop", "-l", "app=db", "--container", "envoy",
                               "--kubeconfig", api.write_kubeconfig(tmp_path), "--data", str(tmp_path / "d"))
    assert code == 3 and "no pod with a proxy container" in err


def test_resume_keeps_a_last_line_without_newline_that_shares_a_timestamp(tmp_path):
    """The log's last line has no newline and the timestamp of the line before it: after a drop that
    came right after that line, the resumed stream skips the delivered one and still delivers it."""
    lines = [in_line(i, "10.0.1.2") for i in range(3)]
    stamps = ["2024-05-01T10:01:00.100000000Z", "2024-05-01T10:01:00.200000000Z", "2024-05-01T10:01:00.200000000Z"]
    first = "".join(f"{ts} {ln}\n" for ts, ln in zip(stamps[:2], lines[:2], strict=True)).encode()
    chunks = [first, f"{stamps[2]} {lines[2]}".encode()]
    with FakeKubeAPI() as api:
        serve(api, {"reviews-v2-5f7d9b8c4-ccccc": [Reply.text_chunks(chunks, drop_after_chunks=1),
                                                   Reply.text_chunks(chunks)]})
        client = KubernetesClient(kubeconfig=api.write_kubeconfig(tmp_path))
        targets, _ = discover(client, namespace="shop")
        target = next(t for t in targets if t.pod.startswith("reviews-v2"))
        stream = PodLogStream(client, target, policy=FAST)
        data = stream.read()
    assert data.decode().splitlines() == lines
    assert stream.retries == 1 and stream.lines == 3
