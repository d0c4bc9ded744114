"""`make demo` is the first thing a new user runs: it must end well and read right."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

MIGRATE = Path(sys.executable).parent / "migrate"


def test_the_demo_exports_and_its_text_is_not_mangled_by_the_redaction_step(tmp_path):
    # The demo once gave the sandbox the key "demo": the redaction step then removed every "demo"
    # from the output, and its last line read `migrate [redacted] --archive [redacted].db`.
    result = subprocess.run(
        [str(MIGRATE), "demo"], cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout + result.stderr
    assert "[redacted]" not in out
    assert "migrate demo --archive demo.db" in out
    assert list(tmp_path.iterdir()) == []  # the temporary archive is gone
