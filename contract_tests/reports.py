"""Reports of a run: the text table, full failure messages, JUnit XML and JSON. Every text is masked with the
run's :class:`~contract_tests.masking.Masker` (the report's and verdict's ``mask``) on the way out."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from contract_tests.verdicts import ContractReport, Verdict

__all__ = ["report_dict", "report_json", "report_junit", "report_table", "verdict_message"]

_SHOWN_EXCHANGES = 3


def _indent(text: str, prefix: str) -> list[str]:
    return [prefix + line for line in text.splitlines()] or [prefix]


def verdict_message(verdict: Verdict) -> str:
    """The full explanation of a verdict: clause, reason, why it matters, what was sent and came back, the
    doc page, how to reproduce it and the command that re-runs just this clause."""
    c = verdict.clause
    lines = [
        f"clause {c.label}{_event_suffix(verdict)} [{c.level}] {verdict.outcome.upper()}: {verdict.reason}"
    ]
    lines.append(f"  expected: {c.expected}")
    lines.append(f"  evidence: {c.evidence}")
    lines.append(f"  doc page: {c.doc}")
    for note in verdict.notes:
        lines.append(f"  note: {note}")
    for ex in verdict.exchanges[:_SHOWN_EXCHANGES]:
        lines.append(f"  sent ({ex.label}): POST {ex.url} ({ex.sent_bytes} bytes)")
        lines.extend(_indent(ex.sent, "    "))
        lines.append(f"  got: {ex.answer}")
        if ex.body_file:
            lines.append(f"  reproduce (replays the exact body, kept in {ex.body_file}): {ex.reproduce}")
        else:
            lines.append(f"  reproduce (secrets masked): {ex.reproduce}")
    if len(verdict.exchanges) > _SHOWN_EXCHANGES:
        lines.append(f"  ... and {len(verdict.exchanges) - _SHOWN_EXCHANGES} more exchange(s) like these")
    curls = [ex for ex in verdict.exchanges if ex.reproduce.startswith("curl")]
    if curls and not any(ex.body_file for ex in curls):
        lines.append(
            "  (a masked curl line is refused by a handler that checks its token: re-run the clause to "
            "repeat the failure itself, or keep the exact bodies in files for curl with --save-bodies DIR)"
        )
    if verdict.log_tail:
        lines.append("  handler log (last lines):")
        lines.extend(_indent(verdict.log_tail, "    "))
    if verdict.rerun:
        lines.append(f"  re-run just this clause: {verdict.rerun}")
    return verdict.mask("\n".join(lines))


def _event_suffix(verdict: Verdict) -> str:
    return verdict.id[len(verdict.clause.id) :]


def report_table(report: ContractReport) -> str:
    """Clause, level, verdict and reason per verdict, then ``PASSED``/``FAILED`` with the counts."""
    rows = [
        (f"{v.clause.label}{_event_suffix(v)}", v.clause.level, v.outcome.upper(), v.reason)
        for v in report.verdicts
    ]
    w0 = max([len("clause"), *(len(r[0]) for r in rows)])
    w2 = max([len("verdict"), *(len(r[2]) for r in rows)])
    out = [f"{'clause':<{w0}}  level   {'verdict':<{w2}}  reason"]
    out.append(f"{'-' * w0}  ------  {'-' * w2}  ------")
    for name, level, verdict, reason in rows:
        out.append(f"{name:<{w0}}  {level:<6}  {verdict:<{w2}}  {reason}")
    counts = report.counts()
    summary = ", ".join(f"{n} {k}" for k, n in counts.items() if n)
    out.append("")
    out.append(
        f"{'PASSED' if report.ok else 'FAILED'}: {summary} in {report.seconds:.2f} s"
        + (" (strict: SHOULD clauses count)" if report.strict else "")
    )
    return report.mask("\n".join(out))


def report_dict(report: ContractReport) -> dict[str, Any]:
    """The report as JSON-ready data (masked)."""
    return {
        "handler": report.mask(report.handler),
        "ok": report.ok,
        "strict": report.strict,
        "seconds": round(report.seconds, 3),
        "counts": report.counts(),
        "verdicts": [v.to_dict() for v in report.verdicts],
    }


def report_json(report: ContractReport) -> str:
    """The report as indented JSON text (masked once more as a whole)."""
    return report.mask(json.dumps(report_dict(report), ensure_ascii=False, indent=2))


def report_junit(report: ContractReport) -> str:
    """The report as a JUnit XML document: one testcase per verdict; a failed MUST (any failure when strict)
    is a failure, a failed SHOULD is reported in system-out, inconclusive and skipped verdicts are skipped."""
    from xml.etree import ElementTree as ET

    mask = report.mask
    counts = report.counts()
    suite = ET.Element(
        "testsuite",
        name="b24-contract",
        tests=str(len(report.verdicts)),
        failures=str(sum(1 for v in report.verdicts if v.fails_run(report.strict))),
        skipped=str(counts["skip"] + counts["inconclusive"]),
        time=f"{report.seconds:.3f}",
    )
    for v in report.verdicts:
        case = ET.SubElement(suite, "testcase", classname="b24_contract", name=v.id)
        if v.fails_run(report.strict):
            node = ET.SubElement(case, "failure", message=mask(v.reason))
            node.text = v.message()
        elif v.outcome == "fail":
            ET.SubElement(case, "system-out").text = f"SHOULD clause failed (not strict): {v.message()}"
        elif v.outcome in ("skip", "inconclusive"):
            ET.SubElement(case, "skipped", message=mask(f"{v.outcome}: {v.reason}"))
    return mask(ET.tostring(suite, encoding="unicode", xml_declaration=True))
