"""Kill -9 at scale (issue 18: "kill -9 during ingest and rebuild at this size still resumes exactly,
and the order contract holds"), a step of `python -m bench scale --kill-checks`.

An ingest of the same dump into a second archive is killed (SIGKILL to its process group: the
command and its session worker) part-way, then run again to its end; its archive must then equal
the uninterrupted one. Then `rebuild --all` of that archive is killed part-way and a plain `rebuild`
resumes it; equal again. "Equal" is `digest()`: every raw object (id, hash, raw), every thread's
message and run order (ids in the order the order contract reads them), the work list's verdicts,
and every session and warning: the list positions themselves may differ (a resumed ingest numbers
what it reads after the kill from where the archive left off), the order they give may not.
"""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

# What must be equal, each query in a fixed order. Positions are left out, the order they give is in.
_QUERIES = (
    "select id, hash, raw from threads order by id",
    "select thread_id, id, hash, raw from messages order by thread_id, created_at, position",
    "select thread_id, id, hash, raw from runs order by thread_id, created_at, position",
    "select thread_id, run_id, id, hash, raw from run_steps order by thread_id, run_id, created_at, position",
    "select thread_id, status, messages_seen, runs_seen, steps_seen, session_stale from work order by thread_id",
    "select thread_id, record, hash, messages, tokens from sessions order by thread_id",
    "select * from session_warnings order by thread_id, code",
)


def digest(archive: Path) -> str:
    """One sha256 over what a resumed run must leave exactly as an uninterrupted one."""
    conn = sqlite3.connect(f"file:{archive}?mode=ro", uri=True)
    h = hashlib.sha256()
    try:
        for sql in _QUERIES:
            h.update(sql.encode())
            for row in conn.execute(sql):
                h.update(repr(row).encode())
    finally:
        conn.close()
    return h.hexdigest()


def _killed_after(argv: list[str], seconds: float, cwd: Path, log: Path) -> dict[str, Any]:
    """Start the command, SIGKILL it and its children after `seconds`; what it had done by then."""
    with open(log, "wb") as err:
        proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
        try:
            proc.wait(timeout=seconds)
            return {"killed": False, "rc": proc.returncode, "seconds": seconds}
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return {"killed": True, "rc": proc.returncode, "seconds": seconds}


def _resumed(argv: list[str], cwd: Path, log: Path) -> dict[str, Any]:
    started = time.monotonic()
    with open(log, "wb") as err:
        rc = subprocess.run(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=err).returncode
    return {"rc": rc, "seconds": round(time.monotonic() - started, 1)}


def kill_checks(
    migrate: list[str],
    dump: Path,
    workdir: Path,
    label: str,
    reference: Path,
    ingest_s: float,
    rebuild_s: float,
) -> dict[str, Any]:
    """Both checks against `reference` (the uninterrupted archive, its sessions rebuilt with the
    default options); `ingest_s`/`rebuild_s`: how long the uninterrupted steps took (the kills
    come at 40 % and 50 % of that)."""
    archive = workdir / f"{label}-killed.db"
    for leftover in workdir.glob(f"{label}-killed.db*"):
        leftover.unlink()
    expected = digest(reference)
    a = str(archive)
    ingest = [*migrate, "export", a, "--from-dump", str(dump), "--json"]
    first = _killed_after(ingest, 0.4 * ingest_s, workdir, workdir / f"{label}-killed-ingest.log")
    resumed = _resumed(ingest, workdir, workdir / f"{label}-resumed-ingest.log")
    after_ingest = digest(archive)
    print(f"  ingest killed after {first['seconds']:.0f} s (killed: {first['killed']}), resumed in "
          f"{resumed['seconds']} s, rc {resumed['rc']}: {'equal' if after_ingest == expected else 'DIFFERENT'}",
          flush=True)  # fmt: skip
    rebuild_all = [*migrate, "rebuild", a, "--all", "--json"]
    second = _killed_after(rebuild_all, 0.5 * rebuild_s, workdir, workdir / f"{label}-killed-rebuild.log")
    rebuilt = _resumed([*migrate, "rebuild", a, "--json"], workdir, workdir / f"{label}-resumed-rebuild.log")
    after_rebuild = digest(archive)
    print(f"  rebuild --all killed after {second['seconds']:.0f} s (killed: {second['killed']}), plain rebuild "
          f"resumed in {rebuilt['seconds']} s, rc {rebuilt['rc']}: "
          f"{'equal' if after_rebuild == expected else 'DIFFERENT'}", flush=True)  # fmt: skip
    for leftover in workdir.glob(f"{label}-killed.db*"):
        leftover.unlink()
    return {
        "ingest": {"first": first, "resumed": resumed, "equal": after_ingest == expected},
        "rebuild": {"first": second, "resumed": rebuilt, "equal": after_rebuild == expected},
    }
