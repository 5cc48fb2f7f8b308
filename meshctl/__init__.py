"""meshctl: OpenTelemetry configuration, telemetry collection and rollout analysis for Istio and Linkerd.

Keep this module import-free: `meshctl --help` must stay fast (see benchmarks/startup.py).
"""

__version__ = "0.1.0"
