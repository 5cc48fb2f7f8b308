#!/usr/bin/env python3
"""Run the local mesh of examples/local-mesh/topology.yaml, send traffic through it, and say what to do next.

    .venv/bin/python examples/local-mesh/run.py                       # 500 requests, then stop
    .venv/bin/python examples/local-mesh/run.py --fail reviews-v1:1   # second reviews-v1 pod fails
    .venv/bin/python examples/local-mesh/run.py --serve               # keep it up for curl, Ctrl-C stops

Everything listens on 127.0.0.1 (ports chosen free at start). Every process this script starts is
stopped when it ends, on Ctrl-C and on SIGTERM.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from meshctl.errors import MeshctlError
from meshctl.mesh import Mesh, handle_sigterm, load_topology

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--topology", type=Path, default=HERE / "topology.yaml", help="topology YAML")
    ap.add_argument("--out", type=Path, default=Path("local-mesh-run"), help="working directory (logs, spans)")
    ap.add_argument("--requests", type=int, default=500, help="requests through the gateway (0: none)")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--duration", type=float, default=60.0, help="cap on the traffic phase, seconds")
    ap.add_argument("--fail", action="append", default=[], metavar="TARGET",
                    help="make pods fail every request: a pod, a workload (reviews-v2) or WORKLOAD:INDEX")
    ap.add_argument("--serve", action="store_true", help="keep the mesh running after the traffic, until Ctrl-C")
    args = ap.parse_args(argv)

    try:
        topo = load_topology(args.topology)
    except MeshctlError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    with handle_sigterm():
        try:
            with Mesh(topo, args.out / "mesh") as mesh:
                print(f"mesh up: gateway {mesh.gateway_url} (Host: {topo.gateway.hosts[0]}), "
                      f"{len(mesh.pods)} sidecars; state in {mesh.workdir / 'mesh.json'}")
                for target in args.fail:
                    pods = mesh.set_faults(target, {"fail": True})
                    print(f"failing: {', '.join(p.name for p in pods)}")
                if args.requests:
                    host = topo.gateway.hosts[0] if topo.gateway.hosts[0] != "*" else "shop.example.com"
                    result = mesh.drive(requests=args.requests, concurrency=args.concurrency, duration=args.duration,
                                        paths=["/productpage", "/api/v1/products/0"], headers={"host": host})
                    codes = ", ".join(f"{c}: {n}" for c, n in sorted(result.by_code.items()))
                    print(f"sent {result.sent} requests in {result.seconds:.1f}s ({result.rps:.0f}/s): {codes}"
                          + (f", {result.failures} without answer" if result.failures else ""))
                if args.serve:
                    print(f"serving; try: curl -H 'Host: {topo.gateway.hosts[0]}' {mesh.gateway_url}/productpage"
                          "   (Ctrl-C stops)")
                    while True:
                        time.sleep(1)
                print("waiting for the proxies to flush their spans ...")
                mesh.flush_telemetry()
        except KeyboardInterrupt:
            print("\nstopped")
        except MeshctlError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 3
    out = args.out
    print(f"""
access logs (Kubernetes node layout, one file per proxy): {out}/mesh/logs/json/ and {out}/mesh/logs/text/
spans and OTLP access logs: {out}/mesh/otlp/traces.jsonl, {out}/mesh/otlp/logs.jsonl

next:
  meshctl collect logs {out}/mesh/logs/json/ --data {out}/data
  meshctl collect traces {out}/mesh/otlp/traces.jsonl --data {out}/data
  meshctl graph --data {out}/data -o svg > {out}/graph.svg
  meshctl analyze canary --data {out}/data --service reviews --baseline version=v1 --canary version=v2
  meshctl suggest circuit-breaker --data {out}/data""")
    return 0


if __name__ == "__main__":
    sys.exit(main())
