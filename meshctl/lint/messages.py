"""The one message catalog of `meshctl lint`: stable codes, severities and message templates.

Like istioctl's IST0xxx catalog, every finding comes from an entry here, so the output, the
documentation (docs/lint.md) and the tests never drift apart. Codes are never reused: a retired check
keeps its number. Ranges:

    MSH00xx  input: YAML syntax, duplicate keys/objects, placeholders, structural schema
    MSH01xx  mesh config: extension providers and the references to them
    MSH02xx  trace sampling
    MSH03xx  Telemetry resources
    MSH04xx  Envoy access-log format strings (%...% command operators)
    MSH05xx  EnvoyFilter
    MSH06xx  deprecated or removed fields and kinds
    MSH07xx  Linkerd
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ERROR = "Error"
WARNING = "Warning"
INFO = "Info"
SEVERITIES = (ERROR, WARNING, INFO)  # most severe first
_RANK = {ERROR: 0, WARNING: 1, INFO: 2}


def severity_rank(severity: str) -> int:
    """0 for Error, 1 for Warning, 2 for Info (sort key; lower is more severe)."""
    return _RANK[severity]


@dataclass(frozen=True)
class Message:
    code: str
    name: str
    severity: str
    template: str  # str.format template; parameters are passed by the rule
    description: str  # one line for `meshctl lint --list` and the docs

    def render(self, params: dict[str, Any]) -> str:
        return self.template.format(**params)


_ENTRIES = [
    # ---- input ------------------------------------------------------------------------------------
    Message("MSH0001", "YamlSyntaxError", ERROR,
            "not parseable YAML: {problem}",
            "The document is not valid YAML (bad quoting, broken indentation, tabs...)."),
    Message("MSH0002", "DuplicateKey", ERROR,
            "key {key!r} appears twice in one mapping (first at line {first}); only one of the values survives "
            "and kubectl/istiod reject or silently drop the other",
            "A mapping repeats a key."),
    Message("MSH0003", "DuplicateObject", WARNING,
            "{resource} is defined {count} times in the input (also at {others}); applied together, the last "
            "definition replaces the others",
            "The same kind/namespace/name appears more than once in the input."),
    Message("MSH0004", "SchemaViolation", ERROR,
            "{reason} ({check}{origin})",
            "The document violates the structural schema of its kind (CRD, MeshConfig, chart values) or the Envoy "
            "API types of an EnvoyFilter patch (meshctl.validate)."),
    Message("MSH0005", "EmbeddedMeshConfigUnreadable", ERROR,
            "the mesh config in {where} is not a YAML mapping: {problem}; istiod cannot load it",
            "The `mesh` key of the istio ConfigMap is not a readable YAML mapping."),
    Message("MSH0006", "PlaceholderValue", WARNING,
            "{field} is the placeholder {value!r}, apparently copied from documentation",
            "A value such as <CLIENT-HEADER> was never replaced by a real one."),
    Message("MSH0007", "NoSchemaForVersion", WARNING,
            "no schema for {api_version} {kind}{hint}; the API server will not accept this apiVersion",
            "An Istio/Linkerd kind is used with an apiVersion the loaded schemas do not serve."),
    Message("MSH0008", "InputNotChecked", INFO,
            "{what}; {why}",
            "Part of the input could not be checked (no mesh config, not a Kubernetes object...)."),
    # ---- mesh config and extension providers ----------------------------------------------------------
    Message("MSH0101", "UnknownProvider", ERROR,
            "{section} names provider {provider!r}, which no extensionProvider defines ({defined}); istiod "
            "skips it and {effect}",
            "A Telemetry names a provider that meshConfig.extensionProviders does not define."),
    Message("MSH0102", "UnknownDefaultProvider", ERROR,
            "defaultProviders.{section} names provider {provider!r}, which no extensionProvider defines "
            "({defined}); {effect}",
            "meshConfig.defaultProviders names an undefined provider."),
    Message("MSH0103", "ProviderCannotServe", ERROR,
            "{section} uses provider {provider!r} of type {ptype}, which {why}; {effect}",
            "A provider is used for a signal it does not produce (e.g. an access-log provider for tracing)."),
    Message("MSH0104", "MultipleDefaultTracingProviders", WARNING,
            "defaultProviders.tracing lists {count} providers ({names}); istiod uses only the first, {first!r}",
            "Several default tracing providers: only the first one is used."),
    Message("MSH0105", "MultipleTracingProviders", WARNING,
            "{section} lists {count} providers ({names}); Istio supports one tracing provider per entry and "
            "uses only the first, {first!r}",
            "A Telemetry tracing entry lists several providers: only the first one is used."),
    Message("MSH0106", "OtlpHttpWithoutTimeout", ERROR,
            "provider {provider!r} exports OTLP over HTTP without http.timeout; istiod passes the unset timeout "
            "to Envoy, whose HttpUri requires one, so the proxies reject the tracing config",
            "An OpenTelemetry provider uses http without a timeout."),
    Message("MSH0107", "InvalidProviderService", ERROR,
            "provider {provider!r} service {service!r} is not [<namespace>/]<hostname>: {reason}; istiod's "
            "mesh config validation rejects it",
            "An extension provider's service is not a hostname in istiod's [<ns>/]<fqdn> form."),
    Message("MSH0108", "ProviderServiceNotFound", ERROR,
            "provider {provider!r} points at {service!r}, which matches no {searched}{hint}; istiod cannot "
            "build the collector cluster and {effect}",
            "An extension provider's service is not a Service or ServiceEntry host (input or cluster)."),
    Message("MSH0109", "ProviderPortNotExposed", ERROR,
            "provider {provider!r} sends to port {port} of {host}, which only exposes {ports}; the proxies send "
            "to a cluster that does not exist and the data is dropped",
            "An extension provider's port is not a port of its Service."),
    Message("MSH0110", "ProviderServiceNotFqdn", WARNING,
            "provider {provider!r} service {service!r} is not a full hostname; istiod looks services up by "
            "their exact hostname, so it matches a Kubernetes Service only as {suggestion!r}",
            "An extension provider's service is a short name that matches no Kubernetes Service hostname."),
    Message("MSH0111", "DuplicateProviderName", ERROR,
            "extensionProvider name {provider!r} is defined {count} times; istiod rejects the mesh config",
            "Two extension providers share a name."),
    Message("MSH0112", "MalformedProvider", ERROR,
            "extensionProvider {provider!r}: {problem}; istiod rejects the mesh config",
            "An extension provider has no name, no provider settings, several provider types, or a bad port."),
    Message("MSH0113", "OtlpGrpcAndHttp", ERROR,
            "provider {provider!r} sets both grpc and http; istiod rejects the mesh config",
            "An OpenTelemetry provider sets both grpc and http."),
    Message("MSH0114", "DeprecatedProviderType", WARNING,
            "provider {provider!r} is of type {ptype}, which {status}; use an opentelemetry provider",
            "An extension provider type that Istio deprecated or removed (lightstep, opencensus)."),
    Message("MSH0115", "SamplerOverridesPercentage", INFO,
            "{section} sets randomSamplingPercentage {value} but provider {provider!r} has a {sampler}: Istio "
            "sends every span to the sampler and ignores the percentage",
            "A sampling percentage that a provider's custom OpenTelemetry sampler overrides."),
    Message("MSH0116", "DynatraceSamplerWithoutHttp", ERROR,
            "provider {provider!r} has a dynatrace sampler but neither http nor dynatrace_sampler.http_service; "
            "istiod cannot configure its tracing",
            "A Dynatrace sampler with nowhere to fetch its configuration from."),
    Message("MSH0117", "ProviderServiceNotChecked", INFO,
            "provider {provider!r} points at {service!r}; not checked: {why}",
            "The collector Service could not be checked (none in its namespace in the input, external host)."),
    # ---- sampling -------------------------------------------------------------------------------------
    Message("MSH0201", "ProxySamplingAbove100", ERROR,
            "{field} is {value}; istiod treats values above 100 as invalid and samples 1% instead",
            "meshConfig.defaultConfig.tracing.sampling above 100 silently becomes 1%."),
    Message("MSH0202", "SamplingOutOfRange", ERROR,
            "{field} is {value}; a sampling percentage must be between 0 and 100{consequence}",
            "A sampling percentage below 0 or above 100."),
    Message("MSH0203", "ProxySamplingZero", WARNING,
            "{field} is 0, which istiod reads as unset: PILOT_TRACE_SAMPLING (default 1%) applies, not 0%; to "
            "stop sampling use a Telemetry with randomSamplingPercentage: 0",
            "meshConfig.defaultConfig.tracing.sampling 0 does not turn sampling off."),
    # ---- Telemetry ------------------------------------------------------------------------------------
    Message("MSH0301", "DuplicateMeshWideTelemetry", ERROR,
            "{count} Telemetry resources in the root namespace {namespace!r} have no selector or targetRef "
            "({names}); istiod applies only the oldest one mesh-wide and silently ignores the others",
            "Several mesh-wide (root namespace, selector-less) Telemetry resources."),
    Message("MSH0302", "DuplicateNamespaceTelemetry", WARNING,
            "{count} Telemetry resources in namespace {namespace!r} have no selector or targetRef ({names}); "
            "istiod uses only the oldest one for the namespace",
            "Several selector-less Telemetry resources in one namespace."),
    Message("MSH0303", "EntryWithoutProvider", WARNING,
            "{section} names no provider and {why}; {effect}",
            "A Telemetry entry without providers whose settings are ignored or that inherits no provider."),
    Message("MSH0304", "InvalidCustomTag", WARNING,
            "{section}: {problem}",
            "A tracing custom tag that can never carry a value (invalid header name, empty literal...)."),
    Message("MSH0305", "MalformedAccessLogFilter", ERROR,
            "{section} filter.expression is not a well-formed CEL expression: {problem}; Envoy rejects the "
            "access-log config",
            "An access-log filter whose CEL expression does not parse (unbalanced quotes or brackets)."),
    Message("MSH0306", "TelemetryMatchesNoWorkload", WARNING,
            "selector {selector} matches none of the {count} Pods or workload templates the input has in "
            "namespace {namespace!r}; the Telemetry applies to nothing",
            "A Telemetry selector that selects no Pod of the input."),
    # ---- Envoy format strings ---------------------------------------------------------------------------
    Message("MSH0401", "UnknownFormatOperator", ERROR,
            "{field}: %{operator}% is not an Envoy command operator{hint}; Envoy rejects the access-log config "
            "and with it the listener update",
            "An access-log format string uses a %...% operator Envoy does not know."),
    Message("MSH0402", "MalformedFormatOperator", ERROR,
            "{field}: {problem}; Envoy rejects the access-log config",
            "A %...% operator with a missing or unexpected argument, or an unterminated %."),
    # ---- EnvoyFilter -----------------------------------------------------------------------------------
    Message("MSH0501", "EnvoyFilterMisplacedMatch", ERROR,
            "configPatches[{index}] has {key!r} next to patch instead of under match:; the API server prunes it "
            "and the patch applies to every {scope}",
            "A match field (listener, routeConfiguration, cluster, context, proxy) outside match:."),
    Message("MSH0502", "EnvoyFilterUnknownFilterName", ERROR,
            "configPatches[{index}] matches filter {filter!r}, which is neither an Envoy or Istio filter nor added "
            "by an EnvoyFilter in the input{hint}; the patch matches nothing and is skipped silently",
            "An EnvoyFilter patch matches a filter name that does not exist."),
    Message("MSH0503", "EnvoyFilterDeprecatedFilterName", WARNING,
            "configPatches[{index}] matches the deprecated filter name {filter!r}; use {canonical!r}",
            "An EnvoyFilter patch uses a deprecated filter name."),
    Message("MSH0504", "EnvoyFilterHttpFilterOutsideHcm", ERROR,
            "configPatches[{index}] applies to HTTP_FILTER but matches network filter {filter!r}; HTTP filters "
            "exist only inside envoy.filters.network.http_connection_manager, so the patch matches nothing",
            "An HTTP_FILTER patch whose filterChain.filter is not the HTTP connection manager."),
    Message("MSH0505", "EnvoyFilterRelativeOperation", WARNING,
            "configPatches[{index}] uses {operation} without a priority; the result depends on the creation order "
            "of EnvoyFilters{extra}",
            "A relative patch operation (INSERT_BEFORE/AFTER, REPLACE, REMOVE) without spec.priority."),
    Message("MSH0506", "EnvoyFilterOperationIgnored", ERROR,
            "configPatches[{index}]: {operation} is not supported for applyTo {apply_to}; istiod ignores the patch",
            "A patch operation the applyTo target does not support (e.g. ADD on HTTP_ROUTE)."),
    Message("MSH0507", "EnvoyFilterRemovedField", ERROR,
            "{field} was removed from EnvoyFilter (Istio 1.x v1alpha3 keeps only workloadSelector, configPatches, "
            "priority, targetRefs); the API server prunes it and the filter does nothing",
            "Pre-1.4 EnvoyFilter fields (workloadLabels, filters)."),
    # ---- deprecated ------------------------------------------------------------------------------------
    Message("MSH0601", "DeprecatedField", WARNING,
            "{field} is deprecated: {detail}",
            "A deprecated field whose meaning surprises (e.g. outlierDetection.consecutiveErrors)."),
    Message("MSH0602", "RemovedKind", ERROR,
            "{api_version} {kind} is no longer served by Istio; the object is rejected or ignored",
            "A custom resource kind that Istio removed (rbac.istio.io, config.istio.io, ...)."),
    # ---- Linkerd ---------------------------------------------------------------------------------------
    Message("MSH0701", "LinkerdTracingWithoutEndpoint", ERROR,
            "{field}.enabled is true but {field}.collector.endpoint is empty; no spans are exported",
            "Linkerd tracing enabled without a collector endpoint."),
    Message("MSH0702", "LinkerdBadCollectorEndpoint", ERROR,
            "{field} {value!r} {problem}",
            "A Linkerd collector endpoint that is not host:port."),
    Message("MSH0703", "LinkerdOtlpHttpEndpoint", WARNING,
            "{field} {value!r} looks like an OTLP/HTTP endpoint; Linkerd proxies export OTLP over gRPC only "
            "(usually port 4317)",
            "A Linkerd collector endpoint on the OTLP/HTTP port or with an http(s):// scheme."),
    Message("MSH0704", "LinkerdJaegerValues", INFO,
            "values of the linkerd-jaeger extension ({keys}); the extension was removed in Linkerd 2.19 and edge "
            "releases since 25.10: set proxy.tracing.* in the linkerd-control-plane chart instead",
            "Helm values for the removed linkerd-jaeger extension."),
    Message("MSH0705", "LinkerdAccessLogAnnotation", ERROR,
            "annotation config.linkerd.io/access-log is {value!r}; the proxy accepts only apache or json",
            "An unsupported Linkerd access-log annotation value."),
    Message("MSH0706", "LinkerdCollectorNotFound", ERROR,
            "{field} {value!r} matches no {searched}; the proxies cannot reach the collector",
            "A Linkerd collector endpoint that names no Service of the input or cluster."),
    Message("MSH0707", "LinkerdCollectorWithoutIdentity", WARNING,
            "proxy.tracing.collector.meshIdentity is not set; Linkerd needs the collector's service account and "
            "namespace to verify it over mTLS",
            "Linkerd tracing without the collector's mesh identity."),
]

CATALOG: dict[str, Message] = {m.code: m for m in _ENTRIES}
assert len(CATALOG) == len(_ENTRIES), "duplicate message code"


@dataclass
class Finding:
    """One problem: a catalog message about one object, with where it is."""

    code: str
    name: str
    severity: str
    message: str
    rule: str
    kind: str | None = None
    namespace: str | None = None
    object: str | None = None  # metadata.name, or a label for non-resources ("values")
    file: str | None = None
    line: int | None = None
    path: str | None = None  # field inside the object, JSON-path style: $.spec.tracing[0]
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def resource(self) -> str:
        """`Kind namespace/name`, as istioctl prints it."""
        if not self.kind:
            return self.object or "-"
        if self.namespace and self.object:
            return f"{self.kind} {self.namespace}/{self.object}"
        return f"{self.kind} {self.object}" if self.object else self.kind

    @property
    def location(self) -> str:
        if not self.file:
            return "-"
        return f"{self.file}:{self.line}" if self.line else self.file

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code, "name": self.name, "severity": self.severity, "message": self.message,
            "resource": self.resource, "kind": self.kind, "namespace": self.namespace, "object": self.object,
            "file": self.file, "line": self.line, "path": self.path, "rule": self.rule,
        }

    def __str__(self) -> str:
        return f"{self.severity} [{self.code}] ({self.resource}) {self.location}: {self.message}"
