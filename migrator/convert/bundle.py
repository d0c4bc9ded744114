"""What the converter reads: one thread's raw objects and what the archive holds of its files."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["FileContent", "FileInfo", "ThreadBundle", "bundle_from_json", "bundle_to_json"]

FileContent = Literal["downloaded", "parsed_text", "missing"]


@dataclass(frozen=True)
class FileInfo:
    """One file as the archive holds it. `data` is set only for downloaded images (for data: URLs)."""

    file_id: str
    filename: str | None
    sha256: str | None
    bytes: int | None
    content: FileContent
    mime: str | None = None  # from the bytes' signature, decided by the archive
    data: bytes | None = None

    def as_record(self) -> dict[str, Any]:
        """The entry of the session record's `files` list (no bytes, no MIME: the archive has both)."""
        return {
            "file_id": self.file_id,
            "filename": self.filename,
            "sha256": self.sha256,
            "bytes": self.bytes,
            "content": self.content,
        }


@dataclass(frozen=True)
class ThreadBundle:
    """One thread's raw objects, verbatim as the source sent them, each list in the source's order.

    Across seconds the order of a list does not matter (created_at decides); within one second it
    is the only truth there is, so the archive hands the lists over in (created_at, position) order.
    """

    thread: dict[str, Any]
    messages: Sequence[dict[str, Any]]
    runs: Sequence[dict[str, Any]]
    steps: Sequence[dict[str, Any]]
    assistants: Mapping[str, dict[str, Any]]
    files: Mapping[str, FileInfo]
    # Fields of the user's --threads JSONL other than thread_id (e.g. user_id); win over thread.metadata.
    extra_metadata: Mapping[str, Any] = field(default_factory=dict)
    # Every version the archive kept of a run the source gave more than once (a polling loop's
    # snapshots), by run id, in arrival order; `runs` holds the current one of each.
    run_versions: Mapping[str, Sequence[dict[str, Any]]] = field(default_factory=dict)


def bundle_from_json(obj: Mapping[str, Any]) -> ThreadBundle:
    """A bundle from its JSON form (golden fixtures, dumps): file bytes travel as `data_base64`."""
    files = {}
    for file_id, info in (obj.get("files") or {}).items():
        data = info.get("data_base64")
        files[file_id] = FileInfo(
            file_id=file_id,
            filename=info.get("filename"),
            sha256=info.get("sha256"),
            bytes=info.get("bytes"),
            content=info.get("content", "missing"),
            mime=info.get("mime"),
            data=base64.b64decode(data) if data is not None else None,
        )
    return ThreadBundle(
        thread=obj["thread"],
        messages=list(obj.get("messages") or ()),
        runs=list(obj.get("runs") or ()),
        steps=list(obj.get("steps") or ()),
        assistants=dict(obj.get("assistants") or {}),
        files=files,
        extra_metadata=dict(obj.get("extra_metadata") or {}),
        run_versions={k: list(v) for k, v in (obj.get("run_versions") or {}).items()},
    )


def bundle_to_json(bundle: ThreadBundle) -> dict[str, Any]:
    """The inverse of bundle_from_json."""
    files: dict[str, Any] = {}
    for file_id, info in sorted(bundle.files.items()):
        entry: dict[str, Any] = info.as_record()
        del entry["file_id"]
        entry["mime"] = info.mime
        if info.data is not None:
            entry["data_base64"] = base64.b64encode(info.data).decode()
        files[file_id] = entry
    return {
        "thread": bundle.thread,
        "messages": list(bundle.messages),
        "runs": list(bundle.runs),
        "steps": list(bundle.steps),
        "assistants": dict(bundle.assistants),
        "files": files,
        "extra_metadata": dict(bundle.extra_metadata),
        **(
            {"run_versions": {k: list(v) for k, v in bundle.run_versions.items()}}
            if bundle.run_versions
            else {}
        ),
    }
