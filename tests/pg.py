"""A real PostgreSQL server for the tests, in a temporary directory: `initdb`, then `pg_ctl start` on a
free port on 127.0.0.1 (its unix socket in the same directory), stopped and removed afterwards.

initdb refuses to run as root, and tests (and CI) run as root here: then the server runs as the
`postgres` user that Debian's package creates (or `nobody`), through `runuser`, in a directory that
user owns. The superuser's password is made per run and never written outside that directory.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PgServer", "find_bindir", "pg_server"]

USER = "migrate"


@dataclass(frozen=True)
class PgServer:
    host: str
    port: int
    user: str
    password: str
    version: str

    def url(self, database: str = "postgres", *, password: str | None = None) -> str:
        return f"postgresql://{self.user}:{password or self.password}@{self.host}:{self.port}/{database}"


def find_bindir() -> Path | None:
    """Where initdb and pg_ctl are: Debian's versioned folders first (newest), then the PATH."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]), reverse=True
    )
    for candidate in [*found, shutil.which("initdb")]:
        if candidate and os.access(candidate, os.X_OK) and (Path(candidate).parent / "pg_ctl").exists():
            return Path(candidate).resolve().parent
    return None


def _run_as() -> tuple[list[str], int | None, int | None]:
    if os.geteuid() != 0:
        return [], None, None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(name)
            return ["runuser", "-u", name, "--"], entry.pw_uid, entry.pw_gid
    raise RuntimeError("running as root, and there is neither a postgres nor a nobody user to run initdb as")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def pg_server(bindir: Path) -> Iterator[PgServer]:
    prefix, uid, gid = _run_as()
    root = Path(tempfile.mkdtemp(prefix="migrate-pg-"))
    data, sockets, log = root / "data", root / "sock", root / "server.log"
    password = "pw-" + secrets.token_hex(12)
    try:
        sockets.mkdir()
        (root / "pw").write_text(password + "\n")
        if uid is not None:
            for path in (root, sockets, root / "pw"):
                os.chown(path, uid, gid)

        def run(*args: str, timeout: float = 120) -> str:
            result = subprocess.run(
                [*prefix, *args], capture_output=True, text=True, timeout=timeout, cwd=root
            )
            if result.returncode != 0:
                tail = log.read_text()[-2000:] if log.exists() else ""
                raise RuntimeError(f"{args[0]} failed ({result.returncode}): {result.stderr[-2000:]}\n{tail}")
            return result.stdout

        run(
            str(bindir / "initdb"), "-D", str(data), "-U", USER, f"--pwfile={root / 'pw'}",
            "--auth=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync",
        )  # fmt: skip
        port = _free_port()
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {sockets} -c fsync=off -c max_connections=20"
        run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60", "start")
        try:
            version = run(str(bindir / "postgres"), "--version").strip()
            yield PgServer("127.0.0.1", port, USER, password, version)
        finally:
            with contextlib.suppress(Exception):
                run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop", timeout=60)
    finally:
        shutil.rmtree(root, ignore_errors=True)
