"""`archive.loose`: raw objects that arrive one by one (a saved dump), not grouped under their thread.

Owns no table of its own: each object lands in exactly the row of `archive.raw`'s tables the export
would write for it, and its thread is settled (status, refs, findings) once every row a dump holds for
it is in. Until then a thread that gained or changed a row is stale and not `done`, so a kill in the
middle of an ingest never leaves a done thread holding only part of its rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from migrator.archive.canonical import dumps, loads, object_hash
from migrator.archive.raw import created
from migrator.archive.room import Room
from migrator.archive.schema import PARENT_COLUMN, POSITIONED, RAW_TABLES
from migrator.archive.types import LooseObject, ThreadSettlement
from migrator.archive.versions import LaterWins, Preference, RawVersion

__all__ = ["LooseObjects"]

_THREAD_TABLES = ("threads", "messages", "runs", "run_steps")


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


class LooseObjects(Room):
    def store(self, items: Iterable[LooseObject], preference: Preference = LaterWins()) -> list[str]:
        """Upsert objects read one by one, in one transaction; per item "new", "same", "changed" or
        "older".

        "same" means a row with the same canonical hash is already held (kept as it is). When another
        version is held, both go to `archive.versions` and `preference` says which is current:
        "changed" (the new one replaced the row) or "older" (the held one stays; the new one is only a
        version). A thread that gains or changes a row or a version becomes stale and stops being
        `done` until `settle` rules on it.
        """
        outcomes: list[str] = []
        touched: set[str] = set()
        conn = self.db.conn
        files = self.archive.files
        versions = self.archive.versions
        with self.archive.atomic():
            for item in items:
                row = _row(item)
                keys = RAW_TABLES[item.table]
                where = " and ".join(f"{k} = ?" for k in keys)
                key = [row[k] for k in keys]
                position = "position" if item.table != "threads" else "null"
                held = conn.execute(
                    f"select hash, {position}, raw from {item.table} where {where}", key
                ).fetchone()
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
                values = ", ".join("?" * len(row))
                columns = ", ".join(row)
                conn.execute(
                    f"insert or replace into {item.table} ({columns}) values ({values})", list(row.values())
                )
                if item.table in _THREAD_TABLES:
                    touched.add(parent)
            self.archive.work.touched(touched)
        return outcomes

    def settle(self, settlement: ThreadSettlement) -> None:
        """Record a dumped thread's status, refs and findings; seen counts are the rows now held."""
        tid = settlement.thread_id
        archive = self.archive
        with archive.atomic():
            archive.files.add_refs(((file_id, tid) for file_id in settlement.file_refs), "thread")
            if settlement.owned_kinds:
                archive.findings.clear_anomalies(tid, settlement.owned_kinds)
            archive.findings.add_anomalies(settlement.anomalies)
            archive.work.settle(tid, settlement.status, settlement.unkept)
            if settlement.status == "done":
                archive.findings.clear_failure("thread", tid)

    def next_position(self) -> int:
        """One past the highest list position any raw row holds: objects read now go after them."""
        return max(
            self.db.execute(f"select coalesce(max(position), -1) + 1 from {table}").fetchone()[0]
            for table in POSITIONED
        )
