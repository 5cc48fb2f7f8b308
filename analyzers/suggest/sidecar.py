"""`sidecar`: an Istio Sidecar whose egress.hosts lists only what a workload (or namespace) was seen calling.

egress.hosts = `<namespace>/<service FQDN>` for every in-mesh service called, `*/<host>` for
external hosts (a ServiceEntry may live in any namespace), plus `istio-system/*` (istiod, the
telemetry and gateway services every proxy needs). Services seen fewer than `rare_requests` times
are kept, with a warning; so is a short capture (a nightly job's calls would be missing). Gateways
get none: Istio applies Sidecar resources to sidecars only.
"""

from __future__ import annotations

from analyzers.suggest import traffic as tf
from analyzers.suggest.config import SuggestConfig, service_namespace
from analyzers.suggest.messages import msg
from analyzers.suggest.model import Evidence, Setting, Suggestion, Target

PREFER = "client"
ALWAYS = ("istio-system/*",)


def egress_host(service: str, namespace: str | None, kind: str | None) -> str:
    """The Sidecar egress host entry for a destination."""
    if kind in ("external", "database", "messaging", "unknown") or not namespace:
        return f"*/{service}"
    if "." not in service:
        service = f"{service}.{namespace}.svc.cluster.local"
    return f"{namespace}/{service}"


def suggest(tr: tf.Traffic, cfg: SuggestConfig) -> list[Suggestion]:
    import numpy as np

    out: list[Suggestion] = []
    fr = tr.frame
    # The caller of a row: its source identity; for a row the caller's own proxy wrote (outbound or
    # gateway), the reporter is the caller too. An inbound row's reporter is the callee, never the caller.
    client_side = fr["direction"].isin(tf.CLIENT_SIDE).fillna(False)
    ns_col = fr["source_namespace"].fillna(fr["reporter_namespace"].where(client_side))
    # Gateways ignore Sidecar resources: their own calls (direction gateway) scope nothing.
    ns_col = ns_col.where(fr["direction"].ne("gateway").fillna(True))
    if cfg.by == "namespace":
        key = tf._factorize(ns_col)
    else:
        wl = fr["source_workload"].fillna(fr["reporter_workload"].where(client_side))
        key = tf._pair(wl, ns_col, sep="\x00")
    span_h = (tr.start.max() - tr.start.min()) / 3600 if tr.n else 0.0
    dest_ns = fr["destination_namespace"].to_numpy(dtype=object, na_value=None)
    kinds = fr["destination_kind"].to_numpy(dtype=object, na_value=None)
    svc = tr.service.codes
    for (kc,), rows in tr.groups(key):
        if kc < 0:
            continue
        label = key.labels[kc]
        if cfg.by == "namespace":
            workload, ns = None, label
        elif "\x00" in label:
            workload, ns = label.split("\x00", 1)
        else:
            continue  # a workload without a namespace: no Sidecar can be placed
        if cfg.namespace and ns != cfg.namespace:
            continue
        app = tr.first_value("source_app", rows) or workload
        s = Suggestion(kind="sidecar", target=Target(workload=workload, namespace=ns, app=app))
        hosts: dict[str, dict] = {}
        codes, counts = np.unique(svc[rows], return_counts=True)
        for c, cnt in zip(codes, counts, strict=False):
            r = rows[svc[rows] == c]
            service = tr.service.labels[int(c)]
            dns = service_namespace(service, dest_ns[r[0]] if isinstance(dest_ns[r[0]], str) else None)
            kind = kinds[r[0]] if isinstance(kinds[r[0]], str) else None
            entry = egress_host(service, dns, kind)
            h = hosts.setdefault(entry, {"host": entry, "requests": 0, "last": 0.0, "service": service})
            h["requests"] += int(cnt)
            h["last"] = max(h["last"], float(tr.start[r].max()))
        listed = sorted(hosts.values(), key=lambda x: (-x["requests"], x["host"]))
        egress = [*ALWAYS, *sorted(h["host"] for h in listed if not h["host"].startswith("istio-system/"))]
        for h in listed:
            if h["requests"] < cfg.rare_requests:
                s.messages.append(msg("SG010", host=h["host"], count=h["requests"],
                                      workload=workload or f"namespace {ns}", last=tr.iso(h["last"])))
        if span_h < 24:
            s.messages.append(msg("SG011", span=f"{span_h:.1f} h" if span_h >= 1 else f"{span_h * 60:.0f} min"))
        s.settings.append(Setting(
            "egress[0].hosts", egress,
            "every destination seen called" + (f" by {workload}" if workload else f" from namespace {ns}")
            + ", plus istio-system/*",
            [Evidence("calls", h["requests"], "requests", scope=h["host"], at=tr.iso(h["last"]),
                      note="last seen") for h in listed]))
        s.limits = egress
        s.figures = {"requests": len(rows), "hosts": [{**h, "last": tr.iso(h["last"])} for h in listed],
                     "hours": span_h}
        out.append(s)
    return out
