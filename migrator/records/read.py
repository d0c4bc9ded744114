"""Reading a message log: a CSV file, a JSONL file, or a database by its SQLAlchemy URL.

Every reader streams: rows come one at a time (a database through a server-side cursor, SQLAlchemy's
`stream_results` with `yield_per`; SQLite from its own cursor, `fetchmany` in chunks), numbered from 1
in the source's order, each as a dict of its columns in the source's order (`raw_row`). A database is opened to read only, and its URL is shown
and stored with the password masked; the password itself is never printed or written.
"""

from __future__ import annotations

import contextlib
import csv
import sqlite3
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson

from migrator.archive.canonical import loads
from migrator.errors import BadInputError, UnreachableError, UsageError
from migrator.records.values import raw_row
from migrator.redact import register_secret

__all__ = ["Source", "RowError", "open_source", "mask_url", "YIELD_PER"]

YIELD_PER = 2000  # rows a database hands over at a time
_CONNECT_TIMEOUT = 15  # seconds: a database host that never answers must not hang the export
# The drivers SQLAlchemy would pick for a bare scheme, and where to get them.
_DRIVERS = {
    "postgresql": ("psycopg", "pip install 'migrate-assistants[postgres]'"),
    "mysql": ("a MySQL driver", "pip install pymysql, then write the URL as mysql+pymysql://..."),
}


@dataclass(frozen=True)
class RowError:
    """A row the reader itself could not read (a JSONL line that is not a JSON object)."""

    reason: str


@dataclass
class Source:
    label: str  # what reports and the archive say: the path, or the URL with its password masked
    columns: tuple[str, ...]
    rows: Iterator[tuple[int, dict[str, Any] | RowError]]


def mask_url(url: str) -> str:
    """The URL as it may be shown: its password masked (also when SQLAlchemy cannot parse it)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        scheme, sep, rest = url.partition("://")
        userinfo, at, host = rest.rpartition("@")
        if not sep or not at:
            return url
        user = userinfo.partition(":")[0]
        return f"{scheme}://{user}:***@{host}"


def is_url(spec: str) -> bool:
    scheme, sep, _ = spec.partition("://")
    return bool(sep) and scheme.replace("+", "").replace("-", "").isalnum()


@contextlib.contextmanager
def open_source(spec: str, *, query: str | None = None, table: str | None = None) -> Iterator[Source]:
    """The rows of a log, ready to stream; every usage error is raised here, before a row is read."""
    if query is not None and table is not None:
        raise UsageError("--query and --table exclude each other: give one")
    if is_url(spec):
        if query is None and table is None:
            raise UsageError(
                f"{mask_url(spec)}: a database source needs --query SQL or --table NAME",
                hint="e.g. --query 'SELECT * FROM messages ORDER BY created_at, id'",
            )
        with _database(spec, query, table) as source:
            yield source
        return
    if query is not None or table is not None:
        raise UsageError("--query and --table read a database; a file source is read whole")
    path = Path(spec)
    if not path.is_file():
        raise BadInputError(
            f"{spec}: no such file" if not path.exists() else f"{spec}: not a file",
            hint="--from-records takes a CSV or JSONL file, or a database URL such as sqlite:///app.db",
        )
    if _is_jsonl(path):
        with _jsonl(path) as source:
            yield source
    else:
        with _csv(path) as source:
            yield source


def _is_jsonl(path: Path) -> bool:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return True
    if suffix in (".csv", ".tsv", ".txt"):
        return False
    with open(path, "rb") as fh:
        head = fh.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith(b"{")


@contextlib.contextmanager
def _csv(path: Path) -> Iterator[Source]:
    # A message can be longer than the csv module's default field limit (128 KiB).
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    dialect: Any = "excel-tab" if path.suffix.lower() == ".tsv" else "excel"
    # surrogateescape: a byte that is not UTF-8 is kept (as the archive keeps odd text), never fatal.
    with open(path, newline="", encoding="utf-8-sig", errors="surrogateescape") as fh:
        reader = csv.reader(fh, dialect)
        header = next(reader, [])
        names = tuple(header)

        def rows() -> Iterator[tuple[int, dict[str, Any] | RowError]]:
            for number, values in enumerate(reader, start=1):
                if not values:
                    continue  # a blank line
                yield number, raw_row(names, values)

        yield Source(str(path), names, rows())


@contextlib.contextmanager
def _jsonl(path: Path) -> Iterator[Source]:
    with open(path, "rb") as fh:
        first: dict[str, Any] | None = None
        for line in fh:
            try:
                value = loads(line)
            except orjson.JSONDecodeError:
                continue
            if isinstance(value, dict):
                first = value
                break
        # The columns of a JSONL log are the keys of its first object (rows may add more: metadata).
        names = tuple(first) if first else ()
        fh.seek(0)

        def rows() -> Iterator[tuple[int, dict[str, Any] | RowError]]:
            for number, line in enumerate(fh, start=1):
                if number == 1:
                    line = line.removeprefix(b"\xef\xbb\xbf")
                if not line.strip():
                    continue
                try:
                    value = loads(line)
                except orjson.JSONDecodeError as exc:
                    yield number, RowError(f"not JSON ({exc})")
                    continue
                if not isinstance(value, dict):
                    yield number, RowError(f"a JSON {type(value).__name__}, not an object")
                    continue
                yield number, raw_row(tuple(value), tuple(value.values()))

        yield Source(str(path), names, rows())


def _first_line(exc: BaseException, secret: str | None) -> str:
    """A driver's error as one line, with the password cut out should the driver have echoed it."""
    orig = getattr(exc, "orig", None) or exc
    text = next((line.strip() for line in str(orig).splitlines() if line.strip()), type(orig).__name__)
    return text.replace(secret, "***") if secret else text


@contextlib.contextmanager
def _database(spec: str, query: str | None, table: str | None) -> Iterator[Source]:
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError

    label = mask_url(spec)
    try:
        url = make_url(spec)
    except ArgumentError:
        raise UsageError(
            f"{label}: not a database URL", hint="SQLAlchemy's form, e.g. postgresql://user@host/db"
        ) from None
    secret = url.password if isinstance(url.password, str) and url.password else None
    register_secret(secret)  # the one redaction step removes it from anything a driver echoes
    backend = url.get_backend_name()
    if backend == "postgres":  # Heroku's spelling, which SQLAlchemy refuses
        backend = "postgresql"
        url = url.set(drivername="postgresql")
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")  # psycopg 3, the [postgres] extra
    try:
        engine = _engine(sa, url, backend, label)
    except NoSuchModuleError:
        raise UsageError(f"{label}: SQLAlchemy knows no database kind {url.drivername!r}") from None
    except ImportError as exc:
        driver, how = _DRIVERS.get(backend, (exc.name or "its driver", f"pip install {exc.name}"))
        raise UsageError(
            f"{label}: reading {backend} needs {driver}, which is not installed", hint=how
        ) from None
    try:
        try:
            conn = engine.connect()
        except (DBAPIError, SQLAlchemyError) as exc:
            raise UnreachableError(label, _first_line(exc, secret), "the URL of --from-records") from None
        with conn:
            if table is not None:
                schema, _, name = table.rpartition(".")
                inspector = sa.inspect(conn)
                if not inspector.has_table(name, schema=schema or None):
                    names = ", ".join(sorted(inspector.get_table_names(schema=schema or None))) or "(none)"
                    raise UsageError(f"{label}: no table {table!r}; its tables: {names}")
                statement: Any = sa.select(sa.text("*")).select_from(sa.table(name, schema=schema or None))
                run = conn.execution_options(stream_results=True, yield_per=YIELD_PER).execute
            else:
                statement = query
                # Sent to the driver as written: no bind parameters, so `:` and `%` mean what they say.
                run = conn.execution_options(
                    stream_results=True, yield_per=YIELD_PER, no_parameters=True
                ).exec_driver_sql
            if backend == "sqlite":
                what = f"table {table!r}" if table is not None else "--query"
                sql = query if query is not None else str(statement.compile(dialect=engine.dialect))
                with _sqlite_rows(conn.connection.driver_connection, sql, label, what) as source:
                    yield source
                return
            try:
                result = run(statement)
            except DBAPIError as exc:
                if exc.connection_invalidated:
                    raise UnreachableError(label, _first_line(exc, secret), "the database") from None
                what = f"table {table!r}" if table is not None else "--query"
                raise UsageError(f"{label}: {what} failed: {_first_line(exc, secret)}") from None
            if not result.returns_rows:
                raise UsageError(f"{label}: --query returned no rows at all (not a SELECT?)")
            names = tuple(result.keys())

            def rows() -> Iterator[tuple[int, dict[str, Any] | RowError]]:
                try:
                    for number, values in enumerate(result, start=1):
                        yield number, raw_row(names, values)
                except DBAPIError as exc:
                    raise UnreachableError(
                        label, f"lost while reading: {_first_line(exc, secret)}", "the database"
                    ) from None

            try:
                yield Source(label, names, rows())
            finally:
                result.close()
    finally:
        engine.dispose()


@contextlib.contextmanager
def _sqlite_rows(db: sqlite3.Connection, sql: str, label: str, what: str) -> Iterator[Source]:
    """SQLite's rows straight from its own cursor, in chunks: a file has no server-side cursor to
    stream through, and SQLAlchemy's row objects would cost more than reading the row itself."""
    cursor = db.cursor()
    try:
        try:
            cursor.execute(sql)
        except sqlite3.Error as exc:
            raise UsageError(f"{label}: {what} failed: {_first_line(exc, None)}") from None
        if cursor.description is None:
            raise UsageError(f"{label}: --query returned no rows at all (not a SELECT?)")
        names = tuple(d[0] for d in cursor.description)

        def rows() -> Iterator[tuple[int, dict[str, Any] | RowError]]:
            number = 0
            try:
                while chunk := cursor.fetchmany(YIELD_PER):
                    for values in chunk:
                        number += 1
                        yield number, raw_row(names, values)
            except sqlite3.Error as exc:
                raise UnreachableError(
                    label, f"lost while reading: {_first_line(exc, None)}", "the database"
                ) from None

        yield Source(label, names, rows())
    finally:
        cursor.close()


def _engine(sa: Any, url: Any, backend: str, label: str) -> Any:
    if backend == "sqlite":
        database = url.database
        if not database or database == ":memory:":
            raise UsageError(f"{label}: name the database file, e.g. sqlite:///app.db")
        path = Path(database)
        if not path.is_file():
            raise BadInputError(f"{label}: no such database file {database}")
        # Read only, always: the log is the application's, and a missing file must not be created.
        uri = f"file:{quote(str(path.resolve()))}?mode=ro"
        return sa.create_engine("sqlite://", creator=lambda: sqlite3.connect(uri, uri=True))
    connect_args: dict[str, Any] = {}
    if backend in ("postgresql", "mysql") and "connect_timeout" not in url.query:
        connect_args["connect_timeout"] = _CONNECT_TIMEOUT
    return sa.create_engine(url, connect_args=connect_args, poolclass=sa.pool.NullPool)
