"""Vector stores as a target: created in memory, files attached and ingested like OpenAI ingests them.

`POST /v1/vector_stores` (name, description, metadata, expires_after, chunking_strategy, file_ids) and
`POST /v1/vector_stores/{id}/files` (file_id, attributes, chunking_strategy) validate like the API:
unknown keys, the metadata and attribute limits, chunk sizes, and file ids that are not on this
server (uploaded or corpus) are refused with an ErrorResponse naming the parameter.

Ingestion is a state machine the client has to poll through: an attached file answers `in_progress`
to its create and to its first `ingest_polls` reads, then `completed` (its `usage_bytes` the file's
size) or `failed` with a `last_error`; `ingest_seconds` > 0 also ends it after that long. Retrieving
the file is a read of it; retrieving its store (whose `file_counts` count it), listing stores, or a
page of the store's file list (any `filter`) is a read of every file in that store. Files whose type file_search cannot index (by extension) fail with
`unsupported_file`, and `ingest_fail_rate` of the others (seeded by store and file) with
`server_error`. A store is `in_progress` while any of its files is.

Created stores join the corpus's in `GET /v1/vector_stores` (after them, in creation order); the
corpus's stores stay read-only. A store made without a name answers `name: null`, as the live API
does (recorded in ../shared/realdata) although the spec types it as a string.
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from migrator.sandbox import listing
from migrator.sandbox.conversations import check_metadata
from migrator.sandbox.errors import ApiError, bad_request, not_found
from migrator.sandbox.ids import token, unit

if TYPE_CHECKING:
    from migrator.sandbox.config import SandboxConfig
    from migrator.sandbox.corpus import Corpus
    from migrator.sandbox.routes import Handler, Request, Router
    from migrator.sandbox.stats import Stats
    from migrator.sandbox.uploads import FileInfo, Uploads

Obj = dict[str, Any]
STORE_KEYS = ("name", "description", "metadata", "expires_after", "chunking_strategy", "file_ids")
FILE_KEYS = ("file_id", "attributes", "chunking_strategy")
# What file_search can index, by extension (OpenAI's supported file types for file search).
SEARCHABLE = frozenset(
    [
        ".c",
        ".cpp",
        ".cs",
        ".css",
        ".doc",
        ".docx",
        ".go",
        ".html",
        ".java",
        ".js",
        ".json",
        ".md",
        ".pdf",
        ".php",
        ".pptx",
        ".py",
        ".rb",
        ".sh",
        ".tex",
        ".ts",
        ".txt",
    ]
)
AUTO_CHUNKS = {"type": "static", "static": {"max_chunk_size_tokens": 800, "chunk_overlap_tokens": 400}}
STORE_ROUTE = "POST /v1/vector_stores"
FILE_ROUTE = "POST /v1/vector_stores/{vector_store_id}/files"
STATUSES = ("in_progress", "completed", "failed", "cancelled")


def _body(req: Request) -> Obj:
    try:
        body = orjson.loads(req.body or b"{}")
    except orjson.JSONDecodeError:
        raise bad_request("We could not parse the JSON body of your request.") from None
    if not isinstance(body, dict):
        raise bad_request("Invalid type for 'body': expected an object.", None, "invalid_type")
    return body


def _unknown(obj: Obj, allowed: tuple[str, ...] | set[str], prefix: str = "") -> None:
    for key in obj:
        if key not in allowed:
            raise bad_request(f"Unknown parameter: '{prefix}{key}'.", f"{prefix}{key}", "unknown_parameter")


def _integer(value: Any, where: str, lo: int, hi: int | None = None) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise bad_request(f"Invalid type for '{where}': expected an integer.", where, "invalid_type")
    if value < lo:
        raise bad_request(
            f"Invalid '{where}': integer below minimum value. Expected a value >= {lo}, but got {value} instead.",
            where,
            "integer_below_min_value",
        )
    if hi is not None and value > hi:
        raise bad_request(
            f"Invalid '{where}': integer above maximum value. Expected a value <= {hi}, but got {value} instead.",
            where,
            "integer_above_max_value",
        )
    return value


def check_chunking(strategy: Any, where: str = "chunking_strategy") -> Obj:
    """The strategy as a vector-store file reports it (`auto` is reported as the static 800/400)."""
    if strategy is None:
        return AUTO_CHUNKS
    if not isinstance(strategy, dict):
        raise bad_request(f"Invalid type for '{where}': expected an object.", where, "invalid_type")
    kind = strategy.get("type")
    if kind == "auto":
        _unknown(strategy, ("type",), f"{where}.")
        return AUTO_CHUNKS
    if kind != "static":
        raise bad_request(
            f"Invalid value: '{kind}'. Supported values are: 'auto' and 'static'.",
            f"{where}.type",
            "invalid_value",
        )
    _unknown(strategy, ("type", "static"), f"{where}.")
    static = strategy.get("static")
    if static is None:
        raise bad_request(
            f"Missing required parameter: '{where}.static'.", f"{where}.static", "missing_required_parameter"
        )
    if not isinstance(static, dict):
        raise bad_request(
            f"Invalid type for '{where}.static': expected an object.", f"{where}.static", "invalid_type"
        )
    _unknown(static, ("max_chunk_size_tokens", "chunk_overlap_tokens"), f"{where}.static.")
    for key in ("max_chunk_size_tokens", "chunk_overlap_tokens"):
        if key not in static:
            raise bad_request(
                f"Missing required parameter: '{where}.static.{key}'.",
                f"{where}.static.{key}",
                "missing_required_parameter",
            )
    size = _integer(static["max_chunk_size_tokens"], f"{where}.static.max_chunk_size_tokens", 100, 4096)
    overlap = _integer(static["chunk_overlap_tokens"], f"{where}.static.chunk_overlap_tokens", 0)
    if overlap > size // 2:
        raise bad_request(
            f"Invalid '{where}.static.chunk_overlap_tokens': chunk_overlap_tokens must not exceed half of "
            f"max_chunk_size_tokens ({size // 2}), but got {overlap} instead.",
            f"{where}.static.chunk_overlap_tokens",
            "invalid_value",
        )
    return {"type": "static", "static": {"max_chunk_size_tokens": size, "chunk_overlap_tokens": overlap}}


def check_attributes(attributes: Any) -> Obj:
    """At most 16 pairs; keys up to 64 characters; values strings up to 512, numbers or booleans."""
    if attributes is None:
        return {}
    if not isinstance(attributes, dict):
        raise bad_request("Invalid type for 'attributes': expected an object.", "attributes", "invalid_type")
    if len(attributes) > 16:
        raise bad_request(
            "Invalid 'attributes': too many properties. Expected an object with at most 16 properties, but got an "
            f"object with {len(attributes)} properties instead.",
            "attributes",
            "object_above_max_properties",
        )
    for key, value in attributes.items():
        if len(key) > 64:
            raise bad_request(
                f"Invalid 'attributes': key '{key[:16]}...' is too long. Expected a key with maximum length 64, but "
                f"got a key with length {len(key)} instead.",
                "attributes",
                "string_above_max_length",
            )
        where = f"attributes.{key}"
        if isinstance(value, str):
            if len(value) > 512:
                raise bad_request(
                    f"Invalid '{where}': string too long. Expected a string with maximum length 512, but got a "
                    f"string with length {len(value)} instead.",
                    where,
                    "string_above_max_length",
                )
        elif not isinstance(value, int | float) or (isinstance(value, float) and not math.isfinite(value)):
            raise bad_request(
                f"Invalid type for '{where}': expected a string, a number or a boolean.",
                where,
                "invalid_type",
            )
    return dict(attributes)


def _expires_after(value: Any) -> Obj | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise bad_request(
            "Invalid type for 'expires_after': expected an object.", "expires_after", "invalid_type"
        )
    _unknown(value, ("anchor", "days"), "expires_after.")
    if value.get("anchor") != "last_active_at":
        raise bad_request(
            f"Invalid value: '{value.get('anchor')}'. Supported values are: 'last_active_at'.",
            "expires_after.anchor",
            "invalid_value",
        )
    if "days" not in value:
        raise bad_request(
            "Missing required parameter: 'expires_after.days'.",
            "expires_after.days",
            "missing_required_parameter",
        )
    return {"anchor": "last_active_at", "days": _integer(value["days"], "expires_after.days", 1, 365)}


def _string(body: Obj, key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise bad_request(f"Invalid type for '{key}': expected a string.", key, "invalid_type")
    return value


@dataclass
class _File:
    """A file attached to a created store; `row` is what the API shows, the rest is how it will end."""

    row: Obj
    size: int
    final: str  # completed | failed
    error: Obj | None
    attached: float  # time.monotonic() at the create
    reads: int = 0


@dataclass
class _Store:
    obj: Obj  # id, created_at, name, description, metadata, expires_after, expires_at, last_active_at
    files: dict[str, _File] = field(default_factory=dict)  # insertion order is attach order


class Stores:
    """Created vector stores and their files; the corpus's stores answer through its own handlers."""

    def __init__(self, corpus: Corpus, uploads: Uploads, seed: int, stats: Stats) -> None:
        self.c = corpus
        self.uploads = uploads
        self.seed = seed
        self.stats = stats
        self._lock = threading.RLock()
        self._counter = itertools.count()
        self._stores: dict[str, _Store] = {}
        self._corpus: dict[str, Handler | None] = {}

    def register(self, router: Router) -> None:
        for method, template, handler in (
            ("POST", "/vector_stores", self.create),
            ("GET", "/vector_stores", self.list_stores),
            ("GET", "/vector_stores/{vector_store_id}", self.get_store),
            ("POST", "/vector_stores/{vector_store_id}/files", self.attach),
            ("GET", "/vector_stores/{vector_store_id}/files", self.list_files),
            ("GET", "/vector_stores/{vector_store_id}/files/{file_id}", self.get_file),
        ):
            self._corpus[f"{method} /v1{template}"] = router.handler(method, "/v1" + template)
            router.add(method, "/v1" + template, handler)

    def _fallback(self, req: Request, template: str) -> Any:
        handler = self._corpus.get(f"{req.method} {template}")
        if handler is None:
            raise not_found("vector store", req.params["vector_store_id"])
        return handler(req)

    def exists(self, vs_id: str) -> bool:
        with self._lock:
            return vs_id in self._stores or vs_id in self.c.vs_by_id

    # -- ingestion -------------------------------------------------------------------------------
    def _ending(self, vs_id: str, info: FileInfo, cfg: SandboxConfig) -> tuple[str, Obj | None]:
        dot = info.filename.rfind(".")
        if dot < 0 or info.filename[dot:].lower() not in SEARCHABLE:
            return "failed", {"code": "unsupported_file", "message": "The file type is not supported."}
        if unit(self.seed, "ingest_fail", vs_id, info.id) < cfg.ingest_fail_rate:
            return "failed", {
                "code": "server_error",
                "message": "The file could not be processed. Try again.",
            }
        return "completed", None

    @staticmethod
    def _settle(f: _File, cfg: SandboxConfig, read: bool) -> None:
        if f.row["status"] != "in_progress":
            return
        if read:
            f.reads += 1
        late = cfg.ingest_seconds > 0 and time.monotonic() - f.attached >= cfg.ingest_seconds
        if f.reads > cfg.ingest_polls or late:
            f.row["status"] = f.final
            f.row["last_error"] = f.error
            f.row["usage_bytes"] = f.size if f.final == "completed" else 0

    def _attach(
        self, store: _Store, info: FileInfo, chunks: Obj, attributes: Obj, cfg: SandboxConfig
    ) -> _File:
        final, error = self._ending(store.obj["id"], info, cfg)
        row = {
            "id": info.id,
            "object": "vector_store.file",
            "usage_bytes": 0,
            "created_at": int(time.time()),
            "vector_store_id": store.obj["id"],
            "status": "in_progress",
            "last_error": None,
            "chunking_strategy": chunks,
            "attributes": attributes,
        }
        f = _File(row, info.bytes, final, error, time.monotonic())
        store.files[info.id] = f
        return f

    def _render(self, store: _Store, cfg: SandboxConfig | None, read: bool) -> Obj:
        """The store as the API shows it now; a read (cfg given) moves its files' ingestion on."""
        counts = dict.fromkeys(STATUSES, 0)
        usage = 0
        for f in store.files.values():
            if cfg is not None:
                self._settle(f, cfg, read)
            counts[f.row["status"]] += 1
            usage += f.row["usage_bytes"]
        counts["total"] = len(store.files)
        obj = dict(store.obj)
        obj["usage_bytes"] = usage
        obj["file_counts"] = counts
        obj["status"] = "in_progress" if counts["in_progress"] else "completed"
        return obj

    # -- handlers ----------------------------------------------------------------------------------
    def _files_of(self, ids: Any) -> list[FileInfo]:
        if ids is None:
            return []
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise bad_request(
                "Invalid type for 'file_ids': expected an array of strings.", "file_ids", "invalid_type"
            )
        if len(ids) > 500:
            raise bad_request(
                f"Invalid 'file_ids': array too long. Expected an array with maximum length 500, but got an array "
                f"with length {len(ids)} instead.",
                "file_ids",
                "array_above_max_length",
            )
        infos = []
        for fid in dict.fromkeys(ids):
            info = self.uploads.lookup(fid)
            if info is None:
                raise ApiError(404, f"No file found with id '{fid}'.", param="file_ids")
            infos.append(info)
        return infos

    def create(self, req: Request) -> Obj:
        body = _body(req)
        _unknown(body, STORE_KEYS)
        name = _string(body, "name")
        description = _string(body, "description")
        metadata = check_metadata(body.get("metadata"))
        expires_after = _expires_after(body.get("expires_after"))
        chunks = check_chunking(body.get("chunking_strategy"))
        infos = self._files_of(body.get("file_ids"))
        now = int(time.time())
        obj: Obj = {
            "id": "",
            "object": "vector_store",
            "created_at": now,
            "name": name,
            "description": description,
            "usage_bytes": 0,
            "file_counts": {},
            "status": "completed",
            "last_active_at": now,
            "metadata": metadata,
            "expires_at": now + expires_after["days"] * 86_400 if expires_after else None,
        }
        if expires_after:  # the spec types expires_after as an object, so it is left out when unset
            obj["expires_after"] = expires_after
        with self._lock:
            obj["id"] = "vs_" + token(self.seed, "target-vs", next(self._counter))
            store = _Store(obj)
            for info in infos:
                self._attach(store, info, chunks, {}, req.cfg)
            self._stores[obj["id"]] = store
            answer = self._render(store, None, read=False)
        self.stats.created(STORE_ROUTE)
        return answer

    def _store(self, req: Request) -> _Store | None:
        with self._lock:
            return self._stores.get(req.params["vector_store_id"])

    def list_stores(self, req: Request) -> Obj:
        params = listing.parse(req.query)
        with self._lock:
            entries: list[Any] = [*self.c.vector_stores, *self._stores.values()]
            page, has_more = listing.page(
                entries, params, key=lambda e: e.obj["id"] if isinstance(e, _Store) else e["id"]
            )
            data = [self._render(e, req.cfg, read=True) if isinstance(e, _Store) else e for e in page]
        return listing.envelope(data, has_more, None if req.cfg.null_list_ids else "")

    def get_store(self, req: Request) -> Obj:
        store = self._store(req)
        if store is None:
            return self._fallback(req, "/v1/vector_stores/{vector_store_id}")
        with self._lock:
            return self._render(store, req.cfg, read=True)

    def attach(self, req: Request) -> Obj:
        vs_id = req.params["vector_store_id"]
        store = self._store(req)
        if store is None:
            if vs_id in self.c.vs_by_id:
                raise bad_request(
                    f"The sandbox's corpus vector stores are read-only: create a store to attach files ('{vs_id}').",
                    "vector_store_id",
                )
            raise not_found("vector store", vs_id)
        body = _body(req)
        _unknown(body, FILE_KEYS)
        fid = body.get("file_id")
        if fid is None:
            raise bad_request(
                "Missing required parameter: 'file_id'.", "file_id", "missing_required_parameter"
            )
        if not isinstance(fid, str):
            raise bad_request("Invalid type for 'file_id': expected a string.", "file_id", "invalid_type")
        attributes = check_attributes(body.get("attributes"))
        chunks = check_chunking(body.get("chunking_strategy"))
        info = self.uploads.lookup(fid)
        if info is None:
            raise ApiError(404, f"No file found with id '{fid}'.", param="file_id")
        with self._lock:
            f = store.files.get(fid)
            if f is None:  # attaching an attached file again answers the one there is
                f = self._attach(store, info, chunks, attributes, req.cfg)
            answer = dict(f.row)
        self.stats.created(FILE_ROUTE)
        return answer

    def list_files(self, req: Request) -> Obj:
        store = self._store(req)
        if store is None:
            return self._fallback(req, "/v1/vector_stores/{vector_store_id}/files")
        params = listing.parse(req.query)
        status = listing.one(req.query, "filter")
        if status and status not in STATUSES:
            raise bad_request(
                f"Invalid value: '{status}'. Supported values are: 'in_progress', 'completed', 'failed', and "
                "'cancelled'.",
                "filter",
                "invalid_value",
            )
        with self._lock:
            files = list(store.files.values())
            # A page is a question about the whole store, so it is a read of every file in it: a
            # client that polls `filter=completed` moves on as surely as one that polls each file.
            for f in files:
                self._settle(f, req.cfg, read=True)
            if status:
                files = [f for f in files if f.row["status"] == status]
            page, has_more = listing.page(files, params, key=lambda f: f.row["id"])
            data = [dict(f.row) for f in page]
        return listing.envelope(data, has_more, None if req.cfg.null_list_ids else "")

    def get_file(self, req: Request) -> Obj:
        store = self._store(req)
        if store is None:
            return self._fallback(req, "/v1/vector_stores/{vector_store_id}/files/{file_id}")
        fid = req.params["file_id"]
        with self._lock:
            f = store.files.get(fid)
            if f is None:
                raise ApiError(404, f"No file found with id '{fid}' in vector store '{store.obj['id']}'.")
            self._settle(f, req.cfg, read=True)
            return dict(f.row)

    # -- the control plane ---------------------------------------------------------------------
    def state(self, cfg: SandboxConfig) -> list[Obj]:
        """Every created store with its files, as they are now (no read is counted)."""
        with self._lock:
            out = []
            for store in self._stores.values():
                obj = self._render(store, cfg, read=False)
                obj["files"] = [dict(f.row) for f in store.files.values()]
                out.append(obj)
            return out
