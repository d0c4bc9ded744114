"""The Assistants v2 read endpoints, answered from the corpus.

Each handler takes the request and returns a JSON-able dict (200) or a `Response`; errors are
raised as `ApiError`. Route templates use the spec's parameter names, and they are the keys of
the request counters, so `/_sandbox/stats` and `/_sandbox/corpus` speak the same language.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from migrator.sandbox import listing
from migrator.sandbox.corpus import CONTENT_PAGE_ITEMS, Corpus
from migrator.sandbox.errors import ApiError, bad_request, not_found
from migrator.sandbox.faults import thread_selected

if TYPE_CHECKING:
    from migrator.sandbox.build import ThreadData
    from migrator.sandbox.config import SandboxConfig

INCLUDE_RESULT_CONTENT = "step_details.tool_calls[*].file_search.results[*].content"
ASSISTANTS_PREFIXES = ("/v1/assistants", "/v1/threads", "/v1/vector_stores", "/v1/files")


@dataclass
class Request:
    method: str
    path: str
    params: dict[str, str]
    query: dict[str, list[str]]
    body: bytes
    cfg: SandboxConfig
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Response:
    status: int
    body: Any  # bytes are sent as they are; anything else as JSON
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Request], Any]


class Router:
    def __init__(self) -> None:
        self._routes: list[tuple[re.Pattern[str], str, dict[str, Handler]]] = []

    def add(self, method: str, template: str, handler: Handler) -> None:
        for _pattern, tmpl, methods in self._routes:
            if tmpl == template:
                methods[method] = handler
                return
        regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
        self._routes.append((re.compile(regex + "$"), template, {method: handler}))

    def handler(self, method: str, template: str) -> Handler | None:
        """What (method, template) is routed to now, so a later module can serve more and fall back to it."""
        for _pattern, tmpl, methods in self._routes:
            if tmpl == template:
                return methods.get(method)
        return None

    def match(self, method: str, path: str) -> tuple[str | None, Handler | None, dict[str, str]]:
        """(template, handler, path params); a known template with another method has no handler."""
        for pattern, template, methods in self._routes:
            m = pattern.match(path)
            if m:
                return template, methods.get(method), m.groupdict()
        return None, None, {}


class AssistantsApi:
    """Handlers for assistants, threads, messages, runs, steps, vector stores and files."""

    def __init__(self, corpus: Corpus) -> None:
        self.c = corpus

    def register(self, router: Router) -> None:
        get = lambda template, handler: router.add("GET", "/v1" + template, handler)  # noqa: E731
        get("/assistants", self.list_assistants)
        get("/assistants/{assistant_id}", self.get_assistant)
        get("/threads", self.list_threads)  # not in OpenAI's spec: the openai flavor refuses it
        get("/threads/{thread_id}", self.get_thread)
        get("/threads/{thread_id}/messages", self.list_messages)
        get("/threads/{thread_id}/messages/{message_id}", self.get_message)
        get("/threads/{thread_id}/runs", self.list_runs)
        get("/threads/{thread_id}/runs/{run_id}", self.get_run)
        get("/threads/{thread_id}/runs/{run_id}/steps", self.list_steps)
        get("/threads/{thread_id}/runs/{run_id}/steps/{step_id}", self.get_step)
        get("/vector_stores", self.list_vector_stores)
        get("/vector_stores/{vector_store_id}", self.get_vector_store)
        get("/vector_stores/{vector_store_id}/files", self.list_vector_store_files)
        get("/vector_stores/{vector_store_id}/files/{file_id}", self.get_vector_store_file)
        get("/vector_stores/{vector_store_id}/files/{file_id}/content", self.vector_store_file_content)
        get("/files", self.list_files)
        get("/files/{file_id}", self.get_file)
        get("/files/{file_id}/content", self.file_content)

    @staticmethod
    def _list(req: Request, items: list[dict[str, Any]]) -> dict[str, Any]:
        data, has_more = listing.page(items, listing.parse(req.query))
        return listing.envelope(data, has_more, None if req.cfg.null_list_ids else "")

    # -- assistants ----------------------------------------------------------------------------
    def list_assistants(self, req: Request) -> dict[str, Any]:
        return self._list(req, self.c.assistants)

    def get_assistant(self, req: Request) -> dict[str, Any]:
        aid = req.params["assistant_id"]
        asst = self.c.assistant_by_id.get(aid)
        if asst is None:
            raise not_found("assistant", aid)
        return asst

    # -- threads and what hangs off them -------------------------------------------------------
    def _thread(self, req: Request) -> tuple[int, ThreadData]:
        tid = req.params["thread_id"]
        index = self.c.thread_index(tid)
        if index is None:
            raise not_found("thread", tid)
        return index, self.c.thread(index)

    def list_threads(self, req: Request) -> dict[str, Any]:
        indexes, has_more = listing.page_indexed(
            self.c.n_threads, listing.parse(req.query), self.c.thread_index
        )
        data = [self.c.thread_object(i) for i in indexes]
        return listing.envelope(data, has_more, None if req.cfg.null_list_ids else "")

    def get_thread(self, req: Request) -> dict[str, Any]:
        return self._thread(req)[1].thread

    def list_messages(self, req: Request) -> dict[str, Any]:
        index, data = self._thread(req)
        params = listing.parse(req.query)
        messages = data.messages
        run_id = listing.one(req.query, "run_id")
        if run_id:
            messages = [m for m in messages if m["run_id"] == run_id]
        empty_id = None if req.cfg.null_list_ids else ""
        cfg = req.cfg
        if thread_selected(self.c.seed, "repeat_cursor", index, cfg.repeat_cursor_rate):
            # A broken cursor: every page is the first page, and there is always more.
            first = listing.ListParams(params.limit, params.order, None, None)
            page, _ = listing.page(messages, first)
            return listing.envelope(page, True, empty_id)
        page, has_more = listing.page(messages, params)
        if thread_selected(self.c.seed, "empty_page", index, cfg.empty_page_rate):
            # An off-by-one server: the last real page claims more, and the page after it is empty.
            has_more = True
        return listing.envelope(page, has_more, empty_id)

    def get_message(self, req: Request) -> dict[str, Any]:
        _, data = self._thread(req)
        mid = req.params["message_id"]
        pos = data.msg_pos.get(mid)
        if pos is None:
            raise not_found("message", mid)
        return data.messages[pos]

    def list_runs(self, req: Request) -> dict[str, Any]:
        return self._list(req, self._thread(req)[1].runs)

    def _run(self, req: Request) -> tuple[ThreadData, dict[str, Any]]:
        _, data = self._thread(req)
        rid = req.params["run_id"]
        pos = data.run_pos.get(rid)
        if pos is None:
            raise not_found("run", rid)
        return data, data.runs[pos]

    def get_run(self, req: Request) -> dict[str, Any]:
        return self._run(req)[1]

    @staticmethod
    def _include(req: Request) -> bool:
        values = req.query.get("include[]", []) + req.query.get("include", [])
        for value in values:
            if value != INCLUDE_RESULT_CONTENT:
                raise bad_request(
                    f"Invalid value: '{value}'. Supported values are: '{INCLUDE_RESULT_CONTENT}'.",
                    "include",
                    "invalid_value",
                )
        return bool(values)

    def list_steps(self, req: Request) -> dict[str, Any]:
        data, run = self._run(req)
        steps = (data.steps if self._include(req) else data.steps_plain)[run["id"]]
        return self._list(req, steps)

    def get_step(self, req: Request) -> dict[str, Any]:
        data, run = self._run(req)
        sid = req.params["step_id"]
        pos = data.step_pos[run["id"]].get(sid)
        if pos is None:
            raise not_found("run step", sid)
        steps = data.steps if self._include(req) else data.steps_plain
        return steps[run["id"]][pos]

    # -- vector stores -------------------------------------------------------------------------
    def list_vector_stores(self, req: Request) -> dict[str, Any]:
        return self._list(req, self.c.vector_stores)

    def _vs(self, req: Request) -> dict[str, Any]:
        vid = req.params["vector_store_id"]
        vs = self.c.vs_by_id.get(vid)
        if vs is None:
            raise not_found("vector store", vid)
        return vs

    def get_vector_store(self, req: Request) -> dict[str, Any]:
        return self._vs(req)

    def list_vector_store_files(self, req: Request) -> dict[str, Any]:
        vs = self._vs(req)
        rows = self.c.vs_files[vs["id"]]
        status = listing.one(req.query, "filter")
        if status:
            if status not in ("in_progress", "completed", "failed", "cancelled"):
                raise bad_request(
                    f"Invalid value: '{status}'. Supported values are: 'in_progress', 'completed', 'failed', "
                    "and 'cancelled'.",
                    "filter",
                    "invalid_value",
                )
            rows = [r for r in rows if r["status"] == status]
        return self._list(req, rows)

    def _vs_file(self, req: Request) -> dict[str, Any]:
        vs = self._vs(req)
        fid = req.params["file_id"]
        row = self.c.vs_file_by_key.get((vs["id"], fid))
        if row is None:
            raise ApiError(404, f"No file found with id '{fid}' in vector store '{vs['id']}'.")
        return row

    def get_vector_store_file(self, req: Request) -> dict[str, Any]:
        return self._vs_file(req)

    def vector_store_file_content(self, req: Request) -> dict[str, Any]:
        row = self._vs_file(req)
        vs_id, fid = row["vector_store_id"], row["id"]
        chunks = self.c.doc_chunks(fid)
        pages = self.c.content_page_count(fid)
        token = listing.one(req.query, "page")
        n = 0
        if token:
            valid = {self.c.content_page_token(vs_id, fid, i): i for i in range(1, pages)}
            if token not in valid:
                raise bad_request(f"Invalid 'page': '{token}' is not a page token of this file.", "page")
            n = valid[token]
        part = chunks[n * CONTENT_PAGE_ITEMS : (n + 1) * CONTENT_PAGE_ITEMS]
        more = n + 1 < pages
        return {
            "object": "vector_store.file_content.page",
            "data": [{"type": "text", "text": chunk} for chunk in part],
            "has_more": more,
            "next_page": self.c.content_page_token(vs_id, fid, n + 1) if more else None,
        }

    # -- files ---------------------------------------------------------------------------------
    def list_files(self, req: Request) -> dict[str, Any]:
        params = listing.parse(req.query, default=10_000, maximum=10_000, before=False)
        purpose = listing.one(req.query, "purpose")
        files = self.c.all_files()
        if purpose:
            files = [m for m in files if m.purpose == purpose]
        metas, has_more = listing.page(files, params, key=lambda m: m.id)
        data = [self.c.file_object(m) for m in metas]
        return listing.envelope(data, has_more, None if req.cfg.null_list_ids else "")

    def _file(self, req: Request) -> Any:
        fid = req.params["file_id"]
        meta = self.c.file_meta(fid)
        if meta is None:
            raise ApiError(404, f"No such File object: {fid}", param="id")
        return meta

    def get_file(self, req: Request) -> dict[str, Any]:
        return self.c.file_object(self._file(req))

    def file_content(self, req: Request) -> Response:
        meta = self._file(req)
        # Foundry has no parsed-text route for vector-store files, and serves every purpose's bytes.
        if meta.purpose == "assistants" and req.cfg.flavor != "foundry":
            raise bad_request("Not allowed to download files of purpose: assistants.")
        return Response(200, self.c.file_content(meta), "application/octet-stream")
