"""The deterministic corpus: assistants, vector stores, files, and threads built on demand.

Global objects (107 assistants, 5 vector stores and their documents) are small and built once.
Threads are planned and built per index from `random.Random(f"{seed}:{index}")` and kept in a
small LRU, so serving a 20,000-thread corpus needs memory for a few hundred threads only. The
catalog (counts, the ideal client's request bill, and the registry of per-thread files) is one
pass over the plans, made the first time something needs it.
"""

from __future__ import annotations

import random
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from migrator.sandbox import foundry, media, text
from migrator.sandbox.build import ThreadData, build_thread, thread_object
from migrator.sandbox.catalogue import FUNCTIONS
from migrator.sandbox.ids import make_id, thread_ids, token
from migrator.sandbox.plan import EPOCH, Caps, FileRef, Planner, ThreadPlan

N_ASSISTANTS = 107  # more than one list page of 100
VS_SIZES = (6, 130, 12, 0, 3)  # one store needs two pages of files, one is empty
VS_NAMES = ("Help centre", "Product manuals", "Policies", "Archive", "Legal")
VS_SHARED = 2  # the first two files of store 0 are also in store 2
CONTENT_PAGE_ITEMS = 4  # parsed chunks per vector-store file content page
MODELS = ("gpt-4o", "gpt-4o-mini", "gpt-4-turbo", "gpt-4.1", "gpt-3.5-turbo-0125")
THREAD_CACHE = 256
LIST_LIMIT = 100


@dataclass(frozen=True, slots=True)
class FileMeta:
    id: str
    purpose: str  # assistants | assistants_output | vision | batch | user_data
    filename: str
    created_at: int
    kind: str  # doc | vision_png | vision_jpg | output_png | output_csv | upload_doc | batch | user_data
    number: int
    owner: int  # thread index for per-thread files, -1 for global ones


def _pages(n: int, per: int = LIST_LIMIT) -> int:
    return max(1, -(-n // per))


class Corpus:
    def __init__(
        self, threads: int, seed: int, *, polite_clock: bool = False, flavor: str = "openai"
    ) -> None:
        if threads < 0:
            raise ValueError("threads must be >= 0")
        self.n_threads = threads
        self.seed = seed
        self.polite_clock = polite_clock  # see build.py: one second per object instead of per turn
        # Only Foundry changes what exists (its own tools, no OpenAI-only purposes or content parts);
        # the other flavors change how the same corpus looks on the wire (see flavors.py).
        self.flavor = flavor
        self.foundry = flavor == "foundry"
        self._ids = thread_ids(threads, seed)
        self._index = {tid: i for i, tid in enumerate(self._ids)}
        self._lock = threading.Lock()
        self._scan_lock = threading.Lock()
        self._cache: OrderedDict[int, ThreadData] = OrderedDict()
        self._content_cache: OrderedDict[str, bytes] = OrderedDict()
        self._catalog: dict[str, Any] | None = None
        self._thread_files: dict[str, FileMeta] = {}
        self._sizes: dict[str, int] = {}  # file id -> byte count, so listing files never rebuilds images
        self._build_vector_stores()
        self.caps = [self._caps(a) for a in range(N_ASSISTANTS)]
        self.planner = Planner(seed, self.caps, list(VS_SIZES))
        if self.foundry:
            self.planner.foundry_tools = [self._foundry_tools(a) for a in range(N_ASSISTANTS)]
        self.assistants = [self._assistant(a) for a in range(N_ASSISTANTS)]
        self.assistant_by_id = {a["id"]: a for a in self.assistants}

    # -- assistants ----------------------------------------------------------------------------
    def _caps(self, a: int) -> Caps:
        rng = random.Random(f"{self.seed}:asst:{a}")
        if a % 7 == 0:
            return Caps((), False, False, None)
        n_fn = rng.randint(2, 4) if a < 12 else rng.randint(1, 4)
        functions = tuple(f.name for f in rng.sample(FUNCTIONS, n_fn))
        file_search = a % 2 == 1
        vs = (a // 2) % len(VS_SIZES) if file_search else None
        return Caps(functions, a % 3 != 2, file_search, vs)

    def _foundry_tools(self, a: int) -> tuple[str, ...]:
        """Foundry tools of agent `a`: all of them for the showcase agent, two for other agents with tools."""
        if not self.caps[a].tools:
            return ()
        if a == self.planner.a_full:
            return foundry.TOOL_TYPES
        n = len(foundry.TOOL_TYPES)
        picked = {a % n, (a * 7 + 5) % n}
        return tuple(t for i, t in enumerate(foundry.TOOL_TYPES) if i in picked)

    def _assistant(self, a: int) -> dict[str, Any]:
        rng = random.Random(f"{self.seed}:asst-obj:{a}")
        caps = self.caps[a]
        tools: list[dict[str, Any]] = []
        if caps.code:
            tools.append({"type": "code_interpreter"})
        if caps.file_search:
            tools.append(
                {
                    "type": "file_search",
                    "file_search": {
                        "max_num_results": rng.choice([5, 10, 20]),
                        "ranking_options": {"ranker": "default_2024_08_21", "score_threshold": 0.0},
                    },
                }
            )
        by_name = {f.name: f for f in FUNCTIONS}
        tools += [by_name[n].tool() for n in caps.functions]
        resources: dict[str, Any] = {}
        if caps.code:
            resources["code_interpreter"] = {"file_ids": []}
        if caps.vector_store is not None:
            resources["file_search"] = {"vector_store_ids": [self.vector_stores[caps.vector_store]["id"]]}
        own = self.planner.foundry_tools[a]
        if own:
            other = make_id("asst_", self.seed, "asst", (a + 1) % N_ASSISTANTS)
            tools += [foundry.definition(t, connected_agent=other) for t in own]
            resources.update(foundry.resources(own))
        metadata = (
            {"team": rng.choice(["billing", "returns", "app", "fr"]), "owner": f"ops-{a % 9}"}
            if a % 3
            else {}
        )
        if a % 11 == 5:
            metadata["note"] = "Équipe ✨ nuit / 夜勤"
        return {
            "id": make_id("asst_", self.seed, "asst", a),
            "object": "assistant",
            "created_at": EPOCH - 8_000_000 + a * 3600,
            "name": None
            if a % 17 == 16
            else f"{rng.choice(['Support', 'Billing', 'Returns', 'App'])} agent {a}",
            "description": None if a % 2 else "Answers customer questions in the help widget.",
            "model": rng.choice(MODELS),
            "instructions": None if a % 13 == 12 else rng.choice(text.INSTRUCTIONS),
            "tools": tools,
            "tool_resources": resources,
            "metadata": metadata,
            "temperature": rng.choice([1.0, 0.7, 0.2]),
            "top_p": rng.choice([1.0, 1.0, 0.9]),
            "response_format": rng.choice(["auto", "auto", "auto", {"type": "text"}]),
        }

    # -- vector stores and their documents ---------------------------------------------------
    def _build_vector_stores(self) -> None:
        self.vector_stores: list[dict[str, Any]] = []
        self.vs_by_id: dict[str, dict[str, Any]] = {}
        self.vs_files: dict[str, list[dict[str, Any]]] = {}
        self.vs_file_by_key: dict[tuple[str, str], dict[str, Any]] = {}
        self.docs: dict[str, str] = {}  # file id -> parsed text
        self.failed_docs: set[str] = set()
        self.global_files: dict[str, FileMeta] = {}
        self.stores_of: dict[str, list[str]] = {}  # file id -> vector store ids, in store order
        g = 0
        store0: list[str] = []
        for j, size in enumerate(VS_SIZES):
            vs_id = make_id("vs_", self.seed, "vs", j)
            created = EPOCH - 5_000_000 + j * 86_400
            members: list[str] = list(store0[:VS_SHARED]) if j == 2 else []
            while len(members) < size:
                fid = make_id("file-", self.seed, "doc", g, length=22)
                rng = random.Random(f"{self.seed}:doc:{g}")
                topic = rng.choice(text.DOC_TOPICS)
                long = g % 9 == 4
                paragraphs = [
                    text.paragraph(rng, rng.randint(2, 5))
                    for _ in range(rng.randint(14, 22) if long else rng.randint(1, 3))
                ]
                self.docs[fid] = f"# {topic}\n\n" + "\n\n".join(paragraphs)
                slug = topic.lower().replace(" ", "-")
                ext = rng.choice(["md", "pdf", "docx", "txt"])
                self.global_files[fid] = FileMeta(
                    fid, "assistants", f"{slug}-{g}.{ext}", created - 3600 + g, "doc", g, -1
                )
                members.append(fid)
                g += 1
            if j == 0:
                store0 = members
            if j == 2:
                self.failed_docs.add(members[-1])
            rows = []
            for k, fid in enumerate(members):
                failed = fid in self.failed_docs
                row = {
                    "id": fid,
                    "object": "vector_store.file",
                    "usage_bytes": 0 if failed else len(self.docs[fid].encode()),
                    "created_at": created + 60 + k,
                    "vector_store_id": vs_id,
                    "status": "failed" if failed else "completed",
                    "last_error": {"code": "unsupported_file", "message": "The file type is not supported."}
                    if failed
                    else None,
                    "chunking_strategy": {
                        "type": "static",
                        "static": {"max_chunk_size_tokens": 800, "chunk_overlap_tokens": 400},
                    },
                    "attributes": {"source": "helpdesk", "version": 2} if k % 4 == 0 else {},
                }
                rows.append(row)
                self.vs_file_by_key[(vs_id, fid)] = row
                self.stores_of.setdefault(fid, []).append(vs_id)
            counts = {"in_progress": 0, "completed": 0, "failed": 0, "cancelled": 0, "total": len(rows)}
            for row in rows:
                counts[row["status"]] += 1
            vs: dict[str, Any] = {
                "id": vs_id,
                "object": "vector_store",
                "created_at": created,
                "name": VS_NAMES[j],
                "usage_bytes": sum(r["usage_bytes"] for r in rows),
                "file_counts": counts,
                "status": "completed",
                "last_active_at": created + 40 * 86_400,
                "metadata": {"source": "zendesk-export"} if j % 2 == 0 else {},
                "expires_after": None,
                "expires_at": None,
            }
            if j == 4:
                vs["expires_after"] = {"anchor": "last_active_at", "days": 365}
                vs["expires_at"] = vs["last_active_at"] + 365 * 86_400
            else:
                del vs["expires_after"]  # the spec types it as an object, never null
            self.vector_stores.append(vs)
            self.vs_by_id[vs_id] = vs
            self.vs_files[vs_id] = rows
        others = [("batch", "batch-2024-03.jsonl", "batch"), ("user_data", "customer notes.txt", "user_data")]
        # Foundry's FilePurpose knows neither in its preview spec (and `user_data` in none): no such files there.
        for i, (purpose, name, kind) in enumerate([] if self.foundry else others):
            fid = make_id("file-", self.seed, "other", i, length=22)
            self.global_files[fid] = FileMeta(fid, purpose, name, EPOCH - 4_000_000 + i, kind, i, -1)

    def doc_chunks(self, file_id: str) -> list[str]:
        """The parsed text of a vector-store document, one chunk per paragraph (none if it failed)."""
        if file_id in self.failed_docs:
            return []
        return self.docs[file_id].split("\n\n")

    def content_page_token(self, vs_id: str, file_id: str, page: int) -> str:
        return f"pg{page}_{token(self.seed, vs_id, file_id, page, length=10)}"

    def content_page_count(self, file_id: str) -> int:
        return _pages(len(self.doc_chunks(file_id)), CONTENT_PAGE_ITEMS)

    # -- threads -------------------------------------------------------------------------------
    @property
    def thread_id_list(self) -> list[str]:
        return self._ids

    def thread_index(self, thread_id: str) -> int | None:
        return self._index.get(thread_id)

    def plan(self, index: int) -> ThreadPlan:
        return self.planner.plan(index)

    def thread_object(self, index: int) -> dict[str, Any]:
        """The thread object alone, from its plan: what a thread list serves without building threads."""
        return thread_object(self, self.plan(index))

    def thread(self, index: int) -> ThreadData:
        with self._lock:
            data = self._cache.get(index)
            if data is not None:
                self._cache.move_to_end(index)
                return data
        data = build_thread(self, self.plan(index))
        with self._lock:
            self._cache[index] = data
            while len(self._cache) > THREAD_CACHE:
                self._cache.popitem(last=False)
        return data

    # -- files ---------------------------------------------------------------------------------
    def _thread_file_meta(self, plan: ThreadPlan, ref: FileRef) -> FileMeta:
        purpose = {"vision_png": "vision", "vision_jpg": "vision", "upload_doc": "assistants"}.get(
            ref.kind, "assistants_output"
        )
        i, n = plan.index, ref.number
        filename = {
            "vision_png": f"screenshot {i}-{n}.png",
            "vision_jpg": f"IMG_{1000 + i}_{n}.jpg",
            "output_png": f"/mnt/data/chart_{n}.png",
            "output_csv": f"/mnt/data/report_{n}.csv",
            "upload_doc": f"contract scan ({i}-{n}).pdf",
        }[ref.kind]
        return FileMeta(ref.id, purpose, filename, plan.created_at + n, ref.kind, n, plan.index)

    def file_meta(self, file_id: str) -> FileMeta | None:
        meta = self.global_files.get(file_id)
        if meta is None:
            self.catalog()
            meta = self._thread_files.get(file_id)
        return meta

    def file_content(self, meta: FileMeta) -> bytes:
        with self._lock:
            cached = self._content_cache.get(meta.id)
        if cached is not None:
            return cached
        rng = random.Random(f"{self.seed}:{meta.id}")
        if meta.kind == "doc":
            data = self.docs[meta.id].encode()
        elif meta.kind in ("vision_png", "output_png"):
            data = media.png(
                rng.randint(12, 32),
                rng.randint(12, 32),
                (rng.randrange(256), rng.randrange(256), rng.randrange(256)),
            )
        elif meta.kind == "vision_jpg":
            data = media.jpeg(rng.randrange(256), comment=meta.filename)
        elif meta.kind == "output_csv":
            regions = ["north", "south", "east", "west", "online"]
            data = media.csv_report([(r, rng.randint(10, 900), rng.random() * 0.2) for r in regions])
        elif meta.kind == "upload_doc":
            data = (
                b"%PDF-1.4\n% sandbox upload "
                + meta.id.encode()
                + b"\n"
                + text.paragraph(rng, 6).encode()
                + b"\n%%EOF\n"
            )
        elif meta.kind == "batch":
            data = b'{"custom_id": "r1", "method": "POST", "url": "/v1/chat/completions", "body": {}}\n'
        else:
            data = "Customer prefers email. Spricht Deutsch. 🙂\n".encode()
        with self._lock:
            self._content_cache[meta.id] = data
            while len(self._content_cache) > 512:
                self._content_cache.popitem(last=False)
        return data

    def file_size(self, meta: FileMeta) -> int:
        size = self._sizes.get(meta.id)
        if size is None:
            size = self._sizes[meta.id] = len(self.file_content(meta))
        return size

    def file_object(self, meta: FileMeta) -> dict[str, Any]:
        return {
            "id": meta.id,
            "object": "file",
            "bytes": self.file_size(meta),
            "created_at": meta.created_at,
            "filename": meta.filename,
            "purpose": meta.purpose,
            "status": "processed",
        }

    def all_files(self) -> list[FileMeta]:
        """Every file the files endpoint lists, ascending by created_at, then in creation order."""
        self.catalog()
        files = [*self.global_files.values(), *self._thread_files.values()]
        return sorted(files, key=lambda m: m.created_at)  # stable: never by id

    # -- the catalog: counts and the ideal client's request bill -------------------------------
    def catalog(self) -> dict[str, Any]:
        if self._catalog is None:
            with self._scan_lock:  # one scan, however many requests arrive while it runs
                if self._catalog is None:
                    catalog, self._thread_files = self._scan()
                    self._catalog = catalog
        return self._catalog

    def _scan(self) -> tuple[dict[str, Any], dict[str, FileMeta]]:
        referenced: set[str] = set(self.docs)  # every vector-store file
        thread_files: dict[str, FileMeta] = {}
        messages = runs = steps_tools = steps_total = 0
        msg_pages = run_pages = step_pages = tool_runs = 0
        own_calls: dict[str, int] = {}
        approvals = activities = 0
        for index in range(self.n_threads):
            plan = self.plan(index)
            for ref in plan.files:
                thread_files[ref.id] = self._thread_file_meta(plan, ref)
            n_msgs = plan.message_count
            messages += n_msgs
            msg_pages += _pages(n_msgs)
            n_runs = plan.run_count
            runs += n_runs
            run_pages += _pages(n_runs)
            for turn in plan.turns:
                if not turn.has_run:
                    continue
                kinds = turn.step_kinds()
                steps_total += len(kinds)
                if self.run_declares_tools(turn):
                    tool_runs += 1
                    steps_tools += len(kinds)
                    step_pages += _pages(len(kinds))
                if turn.tool:
                    activities += kinds.count("activities")
                    if turn.kind == "approval":
                        approvals += 1
                    else:
                        own_calls[turn.tool] = own_calls.get(turn.tool, 0) + 1
        referenced |= set(thread_files)
        # Attachments and citations of vector-store documents, image_file content, code outputs:
        # all are either documents (already in `referenced`) or per-thread files (added above).
        vs_content_pages = 0
        for fid in referenced:
            meta = self.global_files.get(fid) or thread_files[fid]
            if meta.purpose == "assistants" and fid in self.stores_of:
                vs_content_pages += self.content_page_count(fid)
        by_route = {
            "GET /v1/assistants": _pages(len(self.assistants)),
            "GET /v1/vector_stores": _pages(len(self.vector_stores)),
            "GET /v1/vector_stores/{vector_store_id}/files": sum(
                _pages(len(r)) for r in self.vs_files.values()
            ),
            "GET /v1/threads/{thread_id}": self.n_threads,
            "GET /v1/threads/{thread_id}/messages": msg_pages,
            "GET /v1/threads/{thread_id}/runs": run_pages,
            "GET /v1/threads/{thread_id}/runs/{run_id}/steps": step_pages,
            "GET /v1/files/{file_id}": len(referenced),
            "GET /v1/files/{file_id}/content": len(referenced),
            "GET /v1/vector_stores/{vector_store_id}/files/{file_id}/content": vs_content_pages,
        }
        counts = {
            "assistants": len(self.assistants),
            "threads": self.n_threads,
            "messages": messages,
            "runs": runs,
            "run_steps": steps_tools,
            "vector_stores": len(self.vector_stores),
            "vector_store_files": sum(len(r) for r in self.vs_files.values()),
            "files": len(referenced),
        }
        extra: dict[str, Any] = {}
        if self.flavor == "foundry":
            # Every purpose downloads (Foundry has no parsed-text route), and threads can be listed.
            del by_route["GET /v1/vector_stores/{vector_store_id}/files/{file_id}/content"]
            extra = {
                "thread_list_pages": _pages(self.n_threads),
                "foundry_tool_calls": dict(sorted(own_calls.items())),
                "tool_approvals": approvals,
                "activities_steps": activities,
            }
        elif self.flavor == "lookalike":
            # No vector stores and no file routes; step lists answer empty, one page per tool run.
            for route in list(by_route):
                if "/vector_stores" in route or "/files/" in route:
                    del by_route[route]
            by_route["GET /v1/threads/{thread_id}/runs/{run_id}/steps"] = tool_runs
            counts.update(run_steps=0, vector_stores=0, vector_store_files=0, files=0)
            steps_total = 0
        elif self.flavor == "sunset":  # without assistants and threads, no export can complete
            by_route = {}
            counts = dict.fromkeys(counts, 0)
            steps_total = 0
        catalog = {
            "threads": self.n_threads,
            "seed": self.seed,
            "flavor": self.flavor,
            "counts": counts,
            # Steps of every run, tool-less ones included (each has one message_creation step).
            "run_steps_total": steps_total,
            "minimum_requests": {"total": sum(by_route.values()), "by_route": by_route},
            **extra,
        }
        return catalog, thread_files

    def truth(self, index: int) -> dict[str, Any]:
        """What thread `index` holds, in creation order: texts, runs, every tool call with its payload.

        For tests that must find each source object in what a client made of it, without walking the API.
        """
        data = self.thread(index)
        messages = []
        for m in data.messages:
            texts = [
                p["text"]["value"] if p["type"] == "text" else p["refusal"]
                for p in m["content"]
                if p["type"] in ("text", "refusal")
            ]
            messages.append({"id": m["id"], "role": m["role"], "run_id": m["run_id"], "texts": texts})
        calls, activities, actions = [], [], []
        for run in data.runs:
            for step in data.steps[run["id"]]:
                details = step["step_details"]
                for c in details.get("tool_calls", []):
                    where = {"run_id": run["id"], "step_id": step["id"]}
                    calls.append({**where, "id": c["id"], "type": c["type"], "payload": foundry.payload(c)})
                if details["type"] == "activities":
                    activities.append(
                        {"run_id": run["id"], "step_id": step["id"], "activities": details["activities"]}
                    )
            action = run["required_action"]
            if action:
                actions.append(
                    {
                        "run_id": run["id"],
                        "type": action["type"],
                        "tool_calls": action[action["type"]]["tool_calls"],
                    }
                )
        return {
            "thread_id": data.thread["id"],
            "flavor": self.flavor,
            "messages": messages,
            "runs": [
                {"id": r["id"], "status": r["status"], "declares_tools": bool(r["tools"])} for r in data.runs
            ],
            "tool_calls": calls,
            "activities": activities,
            "required_actions": actions,
        }

    def run_declares_tools(self, turn: Any) -> bool:
        return self.caps[turn.assistant].tools or turn.override in ("tools", "both")
