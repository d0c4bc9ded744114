"""`archive.ledger`: the replay ledger of `migrate replay`.

Owns the table `replay_ledger`: one row per distinct chat-completions request (by the sha256 of its
canonical body, also the batch `custom_id`) and what became of it. A row is committed `sent` before
its request goes out and updated with the answer after, so a resumed replay never sends a completed
request twice, and the report can be rebuilt offline from the sessions and this table.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from migrator.archive.room import Room, chunks, marks
from migrator.archive.types import BATCH_TARGET, ReplayRow
from migrator.redact import redact

__all__ = ["ReplayLedger"]

_COLUMNS = (
    "request_hash, state, thread_id, turn, model, attempts, status_code, response, error, "
    "latency_ms, prompt_tokens, completion_tokens, via, target"
)


class ReplayLedger(Room):
    def rows(self, hashes: Iterable[str], target: str | None = None) -> dict[str, ReplayRow]:
        """The ledger rows of these request hashes (hashes with no row are left out): those of
        `target` (a base URL, or `batch`); with None, each hash's latest row of any target."""
        out: dict[str, ReplayRow] = {}
        which = "" if target is None else " and target = ?"
        for chunk in chunks(list(hashes), 500):
            sql = (
                f"select {_COLUMNS} from replay_ledger where request_hash in ({marks(len(chunk))}){which} "
                "order by coalesce(updated_at, 0), target"
            )
            for row in self.db.execute(sql, [*chunk, *([] if target is None else [target])]):
                out[row[0]] = ReplayRow(*row)  # the latest wins
        return out

    def begin(self, request_hash: str, thread_id: str, turn: int, model: str, target: str) -> None:
        """Commit `sent` for one request before it goes out (a resumed in-flight one counts twice)."""
        with self.archive.atomic():
            self.db.execute(
                "insert into replay_ledger(request_hash, thread_id, turn, model, state, attempts, via, "
                "updated_at, target) values (?, ?, ?, ?, 'sent', 1, 'live', ?, ?) "
                "on conflict(request_hash, target) do update "
                "set state = 'sent', attempts = replay_ledger.attempts + 1, via = 'live', "
                "thread_id = excluded.thread_id, turn = excluded.turn, model = excluded.model, "
                "updated_at = excluded.updated_at",
                [request_hash, thread_id, turn, model, time.time(), target],
            )

    def finish(self, row: ReplayRow) -> None:
        """Record what the target answered to one request (done | rejected | failed)."""
        with self.archive.atomic():
            self.db.execute(
                "update replay_ledger set state = ?, status_code = ?, response = ?, error = ?, "
                "latency_ms = ?, prompt_tokens = ?, completion_tokens = ?, updated_at = ? "
                "where request_hash = ? and target = ?",
                [
                    row.state,
                    row.status_code,
                    redact(row.response),
                    redact(row.error),
                    row.latency_ms,
                    row.prompt_tokens,
                    row.completion_tokens,
                    time.time(),
                    row.request_hash,
                    row.target,
                ],
            )

    def mark_batched(self, items: Iterable[tuple[str, str, int, str]]) -> None:
        """(hash, thread_id, turn, model) written to batch files; a finished row keeps its result."""
        with self.archive.atomic():
            self.db.conn.executemany(
                "insert into replay_ledger(request_hash, thread_id, turn, model, state, via, updated_at, target) "
                "values (?, ?, ?, ?, 'batched', 'batch', ?, ?) on conflict(request_hash, target) do update "
                "set state = 'batched', via = 'batch', updated_at = excluded.updated_at "
                "where replay_ledger.state not in ('done', 'rejected')",
                ((h, tid, turn, model, time.time(), BATCH_TARGET) for h, tid, turn, model in items),
            )

    def ingest(self, rows: Iterable[ReplayRow]) -> tuple[int, int]:
        """Batch results, in one transaction: (stored, skipped because already finished)."""
        stored = skipped = 0
        with self.archive.atomic():
            for row in rows:
                before = self.db.conn.total_changes
                self.db.execute(
                    "insert into replay_ledger(request_hash, state, status_code, response, error, "
                    "prompt_tokens, completion_tokens, via, updated_at, target) "
                    "values (?, ?, ?, ?, ?, ?, ?, 'batch', ?, ?) "
                    "on conflict(request_hash, target) do update set state = excluded.state, "
                    "status_code = excluded.status_code, response = excluded.response, error = excluded.error, "
                    "latency_ms = null, prompt_tokens = excluded.prompt_tokens, "
                    "completion_tokens = excluded.completion_tokens, via = 'batch', "
                    "updated_at = excluded.updated_at where replay_ledger.state not in ('done', 'rejected')",
                    [
                        row.request_hash,
                        row.state,
                        row.status_code,
                        redact(row.response),
                        redact(row.error),
                        row.prompt_tokens,
                        row.completion_tokens,
                        time.time(),
                        BATCH_TARGET,
                    ],
                )
                if self.db.conn.total_changes > before:
                    stored += 1
                else:
                    skipped += 1
        return stored, skipped

    def link(self, items: Iterable[tuple[str, str, int, str]]) -> None:
        """Name the turn of rows a batch result created before this archive built their request."""
        with self.archive.atomic():
            self.db.conn.executemany(
                "update replay_ledger set thread_id = ?, turn = ?, model = coalesce(model, ?) "
                "where request_hash = ? and thread_id is null",
                ((tid, turn, model, h) for h, tid, turn, model in items),
            )

    def unlinked(self) -> int:
        """Ledger rows no built request has claimed (batch results of some other selection)."""
        return self.db.execute("select count(*) from replay_ledger where thread_id is null").fetchone()[0]
