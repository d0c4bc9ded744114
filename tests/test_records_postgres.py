"""`--from-records postgresql://...` against a real PostgreSQL server started for these tests (tests/pg.py).

The same support log as test_records.py, in a table with real column types (timestamptz, bigint,
jsonb), read through SQLAlchemy's server-side cursor, must give exactly the sessions the SQLite log
gives. Without the server binaries the tests skip and say so; `.ci/run` installs them, so CI runs
them (its summary prints a `PostgreSQL:` line naming the tests that ran and the server).
"""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pg import find_bindir, pg_server
from records_support import MAPS, corpus_log, sessions, texts_of, write_sqlite

from migrator.cli import main

psycopg = pytest.importorskip("psycopg", reason="psycopg (the [postgres] extra, in [dev]) is not installed")
BINDIR = find_bindir()
pytestmark = pytest.mark.skipif(
    BINDIR is None or (os.geteuid() == 0 and shutil.which("runuser") is None),
    reason="PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install postgresql "
    "(.ci/run does) to run these tests",
)
MAP_ARGS = [a for m in MAPS for a in ("--map", m)]


@pytest.fixture(scope="module")
def server():
    assert BINDIR is not None
    with pg_server(BINDIR) as srv:
        yield srv


@pytest.fixture(scope="module")
def log():
    return corpus_log()


@pytest.fixture(scope="module")
def loaded(server, log):
    """The support log in a `support` database, with the column types a real application uses."""
    with psycopg.connect(server.url(), autocommit=True) as conn:
        conn.execute("create database support")
    with psycopg.connect(server.url("support"), autocommit=True) as conn:
        conn.execute(
            "create table support_messages (id bigint primary key, conversation_id text not null, "
            "role text not null, body text, sent_at timestamptz not null, customer_id bigint, user_id text, "
            "tool_calls jsonb, tool_call_id text)"
        )
        with conn.cursor() as cur:
            cur.executemany(
                "insert into support_messages values (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [
                    (
                        r["id"], r["conversation_id"], r["role"], r["body"],
                        datetime.strptime(r["sent_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC),
                        r["customer_id"], r["user_id"], r["tool_calls"] or None, r["tool_call_id"] or None,
                    )
                    for r in log.rows
                ],
            )  # fmt: skip
    return server


@pytest.fixture
def recorded(record_property, server):
    record_property("postgres_server", f"{server.version} on {server.host}:{server.port}")


def cli(capsys, *args: object) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def archive_bytes(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


def test_postgres_log_gives_the_same_sessions_as_sqlite_and_no_password_anywhere(
    loaded, log, tmp_path, capsys, recorded
):
    url = loaded.url("support")
    query = "SELECT * FROM support_messages ORDER BY sent_at, id"
    code, out, err = cli(
        capsys, "export", tmp_path / "pg.db", "--from-records", url, "--query", query, *MAP_ARGS,
        "--citations", "keep",
    )  # fmt: skip
    assert code == 0, err
    assert f"{len(log.rows)} rows read" in err and f"threads {len(log.texts)} new" in err
    assert f"postgresql://migrate:***@127.0.0.1:{loaded.port}/support" in err
    assert loaded.password not in out + err
    assert loaded.password.encode() not in archive_bytes(tmp_path / "pg.db")

    assert cli(capsys, "import", tmp_path / "pg.db", "--to", "jsonl", "--out", tmp_path / "pg.jsonl")[0] == 0
    got = sessions(tmp_path / "pg.jsonl")
    assert set(got) == set(log.texts)
    for tid, want in log.texts.items():
        assert texts_of(got[tid]) == want, tid
        assert got[tid]["metadata"]["user_id"] == log.users[tid]

    write_sqlite(log, tmp_path / "support.db")
    code, _, err = cli(
        capsys, "export", tmp_path / "lite.db", "--from-records", f"sqlite:///{tmp_path / 'support.db'}",
        "--query", "SELECT * FROM support_messages ORDER BY sent_at, id", *MAP_ARGS, "--citations", "keep",
    )  # fmt: skip
    assert code == 0, err
    assert (
        cli(capsys, "import", tmp_path / "lite.db", "--to", "jsonl", "--out", tmp_path / "lite.jsonl")[0] == 0
    )
    assert (tmp_path / "pg.jsonl").read_bytes() == (tmp_path / "lite.jsonl").read_bytes()
    assert cli(capsys, "verify", tmp_path / "pg.db")[0] == 0


def test_postgres_table_rerun_changes_only_the_edited_thread(loaded, log, tmp_path, capsys, recorded):
    url = loaded.url("support")
    args = ("export", tmp_path / "a.db", "--from-records", url, "--table", "support_messages", *MAP_ARGS)
    code, _, err = cli(capsys, *args)
    assert code == 0 and f"threads {len(log.texts)} new" in err, err
    code, _, err = cli(capsys, *args)
    assert code == 0 and f"0 new, 0 updated, {len(log.texts)} unchanged" in err, err
    tid = sorted(log.texts)[5]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("create table edited as select * from support_messages")
        conn.execute(
            "update edited set body = body || ' (edited)' where id = "
            "(select min(id) from edited where conversation_id = %s and role = 'user')",
            [tid],
        )
    code, _, err = cli(
        capsys, "export", tmp_path / "a.db", "--from-records", url, "--table", "edited", *MAP_ARGS
    )
    assert code == 0 and f"0 new, 1 updated, {len(log.texts) - 1} unchanged" in err, err


def test_postgres_wrong_password_and_closed_port_exit_3_masked(loaded, tmp_path, capsys, recorded):
    wrong = "Canary-" + os.urandom(8).hex()
    code, out, err = cli(
        capsys, "export", tmp_path / "a.db", "--from-records", loaded.url("support", password=wrong),
        "--table", "support_messages",
    )  # fmt: skip
    assert code == 3, err
    assert (
        "cannot connect to postgresql://migrate:***@127.0.0.1" in err
        and "password authentication failed" in err
    )
    assert wrong not in out + err and not (tmp_path / "a.db").exists()
    code, _, err = cli(
        capsys,
        "export",
        tmp_path / "a.db",
        "--from-records",
        loaded.url("support"),
        "--query",
        "select * from nope",
    )
    assert code == 2 and "--query failed" in err and "nope" in err and loaded.password not in err


def test_postgres_rows_stream_through_a_server_side_cursor(loaded, log, tmp_path, recorded):
    from migrator.archive import Archive
    from migrator.records import RecordsRequest, ingest_records, open_records

    seen: list[str] = []

    def watch(snapshot) -> None:
        if snapshot.phase == "reading rows" and not seen:
            with psycopg.connect(loaded.url("support"), autocommit=True) as conn:
                seen.extend(
                    row[0]
                    for row in conn.execute(
                        "select query from pg_stat_activity where datname = 'support' and pid <> pg_backend_pid()"
                    )
                )

    request = RecordsRequest(
        loaded.url("support"), query="SELECT * FROM support_messages ORDER BY sent_at, id", maps=MAPS
    )
    with open_records(request) as opened, Archive.create(tmp_path / "a.db", writer="test") as store:
        report = ingest_records(store, opened, watch)
    assert report.rows_read == len(log.rows)
    # While rows were read, the reader's session was fetching from a declared cursor, page by page.
    assert any(q.lstrip().upper().startswith(("FETCH", "DECLARE")) for q in seen), seen
