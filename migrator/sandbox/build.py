"""Build a thread's objects (thread, messages, runs, steps) from its plan.

Texts, arguments and timestamps come from `random.Random(f"{seed}:{index}:content")`, so the
objects are a pure function of (seed, index, clock). One clock per thread advances for every object.

The clock is as rude as the API's by default: `created_at` has one-second resolution there, and a
turn (the user message, the run, its steps and the answer) usually happens within one second, so
every object of a turn carries the turn's first second. Ids are random, so only the order of the
lists (their creation order, which the routes serve) says what came first. The polite clock
(`polite_clock`) stamps each object with its own later second instead, as this sandbox used to.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from migrator.sandbox import catalogue, foundry, text
from migrator.sandbox.ids import make_id, token
from migrator.sandbox.plan import ThreadPlan, Turn, UserMsg

if TYPE_CHECKING:
    from migrator.sandbox.corpus import Corpus

Obj = dict[str, Any]


@dataclass
class Reply:
    """What the corpus's assistant did after a user message: function-call batches, then text."""

    key: str  # names the question, for the seeded drift coin
    calls: list[list[tuple[str, str, str]]] = field(default_factory=list)  # [(call_id, name, arguments)]
    text: str | None = None


@dataclass
class ThreadData:
    thread: Obj
    messages: list[Obj]
    runs: list[Obj]
    steps: dict[str, list[Obj]]  # run id -> steps, file_search results with their content
    steps_plain: dict[str, list[Obj]]  # the same without file_search result content
    msg_pos: dict[str, int]
    run_pos: dict[str, int]
    step_pos: dict[str, dict[str, int]]
    replies: dict[int, Reply]  # user message position -> what followed
    user_texts: dict[int, str]


class _Builder:
    def __init__(self, corpus: Corpus, plan: ThreadPlan) -> None:
        self.c = corpus
        self.p = plan
        self.seed = corpus.seed
        self.rng = random.Random(f"{corpus.seed}:{plan.index}:content")
        self.clock = plan.created_at
        self.polite = corpus.polite_clock
        self.foundry = corpus.foundry  # Foundry's messages know only text and image_file parts
        self.turn_at: int | None = None  # the second every object of the current turn is created in
        self.messages: list[Obj] = []
        self.runs: list[Obj] = []
        self.steps: dict[str, list[Obj]] = {}
        self.replies: dict[int, Reply] = {}
        self.user_texts: dict[int, str] = {}
        self._cited: list[str] = []  # files the current run's file_search returned, for its citations

    def tick(self, lo: int = 1, hi: int = 3) -> int:
        self.clock += self.rng.randint(lo, hi)
        return self.clock

    def created(self, lo: int, hi: int) -> int:
        """A `created_at`: the clock's next second (polite), or the second its turn began (rude).

        The clock advances the same either way, so both corpora hold the same texts and every
        other timestamp (started_at, completed_at, ...) is the same.
        """
        now = self.tick(lo, hi)
        if self.polite:
            return now
        if self.turn_at is None:
            self.turn_at = now
        return self.turn_at

    # -- messages ------------------------------------------------------------------------------
    def _message(self, role: str, content: list[Obj], *, run: Obj | None, created: int, **extra: Any) -> Obj:
        k = len(self.messages)
        msg: Obj = {
            "id": make_id("msg_", self.seed, "msg", self.p.index, k),
            "object": "thread.message",
            "created_at": created,
            "thread_id": self.p.id,
            "status": "completed",
            "incomplete_details": None,
            "completed_at": created if role == "user" else created + 1,
            "incomplete_at": None,
            "role": role,
            "content": content,
            "assistant_id": run["assistant_id"] if run else None,
            "run_id": run["id"] if run else None,
            "attachments": [],
            "metadata": {},
        }
        msg.update(extra)
        self.messages.append(msg)
        return msg

    @staticmethod
    def _text(value: str, annotations: list[Obj] | None = None) -> Obj:
        return {"type": "text", "text": {"value": value, "annotations": annotations or []}}

    def user(self, um: UserMsg, first: bool) -> Obj:
        k = len(self.messages)
        rng = self.rng
        value = text.user_text(
            rng, self.p.index, k, first=first or rng.random() < 0.3, unicode=um.flavour == "unicode"
        )
        self.user_texts[k] = value
        content = [self._text(value)]
        attachments: list[Obj] = []
        if um.flavour == "image_file" and um.file:
            content.append(
                {
                    "type": "image_file",
                    "image_file": {"file_id": um.file.id, "detail": rng.choice(["auto", "high"])},
                }
            )
        elif um.flavour == "image_url" and not self.foundry:
            url = f"https://images.example.com/uploads/{token(self.seed, self.p.index, k, length=12)}.jpg"
            content.append({"type": "image_url", "image_url": {"url": url, "detail": "low"}})
        elif um.flavour == "attach_vs":
            store = self.c.vector_stores[rng.choice([0, 1, 2])]["id"]
            fid = rng.choice([r["id"] for r in self.c.vs_files[store]])
            attachments.append({"file_id": fid, "tools": [{"type": "file_search"}]})
        elif um.flavour == "attach_doc" and um.file:
            attachments.append({"file_id": um.file.id, "tools": [{"type": "code_interpreter"}]})
        meta = {
            "channel": rng.choice(["web", "ios", "email"]),
            "locale": rng.choice(["en-IE", "fr-FR", "ar-EG"]),
        }
        return self._message(
            "user",
            content,
            run=None,
            created=self.created(5, 90),
            attachments=attachments,
            metadata=meta if um.metadata else {},
        )

    # -- runs ----------------------------------------------------------------------------------
    def run(self, turn: Turn, reply: Reply) -> None:
        asst = self.c.assistants[turn.assistant]
        r = len(self.runs)
        idx = self.p.index
        tools = list(asst["tools"])
        instructions = asst["instructions"] or ""
        model = asst["model"]
        if turn.override in ("tools", "both"):
            tools.append(catalogue.OVERRIDE_FUNCTION.tool())
        if turn.override in ("instructions", "both"):
            instructions = (instructions + "\n\n" if instructions else "") + (
                "The customer is a VIP: offer a goodwill credit when an order is late."
            )
        if turn.override == "both":
            model = "gpt-4o-2024-08-06"
        functions = [t["function"]["name"] for t in tools if t["type"] == "function"]
        created = self.created(1, 2)
        run: Obj = {
            "id": make_id("run_", self.seed, "run", idx, r),
            "object": "thread.run",
            "created_at": created,
            "thread_id": self.p.id,
            "assistant_id": asst["id"],
            "status": "completed",
            "required_action": None,
            "last_error": None,
            "expires_at": None,
            "started_at": self.tick(1, 2),
            "cancelled_at": None,
            "failed_at": None,
            "completed_at": None,
            "incomplete_details": None,
            "model": model,
            "instructions": instructions,
            "tools": tools,
            "metadata": {"source": "widget"} if (idx + r) % 5 == 0 else {},
            "usage": None,
            "temperature": asst["temperature"],
            "top_p": asst["top_p"],
            "max_prompt_tokens": None,
            "max_completion_tokens": 256 if turn.kind == "incomplete" else None,
            "truncation_strategy": {"type": "auto", "last_messages": None},
            "tool_choice": "auto",
            "parallel_tool_calls": True,
            "response_format": asst["response_format"],
        }
        if self.foundry:
            run["tool_resources"] = asst["tool_resources"]
        self.runs.append(run)
        steps: list[Obj] = []
        self.steps[run["id"]] = steps
        kind = turn.kind
        n_messages = 0
        for s, step_kind in enumerate(turn.step_kinds()):
            step: Obj = {
                "id": make_id("step_", self.seed, "step", idx, r, s),
                "object": "thread.run.step",
                "created_at": self.created(1, 2),
                "assistant_id": asst["id"],
                "thread_id": self.p.id,
                "run_id": run["id"],
                "type": "tool_calls",
                "status": "completed",
                "step_details": {},
                "last_error": None,
                "expired_at": None,
                "cancelled_at": None,
                "failed_at": None,
                "completed_at": None,
                "metadata": {},
                "usage": None,
            }
            steps.append(step)
            if step_kind == "message":
                final = n_messages == (1 if turn.preamble else 0)
                msg = self.assistant_message(turn, run, step["created_at"], final=final)
                n_messages += 1
                step["type"] = "message_creation"
                step["step_details"] = {
                    "type": "message_creation",
                    "message_creation": {"message_id": msg["id"]},
                }
                if final:
                    reply.text = _plain_text(msg)
            elif step_kind == "function":
                n = turn.calls if not any(st["type"] == "tool_calls" for st in steps[:-1]) else 1
                calls = []
                for c in range(n):
                    name = functions[(c + r) % len(functions)]
                    if turn.override in ("tools", "both") and c == 0:
                        name = catalogue.OVERRIDE_FUNCTION.name
                    args, output = catalogue.call(self.rng, catalogue.BY_NAME[name])
                    call_id = make_id("call_", self.seed, "call", idx, r, s, c)
                    open_call = kind in ("expired", "cancelled")
                    calls.append(
                        {
                            "id": call_id,
                            "type": "function",
                            "function": {
                                "name": name,
                                "arguments": args,
                                "output": None if open_call else output,
                            },
                        }
                    )
                reply.calls.append(
                    [(c["id"], c["function"]["name"], c["function"]["arguments"]) for c in calls]
                )
                step["step_details"] = {"type": "tool_calls", "tool_calls": calls}
            elif step_kind == "code_interpreter":
                png_file, _csv_file = turn.outputs
                code = "import pandas as pd\ndf = pd.read_csv('orders.csv')\ndf.groupby('region').refund_rate.mean().plot.bar()\n"
                logs = "region\neast     0.041\nnorth    0.087\nsouth    0.120\nName: refund_rate, dtype: float64\n"
                call = {
                    "id": make_id("call_", self.seed, "call", idx, r, s, 0),
                    "type": "code_interpreter",
                    "code_interpreter": {
                        "input": code,
                        "outputs": [
                            {"type": "logs", "logs": logs},
                            {"type": "image", "image": {"file_id": png_file.id}},
                        ],
                    },
                }
                step["step_details"] = {"type": "tool_calls", "tool_calls": [call]}
            elif step_kind == "activities":
                activity = foundry.list_tools(make_id("mcp_", self.seed, "activity", idx, r, s))
                step["type"] = "activities"
                step["step_details"] = {"type": "activities", "activities": [activity]}
            elif step_kind == "foundry":
                call_id = make_id("call_", self.seed, "call", idx, r, s, 0)
                ids = {
                    "thread": make_id("thread_", self.seed, "subthread", idx, r),
                    "run": make_id("run_", self.seed, "subrun", idx, r),
                    "agent": self.c.assistants[(turn.assistant + 1) % len(self.c.assistants)]["id"],
                }
                call = foundry.call(turn.tool, self.rng, call_id, ids=ids)
                step["step_details"] = {"type": "tool_calls", "tool_calls": [call]}
            else:  # file_search
                store = asst["tool_resources"].get("file_search", {}).get("vector_store_ids", [])
                rows = [f for f in self.c.vs_files[store[0]] if f["status"] == "completed"] if store else []
                picked = self.rng.sample(rows, min(len(rows), 3))
                results = []
                for i, row in enumerate(picked):
                    chunks = self.c.doc_chunks(row["id"])
                    results.append(
                        {
                            "file_id": row["id"],
                            "file_name": self.c.global_files[row["id"]].filename,
                            "score": round(0.92 - 0.11 * i, 2),
                            "content": [{"type": "text", "text": self.rng.choice(chunks)}],
                        }
                    )
                call = {
                    "id": make_id("call_", self.seed, "call", idx, r, s, 0),
                    "type": "file_search",
                    "file_search": {
                        "ranking_options": {"ranker": "default_2024_08_21", "score_threshold": 0.0},
                        "results": results,
                    },
                }
                step["step_details"] = {"type": "tool_calls", "tool_calls": [call]}
                self._cited = [res["file_id"] for res in results]
            self._finish_step(step, kind)
            if step["type"] == "message_creation" and step["status"] == "completed":
                step["usage"] = self._usage()
        self._finish_run(run, turn, steps)

    def _finish_step(self, step: Obj, kind: str) -> None:
        if kind == "expired" and step["type"] == "tool_calls":
            step["status"] = "expired"
            step["expired_at"] = self.clock + 600
        elif kind == "cancelled" and step["type"] == "tool_calls":
            step["status"] = "cancelled"
            step["cancelled_at"] = self.tick(20, 60)
        else:
            step["completed_at"] = self.tick(1, 4)
            if step["type"] == "tool_calls":
                step["usage"] = self._usage()

    def _usage(self) -> Obj:
        prompt, completion = self.rng.randint(200, 3000), self.rng.randint(10, 400)
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    def _finish_run(self, run: Obj, turn: Turn, steps: list[Obj]) -> None:
        kind = turn.kind
        if kind == "expired":
            run["status"] = "expired"
            run["expires_at"] = run["created_at"] + 600
            calls = steps[-1]["step_details"]["tool_calls"]
            run["required_action"] = {
                "type": "submit_tool_outputs",
                "submit_tool_outputs": {
                    "tool_calls": [
                        {
                            "id": c["id"],
                            "type": "function",
                            "function": {
                                "name": c["function"]["name"],
                                "arguments": c["function"]["arguments"],
                            },
                        }
                        for c in calls
                    ]
                },
            }
            self.clock = max(self.clock, run["expires_at"])
            run["usage"] = self._usage()
        elif kind == "approval":
            # The run listed the MCP server's tools, then waited for an approval nobody gave.
            run["status"] = "expired"
            run["expires_at"] = run["created_at"] + 600
            call_id = make_id("call_", self.seed, "approval", self.p.index, len(self.runs) - 1)
            run["required_action"] = {
                "type": "submit_tool_approval",
                "submit_tool_approval": {"tool_calls": [foundry.approval(self.rng, call_id)]},
            }
            self.clock = max(self.clock, run["expires_at"])
            run["usage"] = self._usage()
        elif kind == "cancelled":
            run["status"] = "cancelled"
            run["cancelled_at"] = self.clock
            run["usage"] = self._usage()
        elif kind == "failed":
            run["status"] = "failed"
            run["failed_at"] = self.tick(5, 30)
            run["last_error"] = {"code": "server_error", "message": "Sorry, something went wrong."}
        elif kind == "incomplete":
            run["status"] = "incomplete"
            run["incomplete_details"] = {"reason": "max_completion_tokens"}
            run["usage"] = self._usage()
            if self.foundry:
                # Foundry's RunStatus has no "incomplete": the cut-off run reads "completed", and only
                # its incomplete_details (and its message's) say the answer stopped short.
                run["status"] = "completed"
                run["completed_at"] = self.tick(1, 2)
        else:
            run["completed_at"] = self.tick(1, 2)
            run["usage"] = self._usage()

    def assistant_message(self, turn: Turn, run: Obj | None, created: int, *, final: bool) -> Obj:
        rng = self.rng
        kind = turn.kind
        content: list[Obj]
        if not final:
            content = [self._text("Let me look that up for you.")]
        elif turn.refusal:
            refusal = "I'm sorry, I can't help with opening other customers' orders."
            content = [self._text(refusal) if self.foundry else {"type": "refusal", "refusal": refusal}]
        elif turn.tool:
            value, annotations = foundry.answer(turn.tool, rng)
            content = [self._text(value, annotations)]
        elif kind == "file_search" and self._cited:
            content = [self._cited_text(self._cited)]
        elif kind == "code":
            png_file, csv_file = turn.outputs
            path = f"sandbox:/mnt/data/report_{csv_file.number}.csv"
            value = f"Refund rates by region are charted above. You can [download the data]({path})."
            start = value.index(path)
            ann = {
                "type": "file_path",
                "text": path,
                "start_index": start,
                "end_index": start + len(path),
                "file_path": {"file_id": csv_file.id},
            }
            content = [
                {"type": "image_file", "image_file": {"file_id": png_file.id}},
                self._text(value, [ann]),
            ]
        elif kind == "incomplete":
            content = [self._text("I've checked your order and the next step is to")]
        else:
            content = [self._text(" ".join(rng.sample(text.ASSISTANT_TEXTS, rng.randint(1, 2))))]
        extra: Obj = {}
        if kind == "incomplete":
            extra = {
                "status": "incomplete",
                "incomplete_details": {"reason": "max_tokens"},
                "completed_at": None,
                "incomplete_at": created + 2,
            }
        return self._message("assistant", content, run=run, created=created, **extra)

    def _cited_text(self, files: list[str]) -> Obj:
        parts = [
            "Per our policy, items can be returned within 30 days",
            ", refunds take 5-7 business days",
            " and gift cards are excluded",
        ]
        value, annotations = "", []
        for i, (part, fid) in enumerate(zip(parts, files, strict=False)):
            value += part
            marker = f"【4:{i}†source】"
            annotations.append(
                {
                    "type": "file_citation",
                    "text": marker,
                    "start_index": len(value),
                    "end_index": len(value) + len(marker),
                    # Foundry's MessageTextFileCitationDetails requires the quoted text as well.
                    "file_citation": {"file_id": fid, "quote": self.c.doc_chunks(fid)[-1][:80]}
                    if self.foundry
                    else {"file_id": fid},
                }
            )
            value += marker
        return self._text(value + ".", annotations)

    # -- the thread ----------------------------------------------------------------------------
    def build(self) -> ThreadData:
        p = self.p
        for turn in p.turns:
            self.turn_at = None
            reply = Reply(key=f"{p.index}:{len(self.messages)}")
            user_positions = []
            for i, um in enumerate(turn.users):
                user_positions.append(len(self.messages))
                self.user(um, first=not self.messages and i == 0)
            if turn.kind == "seeded":
                msg = self.assistant_message(turn, None, self.created(5, 60), final=True)
                reply.text = _plain_text(msg)
            elif turn.has_run:
                self._cited = []
                self.run(turn, reply)
            if reply.calls or reply.text is not None:
                for k in user_positions:
                    self.replies[k] = reply
        thread = thread_object(self.c, p)
        plain: dict[str, list[Obj]] = {}
        for run_id, steps in self.steps.items():
            plain[run_id] = [_without_result_content(s) for s in steps]
        return ThreadData(
            thread=thread,
            messages=self.messages,
            runs=self.runs,
            steps=self.steps,
            steps_plain=plain,
            msg_pos={m["id"]: i for i, m in enumerate(self.messages)},
            run_pos={r["id"]: i for i, r in enumerate(self.runs)},
            step_pos={rid: {s["id"]: i for i, s in enumerate(steps)} for rid, steps in self.steps.items()},
            replies=self.replies,
            user_texts=self.user_texts,
        )


def _plain_text(msg: Obj) -> str:
    parts = []
    for part in msg["content"]:
        if part["type"] == "text":
            parts.append(part["text"]["value"])
        elif part["type"] == "refusal":
            parts.append(part["refusal"])
    return "\n\n".join(parts)


def _without_result_content(step: Obj) -> Obj:
    details = step["step_details"]
    if details.get("type") != "tool_calls" or not any(
        c["type"] == "file_search" for c in details["tool_calls"]
    ):
        return step
    calls = []
    for c in details["tool_calls"]:
        if c["type"] == "file_search":
            fs = dict(c["file_search"])
            fs["results"] = [{k: v for k, v in res.items() if k != "content"} for res in fs["results"]]
            c = {**c, "file_search": fs}
        calls.append(c)
    return {**step, "step_details": {"type": "tool_calls", "tool_calls": calls}}


def thread_object(corpus: Corpus, p: ThreadPlan) -> Obj:
    """The thread itself depends on its plan alone, so a thread list never builds a thread's content."""
    first_vs = corpus.vector_stores[0]["id"]
    return {
        "id": p.id,
        "object": "thread",
        "created_at": p.created_at,
        "tool_resources": {"file_search": {"vector_store_ids": [first_vs]}} if p.index == 0 else {},
        "metadata": {
            "user_id": f"u_{p.index * 7919 % 100000:05d}",
            "plan": "pro" if p.index % 3 else "free",
        }
        if p.metadata
        else {},
    }


def build_thread(corpus: Corpus, plan: ThreadPlan) -> ThreadData:
    return _Builder(corpus, plan).build()
