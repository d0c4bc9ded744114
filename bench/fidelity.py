"""`python -m bench scale --check`: the generated dump is what `migrate dump` writes after a real export.

A sandbox serves a small corpus; the real CLI exports it over HTTP and dumps the archive; the
generator writes the same corpus directly. Every file of the two dumps must be byte-identical
(the thread list compared as a set of lines, the manifest by its counts), for both shapes: the
realistic shape is the sandbox's own corpus; the two-message shape is checked on the generator's
side only by ingesting it cleanly (no sandbox serves that shape).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

from bench.dumpgen import write_dump
from bench.scale import ROOT, cli, run_step, sandbox


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def check_fidelity(threads: int, seed: int) -> int:
    migrate = cli(ROOT)
    with tempfile.TemporaryDirectory(prefix="bench-fidelity-") as tmp:
        work = Path(tmp)
        with sandbox(threads, seed, work) as (base, _root):
            archive = work / "exported.db"
            ids = work / "sandbox-ids.txt"
            code = subprocess.run(
                [*migrate, "export", str(archive), "--threads", str(ids), "--base-url", base, "--json"],
                capture_output=True,
                env={**os.environ, "OPENAI_API_KEY": "bench"},
                cwd=work,
            ).returncode
        print(f"export of the {threads}-thread sandbox: exit {code}")
        real = work / "real-dump"
        subprocess.run([*migrate, "dump", str(archive), str(real)], check=True, capture_output=True, cwd=work)
        generated = write_dump(work / "generated-dump", "realistic", threads, seed).path
        a, b = _files(real), _files(generated)
        problems = []
        for name in sorted(set(a) | set(b)):
            if name not in a or name not in b:
                problems.append(f"{name}: only in the {'real' if name in a else 'generated'} dump")
            elif name == "threads.jsonl":
                if sorted(a[name].splitlines()) != sorted(b[name].splitlines()):
                    problems.append(f"{name}: other thread ids")
            elif name == "migrate-dump.json":
                if json.loads(a[name])["written"] != json.loads(b[name])["written"]:
                    problems.append(
                        f"{name}: counts {json.loads(a[name])['written']} != {json.loads(b[name])['written']}"
                    )
            elif a[name] != b[name]:
                problems.append(f"{name}: bytes differ")
        print(f"realistic, {threads} threads: {len(a)} files compared, {len(problems)} differences")
        for line in problems[:20]:
            print("  " + line)
        two = write_dump(work / "two-message", "two-message", threads, seed)
        step = run_step(
            "two-message ingest", [*migrate, "export", str(work / "two.db"), "--from-dump", str(two.path), "--json"],
            "migrate export two.db --from-dump DUMP --json", cwd=work,
        )  # fmt: skip
        done = step.output.get("threads_done", step.output.get("summary", {}).get("threads_done"))
        print(f"two-message, {threads} threads: ingest exit {step.exit_code}, threads done {done}")
        return 1 if problems or code or step.exit_code else 0
