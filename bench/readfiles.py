"""`python -m bench readfiles DUMP [--in-flight N] [--cold]`: how long reading a dump's files takes on
this machine, nothing else (docs/benchmarks.md, "340,000 threads, 2026-12-02").

Every file under DUMP in the ingest's order, listed and read with N reads in flight (1: the ingest's
own way); `--cold` drops the page cache first (root only: `echo 3 > /proc/sys/vm/drop_caches`).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

from migrator.dumps.readahead import Walk, read_all


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench readfiles", description=__doc__.splitlines()[0])
    parser.add_argument("dump")
    parser.add_argument("--in-flight", type=int, default=1)
    parser.add_argument("--cold", action="store_true")
    args = parser.parse_args(argv)
    if not os.path.isdir(args.dump):
        print(f"{args.dump}: not a folder (give the dump's folder)")
        return 2
    if args.cold:
        try:
            subprocess.run(["sync"], check=True)
            with open("/proc/sys/vm/drop_caches", "w") as fh:
                fh.write("3\n")
        except OSError as exc:
            print(f"--cold drops the page cache, which needs root: {exc.strerror or exc}")
            return 2
    started, cpu = time.monotonic(), time.process_time()
    files = 0

    def counted(paths):
        nonlocal files
        for path in paths:
            files += 1
            yield path

    with ThreadPoolExecutor(args.in_flight) as pool:
        read_all(pool, counted(Walk(pool).files_under(os.path.abspath(args.dump))), 2 * args.in_flight)
    print(
        f"{files:,} files, {args.in_flight} in flight{' (cold)' if args.cold else ''}: "
        f"{time.monotonic() - started:.1f} s wall, {time.process_time() - cpu:.1f} s CPU"
    )
    return 0
