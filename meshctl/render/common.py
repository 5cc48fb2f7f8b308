"""Types and helpers shared by the Istio and Linkerd renderers."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from meshctl.errors import InputError

MANAGED_BY = {"app.kubernetes.io/managed-by": "meshctl"}

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_HOST = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*$")


@dataclass
class Rendered:
    """One rendered document and how it is applied."""

    obj: dict[str, Any]
    apply: str  # one line: the command that applies it
    comment: str = ""  # extra lines for the YAML comment above it
    target: str = "kubectl"  # kubectl | istioctl | helm | linkerd | annotate
    filename: str = ""  # file name used by --output-dir
    validate_as: str | None = None  # for documents that are not Kubernetes resources (see meshctl.validate)

    def comment_text(self) -> str:
        head = f"apply: {self.apply}"
        return head + ("\n" + self.comment if self.comment else "")


@dataclass
class RenderResult:
    """Everything `render istio|linkerd` produces; the command decides where each part goes."""

    resources: list[Rendered] = field(default_factory=list)  # the `kubectl apply -f -` stream
    side: list[Rendered] = field(default_factory=list)  # mesh config / Helm values: never in the kubectl stream
    notes: list[str] = field(default_factory=list)  # for stderr
    values: dict[str, Any] = field(default_factory=dict)  # the effective values

    @property
    def documents(self) -> list[dict[str, Any]]:
        return [r.obj for r in self.resources]


@dataclass(frozen=True)
class Collector:
    """An OTLP collector address as Istio wants it: `service` ([ns/]fqdn) and `port`."""

    host: str  # the DNS name (fqdn when the input was a short Kubernetes name)
    port: int
    namespace: str | None  # explicit `ns/` prefix, or the namespace part of a short name
    expanded_from: str | None = None

    @property
    def service(self) -> str:
        """The `service` value istiod looks up (`LookupCluster`): `[ns/]hostname`."""
        return self.host

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def parse_collector(text: str, *, cluster_domain: str = "cluster.local", field_name: str = "collector") -> Collector:
    """`[ns/]host:port` -> Collector. Short Kubernetes names are expanded to FQDNs.

    istiod resolves a provider's `service` against its service registry by exact hostname, so
    `otel.observability` (what `kubectl` users type) would silently disable tracing: it is expanded to
    `otel.observability.svc.cluster.local`. `name` alone is ambiguous (which namespace?) and rejected.
    """
    raw = text.strip()
    ns: str | None = None
    rest = raw
    if "/" in raw:
        ns, _, rest = raw.partition("/")
        if not _DNS_LABEL.match(ns):
            raise InputError(f"{raw!r}: the part before '/' must be a namespace (a DNS label), not {ns!r}",
                             field=field_name, hint="istiod reads `service` as [<namespace>/]<hostname>")
    host, sep, port_s = rest.rpartition(":")
    if not sep or not host:
        raise InputError(f"{raw!r} is not HOST:PORT", field=field_name, hint="e.g. otel-collector.observability:4317")
    if not port_s.isdigit() or not 1 <= int(port_s) <= 65535:
        raise InputError(f"{raw!r}: port must be 1..65535, not {port_s!r}", field=field_name)
    if not _HOST.match(host) or len(host) > 253:
        raise InputError(f"{raw!r}: {host!r} is not a DNS host name", field=field_name)
    host_l = host.lower()
    labels = host_l.split(".")
    expanded_from = None
    suffix = f"svc.{cluster_domain}"
    if len(labels) == 1:
        if ns is None:
            raise InputError(
                f"{raw!r}: a bare service name is ambiguous (which namespace?)", field=field_name,
                hint=f"write {host_l}.<namespace>:{port_s} (expanded to {host_l}.<namespace>.{suffix})",
            )
        host_l, expanded_from = f"{host_l}.{ns}.{suffix}", host
    elif len(labels) == 2 and _DNS_LABEL.match(labels[1]):
        host_l, expanded_from = f"{host_l}.{suffix}", host
        ns = ns or labels[1]
    elif len(labels) == 3 and labels[2] == "svc":
        host_l, expanded_from = f"{host_l}.{cluster_domain}", host
        ns = ns or labels[1]
    elif host_l.endswith("." + suffix):
        ns = ns or labels[1]
    return Collector(host=host_l, port=int(port_s), namespace=ns, expanded_from=expanded_from)


def selector_name(selector: dict[str, str]) -> str:
    """A DNS-1123 name from selector values (`app=reviews,version=v2` -> `reviews-v2`)."""
    parts = [re.sub(r"[^a-z0-9-]+", "-", v.lower()).strip("-") for v in selector.values()]
    name = "-".join(p for p in parts if p)[:50].strip("-")
    return name or "workload"
