"""Istio mesh config as lint sees it: found in whatever form it came in, merged like istiod merges it.

Mesh config lives in several places, all of which `meshctl lint` reads:

| form | where |
|---|---|
| IstioOperator (istioctl input) | `spec.meshConfig` (and `spec.values.meshConfig`), `spec.values.pilot.traceSampling` |
| istiod Helm values | top-level `meshConfig`, `pilot.traceSampling` (or `values.pilot...` in an IOP spec fragment) |
| the `istio` ConfigMap | `data.mesh`, a YAML string (parsed with its own line numbers) |
| a bare MeshConfig fragment | a document whose top-level keys are MeshConfig fields (`extensionProviders`, ...) |

Sources are merged in input order the way istiod applies a mesh config over its defaults:
`extensionProviders` are merged by name (a later definition replaces an earlier one), each
`defaultProviders` list replaces the earlier one, `defaultConfig` is merged key by key, every other
field is replaced. Istio's built-in providers (`prometheus`, `stackdriver`, `envoy`) are always
defined. Provider names are looked up case-insensitively, as istiod does.

Field names are accepted in lowerCamel or proto snake_case, as Istio's jsonpb decoder accepts both.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from meshctl.lint.loader import Document, Path, parse_text

SIGNALS = ("tracing", "accessLogging", "metrics")

# Top-level MeshConfig fields (istio.mesh.v1alpha1.MeshConfig), used to recognise bare fragments.
MESH_FIELDS = frozenset(str.split("""
proxyListenPort proxyInboundListenPort proxyHttpPort connectTimeout hboneIdleTimeout protocolDetectionTimeout
tcpKeepalive ingressClass ingressService ingressControllerMode ingressSelector enableTracing accessLogFile
accessLogFormat accessLogEncoding enableEnvoyAccessLogService disableEnvoyListenerLog defaultConfig
outboundTrafficPolicy inboundTrafficPolicy configSources enableAutoMtls trustDomain trustDomainAliases
caCertificates defaultServiceExportTo defaultVirtualServiceExportTo defaultDestinationRuleExportTo rootNamespace
localityLbSetting dnsRefreshRate h2UpgradePolicy inboundClusterStatName outboundClusterStatName certificates
serviceSettings serviceScopeConfigs enablePrometheusMerge verifyCertificateAtClient ca extensionProviders
defaultProviders discoverySelectors pathNormalization defaultHttpRetryPolicy meshMTLS tlsDefaults
"""))
# Fields that make a kindless document a mesh config fragment on their own.
_MESH_MARKERS = frozenset({"extensionProviders", "extension_providers", "defaultProviders", "default_providers",
                           "defaultConfig", "default_config", "enableTracing", "enable_tracing", "accessLogFile",
                           "access_log_file", "rootNamespace", "root_namespace", "trustDomain", "trust_domain"})


@dataclass(frozen=True)
class ProviderType:
    field: str  # lowerCamel field name in MeshConfig.ExtensionProvider
    label: str
    signals: frozenset[str]  # which Telemetry sections it can serve
    status: str | None = None  # why it is deprecated / does nothing, if so


PROVIDER_TYPES: dict[str, ProviderType] = {t.field: t for t in [
    ProviderType("opentelemetry", "opentelemetry (tracing)", frozenset({"tracing"})),
    ProviderType("zipkin", "zipkin", frozenset({"tracing"})),
    ProviderType("datadog", "datadog", frozenset({"tracing"})),
    ProviderType("skywalking", "skywalking", frozenset({"tracing"})),
    ProviderType("lightstep", "lightstep", frozenset(),
                 "is deprecated: istiod only logs a warning and configures no tracer for it"),
    ProviderType("opencensus", "opencensus", frozenset(), "was removed from Istio's tracing (no tracer is built)"),
    ProviderType("stackdriver", "stackdriver", frozenset(),
                 "no longer produces metrics, logs or traces in current Istio releases"),
    ProviderType("prometheus", "prometheus", frozenset({"metrics"})),
    ProviderType("envoyFileAccessLog", "envoyFileAccessLog", frozenset({"accessLogging"})),
    ProviderType("envoyHttpAls", "envoyHttpAls", frozenset({"accessLogging"})),
    ProviderType("envoyTcpAls", "envoyTcpAls", frozenset({"accessLogging"})),
    ProviderType("envoyOtelAls", "envoyOtelAls (OpenTelemetry access log)", frozenset({"accessLogging"})),
    ProviderType("envoyExtAuthzHttp", "envoyExtAuthzHttp (external authorization)", frozenset()),
    ProviderType("envoyExtAuthzGrpc", "envoyExtAuthzGrpc (external authorization)", frozenset()),
    ProviderType("sds", "sds", frozenset()),
]}
# Provider types whose `service`/`port` name a collector or server istiod builds a cluster for.
SERVICE_PROVIDERS = frozenset({"opentelemetry", "zipkin", "datadog", "skywalking", "lightstep", "opencensus",
                               "envoyHttpAls", "envoyTcpAls", "envoyOtelAls", "envoyExtAuthzHttp",
                               "envoyExtAuthzGrpc"})
BUILTIN_PROVIDERS = {
    "prometheus": ("prometheus", {}),
    "stackdriver": ("stackdriver", {}),
    "envoy": ("envoyFileAccessLog", {"path": "/dev/stdout"}),
}

_CAMEL = re.compile(r"_([a-z0-9])")


def snake(name: str) -> str:
    return re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), name)


def camel(name: str) -> str:
    return _CAMEL.sub(lambda m: m.group(1).upper(), name)


def g(m: Any, name: str, default: Any = None) -> Any:
    """Field `name` (lowerCamel) of a proto-JSON mapping, also under its snake_case name."""
    if not isinstance(m, Mapping):
        return default
    if name in m:
        return m[name]
    alt = snake(name)
    return m.get(alt, default)


def key_of(m: Any, name: str) -> str:
    """The spelling of `name` the mapping actually uses (for paths and line numbers)."""
    if isinstance(m, Mapping) and name not in m and snake(name) in m:
        return snake(name)
    return name


@dataclass
class MeshSource:
    """One place the input defines mesh config."""

    doc: Document  # the document that holds it (the ConfigMap for `data.mesh`)
    form: str  # "IstioOperator", "istiod Helm values", "istio ConfigMap", "MeshConfig"
    config: Mapping[str, Any]
    prefix: Path  # where the mesh config mapping sits in doc.obj
    inner: Document | None = None  # the parsed `data.mesh` string, with file line numbers
    trace_sampling: tuple[Any, Path] | None = None  # pilot.traceSampling value and its path in doc.obj
    cluster_domain: str | None = None

    def line_of(self, sub: Path = ()) -> int:
        if self.inner is not None:
            return self.inner.line_of(tuple(sub)) if sub else self.doc.line_of(self.prefix)
        return self.doc.line_of((*self.prefix, *sub))

    def path(self, sub: Path = ()) -> Path:
        return (*self.prefix, *sub)

    @property
    def label(self) -> str:
        if self.doc.is_resource:
            return f"{self.form} {self.doc.name or ''}".strip()
        return self.form


@dataclass
class Provider:
    name: str
    ptype: str | None  # lowerCamel provider field, None when the entry has none
    settings: Any  # the provider's own mapping (e.g. the `opentelemetry:` value)
    index: int  # position in its extensionProviders list
    source: MeshSource | None  # None for Istio's built-in providers
    types: list[str] = field(default_factory=list)  # every provider field set (more than one is an error)

    @property
    def builtin(self) -> bool:
        return self.source is None

    @property
    def type_info(self) -> ProviderType | None:
        return PROVIDER_TYPES.get(self.ptype) if self.ptype else None

    def sub(self, *rest: Any) -> Path:
        """Path (inside the mesh config) of a field of this provider."""
        base: Path = (key_of(self.source.config if self.source else {}, "extensionProviders"), self.index)
        if rest and self.ptype and self.source is not None:
            entry = self.source.config[base[0]][self.index]
            return (*base, key_of(entry, self.ptype), *rest)
        return base


@dataclass
class MeshView:
    """The merged mesh config of the input (plus Istio's built-in providers)."""

    sources: list[MeshSource] = field(default_factory=list)
    providers: dict[str, Provider] = field(default_factory=dict)  # lower-case name -> effective provider
    defaults: dict[str, tuple[list[str], MeshSource]] = field(default_factory=dict)  # signal -> names, source
    proxy_tracing: dict[str, Any] = field(default_factory=dict)  # merged defaultConfig.tracing
    root_namespace: str = "istio-system"
    cluster_domain: str = "cluster.local"

    @property
    def known(self) -> bool:
        return bool(self.sources)

    def provider(self, name: str) -> Provider | None:
        return self.providers.get(str(name).lower())

    def defined_names(self) -> str:
        names = sorted(p.name for p in self.providers.values())
        return "defined: " + ", ".join(names) if names else "none defined"

    def default_names(self, signal: str) -> list[str]:
        return list(self.defaults.get(signal, ([], None))[0])


def providers_of(source: MeshSource) -> list[Provider]:
    """The extensionProviders entries of one source, in order (malformed entries included)."""
    out = []
    entries = g(source.config, "extensionProviders")
    if not isinstance(entries, list):
        return out
    for i, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            out.append(Provider(name="", ptype=None, settings=None, index=i, source=source))
            continue
        types = [t for t in PROVIDER_TYPES if g(entry, t) is not None]
        # `prometheus: {}` is a provider; `prometheus:` (null) is not.
        ptype = types[0] if types else None
        out.append(Provider(name=str(entry.get("name") or ""), ptype=ptype,
                            settings=g(entry, ptype) if ptype else None, index=i, source=source, types=types))
    return out


def merge(sources: list[MeshSource]) -> MeshView:
    view = MeshView(sources=list(sources))
    for name, (ptype, settings) in BUILTIN_PROVIDERS.items():
        view.providers[name] = Provider(name=name, ptype=ptype, settings=settings, index=-1, source=None,
                                        types=[ptype])
    for src in sources:
        for p in providers_of(src):
            if p.name:
                view.providers[p.name.lower()] = p
        dp = g(src.config, "defaultProviders")
        if isinstance(dp, Mapping):
            for signal in SIGNALS:
                names = g(dp, signal)
                if isinstance(names, list):
                    view.defaults[signal] = ([str(n) for n in names], src)
        dc = g(src.config, "defaultConfig")
        if isinstance(dc, Mapping) and isinstance(g(dc, "tracing"), Mapping):
            view.proxy_tracing.update(g(dc, "tracing"))
        root = g(src.config, "rootNamespace")
        if isinstance(root, str) and root:
            view.root_namespace = root
        if src.cluster_domain:
            view.cluster_domain = src.cluster_domain
    return view


def _dig(m: Any, *keys: str) -> Any:
    for k in keys:
        if not isinstance(m, Mapping):
            return None
        m = m.get(k)
    return m


def find_sources(doc: Document, text: str | None = None, *, mesh_file: bool = False) -> tuple[list[MeshSource], list[str]]:
    """Mesh config sources in one document, and problems reading an embedded one.

    `text` is the file's text (to place `data.mesh` lines); `mesh_file` marks input given with
    `--mesh-config`, where any kindless mapping is taken as MeshConfig."""
    obj = doc.obj
    if not isinstance(obj, Mapping):
        return [], []
    kind, api = doc.kind, doc.api_version
    out: list[MeshSource] = []
    if kind == "IstioOperator" and api.startswith("install.istio.io/"):
        spec = doc.spec
        values = spec.get("values") if isinstance(spec.get("values"), Mapping) else {}
        ts = _dig(values, "pilot", "traceSampling")
        domain = _dig(values, "global", "proxy", "clusterDomain")
        for prefix in (("spec", "meshConfig"), ("spec", "values", "meshConfig")):
            mc = doc.get(prefix)
            if isinstance(mc, Mapping):
                out.append(MeshSource(doc, "IstioOperator", mc, prefix))
        if not out and (ts is not None or domain):
            out.append(MeshSource(doc, "IstioOperator", {}, ("spec", "meshConfig")))
        for s in out[:1]:
            s.trace_sampling = (ts, ("spec", "values", "pilot", "traceSampling")) if ts is not None else None
        for s in out:
            s.cluster_domain = domain if isinstance(domain, str) else None
        return out, []
    if kind == "ConfigMap" and api == "v1":
        name = doc.name or ""
        data = obj.get("data")
        if (name == "istio" or name.startswith("istio-")) and isinstance(data, Mapping) and "mesh" in data:
            return _configmap_source(doc, data["mesh"], text)
        return [], []
    if doc.is_resource or "apiVersion" in obj or "kind" in obj:
        return [], []
    # Kindless: istiod Helm values, an IOP spec fragment, or a bare MeshConfig.
    mc = obj.get("meshConfig")
    if isinstance(mc, Mapping):
        pilot_path = ("values", "pilot", "traceSampling") if isinstance(obj.get("values"), Mapping) else ("pilot", "traceSampling")
        glob_path = ("values", "global", "proxy", "clusterDomain") if isinstance(obj.get("values"), Mapping) else ("global", "proxy", "clusterDomain")
        ts = doc.get(pilot_path)
        domain = doc.get(glob_path)
        src = MeshSource(doc, "istiod Helm values", mc, ("meshConfig",),
                         trace_sampling=(ts, pilot_path) if ts is not None else None,
                         cluster_domain=domain if isinstance(domain, str) else None)
        return [src], []
    keys = {str(k) for k in obj}
    if keys & _MESH_MARKERS or (mesh_file and keys and all(camel(k) in MESH_FIELDS for k in keys)):
        return [MeshSource(doc, "MeshConfig", obj, ())], []
    ts = doc.get(("pilot", "traceSampling"))
    if ts is not None:
        return [MeshSource(doc, "istiod Helm values", {}, ("meshConfig",), trace_sampling=(ts, ("pilot", "traceSampling")))], []
    return [], []


def _configmap_source(doc: Document, mesh: Any, text: str | None) -> tuple[list[MeshSource], list[str]]:
    from meshctl.lint.loader import block_scalar_offset

    if mesh is None:
        return [MeshSource(doc, "istio ConfigMap", {}, ("data", "mesh"))], []
    if not isinstance(mesh, str):
        return [], [f"data.mesh is a {type(mesh).__name__}, not a YAML string"]
    offset = block_scalar_offset(text, doc, ("data", "mesh")) if text is not None else None
    loaded = parse_text(mesh, doc.file, line_offset=offset if offset is not None else doc.line_of(("data", "mesh")) - 1)
    if loaded.syntax:
        p = loaded.syntax[0]
        return [], [f"{p.problem} (line {p.line})"]
    if not loaded.documents:
        return [MeshSource(doc, "istio ConfigMap", {}, ("data", "mesh"))], []
    inner = loaded.documents[0]
    if not isinstance(inner.obj, Mapping):
        return [], [f"it holds a {type(inner.obj).__name__}"]
    if offset is None:  # a quoted or plain scalar: point every field at the `mesh:` key
        inner.lines = {}
        inner.line = doc.line_of(("data", "mesh"))
    return [MeshSource(doc, "istio ConfigMap", inner.obj, ("data", "mesh"), inner=inner)], []
