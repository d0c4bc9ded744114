"""`archive.loose`: raw objects that arrive one by one (a saved dump), not grouped under their thread.

Owns no table of the file: each object lands in exactly the row of `archive.raw`'s tables the export
would write for it, and its thread is settled (status, refs, findings) once every row a dump holds for
it is in. What one ingest learns on the way (which threads the dump names, which listings it holds to
their end, in which order their pages run) lives in temporary tables of the connection
(`temp.ingest_threads`, `temp.ingest_last_pages`, `temp.ingest_orders`), never in the file: held in
Python, the ids of 340,000 threads were most of an ingest's memory. Until then a thread that gained or changed a row is stale and not `done`, so a kill in the
middle of an ingest never leaves a done thread holding only part of its rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from migrator.archive.bits import Bits
from migrator.archive.canonical import dumps, loads, object_hash
from migrator.archive.raw import created
from migrator.archive.room import Room, chunks, marks
from migrator.archive.schema import PARENT_COLUMN, POSITIONED, RAW_TABLES
from migrator.archive.types import LooseObject, ThreadSettlement
from migrator.archive.versions import LaterWins, Preference, RawVersion

if TYPE_CHECKING:
    from migrator.archive.database import Archive

__all__ = ["LooseObjects"]

_THREAD_TABLES = ("threads", "messages", "runs", "run_steps")
# The raw tables a loose object may land in (files go through archive.files; record rows are a log's).
_LOOSE_TABLES = tuple(table for table in RAW_TABLES if table not in ("files", "record_rows"))


def _row(item: LooseObject) -> dict[str, Any]:
    """The row the export's store methods would write for this object."""
    o, parent = item.obj, item.parent_id
    tail = {"created_at": created(o), "raw": dumps(o), "hash": object_hash(o)}
    if item.table != "threads":
        tail["position"] = item.position
    if item.table in ("assistants", "threads", "vector_stores"):
        return {"id": o["id"], **tail}
    if item.table == "messages":
        return {"id": o["id"], "thread_id": parent, "run_id": o.get("run_id"), **tail}
    if item.table == "runs":
        return {
            "id": o["id"],
            "thread_id": parent,
            "assistant_id": o.get("assistant_id"),
            "status": o.get("status"),
            "has_tools": int(bool(o.get("tools"))),
            **tail,
        }
    if item.table == "run_steps":
        return {"id": o["id"], "thread_id": parent, "run_id": o.get("run_id"), **tail}
    if item.table == "vector_store_files":
        return {"vector_store_id": parent, "id": o["id"], **tail}
    raise ValueError(f"not a table for loose objects: {item.table}")


def _key(table: str, row: dict[str, Any]) -> tuple[str, tuple[Any, ...]]:
    """The row's table and its key in that table."""
    columns = RAW_TABLES[table]
    return table, (row[columns[0]],) if len(columns) == 1 else tuple(row[c] for c in columns)


class LooseObjects(Room):
    def __init__(self, archive: Archive) -> None:
        super().__init__(archive)
        # Tables that held no row when the ingest began, and the (table, key) stored since: a key it
        # never stored is not held, and is not looked up (`track_new_keys`). One filter for them all:
        # each is 4 MiB resident.
        self._new_tables: frozenset[str] = frozenset()
        self._new_keys = Bits.empty()

    def track_new_keys(self, tracking: bool = True) -> None:
        """While one ingest writes (it holds the writer lock, and every raw row it writes goes through
        `store`): a batch looks up only the keys such a table may hold. 340,000 threads into an empty
        archive: a lookup of every key was 2 s. `tracking=False` ends it."""
        self._new_keys = Bits() if tracking else Bits.empty()
        self._new_tables = frozenset(
            table
            for table in (_LOOSE_TABLES if tracking else ())
            if self.db.execute(f"select 1 from {table} limit 1").fetchone() is None
        )

    def store(self, items: Iterable[LooseObject], preference: Preference = LaterWins()) -> list[str]:
        """Upsert objects read one by one, in one transaction; per item "new", "same", "changed" or
        "older".

        "same" means a row with the same canonical hash is already held (kept as it is). When another
        version is held, both go to `archive.versions` and `preference` says which is current:
        "changed" (the new one replaced the row) or "older" (the held one stays; the new one is only a
        version). A thread that gains or changes a row or a version becomes stale and stops being
        `done` until `settle` rules on it.

        A batch costs one lookup a table for what is held and one write a table for what changed: a
        dump of 340,000 threads is millions of objects, and a round trip each is most of the time.
        Items are ruled on in order against what the batch itself wrote before them, so an id twice
        in one batch reads exactly as in two.
        """
        items = list(items)
        rows = [_row(item) for item in items]
        keys = [_key(item.table, row) for item, row in zip(items, rows, strict=True)]
        outcomes: list[str] = []
        touched: set[str] = set()
        conn = self.db.conn
        files = self.archive.files
        versions = self.archive.versions
        with self.archive.atomic():
            held_of = self._held(keys)
            writes: dict[tuple[str, tuple[Any, ...]], dict[str, Any]] = {}
            for item, row, key in zip(items, rows, keys, strict=True):
                held = held_of.get(key)
                parent = row.get(PARENT_COLUMN.get(item.table, ""), None)
                if item.table == "assistants":
                    files.add_refs(((file_id, row["id"]) for file_id in item.file_refs), "assistant")
                elif item.table == "vector_store_files":
                    files.add_refs([(row["id"], row["vector_store_id"])], "vector_store")
                if held is not None and held[0] == row["hash"]:
                    outcomes.append("same")
                    continue
                replace = True
                if held is not None:
                    held_obj = loads(held[2])
                    replace = preference.prefer(held_obj, item.obj)
                    kept = [
                        RawVersion(item.table, row["id"], h, parent, raw, origin)
                        for h, raw, origin, obj in (
                            (held[0], held[2], None, held_obj),
                            (row["hash"], row["raw"], item.origin, item.obj),
                        )
                        if preference.genuine(obj)
                    ]
                    if versions.keep(conn, kept) and item.table in _THREAD_TABLES:
                        touched.add(parent)
                if not replace:
                    outcomes.append("older")
                    continue
                outcomes.append("new" if held is None else "changed")
                if held is not None and held[1] is not None:
                    row["position"] = held[1]  # a newer copy of an object keeps its place in the list
                held_of[key] = (row["hash"], row.get("position"), row["raw"])
                writes[key] = row
                if item.table in _THREAD_TABLES:
                    touched.add(parent)
            by_table: dict[str, list[dict[str, Any]]] = {}
            for (table, key), row in writes.items():
                by_table.setdefault(table, []).append(row)
                if table in self._new_tables:
                    self._new_keys.add((table, key))
            for table, table_rows in by_table.items():
                columns = list(table_rows[0])  # every row of a table has _row's columns, in its order
                conn.executemany(
                    f"insert or replace into {table} ({', '.join(columns)}) values ({', '.join('?' * len(columns))})",
                    [tuple(r.values()) for r in table_rows],
                )
            self.archive.work.touched(touched)
        return outcomes

    def _held(
        self, keys: list[tuple[str, tuple[Any, ...]]]
    ) -> dict[tuple[str, tuple[Any, ...]], tuple[str, int | None, str]]:
        """(hash, position, raw) of the rows already held under these keys."""
        wanted: dict[str, set[tuple[Any, ...]]] = {}
        for table, key in keys:
            if table not in self._new_tables or self._new_keys.maybe((table, key)):
                wanted.setdefault(table, set()).add(key)
        held: dict[tuple[str, tuple[Any, ...]], tuple[str, int | None, str]] = {}
        for table, keys in wanted.items():
            key_columns = RAW_TABLES[table]
            position = "position" if table != "threads" else "null"
            if len(key_columns) == 1:
                for chunk in chunks(sorted(k[0] for k in keys), 500):
                    sql = f"select id, hash, {position}, raw from {table} where id in ({marks(len(chunk))})"
                    for object_id, *found in self.db.conn.execute(sql, chunk):
                        held[(table, (object_id,))] = tuple(found)  # type: ignore[assignment]
            else:  # (vector_store_id, id): few rows, one lookup each
                where = " and ".join(f"{k} = ?" for k in key_columns)
                for key in keys:
                    found = self.db.conn.execute(
                        f"select hash, {position}, raw from {table} where {where}", list(key)
                    ).fetchone()
                    if found is not None:
                        held[(table, key)] = tuple(found)  # type: ignore[assignment]
        return held

    def settle(self, settlements: Iterable[ThreadSettlement]) -> None:
        """Record dumped threads' statuses, refs and findings, in one transaction; seen counts are
        the rows now held. Each thread's verdict commits with the others of the batch, never apart
        from its own rows' state (the rows were committed before, with the thread not `done`)."""
        settlements = list(settlements)
        archive = self.archive
        with archive.atomic():
            archive.files.add_refs(
                ((file_id, s.thread_id) for s in settlements for file_id in sorted(s.file_refs)), "thread"
            )
            archive.findings.clear_anomalies_of(
                [(s.thread_id, s.owned_kinds) for s in settlements if s.owned_kinds]
            )
            archive.findings.add_anomalies(a for s in settlements for a in s.anomalies)
            archive.work.settle([(s.thread_id, s.status, s.unkept) for s in settlements])
            archive.findings.clear_failures(
                "thread", [s.thread_id for s in settlements if s.status == "done"]
            )

    def next_position(self) -> int:
        """One past the highest list position any raw row holds: objects read now go after them."""
        return max(
            self.db.execute(f"select coalesce(max(position), -1) + 1 from {table}").fetchone()[0]
            for table in POSITIONED
        )

    # -- what one ingest learns on the way (temporary tables of this connection) -------------------

    def begin_notes(self) -> None:
        """Empty temporary tables for this ingest's notes (the temp schema dies with the connection)."""
        for sql in (
            "drop table if exists temp.ingest_threads",
            "drop table if exists temp.ingest_last_pages",
            "drop table if exists temp.ingest_orders",
            # flags: see ingest.py (named, a messages page held).
            "create temp table ingest_threads (thread_id text primary key, flags int not null) without rowid",
            "create temp table ingest_last_pages (kind text, parent text, run text, "
            "primary key (kind, parent, run)) without rowid",
            "create temp table ingest_orders (kind text, parent text, descending int not null, "
            "primary key (kind, parent)) without rowid",
        ):
            self.db.conn.execute(sql)

    def note(
        self,
        threads: dict[str, int],
        last_pages: Iterable[tuple[str, str, str]],
        orders: dict[tuple[str, str], bool],
    ) -> None:
        """Add a batch of notes: flags of threads (or-ed in), listings held to their end, and the
        order of listings (the first page that told wins)."""
        conn = self.db.conn
        conn.executemany(
            "insert into temp.ingest_threads (thread_id, flags) values (?, ?) "
            "on conflict (thread_id) do update set flags = flags | excluded.flags",
            threads.items(),
        )
        conn.executemany("insert or ignore into temp.ingest_last_pages values (?, ?, ?)", last_pages)
        conn.executemany(
            "insert or ignore into temp.ingest_orders values (?, ?, ?)",
            ((kind, parent, int(d)) for (kind, parent), d in orders.items()),
        )

    def noted_order(self, kind: str, parent: str) -> bool | None:
        row = self.db.conn.execute(
            "select descending from temp.ingest_orders where kind = ? and parent = ?", [kind, parent]
        ).fetchone()
        return None if row is None else bool(row[0])

    def noted_last_page(self, kind: str, parent: str, run: str) -> bool:
        return (
            self.db.conn.execute(
                "select 1 from temp.ingest_last_pages where kind = ? and parent = ? and run = ?",
                [kind, parent, run],
            ).fetchone()
            is not None
        )

    def noted_count(self) -> int:
        return self.db.conn.execute("select count(*) from temp.ingest_threads").fetchone()[0]

    def noted_threads(self, batch: int = 500) -> Iterator[list[tuple[str, int]]]:
        """(thread_id, flags) of every noted thread, in id order, a batch at a time."""
        sql = (
            "select thread_id, flags from temp.ingest_threads where thread_id > ? order by thread_id limit ?"
        )
        yield from self.archive.keyset(sql, batch=batch)
