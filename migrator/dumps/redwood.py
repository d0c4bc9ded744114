"""The layout of redwoodworksco/assistants-api-export (MIT), the most-used exporter before the sunset.

```
export/manifest.json            {export_schema: "assistants-export-manifest/v1", threads_failed: [...], ...}
export/assistants.json          a JSON array of assistants (listed order=asc)
export/threads/<thread_id>.json {export_schema: "assistants-thread-export/v1", thread_id, exported_at,
                                 thread, messages: [asc], runs: [run + "steps": [asc]],
                                 files: {file_id: file object}, errors: [{object, id, error, detail}]}
```
Every list was followed to its end, ascending, so each is read as a complete page. A run's `steps`
key is the exporter's, not the API's: the run is kept without it and its steps as run steps, exactly
what a live export stores. File objects are metadata only (the tool never saved bytes; `--files-dir`
can supply them). Each `errors` entry becomes a finding: aged-out steps `steps_missing`, a deleted
thread `thread_missing` (the thread is `missing`), a file that could not be read `file_object_missing`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["MANIFEST_SCHEMA", "THREAD_SCHEMA", "read"]

MANIFEST_SCHEMA = "assistants-export-manifest/v1"
THREAD_SCHEMA = "assistants-thread-export/v1"


def read(ingest: Any, value: dict[str, Any], where: Any, depth: int) -> None:
    """One document of the layout, read into the ingest (`migrator.dumps.ingest._Ingest`)."""
    schema = value["export_schema"]
    if schema == MANIFEST_SCHEMA:
        ingest.report.recognise(MANIFEST_SCHEMA)
        for failed in value.get("threads_failed") or ():
            if isinstance(failed, dict) and isinstance(failed.get("thread_id"), str):
                error = failed.get("error") if isinstance(failed.get("error"), str) else "not exported"
                ingest.missing.setdefault(failed["thread_id"], f"the export could not read it ({error})")
        return
    if schema != THREAD_SCHEMA:
        ingest.skip(where, f"export_schema {schema!r} is not one this version of migrate reads")
        return
    thread_id = value.get("thread_id")
    if not isinstance(thread_id, str) or not thread_id:
        ingest.skip(where, "a thread export without a thread_id")
        return
    ingest.report.recognise(THREAD_SCHEMA)
    ingest.notes.thread(thread_id)
    if isinstance(value.get("thread"), dict):
        ingest.value(value["thread"], where.at("thread"), {}, depth + 1)
    _errors(ingest, thread_id, value.get("errors"), where)
    if value.get("thread") is None:
        return  # the thread could not be read: its record holds nothing else
    ingest.page(_page(value.get("messages"), thread_id, "thread.message"), where.at("messages"), depth)
    runs = [r for r in value.get("runs") or () if isinstance(r, dict)]
    # The run exactly as the API sent it: `steps` is the exporter's addition.
    bare = [{k: v for k, v in run.items() if k != "steps"} for run in runs]
    ingest.page(_page(bare, thread_id, "thread.run"), where.at("runs"), depth)
    for index, run in enumerate(runs):
        if isinstance(run.get("steps"), list):
            page = _page(run["steps"], thread_id, "thread.run.step")
            ingest.page(page, where.at("runs").at(index).at("steps"), depth)
    files = value.get("files")
    if isinstance(files, dict):
        for file_id, meta in sorted(files.items()):
            ingest.value(meta, where.at("files").at(file_id), {}, depth + 1)


def _page(items: Any, thread_id: str, kind: str) -> dict[str, Any]:
    """The exporter's list as the complete, ascending list page it was read from."""
    return {
        "object": "list",
        "data": list(items) if isinstance(items, list) else [],
        "has_more": False,
        "thread_id": thread_id,
        "item_object": kind,
    }


def _errors(ingest: Any, thread_id: str, errors: Any, where: Any) -> None:
    for entry in errors if isinstance(errors, list) else ():
        if not isinstance(entry, dict):
            continue
        kind, object_id = entry.get("object"), entry.get("id")
        error, detail = entry.get("error") or "error", entry.get("detail") or ""
        said = f"the export recorded {error}: {detail}".rstrip(": ")
        if kind == "thread":
            ingest.missing[thread_id] = said
        elif kind == "run_steps":
            ingest.report.find("steps_missing", thread_id, f"run {object_id}: {said}")
        elif kind == "file" and isinstance(object_id, str):
            ingest.report.find("file_object_missing", object_id, said)
        else:
            ingest.report.find("dump_export_error", thread_id, f"{kind} {object_id}: {said}")
