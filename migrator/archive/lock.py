"""One writer per archive: an exclusive advisory lock on a sidecar file, `ARCHIVE.lock`.

The lock is the OS's (`flock`), so it goes with the process however that ends: a kill -9 leaves the
file but not the lock, and the next writer takes it over. The file only says who holds it
(`{"command", "pid", "host", "started"}`) so a refused writer can name the holder. A clean exit
removes the file; a left-over one (from a killed process, or copied along as a CI artifact) is
harmless. On Linux, `flock` on NFS is carried by the server's byte-range locks, so it holds across
hosts too. Where the file system offers no lock at all (ENOLCK), the pid in the file is judged
instead: best effort, named in the README.

Readers never touch it: `stats`, `verify`, `inspect` work while a writer holds the lock.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import orjson

from migrator.errors import ArchiveBusyError, NotAnArchiveError

__all__ = ["ArchiveLock", "Holder", "lock_path"]

# errno values that mean "this file system has no locks", not "someone holds it".
_NO_LOCKS = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EINVAL, errno.ENOSYS}


def lock_path(archive: Path) -> Path:
    """The lock file of an archive: beside it, named after the real file (so a symlink or a relative
    path to the same archive finds the same lock)."""
    real = Path(os.path.realpath(archive))
    return real.with_name(real.name + ".lock")


@dataclass(frozen=True)
class Holder:
    """Who holds (or held) an archive's lock, as its lock file says."""

    command: str
    pid: int
    host: str
    started: float  # epoch seconds

    def describe(self) -> str:
        """`migrate export (pid 4242 on host-a since 03:12)`: the date too when it is not today."""
        when = datetime.fromtimestamp(self.started)
        since = when.strftime("%H:%M" if when.date() == datetime.now().date() else "%Y-%m-%d %H:%M")
        return f"migrate {self.command} (pid {self.pid} on {self.host} since {since})"

    def to_json(self) -> bytes:
        started = datetime.fromtimestamp(self.started).astimezone().isoformat(timespec="seconds")
        doc = {"command": self.command, "pid": self.pid, "host": self.host, "started": started}
        return orjson.dumps(doc) + b"\n"

    @classmethod
    def parse(cls, data: bytes) -> Holder | None:
        """The holder a lock file names; None when it is empty or unreadable (a write cut short)."""
        try:
            doc = orjson.loads(data)
            started = datetime.fromisoformat(doc["started"]).timestamp()
            return cls(str(doc["command"]), int(doc["pid"]), str(doc["host"]), started)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # someone else's process: alive
    return True


def _read(fd: int) -> bytes:
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while chunk := os.read(fd, 4096):
        chunks.append(chunk)
    return b"".join(chunks)


class ArchiveLock:
    """The writer lock of one archive. `acquire()` refuses at once when a live writer holds it."""

    def __init__(self, archive: Path, command: str) -> None:
        self.archive = archive
        self.path = lock_path(archive)
        self.command = command
        self.fd: int | None = None
        # The holder of a lock left by a process that is gone; the caller says it took it over.
        self.took_over: Holder | None = None
        self.stray = False  # a left-over lock file that named nobody readable

    def acquire(self) -> ArchiveLock:
        for _ in range(20):
            fd = self._open()
            try:
                os_lock = self._flock(fd)
                # The file may have been removed (a holder's clean exit) between our open and our
                # lock: then we hold a lock on a name nobody else will open. Start again.
                if not self._still_named(fd):
                    os.close(fd)
                    continue
                previous = _read(fd)
                holder = Holder.parse(previous) if previous.strip() else None
                if not os_lock:
                    self._judge_by_pid(holder)
                if holder is not None and holder.pid == os.getpid() and holder.host == socket.gethostname():
                    holder = None  # our own earlier lock file (we only get here after it was released)
                self.took_over = holder
                self.stray = holder is None and bool(previous.strip())
                self._write_holder(fd)
            except BaseException:
                os.close(fd)
                raise
            self.fd = fd
            return self
        raise ArchiveBusyError(f"{self.archive}: could not take the writer lock {self.path}; try again")

    def release(self) -> None:
        """Remove the lock file, then drop the lock (in that order, so no one locks a removed name)."""
        if self.fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        os.close(self.fd)
        self.fd = None

    def hand_over(self) -> int:
        """Keep the lock across an exec of this process: its descriptor stays open, inheritable, and
        no longer this object's (so a close of the archive leaves the lock and its file alone)."""
        if self.fd is None:
            raise ArchiveBusyError(f"{self.archive}: no writer lock to hand over")
        fd, self.fd = self.fd, None
        os.set_inheritable(fd, True)
        return fd

    @classmethod
    def adopt(cls, archive: Path, command: str, fd: int) -> ArchiveLock:
        """The lock `hand_over` kept for this process (same pid, so its file still names us)."""
        lock = cls(archive, command)
        try:
            ours = lock._still_named(fd)
        except OSError:
            ours = False
        if not ours:
            raise ArchiveBusyError(
                f"{archive}: descriptor {fd} is not its writer lock {lock.path}; run the command again"
            )
        os.set_inheritable(fd, False)
        lock.fd = fd
        return lock

    def __enter__(self) -> ArchiveLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    # -- steps ------------------------------------------------------------------------------------

    def _open(self) -> int:
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise NotAnArchiveError(
                f"{self.archive}: cannot write here (the writer lock {self.path} cannot be created: "
                f"{exc.strerror or exc})"
            ) from None

    def _flock(self, fd: int) -> bool:
        """True when the OS lock is ours; False when this file system has none. Busy raises."""
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            raise self._busy(Holder.parse(_read(fd))) from None
        except OSError as exc:
            if exc.errno in _NO_LOCKS:
                return False
            raise

    def _still_named(self, fd: int) -> bool:
        try:
            named = os.stat(self.path)
        except FileNotFoundError:
            return False
        mine = os.fstat(fd)
        return (named.st_dev, named.st_ino) == (mine.st_dev, mine.st_ino)

    def _judge_by_pid(self, holder: Holder | None) -> None:
        """No OS lock to ask: a holder on this host is alive when its pid is; another host's
        holder is taken at its word (its lock file must be removed by hand if it is long gone)."""
        if holder is None:
            return
        here = holder.host == socket.gethostname()
        if here and (holder.pid == os.getpid() or not _pid_alive(holder.pid)):
            return
        raise self._busy(holder, hint="" if here else f"; if it is not running, remove {self.path}")

    def _busy(self, holder: Holder | None, hint: str = "") -> ArchiveBusyError:
        who = holder.describe() if holder is not None else "another migrate process (starting up)"
        return ArchiveBusyError(f"{self.archive} is in use by {who}; wait for it or stop it{hint}")

    def _write_holder(self, fd: int) -> None:
        me = Holder(self.command, os.getpid(), socket.gethostname(), time.time())
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, me.to_json())
