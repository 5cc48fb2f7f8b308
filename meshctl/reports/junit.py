"""JUnit XML reports, the format every CI system renders (GitHub, GitLab, Jenkins, Azure).

`render_junit(suites)` writes any list of `JUnitSuite`s; `canary_suite(result)` turns a canary
judgment into one: a test case per metric and per threshold, and a `verdict` case that fails unless
the rollout passed, so a pipeline that only reads JUnit still gates on the verdict.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape, quoteattr


@dataclass
class JUnitCase:
    name: str
    classname: str
    status: str = "passed"  # passed | failure | error | skipped
    message: str = ""
    kind: str = ""  # the failure/error type attribute
    details: str = ""
    time: float = 0.0


@dataclass
class JUnitSuite:
    name: str
    cases: list[JUnitCase] = field(default_factory=list)
    properties: dict[str, str] = field(default_factory=dict)
    time: float = 0.0


def _clean(text: str) -> str:
    # XML 1.0 forbids most control characters even when escaped.
    return "".join(ch for ch in text if ch in "\t\n\r" or ord(ch) >= 0x20)


def render_junit(suites: list[JUnitSuite]) -> str:
    def count(s: JUnitSuite, status: str) -> int:
        return sum(1 for c in s.cases if c.status == status)

    out = ['<?xml version="1.0" encoding="UTF-8"?>']
    total = sum(len(s.cases) for s in suites)
    fails = sum(count(s, "failure") for s in suites)
    errors = sum(count(s, "error") for s in suites)
    skipped = sum(count(s, "skipped") for s in suites)
    out.append(f'<testsuites tests="{total}" failures="{fails}" errors="{errors}" skipped="{skipped}">')
    for s in suites:
        out.append(f'  <testsuite name={quoteattr(_clean(s.name))} tests="{len(s.cases)}" '
                   f'failures="{count(s, "failure")}" errors="{count(s, "error")}" skipped="{count(s, "skipped")}" '
                   f'time="{s.time:.3f}">')
        if s.properties:
            out.append("    <properties>")
            for k, v in s.properties.items():
                out.append(f"      <property name={quoteattr(_clean(k))} value={quoteattr(_clean(str(v)))}/>")
            out.append("    </properties>")
        for c in s.cases:
            head = f"    <testcase name={quoteattr(_clean(c.name))} classname={quoteattr(_clean(c.classname))} " \
                   f'time="{c.time:.3f}"'
            if c.status == "passed" and not c.details:
                out.append(head + "/>")
                continue
            out.append(head + ">")
            if c.status in ("failure", "error"):
                out.append(f"      <{c.status} message={quoteattr(_clean(c.message))} type={quoteattr(_clean(c.kind))}>"
                           f"{escape(_clean(c.details))}</{c.status}>")
            elif c.status == "skipped":
                out.append(f"      <skipped message={quoteattr(_clean(c.message))}/>")
            if c.details and c.status in ("passed", "skipped"):
                out.append(f"      <system-out>{escape(_clean(c.details))}</system-out>")
            out.append("    </testcase>")
        out.append("  </testsuite>")
    out.append("</testsuites>")
    return "\n".join(out) + "\n"


def canary_suite(result: Any, marginal_as: str = "inconclusive") -> JUnitSuite:
    from meshctl.reports import canary_format as f

    svc = result.cohorts.get("service") or "metrics"
    kind = "bluegreen" if result.kind == "bluegreen" else "canary"
    classname = f"meshctl.{kind}.{svc}"
    suite = JUnitSuite(f"meshctl analyze {kind}: {svc}", properties={
        "verdict": result.verdict, "score": f"{result.score:g}", "judge": result.judge})
    for m in result.metrics:
        details = "\n".join([
            f"{result.labels[0]}: {f.value(m, 'baseline')}",
            f"{result.labels[1]}: {f.value(m, 'canary')}",
            f"effect: {f.effect(m)}; p-value {f.p_value(m)}; CI {f.ci(m)}; power {f.power(m)}",
            f"reason: {m.reason}",
        ])
        case = JUnitCase(m.name, classname, details=details)
        if m.muted:
            case.status, case.message = "skipped", f"report only: {m.classification}"
        elif m.classification == "Error":
            case.status, case.kind, case.message = "error", "Error", m.reason
        elif m.classification in ("High", "Low", "NodataFailMetric"):
            case.status, case.kind = "failure", m.classification + (" (critical)" if m.critical else "")
            case.message = f"{m.classification}: {m.reason}"
        elif m.classification == "Nodata":
            case.status, case.message = "skipped", f"Nodata: {m.reason}"
        suite.cases.append(case)
    for t in result.thresholds:
        case = JUnitCase(f"threshold {t.description}", classname,
                         details=f"{result.labels[1]} {f.num(t.value)}, {result.labels[0]} {f.num(t.baseline_value)}")
        if t.passed is False:
            case.status, case.kind, case.message = "failure", "threshold", t.reason
        elif t.passed is None:
            case.status, case.message = "skipped", t.reason or "no data"
        suite.cases.append(case)
    verdict = result.verdict
    effective = marginal_as if verdict == "marginal" else verdict
    case = JUnitCase("verdict", classname, details="\n".join(result.reasons + result.notes))
    if effective != "pass":
        case.status, case.kind = "failure", verdict
        case.message = f"{f.VERDICT_TEXT[verdict]} (score {result.score:g}): {f.VERDICT_MEANING[verdict]}"
    suite.cases.append(case)
    return suite
