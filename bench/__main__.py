"""`make bench`: the performance contract, measured against the sandbox, as ratios.

Each scenario runs the real `migrate` CLI in a subprocess against a sandbox in another process (so
client and server do not share one interpreter), and prints what it measured. The figures are
written to docs/benchmarks.md. Run one scenario: `python -m bench export` (names below). `python -m bench scale --threads N` times
the offline pipeline at scale (bench/scale.py), `python -m bench tokens` compares token counters.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MIGRATE = [sys.executable, "-c", "from migrator.cli import run; run()"]
RESULTS: list[tuple[str, str, str, str]] = []  # scenario, figure, value, target


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def sandbox(threads: int, *flags: str, seed: int = 1) -> Iterator[tuple[str, str, Path]]:
    """A sandbox process; yields (base_url, root_url, ids_file)."""
    port = _free_port()
    tmp = Path(tempfile.mkdtemp(prefix="bench-sandbox-"))
    ids = tmp / "ids.txt"
    cmd = [*MIGRATE, "sandbox", "serve", "--port", str(port), "--threads", str(threads), "--seed", str(seed)]
    proc = subprocess.Popen([*cmd, "--ids-out", str(ids), *flags], stderr=subprocess.DEVNULL)
    root = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(root + "/_sandbox/stats", timeout=2).read()
            if ids.exists() and ids.stat().st_size:
                break
        except OSError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            shutil.rmtree(tmp, ignore_errors=True)
            raise SystemExit("bench: the sandbox did not start")
        time.sleep(0.2)
    try:
        yield root + "/v1", root, ids
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)  # the ids file's folder: nothing left behind in /tmp


def get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


def migrate(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, float, int]:
    """Run the CLI; returns (exit code, stdout, seconds, peak RSS in KiB)."""
    started = time.monotonic()
    proc = subprocess.Popen(
        [*MIGRATE, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "OPENAI_API_KEY": "bench", **(env or {})},
    )
    out = proc.stdout.read().decode() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, out, time.monotonic() - started, usage.ru_maxrss


def record(scenario: str, figure: str, value: str, target: str) -> None:
    RESULTS.append((scenario, figure, value, target))
    print(f"  {figure}: {value}   (target {target})", flush=True)


def bench_export(workdir: Path) -> None:
    """2,000 threads, no rate limit: completeness and requests against the minimum."""
    with sandbox(2000) as (base, root, ids):
        archive = workdir / "export2000.db"
        code, out, seconds, _ = migrate(
            "export", str(archive), "--threads", str(ids), "--base-url", base, "--json"
        )
        served = get(root + "/_sandbox/stats")
        corpus = get(root + "/_sandbox/corpus")
        bench_sessions(archive, base)
    _, stats_out, _, _ = migrate("stats", str(archive), "--json")
    stats = json.loads(stats_out)
    expected = corpus["counts"]
    equal = all(stats[k] == v for k, v in expected.items())
    minimum = corpus["minimum_requests"]["total"]
    made = served["total"]
    summary = json.loads(out) if out.strip() else {}
    record("export 2,000 threads", "exit code", str(code), "0")
    record(
        "export 2,000 threads",
        "stats equal corpus counts",
        f"{equal} {stats_counts(stats, expected)}",
        "True",
    )
    record(
        "export 2,000 threads",
        "requests made / minimum",
        f"{made} / {minimum} = {made / minimum:.4f}",
        "<= 1.02",
    )
    record(
        "export 2,000 threads", "wall time", f"{seconds:.1f} s ({summary.get('messages', '?')} messages)", "-"
    )
    bench_offline(workdir, archive)


def stats_counts(stats: dict, expected: dict) -> str:
    return ", ".join(f"{k} {stats[k]}/{v}" for k, v in expected.items())


def bench_sessions(archive: Path, base_url: str) -> None:
    """Every session: accepted by the sandbox's chat endpoint, SDK-strict, valid against the spec."""
    import openai
    import orjson

    sys.path.insert(0, str(ROOT / "tests"))
    import spec  # the tests' spec loader: ../shared/openapi, or the vendored copy

    from migrator.archive import Archive
    from migrator.convert.sdkstrict import messages_adapter, sdk_errors, tool_adapter

    client = openai.OpenAI(base_url=base_url, api_key="bench", max_retries=0)
    accepted = strict_ok = schema_ok = total = 0
    rejected: list[str] = []
    with Archive.open(archive) as store:
        for thread_id, record_json in store.sessions.records():
            session = orjson.loads(record_json)
            total += 1
            body = {
                "model": session["model"] or "gpt-4.1",
                "messages": session["messages"],
                **session["params"],
            }
            if session["tools"]:
                body["tools"] = session["tools"]
            try:
                client.chat.completions.create(**body)
                accepted += 1
            except openai.APIStatusError as exc:
                rejected.append(f"{thread_id}: {exc.message}")
            problems = sdk_errors(messages_adapter(), session["messages"])
            problems += [p for tool in session["tools"] for p in sdk_errors(tool_adapter(), tool)]
            strict_ok += not problems
            schema_ok += not spec.errors("CreateChatCompletionRequest", body)
    accepted_figure = f"{accepted} / {total}" + (f" (first rejection: {rejected[0]})" if rejected else "")
    record("sessions of 2,000 threads", "accepted by the chat endpoint", accepted_figure, "all")
    record(
        "sessions of 2,000 threads",
        "SDK message/tool types, extra keys forbidden",
        f"{strict_ok} / {total}",
        "all",
    )
    record(
        "sessions of 2,000 threads",
        "valid CreateChatCompletionRequest (spec)",
        f"{schema_ok} / {total}",
        "all",
    )


def bench_offline(workdir: Path, archive: Path) -> None:
    """Offline work on the 2,000-thread archive: rebuild and verify."""
    code, out, seconds, _ = migrate("rebuild", str(archive), "--all", "--workers", "0", "--json")
    messages = json.loads(out)["messages"] if out.strip() else 0
    record(
        "rebuild (one core)",
        "messages per minute",
        f"{messages / seconds * 60:,.0f} ({messages} in {seconds:.1f} s)",
        ">= 200,000",
    )
    code, _, seconds, _ = migrate("verify", str(archive), "--json")
    record("verify 2,000 threads", "exit code and time", f"{code} in {seconds:.1f} s", "0 in < 30 s")
    out_file = workdir / "sessions.jsonl"
    code, _, seconds, _ = migrate("import", str(archive), "--to", "jsonl", "--out", str(out_file))
    lines = sum(1 for _ in out_file.open()) if out_file.exists() else 0
    record("import jsonl", "sessions and time", f"{lines} in {seconds:.1f} s (exit {code})", "-")


def _rate(workdir: Path, name: str, threads: int, limit: int, latency_ms: int) -> None:
    with sandbox(threads, "--rps-limit", str(limit), "--latency-ms", str(latency_ms)) as (base, root, ids):
        archive = workdir / f"rate-{limit}-{latency_ms}.db"
        started = time.monotonic()
        code, out, seconds, _ = migrate(
            "export", str(archive), "--threads", str(ids), "--base-url", base, "--json"
        )
        served = get(root + "/_sandbox/stats")
        elapsed = time.monotonic() - started
    total = served["total"]
    throttled = served.get("rate_limited", served.get("by_status", {}).get("429", 0))
    summary = json.loads(out) if out.strip() else {}
    # The client's own clock excludes process start-up; it is the rate the source saw while exporting.
    client_seconds = summary.get("network_seconds") or elapsed
    achieved = (total - throttled) / client_seconds
    record(name, "exit code", str(code), "0")
    record(name, "achieved rate / limit", f"{achieved:.1f} / {limit} = {achieved / limit:.3f}", ">= 0.90")
    record(name, "429s / requests", f"{throttled} / {total} = {throttled / total:.4f}", "<= 0.01")


def bench_rate(workdir: Path) -> None:
    """A 50 req/s source with 20 ms latency: how close to the limit, how few 429s."""
    _rate(workdir, "rate limit 50 req/s, 20 ms", 600, 50, 20)


def bench_slow_source(workdir: Path) -> None:
    """A 40 req/s source with 150 ms latency: the default --concurrency must still saturate it."""
    _rate(workdir, "rate limit 40 req/s, 150 ms, default concurrency", 400, 40, 150)


def bench_memory(workdir: Path) -> None:
    """20,000 threads: peak RSS of the export process."""
    with sandbox(20000) as (base, root, ids):
        archive = workdir / "export20000.db"
        code, out, seconds, rss_kib = migrate(
            "export", str(archive), "--threads", str(ids), "--base-url", base, "--json"
        )
    record("export 20,000 threads", "exit code", str(code), "0")
    record("export 20,000 threads", "peak RSS", f"{rss_kib / 1024:.0f} MB in {seconds:.0f} s", "< 200 MB")


def support_log(path: Path, rows: int, per_thread: int = 10) -> None:
    """A support platform's message log in SQLite: time order across conversations, ISO times with
    one-second resolution (several rows a second), a customer id, a user id, and a tool call with its
    output in one conversation of twenty."""
    import sqlite3

    threads = rows // per_thread
    conn = sqlite3.connect(path)
    conn.execute(
        "create table messages (id integer primary key, conversation_id text, role text, body text, "
        "created_at text, customer_id integer, user_id text, tool_calls text, tool_call_id text)"
    )

    def generate() -> Iterator[tuple[object, ...]]:
        start = 1_700_000_000
        for k in range(rows):
            thread, turn = k % threads, k // threads  # consecutive rows belong to different threads
            at = start + k // 7  # seven rows a second
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))
            conv, user = f"conv_{thread:07d}", f"u_{thread * 7919 % 100000:05d}"
            body = f"message {turn} of conversation {thread}: " + "my order has not arrived yet, " * 3
            if thread % 20 == 0 and turn == 1:
                call = json.dumps([{"id": f"call_{thread}", "type": "function",
                                    "function": {"name": "order_status", "arguments": '{"order": 7}'}}])  # fmt: skip
                yield (k + 1, conv, "assistant", "", stamp, thread % 997, user, call, None)
            elif thread % 20 == 0 and turn == 2:
                yield (
                    k + 1,
                    conv,
                    "tool",
                    '{"status": "shipped"}',
                    stamp,
                    thread % 997,
                    user,
                    None,
                    f"call_{thread}",
                )
            else:
                role = "user" if turn % 2 == 0 else "assistant"
                yield (k + 1, conv, role, body, stamp, thread % 997, user, None, None)

    conn.executemany("insert into messages values (?, ?, ?, ?, ?, ?, ?, ?, ?)", generate())
    conn.commit()
    conn.close()


def migrate_measured(workdir: Path, *args: str) -> tuple[int, str, float, int, float]:
    """Run the CLI as `migrate` does, measured by the OS: (exit code, stdout, wall seconds, peak RSS
    in KiB, CPU seconds user+sys of the process and its children). Through GNU time when the machine
    has it: ru_maxrss survives exec, so a child forked straight from this process could report this
    process's peak instead of its own."""
    gnu_time, measured = Path("/usr/bin/time"), workdir / "step.usage"
    prefix = [str(gnu_time), "-f", "%M %U %S", "-o", str(measured)] if gnu_time.exists() else []
    started = time.monotonic()
    proc = subprocess.Popen(
        [*prefix, *MIGRATE, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "OPENAI_API_KEY": "bench"},
    )
    out = proc.stdout.read().decode() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.monotonic() - started
    rss_kib, cpu = usage.ru_maxrss, usage.ru_utime + usage.ru_stime
    if measured.exists():
        fields = measured.read_text().split()  # a line about a signal may come first
        with suppress(IndexError, ValueError):
            rss_kib, cpu = int(fields[-3]), float(fields[-2]) + float(fields[-1])
        measured.unlink()
    return os.waitstatus_to_exitcode(status), out, seconds, rss_kib, cpu


def bench_records(workdir: Path) -> None:
    """1,000,000 rows of a SQLite support log: rows a minute on one core, and peak RSS."""
    rows = int(os.environ.get("BENCH_RECORDS_ROWS", "1000000"))
    log, archive = workdir / "support_log.db", workdir / "records.db"
    support_log(log, rows)
    scenario = f"export --from-records, {rows:,} SQLite rows"
    args = ("export", str(archive), "--from-records", f"sqlite:///{log}", "--table", "messages")
    maps = ("--map", "thread_id=conversation_id", "--map", "content=body", "--json")
    code, out, seconds, rss_kib, cpu = migrate_measured(workdir, *args, *maps)
    report = json.loads(out) if out.strip() else {}
    record(scenario, "exit code", str(code), "0")
    rows_read = report.get("rows_read", 0)
    # On one core = per CPU minute (user+sys, measured by the OS), so a busy machine does not count.
    ingest, ingest_cpu = report.get("elapsed") or seconds, report.get("cpu_seconds") or cpu
    record(
        scenario,
        "rows a minute, whole command (read, checked, stored, sessions built; one core)",
        f"{rows_read / cpu * 60:,.0f} per CPU minute, {rows_read / seconds * 60:,.0f} by the clock "
        f"({rows_read:,} rows, {report.get('threads', 0):,} threads, {report.get('sessions', 0):,} sessions; "
        f"{cpu:.1f} s CPU, {seconds:.1f} s wall)",
        ">= 1,000,000",
    )
    record(
        scenario,
        "rows a minute, reading into the archive (before sessions; one core)",
        f"{rows_read / ingest_cpu * 60:,.0f} per CPU minute, {rows_read / ingest * 60:,.0f} by the clock "
        f"({ingest_cpu:.1f} s CPU, {ingest:.1f} s wall)",
        ">= 1,000,000",
    )
    record(scenario, "peak RSS", f"{rss_kib / 1024:.0f} MB", "< 150 MB")
    code, out, seconds, _, cpu = migrate_measured(workdir, *args, *maps)
    report = json.loads(out) if out.strip() else {}
    record(
        scenario,
        "rerun, nothing changed",
        f"exit {code}, {report.get('threads_unchanged', 0):,} threads unchanged in {seconds:.0f} s "
        f"({cpu:.1f} s CPU)",
        "all unchanged",
    )


SCENARIOS: dict[str, Callable[[Path], None]] = {
    "export": bench_export,
    "rate": bench_rate,
    "slow-source": bench_slow_source,
    "memory": bench_memory,
    "records": bench_records,
}


def write_report() -> None:
    """The scenarios' table; the sections other modes write (Scale, Hot spots) are kept as they are."""
    from bench.scale import REPORT, join_sections, split_sections

    lines = [
        "# Benchmarks",
        "",
        "Measured by `make bench` (`python -m bench`) on this machine: "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}. "
        "Client and sandbox run in separate processes on 127.0.0.1.",
        "",
        "| scenario | figure | measured | target |",
        "|---|---|---|---|",
        *[f"| {s} | {f} | {v} | {t} |" for s, f, v, t in RESULTS],
    ]
    parts = split_sections(REPORT.read_text()) if REPORT.exists() else {}
    parts[""] = "\n".join(lines)
    REPORT.write_text(join_sections(parts))


# Modes with options of their own: `python -m bench scale --threads N`, `python -m bench tokens`, ...
MODES = {
    "scale": "bench.scale",
    "hotspots": "bench.hotspots",
    "tokens": "bench.tokens",
    "house": "bench.house",
    "readfiles": "bench.readfiles",
}


def main(argv: list[str]) -> int:
    if argv and argv[0] in MODES:
        import importlib

        return importlib.import_module(MODES[argv[0]]).main(argv[1:])
    names = argv or list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        print(f"bench: unknown scenario {unknown[0]!r}; choose from {', '.join(SCENARIOS)}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        for name in names:
            print(f"{name}: {SCENARIOS[name].__doc__}", flush=True)
            SCENARIOS[name](Path(tmp))
    if not argv:
        write_report()
        print("written to docs/benchmarks.md")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
