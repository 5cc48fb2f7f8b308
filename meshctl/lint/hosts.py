"""Hostnames and the service registry lint checks collector addresses against.

istiod resolves an extension provider's `service` (`[<namespace>/]<hostname>`) by the *exact*
hostname of a Kubernetes Service (`<name>.<namespace>.svc.<cluster domain>`) or a ServiceEntry host;
an unqualified hostname must be unique across namespaces. It builds the collector cluster from the
hostname and `port` without checking that the Service has that port.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_FQDN_LABEL = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?$")


def is_dns1123_label(s: str) -> bool:
    return len(s) <= 63 and bool(_LABEL.match(s))


def is_ip(s: str) -> bool:
    try:
        ipaddress.ip_address(s)
    except ValueError:
        return False
    return True


def fqdn_problem(host: str, *, wildcard: bool = False) -> str | None:
    """Why `host` is not a valid DNS name for istiod (None if it is)."""
    if not host:
        return "the hostname is empty"
    if len(host) > 255:
        return "the hostname is longer than 255 characters"
    labels = host.split(".")
    if wildcard and labels[0] == "*":
        labels = labels[1:]
    for lab in labels:
        if not lab:
            return "the hostname has an empty label (double or trailing dot)"
        if len(lab) > 63:
            return f"label {lab!r} is longer than 63 characters"
        if not _FQDN_LABEL.match(lab):
            return f"{lab!r} is not a DNS label"
    return None


def provider_service_problem(service: Any) -> str | None:
    """istiod's check of an extension provider `service` (pkg/config/validation/agent), as a reason."""
    if not isinstance(service, str) or not service:
        return "service must not be empty"
    parts = service.split("/")
    if len(parts) == 1:
        if fqdn_problem(service) and not is_ip(service):
            return fqdn_problem(service)
        return None
    ns, _, host = service.partition("/")
    if not ns or not host:
        return "namespace and hostname in <namespace>/<hostname> cannot be empty"
    if ns not in ("*", ".", "~") and not is_dns1123_label(ns):
        return f"the part before '/' ({ns!r}) must be a namespace (a DNS-1123 label)"
    if host != "*" and "." not in host:
        return "short hostnames (no dot) are not allowed after '/'"
    problem = fqdn_problem(host, wildcard=True)
    if problem:
        return problem + " (after '/')"
    return None


@dataclass
class Host:
    hostname: str
    namespace: str
    ports: set[int]
    origin: str  # "Service shop/web (input)", "ServiceEntry ...", "cluster"


@dataclass
class ServiceIndex:
    """Services and ServiceEntry hosts from the input and, optionally, a cluster."""

    cluster_domain: str = "cluster.local"
    hosts: dict[str, list[Host]] = field(default_factory=dict)  # hostname -> hosts (one per namespace)
    namespaces: set[str] = field(default_factory=set)  # namespaces with at least one Service
    from_cluster: bool = False
    count: int = 0

    @property
    def known(self) -> bool:
        return self.count > 0 or self.from_cluster

    def _add(self, host: Host) -> None:
        self.hosts.setdefault(host.hostname.lower(), []).append(host)
        self.count += 1

    def add_service(self, obj: Mapping[str, Any], namespace: str, origin: str) -> None:
        meta = obj.get("metadata") if isinstance(obj.get("metadata"), Mapping) else {}
        name = meta.get("name")
        if not name:
            return
        ns = str(meta.get("namespace") or namespace)
        spec = obj.get("spec") if isinstance(obj.get("spec"), Mapping) else {}
        ports = {int(p["port"]) for p in spec.get("ports") or [] if isinstance(p, Mapping) and str(p.get("port", "")).isdigit()}
        self.namespaces.add(ns)
        self._add(Host(f"{name}.{ns}.svc.{self.cluster_domain}", ns, ports, origin))

    def add_service_entry(self, obj: Mapping[str, Any], namespace: str, origin: str) -> None:
        meta = obj.get("metadata") if isinstance(obj.get("metadata"), Mapping) else {}
        ns = str(meta.get("namespace") or namespace)
        spec = obj.get("spec") if isinstance(obj.get("spec"), Mapping) else {}
        ports = {int(p["number"]) for p in spec.get("ports") or [] if isinstance(p, Mapping) and str(p.get("number", "")).isdigit()}
        for h in spec.get("hosts") or []:
            if isinstance(h, str):
                self._add(Host(h, ns, ports, origin))
        self.namespaces.add(ns)

    def lookup(self, service: str) -> tuple[Host | None, str | None]:
        """(host, None) when `service` resolves the way istiod resolves it, else (None, why)."""
        if "/" in service:
            ns, _, host = service.partition("/")
            for h in self.hosts.get(host.lower(), []):
                if h.namespace == ns:
                    return h, None
            return None, "not found"
        found = self.hosts.get(service.lower(), [])
        if len({h.namespace for h in found}) == 1:
            return found[0], None
        if found:
            return None, f"found in {len({h.namespace for h in found})} namespaces; qualify it as <namespace>/{service}"
        return None, "not found"

    def suggest(self, service: str) -> str | None:
        """A hostname the user probably meant: the FQDN of a short name, or a close spelling in the
        same namespace (otel-colector -> otel-collector)."""
        import difflib

        host = (service.partition("/")[2] if "/" in service else service).lower()
        parts = host.split(".")
        if len(parts) in (1, 2, 3) and (len(parts) < 3 or parts[2] == "svc"):
            ns = parts[1] if len(parts) > 1 else None
            for hostname, hs in self.hosts.items():
                if hostname.startswith(parts[0] + ".") and (ns is None or hs[0].namespace == ns):
                    return hs[0].hostname
        ns = parts[1] if len(parts) > 2 and parts[2] == "svc" else None
        pool = [h for h, hs in self.hosts.items() if ns is None or any(x.namespace == ns for x in hs)]
        close = difflib.get_close_matches(host, pool, n=1, cutoff=0.75)
        return self.hosts[close[0]][0].hostname if close else None


def short_name_fqdn(service: str, cluster_domain: str) -> str | None:
    """For `name`, `name.ns` or `name.ns.svc`, the Kubernetes hostname istiod would need; None if full."""
    host = service.partition("/")[2] if "/" in service else service
    if is_ip(host):
        return None
    parts = host.split(".")
    if len(parts) == 2 and all(is_dns1123_label(p) for p in parts):
        return f"{host}.svc.{cluster_domain}"
    if len(parts) == 3 and parts[2] == "svc":
        return f"{host}.{cluster_domain}"
    if len(parts) == 4 and parts[2] == "svc" and cluster_domain == "cluster.local" and parts[3] == "cluster":
        return f"{parts[0]}.{parts[1]}.svc.cluster.local"
    return None
