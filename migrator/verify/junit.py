"""The report as JUnit XML, the one format every CI system displays.

One test case per check (classname `migrate.verify.<category>`, name = check code); a check that
fails carries a `<failure>` naming the threads and listing its findings; warnings that do not fail
(no --strict) and informational figures go to `<system-out>`.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

from migrator.errors import UsageError
from migrator.outputs import write_private
from migrator.redact import redact_bytes
from migrator.verify.report import CheckResult, VerifyReport

__all__ = ["junit_xml", "write_junit"]

SUITE = "migrate verify"

# Characters XML 1.0 cannot carry at all; findings may quote source text, so they are replaced.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _clean(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)


def _lines(result: CheckResult) -> str:
    lines = [_clean(f"{f.subject}: {f.message}") for f in result.findings]
    if result.truncated:
        lines.append(f"... and {result.count - len(result.findings)} more (run `migrate verify --json`)")
    return "\n".join(lines)


def _summary(result: CheckResult) -> str:
    threads = result.threads()
    named = ", ".join(threads[:10]) + (" ..." if len(threads) > 10 else "")
    return _clean(result.check.describe(result.count) + (f" in {named}" if threads else ""))


def junit_xml(report: VerifyReport, strict: bool | None = None) -> bytes:
    strict = report.strict if strict is None else strict
    failures = sum(1 for r in report.checks.values() if r.failed(strict))
    counts = {
        "tests": str(len(report.checks)),
        "failures": str(failures),
        "errors": "0",
        "skipped": "0",
        "time": f"{report.elapsed:.3f}",
    }
    root = ET.Element("testsuites", {"name": SUITE, **counts})
    suite = ET.SubElement(root, "testsuite", {"name": SUITE, **counts})
    props = ET.SubElement(suite, "properties")
    for name, value in (
        ("archive", _clean(report.archive)),
        ("schema_version", str(report.schema_version)),
        ("strict", str(strict).lower()),
        ("budget", report.budget),
    ):
        ET.SubElement(props, "property", {"name": name, "value": value})
    for result in report.checks.values():
        check = result.check
        case = ET.SubElement(
            suite,
            "testcase",
            {"classname": f"migrate.verify.{check.category}", "name": check.code, "time": "0"},
        )
        if result.failed(strict):
            node = ET.SubElement(
                case,
                "failure",
                {
                    "message": _summary(result),
                    "type": f"{check.severity.value}:{check.code}",
                },
            )
            node.text = _lines(result)
        elif result.count:
            ET.SubElement(
                case, "system-out"
            ).text = f"{check.severity.value}: {_summary(result)}\n{_lines(result)}"
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def write_junit(report: VerifyReport, path: str | Path, strict: bool | None = None) -> None:
    """Write atomically, so a CI step never publishes half a file."""
    path = Path(path)
    try:
        write_private(path, redact_bytes(junit_xml(report, strict)))  # a CI check is published
    except OSError as exc:
        raise UsageError(f"cannot write the JUnit file {path}: {exc.strerror or exc}") from None
