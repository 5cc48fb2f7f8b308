"""A tiny HTTP gate for Flagger webhooks (and Argo's web provider): it runs `meshctl analyze canary`.

Flagger POSTs {"name", "namespace", "phase", "checksum", "metadata": {...}} to its webhooks. This
service collects the service's access logs (`meshctl collect logs --k8s`, read-only), judges the
canary, and answers with the verdict as JSON and a status code Flagger acts on:

    webhook type        metadata.mode   pass   marginal / inconclusive   fail
    rollout             check (default) 200    200 (no evidence yet)     500: a failed check; Flagger
                                                                              rolls back after `threshold`
    confirm-promotion   promote         200    403: promotion waits,     403
                                               Flagger asks again

so a bad canary is rolled back, and a canary with too little traffic is never promoted: Flagger
keeps it at its current weight until the evidence is there. metadata keys: service (default: the
Canary's name), baseline / canary selectors (default: the primary and canary workloads Flagger
creates, `<name>-primary` and `<name>`), window (default 10m), config (a meshctl canary config path).

Run it (stdlib only; meshctl on PATH):  python gate.py --port 8080
Environment: MESHCTL_DATA (dataset dir, default a fresh temp dir per request), MESHCTL_GATE_COLLECT=0
to judge an existing dataset without collecting (tests, or a sidecar that collects on its own).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

VERDICT_BY_EXIT = {0: "pass", 1: "fail", 2: "inconclusive"}
SAFE = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.=,*!/:")


def status_for(verdict: str, mode: str) -> int:
    """HTTP status Flagger acts on, for a verdict and the webhook's mode (check | promote)."""
    if mode == "promote":
        return 200 if verdict == "pass" else 403
    return 500 if verdict in ("fail", "error") else 200


def _arg(value: Any, name: str) -> str:
    # Arguments go to meshctl as separate argv items (no shell), but keep them to plain selector text.
    text = str(value)
    if not text or not set(text) <= SAFE:
        raise ValueError(f"{name}: unexpected characters in {text!r}")
    return text


def judge(payload: dict[str, Any], meshctl: str = "meshctl") -> tuple[int, dict[str, Any]]:
    meta = payload.get("metadata") or {}
    name = _arg(payload.get("name", ""), "name")
    namespace = _arg(payload.get("namespace", "default"), "namespace")
    service = _arg(meta.get("service", name), "service")
    baseline = _arg(meta.get("baseline", f"workload={name}-primary"), "baseline")
    canary = _arg(meta.get("canary", f"workload={name}"), "canary")
    window = _arg(meta.get("window", "10m"), "window")
    mode = "promote" if meta.get("mode") == "promote" else "check"
    data = os.environ.get("MESHCTL_DATA")
    tmp = None if data else tempfile.mkdtemp(prefix="meshctl-gate-")
    data = data or os.path.join(tmp, "data")
    try:
        if os.environ.get("MESHCTL_GATE_COLLECT", "1") != "0":
            col = subprocess.run([meshctl, "collect", "logs", "--k8s", "-n", namespace, "-l", f"app={service}",
                                  "--since", window, "-q", "--data", data], capture_output=True, text=True,
                                 timeout=600)
            if col.returncode not in (0, 1):
                return 500, {"verdict": "error", "error": col.stderr.strip()[-2000:]}
        cmd = [meshctl, "analyze", "canary", "-n", namespace, "--service", service, "--baseline", baseline,
               "--canary", canary, "--data", data, "-o", "json"]
        if meta.get("config"):
            cmd += ["--config", _arg(meta["config"], "config")]
        if os.environ.get("MESHCTL_GATE_COLLECT", "1") == "0":
            cmd += ["--since", window]
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        verdict = VERDICT_BY_EXIT.get(run.returncode, "error")
        body: dict[str, Any] = {"verdict": verdict}
        if run.returncode in VERDICT_BY_EXIT:
            res = json.loads(run.stdout)
            body.update(verdict=res["verdict"], score=res["score"], reasons=res["reasons"])
            verdict = res["verdict"]
        else:
            body["error"] = run.stderr.strip()[-2000:]
        return status_for(verdict, mode), body
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


class Handler(BaseHTTPRequestHandler):
    meshctl = "meshctl"

    def do_POST(self) -> None:
        try:
            size = int(self.headers.get("Content-Length") or 0)
            payload = json.loads(self.rfile.read(size) or b"{}")
            code, body = judge(payload, self.meshctl)
        except (ValueError, KeyError, subprocess.TimeoutExpired) as exc:
            code, body = 400, {"verdict": "error", "error": str(exc)}
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, fmt: str, *args: Any) -> None:
        pass


def main() -> None:
    ap = argparse.ArgumentParser(description="HTTP gate running meshctl analyze canary for Flagger webhooks")
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--bind", default="0.0.0.0")
    ap.add_argument("--meshctl", default="meshctl", help="meshctl executable")
    args = ap.parse_args()
    Handler.meshctl = args.meshctl
    ThreadingHTTPServer((args.bind, args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
