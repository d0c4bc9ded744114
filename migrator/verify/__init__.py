"""`migrate verify`: the offline gate that fails when a migration would lose data.

`verify_archive(archive, context_window=None, model=None, strict=False)` runs every check in
`CHECKS` and returns a `VerifyReport`: `exit_code()` is the verdict (0 clean, 1 findings at error
severity, warnings too when strict), `render_table` the terminal summary, `to_dict()` the `--json`
document and `junit_xml` one JUnit test case per check. With `against_source=SourceSettings(...)`
it also re-fetches a random sample of done threads and reports drift (`DRIFT_CHECKS`).
"""

from migrator.verify.budget import CONTEXT_WINDOWS, Budget, context_window_for
from migrator.verify.checks import CHECKS, DRIFT_CHECKS, verify_archive
from migrator.verify.junit import junit_xml, write_junit
from migrator.verify.report import Check, CheckResult, Finding, Severity, VerifyReport, render_table

__all__ = [
    "CHECKS",
    "CONTEXT_WINDOWS",
    "DRIFT_CHECKS",
    "Budget",
    "Check",
    "CheckResult",
    "Finding",
    "Severity",
    "VerifyReport",
    "context_window_for",
    "junit_xml",
    "render_table",
    "verify_archive",
    "write_junit",
]
