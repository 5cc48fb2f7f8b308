"""The message catalog of `meshctl suggest`: one stable code, level and template per finding.

Codes never change meaning; docs/suggest.md lists them. Use `msg(code, **values)`.
"""

from __future__ import annotations

from analyzers.suggest.model import Message

CATALOG: dict[str, tuple[str, str]] = {
    # code: (level, template)
    "SG001": ("warning", "only {requests} requests over {seconds:.0f} s: figures are weak, widen --since"),
    "SG002": ("warning", "no request durations: in-flight concurrency cannot be measured, "
                         "connection-pool limits are left unset"),
    "SG003": ("info", "peak in-flight {measured} is {ratio:.1f}× Little's law at the busiest second "
                      "({rps} rps × {latency_ms:.0f} ms = {little:.1f} on average): the peak comes from "
                      "sub-second bursts, which the headroom has to cover"),
    "SG004": ("warning", "host {host} failed {errors} of {requests} requests ({rate:.0%}), longest burst {burst} "
                         "errors over {seconds:.1f} s: treated as failing, its bursts do not raise the ejection "
                         "threshold"),
    "SG005": ("warning", "host {host} had a healthy-host burst of {burst} consecutive errors at {at}: "
                         "consecutive{which}Errors = {value} keeps it in; if that was an outage, lower it"),
    "SG006": ("warning", "failing host {host} showed at most {burst} consecutive errors, fewer than the "
                         "threshold {value}: it would not be ejected"),
    "SG007": ("info", "no upstream host recorded for {service}: error bursts per host cannot be measured, "
                      "outlierDetection uses Envoy's defaults"),
    "SG008": ("warning", "{count} requests to {service} ended UC (the upstream closed a kept-alive "
                         "connection): keep idleTimeout below the server's keep-alive timeout"),
    "SG009": ("info", "caller {caller} sends {share:.0%} of the requests to {service}"),
    "SG010": ("warning", "{host} was seen only {count} time(s) from {workload} (last {last}): kept in egress "
                         "hosts, check it is not a one-off"),
    "SG011": ("warning", "the data covers {span}: calls made less often (nightly jobs) are missing "
                         "from the Sidecar scope; collect a full day before applying it"),
    "SG012": ("info", "{count} requests were rejected locally in the recording ({flags}): counted as demand, "
                      "replayed with the median duration"),
    "SG013": ("info", "Linkerd has no equivalent of {what}"),
    "SG014": ("warning", "{count} rows have no destination service and were skipped"),
    "SG015": ("info", "route {route} gets {share:.0%} of {service}'s requests: its own bucket"),
    "SG017": ("warning", "{text}"),  # a problem in a --current file (e.g. the docs' misplaced listener:)
    "SG018": ("warning", "{text}"),  # a suggestion that cannot be rendered as asked
    "SG019": ("warning", "{service} is outside the mesh ({kind}): a DestinationRule applies to it only through a "
                         "ServiceEntry for that host; without one its traffic takes PassthroughCluster and these "
                         "limits do nothing"),
    "SG016": ("warning", "{service}: all {hosts} host(s) failing; maxEjectionPercent keeps traffic flowing to "
                         "{kept} of them (ejecting every host only turns errors into 503 UH)"),
}


def msg(code: str, **values: object) -> Message:
    level, template = CATALOG[code]
    return Message(code=code, level=level, text=template.format(**values))
