"""The hot spots of py-spy's speedscope profiles: where each profiled step spends its time.

`python -m bench hotspots DIR` prints them; `bench scale --profile DIR` also writes the "Hot spots"
section of docs/benchmarks.md. Self time is the share of samples whose innermost frame is the
function; total time the share of samples it is anywhere on the stack. Open the .json files in
speedscope (https://www.speedscope.app) for the whole picture.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
_STEPS = ("ingest", "verify", "rebuild")


def _where(frame: dict[str, Any]) -> str:
    file = str(frame.get("file") or "?")
    for marker in ("/site-packages/", "/lib/python3"):
        if marker in file:
            file = file.split(marker, 1)[1]
            break
    else:
        if "/migrator/" in file:
            file = "migrator/" + file.split("/migrator/", 1)[1]
    return f"{frame.get('name', '?')} ({file}:{frame.get('line', '?')})"


def summarise(path: Path, top: int = 10) -> dict[str, Any]:
    doc = json.loads(path.read_text())
    frames = doc["shared"]["frames"]
    self_time: Counter[int] = Counter()
    total_time: Counter[int] = Counter()
    samples = 0
    for profile in doc["profiles"]:
        for stack, weight in zip(profile["samples"], profile["weights"], strict=True):
            samples += weight
            if stack:
                self_time[stack[-1]] += weight
            for index in set(stack):
                total_time[index] += weight

    def ranked(counter: Counter[int], ours: bool = False) -> list[tuple[str, float]]:
        rows = []
        for index, n in counter.most_common():
            where = _where(frames[index])
            if ours and "migrator/" not in where:
                continue
            rows.append((where, round(100 * n / max(1, samples), 1)))
            if len(rows) == top:
                break
        return rows

    return {
        "samples": samples,
        "self": ranked(self_time),
        "total_ours": ranked(total_time, ours=True),
    }


def render(folder: Path, result: dict[str, Any] | None = None) -> list[str]:
    lines = ["## Hot spots", ""]
    if result is not None:
        lines += [
            f"py-spy 0.4 (`--rate 100`, speedscope format) on `{result['label']}` = {result['commit']}, "
            f"{result['shape']} dump of {result['threads']:,} threads, "
            f"measured {result['machine']['date']} (`{result['machine']['uptime']}`). "
            "Reproduce: `python -m bench scale --threads N --shape SHAPE --profile DIR` "
            "(profiled timings are not recorded as figures). "
            "Self: innermost frame; total: anywhere on the stack (migrator's own functions only).",
            "",
        ]
    for step in _STEPS:
        path = folder / f"{step}.speedscope.json"
        if not path.exists():
            continue
        s = summarise(path)
        lines += [
            f"### `{step}` ({s['samples']:,} samples)",
            "",
            "| self % | function (file:line) |",
            "|---|---|",
        ]
        lines += [f"| {pct} | {where} |" for where, pct in s["self"]]
        lines += ["", "| total % | migrator function (file:line) |", "|---|---|"]
        lines += [f"| {pct} | {where} |" for where, pct in s["total_ours"]]
        lines.append("")
    return lines


def write_hotspots(folder: Path, result: dict[str, Any]) -> None:
    from bench.scale import REPORT, join_sections, split_sections

    text = REPORT.read_text() if REPORT.exists() else "# Benchmarks\n"
    parts = split_sections(text)
    parts["## Hot spots"] = "\n".join(render(folder, result)).rstrip("\n")
    REPORT.write_text(join_sections(parts))
    (folder / "hotspots.md").write_text("\n".join(render(folder, result)))
    print(f"hot spots written to {REPORT.relative_to(ROOT)}")


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not Path(argv[0]).is_dir():
        print(
            "usage: python -m bench hotspots DIR (holding ingest/verify/rebuild.speedscope.json)",
            file=sys.stderr,
        )
        return 2
    print("\n".join(render(Path(argv[0]))))
    return 0
