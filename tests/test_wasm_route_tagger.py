"""The route-tagger proxy-wasm plugin, built from source and run inside a real Envoy.

Its route templates must equal analyzers.routes.route_template on the same paths: the proxy and
meshctl's analysis group requests the same way.
"""

from __future__ import annotations

import http.client
import importlib.util
import json
import random
import time
from pathlib import Path

import pytest

from analyzers.routes import route_template
from meshctl.envoy import EnvoyProcess, validate_bootstrap

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.envoy


@pytest.fixture(scope="session")
def route_tagger_wasm(tmp_path_factory) -> Path:
    spec = importlib.util.spec_from_file_location("route_tagger_build", REPO / "wasm/route-tagger/build.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = mod.build(tmp_path_factory.mktemp("wasm") / "route_tagger.wasm")
    assert out.read_bytes()[:4] == b"\0asm"
    return out


def _bootstrap(wasm: Path, log_path: Path, configuration: str | None = None) -> dict:
    wasm_config: dict = {
        "name": "meshctl-route-tagger",
        "vm_config": {"runtime": "envoy.wasm.runtime.v8", "code": {"local": {"filename": str(wasm)}}},
    }
    if configuration is not None:
        wasm_config["configuration"] = {"@type": "type.googleapis.com/google.protobuf.StringValue",
                                        "value": configuration}
    fmt = {"path": "%REQ(:PATH)%", "route": "%REQ(X-MESHCTL-ROUTE)%", "custom": "%REQ(X-ROUTE)%"}
    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "static_resources": {"listeners": [{
            "name": "in",
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
            "filter_chains": [{"filters": [{
                "name": "envoy.filters.network.http_connection_manager",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                    "stat_prefix": "in",
                    "access_log": [{"name": "envoy.access_loggers.file", "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
                        "path": str(log_path), "log_format": {"json_format": fmt}}}],
                    "route_config": {"virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [
                        {"match": {"prefix": "/"}, "direct_response": {"status": 200}}]}]},
                    "http_filters": [
                        {"name": "envoy.filters.http.wasm", "typed_config": {
                            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
                            "config": wasm_config}},
                        {"name": "envoy.filters.http.router", "typed_config": {
                            "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}},
                    ],
                },
            }]}],
        }]},
    }


def _corpus(n: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    hexd = "0123456789abcdef"
    alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"

    def seg() -> str:
        kind = rng.choice(["word", "digits", "uuid", "uuid32", "date", "hex", "short-hex", "token",
                           "token-nodigit", "mixed", "empty"])
        if kind == "word":
            return rng.choice(["reviews", "ratings", "api", "v1", "users", "orders", "healthz", "x.y", "a-b"])
        if kind == "digits":
            return str(rng.randrange(10 ** rng.randint(1, 12)))
        if kind == "uuid":
            h = "".join(rng.choice(hexd) for _ in range(32))
            return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
        if kind == "uuid32":
            return "".join(rng.choice(hexd) for _ in range(32))
        if kind == "date":
            d = f"{rng.randint(1990, 2030)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
            return rng.choice([d, d + "T10:00:00Z", d + "T10:00:00.123", d + "T", d + "TZ"])
        if kind in ("hex", "short-hex"):
            return "".join(rng.choice(hexd) for _ in range(rng.randint(16, 40) if kind == "hex" else rng.randint(1, 15)))
        if kind == "token":
            return "".join(rng.choice(alnum + ".~=") for _ in range(rng.randint(12, 40))) + "7"
        if kind == "token-nodigit":
            return "".join(rng.choice("abcdefXYZ_-.~=") for _ in range(rng.randint(16, 30)))
        if kind == "mixed":
            return "item" + str(rng.randrange(1000))
        return ""

    paths = ["/", "/reviews/123", "/a/b/c/d/e/f/g/h/i/j", "/q?x=1/2", "/x/%20y/9"]  # Envoy rejects "#"
    for _ in range(n):
        p = "/" + "/".join(seg() for _ in range(rng.randint(1, 11)))
        if rng.random() < 0.2:
            p += "?id=" + str(rng.randrange(100))
        paths.append(p)
    return paths


def _send(port: int, paths: list[str]) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for p in paths:
        conn.request("GET", p)
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 200, p
    conn.close()


def _read_log(path: Path, n: int, timeout: float = 10.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            lines = path.read_text().splitlines()
            if len(lines) >= n:
                return [json.loads(x) for x in lines]
        time.sleep(0.1)
    raise AssertionError(f"access log has fewer than {n} lines")


def test_bootstrap_with_plugin_validates(route_tagger_wasm, tmp_path):
    check = validate_bootstrap(_bootstrap(route_tagger_wasm, tmp_path / "access.log"))
    assert check.ok, check.message


def test_plugin_templates_equal_python(route_tagger_wasm, tmp_path):
    log = tmp_path / "access.log"
    paths = _corpus(400)
    with EnvoyProcess(_bootstrap(route_tagger_wasm, log), workdir=tmp_path, name="tagger") as envoy:
        _send(envoy.listener_port("in"), paths)
        rows = _read_log(log, len(paths))
    assert [r["path"] for r in rows] == paths
    mismatches = [(r["path"], r["route"], route_template(r["path"])) for r in rows
                  if r["route"] != route_template(r["path"])]
    assert not mismatches, mismatches[:5]
    # The corpus exercised every rule.
    routes = " ".join(r["route"] for r in rows)
    for marker in ("{id}", "{uuid}", "{date}", "{hex}", "{token}", "{...}"):
        assert marker in routes


def test_plugin_header_name_is_configurable(route_tagger_wasm, tmp_path):
    log = tmp_path / "access.log"
    with EnvoyProcess(_bootstrap(route_tagger_wasm, log, '{"header": "x-route"}'), workdir=tmp_path,
                      name="tagger2") as envoy:
        _send(envoy.listener_port("in"), ["/orders/42"])
        (row,) = _read_log(log, 1)
    assert row["custom"] == "/orders/{id}"
    assert row["route"] is None  # the default header was not set


def test_plugin_rejects_bad_configuration(route_tagger_wasm, tmp_path):
    from meshctl.errors import MeshctlError

    bad = _bootstrap(route_tagger_wasm, tmp_path / "access.log", '{"header": "X-Bad Header"}')
    with pytest.raises(MeshctlError), EnvoyProcess(bad, workdir=tmp_path, name="bad", log_level="error"):
        pass
    assert "must be a lower-case header name" in (tmp_path / "bad.envoy.log").read_text()

