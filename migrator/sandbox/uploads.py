"""The Files API as a target: multipart uploads, kept in memory beside the corpus's own files.

`POST /v1/files` takes multipart/form-data: `file` (with a filename), `purpose`, and optionally
`expires_after[anchor]` / `expires_after[seconds]` as the SDK sends them. The body is parsed by the
standard library's `email` package, which is byte-exact, reads RFC 2231 and raw UTF-8 filenames, and
reports a cut-off body as a defect (refused, never stored as a shorter file).

The filename is kept exactly as it arrived, slashes, `..` and all, because OpenAI keeps it too: a
client that sends a source name as a path is caught by the test-only `/_sandbox/uploads/{id}`, which
answers the bytes and the filename as received. Uploaded files join `GET /v1/files` (after the
corpus's, in upload order) and `GET /v1/files/{id}`; their content downloads except for purpose
`assistants`, which OpenAI refuses (400), exactly like the corpus's files.
"""

from __future__ import annotations

import base64
import email.policy
import hashlib
import itertools
import threading
import time
from dataclasses import dataclass
from email.parser import BytesParser
from typing import TYPE_CHECKING, Any

from migrator.sandbox import listing
from migrator.sandbox.errors import ApiError, bad_request
from migrator.sandbox.ids import token
from migrator.sandbox.routes import Response

if TYPE_CHECKING:
    from migrator.sandbox.corpus import Corpus
    from migrator.sandbox.routes import Handler, Request, Router
    from migrator.sandbox.stats import Stats

Obj = dict[str, Any]
PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
FIELDS = ("file", "purpose", "expires_after[anchor]", "expires_after[seconds]")
CREATE_ROUTE = "POST /v1/files"


@dataclass(frozen=True, slots=True)
class Upload:
    id: str
    filename: str  # as received, never cleaned
    purpose: str
    data: bytes
    created_at: int
    expires_at: int | None

    def file_object(self) -> Obj:
        obj: Obj = {
            "id": self.id,
            "object": "file",
            "bytes": len(self.data),
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
        }
        if self.expires_at is not None:  # the spec types it as an integer, so it is left out when unset
            obj["expires_at"] = self.expires_at
        return obj


@dataclass(frozen=True, slots=True)
class FileInfo:
    """What a vector store or a response needs to know of a file on this server, uploaded or corpus."""

    id: str
    filename: str
    bytes: int


def _form(content_type: str | None, body: bytes) -> dict[str, list[tuple[str | None, bytes]]]:
    """field name -> [(filename, bytes)], or a 400 for anything that is not a whole multipart body."""
    if not content_type or not content_type.lower().startswith("multipart/form-data"):
        raise bad_request(
            f"Invalid Content-Type header ({content_type or 'none'}): POST /v1/files takes multipart/form-data.",
            None,
            "invalid_content_type",
        )
    head = b"Content-Type: " + content_type.encode("latin-1", "replace") + b"\r\n\r\n"
    msg = BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    parts = list(msg.iter_parts()) if msg.is_multipart() else []
    defects = [*msg.defects, *(d for p in parts for d in p.defects)]
    if defects or not parts:
        reason = type(defects[0]).__name__ if defects else "no parts"
        raise bad_request(
            f"Could not parse the multipart form ({reason}): the body is cut off or malformed.",
            None,
            "invalid_multipart",
        )
    fields: dict[str, list[tuple[str | None, bytes]]] = {}
    for part in parts:
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            raise bad_request("Every part of the multipart form needs a name.", None, "invalid_multipart")
        payload = part.get_payload(decode=True)
        fields.setdefault(name, []).append(
            (part.get_filename(), payload if isinstance(payload, bytes) else b"")
        )
    return fields


def _text(fields: dict[str, list[tuple[str | None, bytes]]], name: str) -> str | None:
    values = fields.get(name)
    if not values:
        return None
    try:
        return values[-1][1].decode("utf-8")
    except UnicodeDecodeError:
        raise bad_request(f"Invalid '{name}': expected UTF-8 text.", name, "invalid_value") from None


class Uploads:
    """Uploaded files and the /v1/files routes, falling back to the corpus for its own files."""

    def __init__(self, corpus: Corpus, seed: int, stats: Stats) -> None:
        self.c = corpus
        self.seed = seed
        self.stats = stats
        self._lock = threading.Lock()
        self._counter = itertools.count()
        self._files: dict[str, Upload] = {}  # insertion order is upload order
        self._corpus: dict[str, Handler | None] = {}

    def register(self, router: Router) -> None:
        for method, template, handler in (
            ("GET", "/v1/files", self.list_files),
            ("GET", "/v1/files/{file_id}", self.get_file),
            ("GET", "/v1/files/{file_id}/content", self.file_content),
            ("POST", "/v1/files", self.create),
            ("DELETE", "/v1/files/{file_id}", self.delete),
        ):
            self._corpus[f"{method} {template}"] = router.handler(method, template)
            router.add(method, template, handler)

    def _fallback(self, req: Request, template: str) -> Any:
        handler = self._corpus.get(f"{req.method} {template}")
        if handler is None:
            raise ApiError(404, f"No such File object: {req.params['file_id']}", param="id")
        return handler(req)

    # -- lookups for the other target modules ----------------------------------------------------
    def get(self, file_id: str) -> Upload | None:
        with self._lock:
            return self._files.get(file_id)

    def lookup(self, file_id: str) -> FileInfo | None:
        up = self.get(file_id)
        if up is not None:
            return FileInfo(up.id, up.filename, len(up.data))
        meta = self.c.file_meta(file_id)
        if meta is None:
            return None
        return FileInfo(meta.id, meta.filename, self.c.file_size(meta))

    def uploads(self) -> list[Upload]:
        with self._lock:
            return list(self._files.values())

    # -- handlers ----------------------------------------------------------------------------------
    def create(self, req: Request) -> Obj:
        fields = _form(req.headers.get("content-type"), req.body)
        for name in fields:
            if name not in FIELDS:
                raise bad_request(f"Unknown parameter: '{name}'.", name, "unknown_parameter")
        files = fields.get("file") or []
        if not files:
            raise bad_request("Missing required parameter: 'file'.", "file", "missing_required_parameter")
        if len(files) > 1:
            raise bad_request("Invalid 'file': expected one file, got several.", "file", "invalid_value")
        filename, data = files[0]
        if not filename:
            raise bad_request(
                "Invalid 'file': the part has no filename. Send it as a file field with a filename.",
                "file",
                "invalid_value",
            )
        purpose = _text(fields, "purpose")
        if purpose is None:
            raise bad_request(
                "Missing required parameter: 'purpose'.", "purpose", "missing_required_parameter"
            )
        if purpose not in PURPOSES:
            supported = ", ".join(f"'{p}'" for p in PURPOSES[:-1]) + f", and '{PURPOSES[-1]}'"
            raise bad_request(
                f"Invalid value: '{purpose}'. Supported values are: {supported}.", "purpose", "invalid_value"
            )
        expires_in = self._expires_after(fields)
        now = int(time.time())
        with self._lock:
            fid = "file-" + token(self.seed, "upload", next(self._counter), length=22)
            up = Upload(fid, filename, purpose, data, now, now + expires_in if expires_in else None)
            self._files[fid] = up
        self.stats.created(CREATE_ROUTE)
        return up.file_object()

    @staticmethod
    def _expires_after(fields: dict[str, list[tuple[str | None, bytes]]]) -> int | None:
        anchor = _text(fields, "expires_after[anchor]")
        seconds = _text(fields, "expires_after[seconds]")
        if anchor is None and seconds is None:
            return None
        if anchor != "created_at":
            raise bad_request(
                f"Invalid value: '{anchor}'. Supported values are: 'created_at'.",
                "expires_after.anchor",
                "invalid_value",
            )
        try:
            value = int(seconds or "")
        except ValueError:
            raise bad_request(
                f"Invalid 'expires_after.seconds': expected an integer, but got '{seconds}' instead.",
                "expires_after.seconds",
                "invalid_type",
            ) from None
        if not 3600 <= value <= 2_592_000:
            raise bad_request(
                f"Invalid 'expires_after.seconds': expected a value between 3600 and 2592000, but got {value} "
                "instead.",
                "expires_after.seconds",
                "invalid_value",
            )
        return value

    def list_files(self, req: Request) -> Obj:
        params = listing.parse(req.query, default=10_000, maximum=10_000, before=False)
        purpose = listing.one(req.query, "purpose")
        entries: list[Any] = [*self.c.all_files(), *self.uploads()]
        if purpose:
            entries = [e for e in entries if e.purpose == purpose]
        page, has_more = listing.page(entries, params, key=lambda e: e.id)
        data = [e.file_object() if isinstance(e, Upload) else self.c.file_object(e) for e in page]
        return listing.envelope(data, has_more, None if req.cfg.null_list_ids else "")

    def get_file(self, req: Request) -> Obj:
        up = self.get(req.params["file_id"])
        if up is None:
            return self._fallback(req, "/v1/files/{file_id}")
        return up.file_object()

    def file_content(self, req: Request) -> Any:
        up = self.get(req.params["file_id"])
        if up is None:
            return self._fallback(req, "/v1/files/{file_id}/content")
        if up.purpose == "assistants":
            raise bad_request("Not allowed to download files of purpose: assistants.")
        return Response(200, up.data, "application/octet-stream")

    def delete(self, req: Request) -> Obj:
        fid = req.params["file_id"]
        with self._lock:
            up = self._files.pop(fid, None)
        if up is not None:
            return {"id": fid, "object": "file", "deleted": True}
        if self.c.file_meta(fid) is not None:
            raise bad_request(
                f"The sandbox's corpus files are read-only: '{fid}' cannot be deleted.", "file_id"
            )
        raise ApiError(404, f"No such File object: {fid}", param="id")

    # -- the control plane ---------------------------------------------------------------------
    def record(self, file_id: str) -> Obj | None:
        """The upload as received, for tests: filename untouched, bytes in base64, their sha256."""
        up = self.get(file_id)
        if up is None:
            return None
        return {
            **self.summary(up),
            "content_base64": base64.b64encode(up.data).decode("ascii"),
        }

    @staticmethod
    def summary(up: Upload) -> Obj:
        return {**up.file_object(), "sha256": hashlib.sha256(up.data).hexdigest()}
