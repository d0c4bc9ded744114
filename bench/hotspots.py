"""The hot spots of py-spy's speedscope profiles: where each profiled step spends its time.

`python -m bench hotspots DIR` prints them; `bench scale --profile DIR` also writes the "Hot spots"
section of docs/benchmarks.md. Self time is the share of sampled time whose innermost frame is the
function; total time the share it is anywhere on the stack (migrator's functions, the CLI's entry
frames left out). Functions are keyed by name and file; the line shown is the one most samples hit. Open the .json files in
speedscope (https://www.speedscope.app) for the whole picture.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
_STEPS = ("ingest", "verify", "rebuild")


_LIB = re.compile(r".*/lib/python3\.\d+/(site-packages/)?")


def _file(path: str) -> str:
    if "/migrator/" in path and "site-packages" not in path:
        return "migrator/" + path.split("/migrator/", 1)[1]
    return _LIB.sub("", path)


def summarise(path: Path, top: int = 12) -> dict[str, Any]:
    """Self and total time by function (name, file); each with the line that holds most of its self time."""
    doc = json.loads(path.read_text())
    frames = doc["shared"]["frames"]
    keys = [(f.get("name", "?"), _file(str(f.get("file") or "?"))) for f in frames]
    self_time: Counter[tuple[str, str]] = Counter()
    total_time: Counter[tuple[str, str]] = Counter()
    line_time: Counter[tuple[tuple[str, str], Any]] = Counter()
    seconds = 0.0
    for profile in doc["profiles"]:
        for stack, weight in zip(profile["samples"], profile["weights"], strict=True):
            seconds += weight
            if stack:
                self_time[keys[stack[-1]]] += weight
            for index in stack:
                line_time[(keys[index], frames[index].get("line"))] += weight
            for key in {keys[i] for i in stack}:
                total_time[key] += weight
    best_line: dict[tuple[str, str], Any] = {}
    for (key, line), _ in sorted(line_time.items(), key=lambda kv: kv[1]):
        best_line[key] = line  # ascending: the heaviest line is written last

    def ranked(counter: Counter[tuple[str, str]], ours: bool = False) -> list[tuple[str, float]]:
        rows = []
        for key, n in counter.most_common():
            name, file = key
            # The CLI's entry frames and module bodies are on every stack: they say nothing.
            if ours and (
                not file.startswith("migrator/") or file.startswith("migrator/cli/") or name == "<module>"
            ):
                continue
            rows.append(
                (f"{name} ({file}:{best_line.get(key, '?')})", round(100 * n / max(seconds, 1e-9), 1))
            )
            if len(rows) == top:
                break
        return rows

    return {
        "seconds": round(seconds, 1),
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
    found = {p.name.removesuffix(".speedscope.json"): p for p in folder.glob("*.speedscope.json")}
    # The harness's steps first, then any profile dropped in beside them (e.g. py-spy attached by --pid).
    for step in [*(s for s in _STEPS if s in found), *sorted(set(found) - set(_STEPS))]:
        path = found[step]
        s = summarise(path)
        lines += [
            f"### `{step}` ({s['seconds']:,} s sampled)",
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
