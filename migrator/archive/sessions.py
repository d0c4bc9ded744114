"""`archive.sessions`: the sessions derived from the raw rows, and what they are made of.

Owns the derived tables `sessions` (one canonical migrator.session/v1 record a thread, with its hash,
message and token counts), `session_warnings` (conversion warnings per code), `session_tools` and
`tool_definitions` (one row per distinct tool definition: a name with two rows is a schema conflict).
They are rebuilt from the raw rows by `migrate rebuild`, offline; `work.session_stale` says which
are out of date.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import orjson

from migrator.archive.canonical import object_hash, sha256_hex
from migrator.archive.room import Room
from migrator.archive.types import PackedSession, SessionRow, SessionState

__all__ = ["Sessions", "pack"]


def pack(row: SessionRow) -> PackedSession:
    """The row as `Sessions.store` writes it."""
    record_json = orjson.dumps(row.record, option=orjson.OPT_SORT_KEYS)
    tools = tuple(
        (
            tool.get("function", {}).get("name") or tool.get("type", "?"),
            object_hash(tool),
            orjson.dumps(tool, option=orjson.OPT_SORT_KEYS).decode(),
        )
        for tool in row.tools
    )
    return PackedSession(
        row.thread_id,
        record_json.decode(),
        "sha256:" + sha256_hex(record_json),
        len(row.record.get("messages", [])),
        row.tokens,
        tools,
        tuple(sorted(row.warnings.items())),
    )


class Sessions(Room):
    def store(self, rows: Sequence[SessionRow | PackedSession], *, fresh: bool = True) -> int:
        """Replace these threads' sessions, their tool links and warning counts, in one transaction;
        the bytes of record JSON written. `fresh=False`: the caller marks them fresh itself, in the
        same transaction (`WorkList.fresh_many`)."""
        packed = [row if isinstance(row, PackedSession) else pack(row) for row in rows]
        sessions = [(p.thread_id, p.record, p.hash, p.messages, p.tokens) for p in packed]
        definitions = [tool for p in packed for tool in p.tools]
        tools = [(p.thread_id, name, tool_hash) for p in packed for name, tool_hash, _ in p.tools]
        warnings = [(p.thread_id, code, n) for p in packed for code, n in p.warnings]
        ids = [(row.thread_id,) for row in rows]
        # One statement a table for the whole batch (a batch is hundreds of threads), in one transaction.
        with self.archive.atomic():
            conn = self.db.conn
            conn.executemany(
                "insert or replace into sessions(thread_id, record, hash, messages, tokens) values (?, ?, ?, ?, ?)",
                sessions,
            )
            conn.executemany("delete from session_tools where thread_id = ?", ids)
            conn.executemany("delete from session_warnings where thread_id = ?", ids)
            conn.executemany(
                "insert or ignore into tool_definitions(name, hash, definition) values (?, ?, ?)", definitions
            )
            conn.executemany(
                "insert or replace into session_tools(thread_id, name, hash) values (?, ?, ?)", tools
            )
            conn.executemany(
                "insert into session_warnings(thread_id, code, count) values (?, ?, ?)", warnings
            )
            if fresh:
                self.archive.work.fresh_many([row.thread_id for row in rows])
        return sum(len(session[1]) for session in sessions)

    def drop_orphan_tools(self) -> None:
        """Tool definitions no session uses any more."""
        with self.archive.atomic():
            self.db.execute(
                "delete from tool_definitions where not exists (select 1 from session_tools s "
                "where s.name = tool_definitions.name and s.hash = tool_definitions.hash)"
            )

    def record_options(self, key: str, value: dict[str, Any]) -> bool:
        """Record the options sessions are built with; when they change, every session is stale.

        One transaction: a kill can never leave new options recorded beside sessions of the old ones.
        """
        archive = self.archive
        with archive.atomic():
            before = archive.get_meta(key)
            if before == value:
                return False
            archive.set_meta(key, value)
            if before is not None:
                archive.work.stale_done()
            return True

    def records(self, thread_ids: Iterable[str] | None = None) -> Iterator[tuple[str, bytes]]:
        """(thread_id, canonical record JSON) sorted by thread id, streamed."""
        if thread_ids is not None:
            for tid in thread_ids:
                row = self.db.execute("select record from sessions where thread_id = ?", [tid]).fetchone()
                if row:
                    yield tid, row[0].encode()
            return
        sql = "select thread_id, record from sessions where thread_id > ? order by thread_id limit ?"
        for rows in self.archive.keyset(sql, batch=500):
            yield from ((tid, record.encode()) for tid, record in rows)

    def states(
        self, thread_ids: Iterable[str] | None = None, *, include_unfinished: bool, records: bool = True
    ) -> Iterator[SessionState]:
        """Every thread with a stored session or a done status, sorted by id, streamed (only these
        threads, when given). Sessions of threads that are not done come only with `include_unfinished`.
        `records=False` leaves the record out (for choosing a sample)."""
        columns = "t.thread_id, w.status, coalesce(w.session_stale, 0), s.thread_id is not null, " + (
            "s.record" if records else "null"
        )
        joins = (
            "left join work w on w.thread_id = t.thread_id left join sessions s on s.thread_id = t.thread_id"
        )
        keep = "" if include_unfinished else " and (w.status is null or w.status = 'done')"
        if thread_ids is not None:
            sql = f"select {columns} from (select ? as thread_id) t {joins} where (s.thread_id is not null or w.status = 'done'){keep}"
            for tid in thread_ids:
                if row := self.db.execute(sql, [tid]).fetchone():
                    yield SessionState(row[0], row[1], bool(row[2]), bool(row[3]), row[4])
            return
        # ?1 is the page's lower bound, ?2 its size (see Archive.keyset); the filter sits inside the
        # union so that every page is full until the end.
        # Each branch is cut to one page before the union, so a page costs two index walks of its
        # size, not a sort of the whole archive.
        sessions = (
            "select * from (select s.thread_id from sessions s left join work w on w.thread_id = s.thread_id "
            f"where s.thread_id > ?1{keep} order by s.thread_id limit ?2)"
        )
        done = "select * from (select thread_id from work where status = 'done' and thread_id > ?1 order by thread_id limit ?2)"
        sql = f"select {columns} from ({sessions} union {done} order by 1 limit ?2) t {joins} order by t.thread_id"
        for rows in self.archive.keyset(sql, batch=500):
            yield from (SessionState(r[0], r[1], bool(r[2]), bool(r[3]), r[4]) for r in rows)

    def orphans(self) -> Iterator[tuple[str, str | None]]:
        """(thread_id, work status or None) of stored sessions whose thread is not done."""
        yield from self.db.execute(
            "select s.thread_id, w.status from sessions s left join work w on w.thread_id = s.thread_id "
            "where w.status is null or w.status != 'done' order by s.thread_id"
        )

    def warning_totals(self) -> dict[str, int]:
        """Conversion warnings per code, over every stored session."""
        return {
            code: n
            for code, n in self.db.execute(
                "select code, sum(count) from session_warnings group by code order by code"
            )
        }

    def showcase(self, warning: str, min_messages: int, max_messages: int) -> str | None:
        """A session of modest length that raised this conversion warning (for the demo)."""
        row = self.db.execute(
            "select s.thread_id from sessions s join session_warnings w on w.thread_id = s.thread_id "
            "where w.code = ? and s.messages between ? and ? order by s.thread_id limit 1",
            [warning, min_messages, max_messages],
        ).fetchone()
        return row[0] if row else None

    def counts(self) -> dict[str, Any]:
        return {
            "sessions": self.db.execute("select count(*) from sessions").fetchone()[0],
            "tool_definitions": self.db.execute("select count(*) from tool_definitions").fetchone()[0],
        }
