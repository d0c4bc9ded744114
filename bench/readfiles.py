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
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor

from migrator.dumps.readahead import _files_under, _read


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench readfiles", description=__doc__.splitlines()[0])
    parser.add_argument("dump")
    parser.add_argument("--in-flight", type=int, default=1)
    parser.add_argument("--cold", action="store_true")
    args = parser.parse_args(argv)
    if args.cold:
        subprocess.run(["sync"], check=True)
        with open("/proc/sys/vm/drop_caches", "w") as fh:
            fh.write("3\n")
    started, cpu = time.monotonic(), time.process_time()
    files = 0
    with ThreadPoolExecutor(args.in_flight) as pool:
        pending: deque[Future[None]] = deque()
        for path in _files_under(os.path.abspath(args.dump), pool):
            files += 1
            pending.append(pool.submit(_read, path))
            if len(pending) >= 2 * args.in_flight:
                pending.popleft().result()
        for future in pending:
            future.result()
    print(
        f"{files:,} files, {args.in_flight} in flight{' (cold)' if args.cold else ''}: "
        f"{time.monotonic() - started:.1f} s wall, {time.process_time() - cpu:.1f} s CPU"
    )
    return 0
