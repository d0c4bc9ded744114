"""`archive.files`: the source's files, their bytes, and who mentions them.

Owns the tables `files` (each file object verbatim, with what we got of its bytes: `downloaded`,
`parsed_text` from a vector store, or `missing`), `blobs` (the bytes, content-addressed by sha256: no
name from the source is ever a path or a key) and `file_refs` (which thread, assistant or vector store
mentions which file, written with the object's rows, so the file phase resumes from the archive alone).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from migrator.archive.canonical import dumps, loads, object_hash, sha256_hex
from migrator.archive.mime import sniff_mime
from migrator.archive.room import Room, chunks, marks
from migrator.archive.types import FileContent, StoredFile

__all__ = ["Files", "download_suspect_sql", "suspect_bytes"]


def suspect_bytes(meta: dict[str, Any], data: bytes | None) -> bool:
    """Bytes that cannot be the file: not as long as its object's `bytes` says (a gateway's error
    page stored as the file, a body cut short). They never rank above a parsed text."""
    size = meta.get("bytes")
    if not isinstance(size, int) or isinstance(size, bool):
        return False
    return data is None or len(data) != size


def download_suspect_sql(content: str, blob: str, raw: str) -> str:
    """The SQL twin of `suspect_bytes` for a `files` row (its content, blob_sha256 and raw columns)."""
    size = f"json_extract({raw}, '$.bytes')"
    return (
        f"({content} = 'downloaded' and json_type({raw}, '$.bytes') = 'integer' and "
        f"coalesce((select b.bytes from blobs b where b.sha256 = {blob}), -1) != {size})"
    )


# A file row whose content is held and can be trusted (not `missing`, not suspect bytes).
_HELD = f"f.content != 'missing' and not {download_suspect_sql('f.content', 'f.blob_sha256', 'f.raw')}"


class Files(Room):
    def store(self, meta: dict[str, Any], content: FileContent) -> bool:
        """A file's metadata and what we got of its bytes; threads that use it get stale sessions.
        False when the archive already held exactly that (a `missing` file asked again, unchanged):
        then nothing is written, and no session is built again for it."""
        blob_sha = None
        held = self.db.execute(
            "select hash, content, blob_sha256, text_from_vector_store from files where id = ?", [meta["id"]]
        ).fetchone()
        if content.data is not None:
            blob_sha = sha256_hex(content.data)
        if held == (object_hash(meta), content.kind, blob_sha, content.vector_store_id):
            with self.archive.atomic():
                self.archive.findings.clear_failure("file", meta["id"])
            return False
        with self.archive.atomic():
            if content.data is not None:
                mime = sniff_mime(content.data, meta.get("filename"))
                if content.kind == "parsed_text":
                    mime = "text/plain; charset=utf-8"
                self.db.execute(
                    "insert or ignore into blobs(sha256, bytes, mime, data) values (?, ?, ?, ?)",
                    [blob_sha, len(content.data), mime, content.data],
                )
            self.db.execute(
                "insert or replace into files(id, raw, hash, content, blob_sha256, text_from_vector_store) "
                "values (?, ?, ?, ?, ?, ?)",
                [meta["id"], dumps(meta), object_hash(meta), content.kind, blob_sha, content.vector_store_id],
            )
            self.archive.work.stale_using_file(meta["id"])
            self.archive.findings.clear_failure("file", meta["id"])
        return True

    def unfetched_ids(self, *, include_missing: bool = False) -> Iterator[str]:
        """Referenced files we hold no metadata for yet; with `include_missing`, also those whose
        content is recorded `missing` or whose bytes are suspect (the export asks for them again on
        every run)."""
        missing = f" or not ({_HELD})" if include_missing else ""
        sql = (
            "select distinct r.file_id from file_refs r left join files f on f.id = r.file_id "
            f"where (f.id is null{missing}) and r.file_id > ? order by r.file_id limit ?"
        )
        for rows in self.archive.keyset(sql):
            yield from (file_id for (file_id,) in rows)

    def has(self, file_id: str, *, with_content: bool = False) -> bool:
        """A file row exists; with `with_content`, one holding its bytes (not suspect ones) or parsed text."""
        content = f" and {_HELD}" if with_content else ""
        sql = f"select 1 from files f where f.id = ?{content}"
        return self.db.execute(sql, [file_id]).fetchone() is not None

    def record(self, file_id: str) -> tuple[dict[str, Any], FileContent] | None:
        """A stored file's metadata and content (bytes included), as `store` was given them."""
        row = self.db.execute(
            "select f.raw, f.content, b.data, f.text_from_vector_store from files f "
            "left join blobs b on b.sha256 = f.blob_sha256 where f.id = ?",
            [file_id],
        ).fetchone()
        if row is None:
            return None
        return loads(row[0]), FileContent(row[1], row[2], row[3])

    def ids(self) -> Iterator[str]:
        for (file_id,) in self.db.execute("select id from files order by id"):
            yield file_id

    def stored(self, file_ids: Iterable[str]) -> dict[str, StoredFile]:
        """What the sessions say of these files (those held): name, digest, size, content, MIME type."""
        out: dict[str, StoredFile] = {}
        for file_id in file_ids:
            row = self.db.execute(
                "select f.raw, f.content, f.blob_sha256, b.bytes, b.mime from files f "
                "left join blobs b on b.sha256 = f.blob_sha256 where f.id = ?",
                [file_id],
            ).fetchone()
            if row is None:
                continue
            meta = loads(row[0])
            out[file_id] = StoredFile(
                file_id=file_id,
                filename=meta.get("filename"),
                sha256=row[2],
                bytes=row[3] if row[3] is not None else meta.get("bytes"),
                content=row[1],
                mime=row[4],
            )
        return out

    def blob(self, sha256: str) -> bytes | None:
        row = self.db.execute("select data from blobs where sha256 = ?", [sha256]).fetchone()
        return row[0] if row else None

    def refs_of(self, owner_id: str) -> list[str]:
        """The files a thread (or assistant, or vector store) mentions, sorted."""
        return [
            row[0]
            for row in self.db.execute(
                "select distinct file_id from file_refs where owner_id = ? order by file_id", [owner_id]
            )
        ]

    def refs_of_many(self, owner_ids: list[str]) -> dict[str, list[str]]:
        """`refs_of` of many owners at once (owners that mention no file are left out)."""
        out: dict[str, list[str]] = {}
        for chunk in chunks(sorted(set(owner_ids)), 500):
            for owner_id, file_id in self.db.execute(
                f"select distinct owner_id, file_id from file_refs where owner_id in ({marks(len(chunk))}) "
                "order by owner_id, file_id",
                chunk,
            ):
                out.setdefault(owner_id, []).append(file_id)
        return out

    def counts(self) -> dict[str, int]:
        def scalar(sql: str) -> int:
            return self.db.execute(sql).fetchone()[0]

        return {
            "files": scalar("select count(*) from files"),
            "files_downloaded": scalar("select count(*) from files where content = 'downloaded'"),
            "files_parsed_text": scalar("select count(*) from files where content = 'parsed_text'"),
            "files_missing": scalar("select count(*) from files where content = 'missing'"),
            "files_unfetched": scalar(
                "select count(distinct r.file_id) from file_refs r left join files f on f.id = r.file_id "
                "where f.id is null"
            ),
        }

    def add_refs(self, refs: Iterable[tuple[str, str]], owner_kind: str) -> None:
        """(file_id, owner_id) pairs an object of `owner_kind` mentions (inside the caller's transaction)."""
        self.db.conn.executemany(
            "insert or ignore into file_refs(file_id, owner_kind, owner_id) values (?, ?, ?)",
            ((file_id, owner_kind, owner_id) for file_id, owner_id in refs),
        )

    def drop_refs_of(self, owner_kind: str, owner_ids: Iterable[str]) -> None:
        """Forget the files these objects mention (inside the caller's transaction): each is replaced whole."""
        self.db.conn.executemany(
            "delete from file_refs where owner_kind = ? and owner_id = ?",
            ((owner_kind, o) for o in owner_ids),
        )
