"""`python -m bench scale --threads N`: the offline pipeline timed end to end at scale (issue 18).

A synthetic dump of N threads (bench/dumpgen.py) is ingested, verified, rebuilt, imported and
exported again by the real CLI, each step a subprocess whose wall time and peak RSS are measured.
`--tree PATH` (repeatable) runs the CLI of another checkout (e.g. `git worktree add /tmp/old e2c31b9`)
with this venv's Python, on the same dump in the same run, so old and new are compared on one
machine under one load. Results accumulate in docs/benchmarks-scale.json (keyed by shape, N and
tree) and the "Scale" section of docs/benchmarks.md is written from them.

Peak RSS: the step's process's own (GNU time's %M, i.e. its ru_maxrss), and the largest sum of RSS over the process
and its descendants sampled every 250 ms (psutil), which counts worker pools too.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "docs" / "benchmarks-scale.json"
REPORT = ROOT / "docs" / "benchmarks.md"
TIME = Path("/usr/bin/time")  # GNU time: the peak RSS of exactly the step's process
CONVERSATIONS_MAX = 2000  # conversations import talks HTTP to a sandbox target: only at small N
# Sections other modes write (or a person, for the findings), kept in this order after the scenarios.
_SECTIONS = ("## Scale", "## Hot spots", "## Findings at scale", "## Token counting")


def cli(tree: Path) -> list[str]:
    """The `migrate` CLI of `tree`, run by this interpreter (the trees share their dependencies)."""
    code = f"import sys; sys.path.insert(0, {str(tree)!r}); from migrator.cli import run; run()"
    return [sys.executable, "-c", code]


def tree_commit(tree: Path) -> str:
    """The last commit of the code being timed (migrator/), not of the harness beside it."""
    try:
        out = subprocess.run(
            ["git", "-C", str(tree), "log", "-1", "--format=%h %s", "--", "migrator"],
            capture_output=True,
            text=True,
            check=True,
        )
        dirty = subprocess.run(
            ["git", "-C", str(tree), "status", "--porcelain", "--untracked-files=no", "--", "migrator"],
            capture_output=True,
            text=True,
        ).stdout.strip()
        return out.stdout.strip()[:72] + (" (+ uncommitted changes in migrator/)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "?"


def check_tree(tree: Path) -> None:
    """Refuse a tree whose CLI would import another tree's code."""
    code = f"import sys; sys.path.insert(0, {str(tree)!r}); import migrator; print(migrator.__file__)"
    where = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tempfile.gettempdir()
    )
    if not where.stdout.strip().startswith(str(tree.resolve())):
        raise SystemExit(f"bench: {tree} imports migrator from {where.stdout.strip() or where.stderr[-300:]}")


@dataclass
class Step:
    name: str
    command: str
    exit_code: int
    seconds: float
    cpu_seconds: (
        float  # user + system time of the step and its children: what load on the machine hardly changes
    )
    rss_mb: float  # peak RSS of the step's own process (GNU time %M)
    tree_rss_mb: float  # peak of the sampled sum over the process and its descendants
    note: str = ""
    output: dict[str, Any] = field(default_factory=dict)


class _Sampler(threading.Thread):
    """Largest total RSS of a process and its descendants, sampled until it ends."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = 0
        self.done = threading.Event()

    def run(self) -> None:
        import psutil

        try:
            proc = psutil.Process(self.pid)
        except psutil.Error:
            return
        while not self.done.is_set():
            try:
                total = proc.memory_info().rss
                for child in proc.children(recursive=True):
                    with suppress(psutil.Error):
                        total += child.memory_info().rss
            except psutil.Error:
                return
            self.peak = max(self.peak, total)
            self.done.wait(0.25)


def run_step(
    name: str,
    argv: list[str],
    shown: str,
    *,
    cwd: Path,
    profile: Path | None = None,
    note: str = "",
    log_prefix: str = "",
    timeout: float | None = None,
) -> Step:
    """Run one CLI step; stdout is kept (a --json document), stderr goes to a log beside the archive."""
    if profile is not None:
        # py-spy runs the step as its child: its RSS is the step's plus py-spy's own, so not recorded.
        out = profile / f"{name}.speedscope.json"
        argv = [str(Path(sys.executable).parent / "py-spy"), "record", "-o", str(out), "-f", "speedscope",
                "-r", "100", "--", *argv]  # fmt: skip
    elif TIME.exists():
        # ru_maxrss survives exec: a step started straight from this (large) process would report this
        # process's peak when its own is smaller. /usr/bin/time forks it from a small process instead.
        argv = [str(TIME), "-f", "%M %U %S", "-o", str(cwd / f"{log_prefix}{name}.maxrss"), *argv]
    log = open(cwd / f"{log_prefix}{name}.log", "wb")  # noqa: SIM115  closed below
    started = time.monotonic()
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=log,
        cwd=cwd,
        env={**os.environ, "OPENAI_API_KEY": "bench", "TARGET_API_KEY": "bench"},
    )
    sampler = _Sampler(proc.pid)
    sampler.start()
    stopped = threading.Event()

    def stop() -> None:
        # The step and its children, not GNU time: it still reports what the step used.
        import psutil

        stopped.set()
        with suppress(psutil.Error):
            for child in psutil.Process(proc.pid).children(recursive=True):
                with suppress(psutil.Error):
                    child.send_signal(signal.SIGTERM)

    timer = threading.Timer(timeout, stop) if timeout else None
    if timer is not None:
        timer.start()
    out_bytes = proc.stdout.read() if proc.stdout else b""
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.monotonic() - started
    if timer is not None:
        timer.cancel()
    if stopped.is_set():
        note = (note + "; " if note else "") + f"stopped after {timeout:.0f} s: did not finish"
    sampler.done.set()
    sampler.join()
    log.close()
    proc.returncode = os.waitstatus_to_exitcode(status)
    maxrss_kib, cpu = usage.ru_maxrss, usage.ru_utime + usage.ru_stime
    measured = cwd / f"{log_prefix}{name}.maxrss"
    if profile is None and measured.exists():
        fields = measured.read_text().split()  # a line about a signal may come first
        with suppress(IndexError, ValueError):
            maxrss_kib, cpu = int(fields[-3]), float(fields[-2]) + float(fields[-1])
        measured.unlink()
    try:
        output = json.loads(out_bytes) if out_bytes.strip() else {}
    except ValueError:
        output = {"stdout": out_bytes[-500:].decode(errors="replace")}
    step = Step(
        name,
        shown,
        proc.returncode,
        round(seconds, 2),
        round(cpu, 2),
        round(maxrss_kib / 1024, 1),
        round(sampler.peak / 2**20, 1),
        note,
        output if isinstance(output, dict) else {"value": output},
    )
    print(
        f"  {name}: exit {step.exit_code}, {step.seconds:.1f} s (CPU {step.cpu_seconds:.1f} s), peak RSS {step.rss_mb:.0f} MB"
        + (f" (process tree {step.tree_rss_mb:.0f} MB)" if step.tree_rss_mb > step.rss_mb * 1.05 else ""),
        flush=True,
    )
    return step


@contextmanager
def sandbox(threads: int, seed: int, workdir: Path):
    """A sandbox (this tree's) serving the same corpus as the dump; yields (base URL, root URL)."""
    from bench.__main__ import _free_port

    port = _free_port()
    ids = workdir / "sandbox-ids.txt"
    ids.unlink(missing_ok=True)
    argv = [
        *cli(ROOT),
        "sandbox",
        "serve",
        "--port",
        str(port),
        "--threads",
        str(threads),
        "--seed",
        str(seed),
    ]
    proc = subprocess.Popen([*argv, "--ids-out", str(ids)], stderr=subprocess.DEVNULL)
    root = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while True:
        try:
            urllib.request.urlopen(root + "/_sandbox/stats", timeout=2).read()
            if ids.exists() and ids.stat().st_size:
                break
        except OSError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise SystemExit("bench: the sandbox did not start")
        time.sleep(0.2)
    try:
        yield root + "/v1", root
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=60) as response:
        return json.loads(response.read())


def where_bytes(archive: Path) -> dict[str, Any]:
    """Bytes per table and index (SQLite's dbstat), and how much of each table is raw JSON or records."""
    db = sqlite3.connect(f"file:{archive}?mode=ro", uri=True)
    try:
        rows = db.execute(
            "select d.name, coalesce(m.type, 'internal'), coalesce(m.tbl_name, d.name), sum(d.pgsize), "
            "sum(d.payload), count(*) from dbstat d left join sqlite_master m on m.name = d.name "
            "group by d.name order by sum(d.pgsize) desc"
        ).fetchall()
        objects = [
            {"name": n, "type": t, "table": tbl, "bytes": size, "payload": payload, "pages": pages}
            for n, t, tbl, size, payload, pages in rows
        ]
        columns: dict[str, dict[str, int]] = {}
        for table, cols in (
            ("messages", ("raw", "hash")),
            ("runs", ("raw", "hash")),
            ("run_steps", ("raw", "hash")),
            ("threads", ("raw", "hash")),
            ("assistants", ("raw", "hash")),
            ("files", ("raw", "hash")),
            ("sessions", ("record", "hash")),
            ("blobs", ("data",)),
        ):
            try:
                sums = db.execute(
                    f"select {', '.join(f'coalesce(sum(length({c})), 0)' for c in cols)}, count(*) from {table}"
                ).fetchone()
            except sqlite3.Error:
                continue
            columns[table] = {**dict(zip(cols, sums[:-1], strict=True)), "rows": sums[-1]}
        page_size = db.execute("pragma page_size").fetchone()[0]
        freelist = db.execute("pragma freelist_count").fetchone()[0]
    finally:
        db.close()
    return {"objects": objects, "columns": columns, "page_size": page_size, "free_pages": freelist}


def pipeline(
    tree: Path,
    label: str,
    dump: Path,
    workdir: Path,
    threads: int,
    seed: int,
    profile: Path | None,
    timeout: float | None = None,
    skip: tuple[str, ...] = (),
    kill_checks: bool = False,
) -> dict[str, Any]:
    """Every offline step of one tree's CLI on the dump, in the order a migration night runs them."""
    migrate = cli(tree)
    archive = workdir / f"{label}.db"
    for leftover in workdir.glob(f"{label}.db*"):
        leftover.unlink()
    steps: list[Step] = []
    a = str(archive)

    def step(name: str, *args: str, note: str = "", profiled: bool = False) -> Step:
        if name in skip:
            print(f"  {name}: skipped (--skip)", flush=True)
            return Step(name, "", 0, 0.0, 0.0, 0.0, 0.0, "skipped")
        shown = "migrate " + " ".join(x if x != a else "ARCHIVE" for x in args).replace(
            str(workdir) + "/", ""
        )
        s = run_step(
            name,
            [*migrate, *args],
            shown,
            cwd=workdir,
            profile=profile if profiled else None,
            note=note,
            log_prefix=f"{label}-",
            timeout=timeout,
        )
        steps.append(s)
        return s

    print(f"{label}: {tree_commit(tree)}", flush=True)
    ingest = step("ingest", "export", a, "--from-dump", str(dump), "--json", profiled=True)
    stats = run_step(
        "stats",
        [*migrate, "stats", a, "--json"],
        "migrate stats ARCHIVE --json",
        cwd=workdir,
        log_prefix=f"{label}-",
    ).output
    size_after_ingest = archive.stat().st_size
    step("verify", "verify", a, "--json", profiled=True)
    # Since `rebuild` builds only stale sessions, `--all` is what older trees did without a flag.
    every = ["--all"] if '"--all"' in (tree / "migrator" / "cli" / "rebuild.py").read_text() else []
    rebuilt = step(
        "rebuild", "rebuild", a, *every, "--json", note="every session, options unchanged", profiled=True
    )
    if profile is not None:  # a profiling run times nothing: the profiled steps are enough
        return {"label": label, "tree": str(tree), "commit": tree_commit(tree), "stats": stats}
    killed = None
    if kill_checks:  # here: the archive's sessions are the default options' ones, as an ingest builds
        from bench.killcheck import kill_checks as check

        print("  kill -9 checks:", flush=True)
        killed = check(migrate, dump, workdir, label, archive, ingest.seconds, rebuilt.seconds)
    step("rebuild (all stale)", "rebuild", a, "--citations", "strip", "--json", note="--citations changed")
    step("import jsonl", "import", a, "--to", "jsonl", "--out", str(workdir / f"{label}.jsonl"), "--json")
    step("import agents-sqlite", "import", a, "--to", "agents-sqlite", "--out", str(workdir / f"{label}-agents.db"),
         "--json")  # fmt: skip
    ids = workdir / "ids.txt"
    from bench.dumpgen import thread_ids_file

    thread_ids_file(ids, threads, seed)
    with sandbox(threads, seed, workdir) as (base, root):
        before = _get(root + "/_sandbox/stats")
        rerun = step("rerun over all ids", "export", a, "--threads", str(ids), "--base-url", base, "--json")
        after = _get(root + "/_sandbox/stats")
        by_route = {
            k: after["by_route"].get(k, 0) - before["by_route"].get(k, 0)
            for k in after["by_route"]
            if after["by_route"].get(k, 0) != before["by_route"].get(k, 0)
        }
        rerun.output["sandbox_requests"] = by_route
        rerun.output["thread_requests"] = sum(n for k, n in by_route.items() if "/threads" in k)
        print(f"    sandbox requests during the rerun: {by_route or 'none'}", flush=True)
        if threads <= CONVERSATIONS_MAX:
            step(
                "import conversations",
                "import",
                a,
                "--to",
                "conversations",
                "--target-base-url",
                base,
                "--json",
            )
    for s in steps:
        s.output = _trim(s.output)
    return {
        "label": label,
        "tree": str(tree),
        "commit": tree_commit(tree),
        "stats": {k: v for k, v in stats.items() if not isinstance(v, dict)},
        "archive_bytes": archive.stat().st_size,
        "archive_bytes_after_ingest": size_after_ingest,
        "where": where_bytes(archive),
        "steps": [asdict(s) for s in steps],
        "conversations": "measured" if threads <= CONVERSATIONS_MAX else f"skipped (N > {CONVERSATIONS_MAX})",
        **({"kill_checks": killed} if killed is not None else {}),
    }


def _trim(output: dict[str, Any]) -> dict[str, Any]:
    """Keep the figures of a --json document, not its lists (a report may list thousands of findings)."""
    return {k: v for k, v in output.items() if not isinstance(v, list) and len(json.dumps(v)) < 2000}


def machine() -> dict[str, Any]:
    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "load": os.getloadavg(),
        "uptime": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }


def load_results() -> dict[str, Any]:
    return json.loads(RESULTS.read_text()) if RESULTS.exists() else {"runs": {}}


def save_result(result: dict[str, Any]) -> None:
    data = load_results()
    key = f"{result['shape']}/{result['threads']}/{result['label']}"
    data["runs"][key] = result
    RESULTS.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


# -- the report -----------------------------------------------------------------------------------


def _mb(n: float) -> str:
    return f"{n / 1e6:,.0f} MB" if n >= 1e6 else f"{n / 1e3:,.0f} kB"


def _step_map(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in run["steps"]}


def render_scale(data: dict[str, Any]) -> list[str]:
    runs = sorted(data["runs"].values(), key=lambda r: (r["shape"], -r["threads"], r["label"] != "e2c31b9"))
    lines = [
        "## Scale",
        "",
        "Measured by `make bench SCALE=N` (`python -m bench scale --threads N --shape two-message|realistic "
        "[--tree OTHER_CHECKOUT --label NAME]`). A synthetic dump of N threads in our own layout is written "
        "from the sandbox's generator (bench/dumpgen.py; byte for byte what `migrate dump` writes after an "
        "export of the same sandbox, checked by `python -m bench scale --check`), then each step is the real "
        "CLI in a subprocess: wall time, CPU time (user + system, the step and its children: what the load "
        "other processes put on this 2-core machine changes least), and peak RSS (GNU time's `%M` of the step's process; in brackets the "
        "sampled peak over the process and its children when it is larger). Raw figures: "
        "docs/benchmarks-scale.json.",
        "",
    ]
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for run in runs:
        groups.setdefault((run["shape"], run["threads"]), []).append(run)
    for (shape, threads), group in groups.items():
        stats = group[-1]["stats"]
        lines += [
            f"### {shape}, {threads:,} threads",
            "",
            f"Dump: {stats.get('threads', '?'):,} threads, {stats.get('messages', 0):,} messages, "
            f"{stats.get('runs', 0):,} runs, {stats.get('run_steps', 0):,} run steps, {stats.get('files', 0):,} files; "
            f"{_mb(group[-1]['dump']['bytes'])} on disk, written in {group[-1]['dump']['seconds']:.0f} s.",
            "",
        ]
        for run in group:
            m = run["machine"]
            lines.append(
                f"- `{run['label']}` = {run['commit']}; measured {m['date']}, load at start: `{m['uptime']}`"
            )
        lines.append("")
        header = "| step | " + " | ".join(
            f"{r['label']} wall | {r['label']} CPU | {r['label']} peak RSS" for r in group
        )
        if len(group) == 2:
            header += " | speed-up wall / CPU"
        lines += [header + " |", "|---" * (1 + 3 * len(group) + (len(group) == 2)) + "|"]
        names = list(dict.fromkeys(s["name"] for r in group for s in r["steps"]))
        for name in names:
            cells = []
            per = [_step_map(r).get(name) for r in group]
            for s in per:
                if s is None:
                    cells += ["-", "-", "-"]
                    continue
                wall = f"{s['seconds']:.1f} s" + ("" if s["exit_code"] == 0 else f" (exit {s['exit_code']})")
                if "did not finish" in s["note"]:
                    wall = f"> {s['seconds']:.0f} s (stopped, did not finish)"
                if name == "rerun over all ids":
                    wall += f", {s['output'].get('thread_requests', '?')} thread requests"
                rss = f"{s['rss_mb']:.0f} MB" + (
                    f" ({s['tree_rss_mb']:.0f} MB)" if s["tree_rss_mb"] > s["rss_mb"] * 1.05 else ""
                )
                cells += [wall, f"{s.get('cpu_seconds', 0):.1f} s", rss]
            if len(group) == 2:
                old, new = per
                if old and new and new["seconds"] and new.get("cpu_seconds"):
                    cells.append(
                        f"{old['seconds'] / new['seconds']:.2f}x / {old['cpu_seconds'] / new['cpu_seconds']:.2f}x"
                    )
                else:
                    cells.append("-")
            lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
        lines.append("")
        for r in group:
            if (k := r.get("kill_checks")) is not None:
                lines += [_kill_line(r["label"], k), ""]
        if any("skipped" in r["conversations"] for r in group):
            lines += [
                f"`import --to conversations` talks HTTP to a target: {group[-1]['conversations']}.",
                "",
            ]
        lines += _bytes_table(group)
    return lines


def _kill_line(label: str, k: dict[str, Any]) -> str:
    def said(check: dict[str, Any]) -> str:
        return (
            "equal to the uninterrupted archive"
            if check["equal"]
            else "**different** from the uninterrupted one"
        )

    i, r = k["ingest"], k["rebuild"]
    return (
        f"kill -9 (`{label}`, bench/killcheck.py): an ingest killed after {i['first']['seconds']:.0f} s, then run "
        f"again ({i['resumed']['seconds']:.0f} s, exit {i['resumed']['rc']}): {said(i)}; its `rebuild --all` killed "
        f"after {r['first']['seconds']:.0f} s, then a plain `rebuild` ({r['resumed']['seconds']:.0f} s, exit "
        f"{r['resumed']['rc']}): {said(r)} (raw objects, each thread's order, the work list, sessions, warnings)."
    )


def _bytes_table(group: list[dict[str, Any]]) -> list[str]:
    lines = ["| archive | " + " | ".join(r["label"] for r in group) + " |", "|---" * (1 + len(group)) + "|"]

    def row(title: str, values: list[str]) -> None:
        lines.append(f"| {title} | " + " | ".join(values) + " |")

    row("file size (after the steps)", [_mb(r["archive_bytes"]) for r in group])
    row("file size after ingest", [_mb(r["archive_bytes_after_ingest"]) for r in group])
    row(
        "bytes per message (after ingest)",
        [f"{r['archive_bytes_after_ingest'] / max(1, r['stats'].get('messages', 0)):,.0f}" for r in group],
    )
    lines += ["", "Where the bytes go (SQLite `dbstat`, after every step; raw = sum of `length(raw)`):", ""]
    objects = [{o["name"]: o for o in r["where"]["objects"]} for r in group]
    total = [sum(o["bytes"] for o in objs.values()) for objs in objects]
    names = sorted(
        {n for objs in objects for n in objs},
        key=lambda n: -max(o.get(n, {"bytes": 0})["bytes"] for o in objects),
    )
    lines += [
        "| table or index | " + " | ".join(r["label"] for r in group) + " |",
        "|---" * (1 + len(group)) + "|",
    ]
    for name in names:
        if max(objs.get(name, {"bytes": 0})["bytes"] for objs in objects) < 1e6:
            continue
        cells = []
        for objs, tot in zip(objects, total, strict=True):
            o = objs.get(name)
            cells.append(f"{_mb(o['bytes'])} ({100 * o['bytes'] / tot:.0f}%)" if o else "-")
        kind = next(objs[name]["type"] for objs in objects if name in objs)
        lines.append(f"| {name} ({kind}) | " + " | ".join(cells) + " |")
    lines.append("")
    raw_rows = []
    for table in ("messages", "runs", "run_steps", "threads", "sessions", "blobs"):
        cols = [r["where"]["columns"].get(table) for r in group]
        if not any(c and c.get("rows") for c in cols):
            continue
        cells = []
        for c in cols:
            if not c:
                cells.append("-")
                continue
            content = c.get("raw", c.get("record", c.get("data", 0)))
            cells.append(f"{c['rows']:,} rows, {_mb(content)} JSON/data, {_mb(c.get('hash', 0))} hashes")
        raw_rows.append(f"| {table} | " + " | ".join(cells) + " |")
    if raw_rows:
        lines += [
            "| table content | " + " | ".join(r["label"] for r in group) + " |",
            "|---" * (1 + len(group)) + "|",
        ]
        lines += [*raw_rows, ""]
    return lines


def write_docs() -> None:
    """Rewrite the Scale section of docs/benchmarks.md from the stored results; keep every other part."""
    text = REPORT.read_text() if REPORT.exists() else "# Benchmarks\n"
    kept = split_sections(text)
    kept["## Scale"] = "\n".join(render_scale(load_results()))
    REPORT.write_text(join_sections(kept))


def split_sections(text: str) -> dict[str, str]:
    """The file as {heading: body}: "" for what precedes the first `## ` heading."""
    parts: dict[str, str] = {}
    current, buf = "", []
    for line in text.splitlines():
        if line.startswith("## "):
            parts[current] = "\n".join(buf).rstrip("\n")
            current, buf = line.strip(), [line]
        else:
            buf.append(line)
    parts[current] = "\n".join(buf).rstrip("\n")
    return parts


def join_sections(parts: dict[str, str]) -> str:
    ordered = [parts.get("", "# Benchmarks")]
    ordered += [body for head, body in parts.items() if head and head not in _SECTIONS]
    ordered += [parts[head] for head in _SECTIONS if head in parts]
    return "\n\n".join(p for p in ordered if p) + "\n"


# -- the command --------------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench scale", description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=340_000, help="threads in the synthetic dump")
    parser.add_argument("--shape", choices=("two-message", "realistic"), default="two-message")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--tree", type=Path, action="append", help="a checkout whose CLI to time (repeatable)"
    )
    parser.add_argument("--label", action="append", help="a name per --tree, in the same order")
    parser.add_argument(
        "--workdir", type=Path, help="where the dump and archives go (default: a temporary folder)"
    )
    parser.add_argument("--reuse-dump", action="store_true", help="keep a dump already in --workdir")
    parser.add_argument(
        "--profile", type=Path, help="py-spy profiles of ingest, verify, rebuild into this folder"
    )
    parser.add_argument(
        "--step-timeout", type=float, help="stop a step after this many seconds (recorded as not finished)"
    )
    parser.add_argument("--skip", action="append", help="a step not to run, by its name (repeatable)")
    parser.add_argument("--no-docs", action="store_true", help="do not store the results or write the docs")
    parser.add_argument(
        "--kill-checks",
        action="store_true",
        help="also kill -9 an ingest and a rebuild part-way, resume them, and compare (bench/killcheck.py)",
    )
    parser.add_argument(
        "--check", action="store_true", help="prove the generated dump equals a real export's dump"
    )
    args = parser.parse_args(argv)
    if args.check:
        from bench.fidelity import check_fidelity

        return check_fidelity(args.threads if args.threads <= 2000 else 300, args.seed)
    trees = [t.resolve() for t in (args.tree or [ROOT])]
    labels = args.label or []
    labels += [("main" if t == ROOT else t.name) for t in trees[len(labels) :]]
    for tree in trees:
        check_tree(tree)
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    with _workdir(args.workdir) as workdir:
        from bench.dumpgen import write_dump

        dump = workdir / f"dump-{args.shape}-{args.threads}"
        manifest = dump / "migrate-dump.json"
        if args.reuse_dump and manifest.exists():
            info = json.loads((workdir / f"{dump.name}.info.json").read_text())
            print(f"reusing {dump}", flush=True)
        else:
            print(f"writing a {args.shape} dump of {args.threads:,} threads to {dump}", flush=True)
            info = write_dump(dump, args.shape, args.threads, args.seed).as_dict()
            (workdir / f"{dump.name}.info.json").write_text(json.dumps(info))
            print(
                f"  {info['written']}, {info['bytes'] / 1e6:,.0f} MB in {info['seconds']:.0f} s", flush=True
            )
        for tree, label in zip(trees, labels, strict=False):
            result = {
                "shape": args.shape,
                "threads": args.threads,
                "dump": info,
                "machine": machine(),
                **pipeline(
                    tree,
                    label,
                    dump,
                    workdir,
                    args.threads,
                    args.seed,
                    args.profile if tree == trees[-1] else None,
                    args.step_timeout,
                    tuple(args.skip or ()),
                    args.kill_checks,
                ),  # fmt: skip
            }
            if args.profile and tree == trees[-1]:
                from bench.hotspots import write_hotspots

                write_hotspots(args.profile, result)
            if not args.no_docs and not args.profile:  # profiled timings are not the figures
                save_result(result)
    if not args.no_docs and not args.profile:
        write_docs()
        print(f"written to {REPORT.relative_to(ROOT)} and {RESULTS.relative_to(ROOT)}")
    return 0


@contextmanager
def _workdir(path: Path | None):
    if path is not None:
        path.mkdir(parents=True, exist_ok=True)
        yield path.resolve()
        return
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        yield Path(tmp)
