"""The structure of each thread, decided before any object is built.

A plan says how many messages and runs a thread has, what each run did (its kind and steps) and
which per-thread files it references; texts, arguments and timestamps are filled in later by
`build`. Counting the corpus and listing its files therefore only needs plans, which are cheap:
a 20,000-thread corpus is planned in about a second and never held in memory as objects.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from migrator.sandbox.ids import make_id, thread_id, unit

EPOCH = 1_700_000_000  # 2023-11-14: every timestamp is EPOCH plus an offset
THREAD_SPACING = 600  # seconds between thread starts; threads of one corpus overlap in time

# Run kinds, and what each leaves behind. "none" is a trailing user message nobody answered;
# "seeded" is an assistant message written into the thread without a run (imported history);
# "approval" (Foundry only) is a run that listed an MCP server's tools and then waited, until it
# expired, for the user to approve a call.
RUN_KINDS = (
    "text",
    "function",
    "parallel",
    "chain",
    "code",
    "file_search",
    "expired",
    "cancelled",
    "incomplete",
    "failed",
    "approval",
)
FOUNDRY_TURN_RATE = 0.5  # share of an eligible turn that calls a Foundry tool (showcase threads: all)
APPROVAL_RATE = 0.25  # share of MCP turns that stop for an approval nobody gave


SHOWCASE = 8  # threads 0..7 are hand-planned so that even a tiny corpus holds every special shape
# How often a random user message is more than text (the rest is plain text).
USER_FLAVOURS = (
    ("unicode", 0.06),
    ("image_file", 0.03),
    ("image_url", 0.02),
    ("attach_vs", 0.03),
    ("attach_doc", 0.01),
)


@dataclass(frozen=True, slots=True)
class Caps:
    """What an assistant declares, decided by its index alone."""

    functions: tuple[str, ...]
    code: bool
    file_search: bool
    vector_store: int | None

    @property
    def tools(self) -> bool:
        return bool(self.functions or self.code or self.file_search)


@dataclass(frozen=True, slots=True)
class FileRef:
    """A file owned by one thread: a vision upload, a code-interpreter output, or an unindexed upload."""

    id: str
    kind: str  # vision_png | vision_jpg | output_png | output_csv | upload_doc
    number: int  # position among the thread's files, for names and timestamps


@dataclass(frozen=True, slots=True)
class UserMsg:
    flavour: str  # text | unicode | image_file | image_url | attach_vs | attach_doc
    file: FileRef | None = None
    metadata: bool = False


@dataclass(frozen=True, slots=True)
class Turn:
    kind: str  # one of RUN_KINDS, or "none" / "seeded"
    assistant: int
    users: tuple[UserMsg, ...]
    calls: int = 0  # function calls in the first tool step
    override: str = ""  # "" | "instructions" | "tools" | "both"
    preamble: bool = False  # an assistant message before the tool step, inside the same run
    outputs: tuple[FileRef, ...] = ()  # code-interpreter image and CSV
    refusal: bool = False
    tool: str = ""  # Foundry: the tool (bing_grounding, mcp, ...) this turn's run called before answering

    @property
    def has_run(self) -> bool:
        return self.kind in RUN_KINDS

    def assistant_messages(self) -> int:
        if self.kind == "seeded":
            return 1
        if self.kind in ("none", "expired", "cancelled", "failed", "approval"):
            return 0
        return 2 if self.preamble else 1

    def step_kinds(self) -> list[str]:
        """The run's steps in order: message, function, code_interpreter, file_search, foundry, activities."""
        k = self.kind
        if k in ("none", "seeded", "failed"):
            return []
        if k == "approval":
            return ["activities"]
        if k == "text" and self.tool:
            return (["activities"] if self.tool == "mcp" else []) + ["foundry", "message"]
        if k in ("text", "incomplete"):
            return ["message"]
        if k in ("expired", "cancelled"):
            return ["function"]
        if k == "chain":
            return ["function", "function", "message"]
        tool = {"function": "function", "parallel": "function", "code": "code_interpreter"}.get(k, k)
        return (["message"] if self.preamble else []) + [tool, "message"]


@dataclass(frozen=True, slots=True)
class ThreadPlan:
    index: int
    id: str
    created_at: int
    turns: tuple[Turn, ...]
    metadata: bool
    files: tuple[FileRef, ...]

    @property
    def message_count(self) -> int:
        return sum(len(t.users) + t.assistant_messages() for t in self.turns)

    @property
    def run_count(self) -> int:
        return sum(1 for t in self.turns if t.has_run)


class Planner:
    """Plans threads for one (seed, assistants) pair; showcase threads come first by index."""

    def __init__(self, seed: int, caps: list[Caps], vs_sizes: list[int]) -> None:
        self.seed = seed
        self.caps = caps
        self.vs_sizes = vs_sizes
        # Foundry: the tools of its own each assistant declares (empty for OpenAI and look-alikes).
        self.foundry_tools: list[tuple[str, ...]] = [() for _ in caps]

        def full(c: Caps) -> bool:
            return bool(
                c.code and c.file_search and len(c.functions) >= 2 and vs_sizes[c.vector_store or 0] > 2
            )

        def first(pred: Callable[[Caps], bool], skip: int = -1) -> int:
            return next(i for i, c in enumerate(caps) if pred(c) and i != skip)

        self.a_full = first(full)
        self.a_other = first(full, skip=self.a_full)
        self.a_bare = first(lambda c: not c.tools)
        self.a_fn = first(lambda c: bool(c.functions) and not c.file_search)
        self.a_code = first(lambda c: c.code and bool(c.functions) and not c.file_search)

    # -- per-thread file ids -------------------------------------------------------------------
    def _file(self, index: int, files: list[FileRef], kind: str) -> FileRef:
        ref = FileRef(make_id("file-", self.seed, "tfile", index, len(files), length=22), kind, len(files))
        files.append(ref)
        return ref

    def _user(
        self,
        rng: random.Random,
        index: int,
        files: list[FileRef],
        flavour: str | None = None,
        metadata: bool | None = None,
        image: str | None = None,
    ) -> UserMsg:
        if flavour is None:
            flavour, x = "text", rng.random()
            for name, p in USER_FLAVOURS:
                if x < p:
                    flavour = name
                    break
                x -= p
        file = None
        if flavour == "image_file":
            file = self._file(index, files, image or rng.choice(["vision_png", "vision_jpg"]))
        elif flavour == "attach_doc":
            file = self._file(index, files, "upload_doc")
        meta = rng.random() < 0.1
        return UserMsg(flavour, file, metadata=meta if metadata is None else metadata)

    def _outputs(self, index: int, files: list[FileRef]) -> tuple[FileRef, ...]:
        return (self._file(index, files, "output_png"), self._file(index, files, "output_csv"))

    def _turn(
        self,
        rng: random.Random,
        index: int,
        files: list[FileRef],
        a: int,
        kind: str,
        *,
        users: list[UserMsg] | None = None,
        calls: int | None = None,
        override: str = "",
        preamble: bool = False,
        refusal: bool = False,
    ) -> Turn:
        if users is None:
            users = [self._user(rng, index, files)]
            if rng.random() < 0.05:
                users.append(self._user(rng, index, files, "text"))
        if calls is None:
            calls = {"parallel": rng.randint(2, 3), "function": 1, "expired": 1, "cancelled": 1}.get(kind, 0)
        outputs = self._outputs(index, files) if kind == "code" else ()
        return Turn(kind, a, tuple(users), calls, override, preamble, outputs, refusal)

    # -- random threads ------------------------------------------------------------------------
    def _kind(self, rng: random.Random, caps: Caps) -> str:
        if not caps.tools:
            return "incomplete" if rng.random() < 0.03 else "text"
        table = [("text", 50), ("incomplete", 2), ("failed", 1), ("expired", 2), ("cancelled", 2)]
        if caps.functions:
            table += [("function", 18), ("parallel", 8), ("chain", 3)]
        if caps.code:
            table.append(("code", 5))
        if caps.file_search:
            table.append(("file_search", 9))
        total = sum(w for _, w in table)
        x = rng.random() * total
        for kind, w in table:
            x -= w
            if x < 0:
                return kind
        return "text"

    def _random(self, rng: random.Random, index: int) -> tuple[list[Turn], list[FileRef], bool]:
        files: list[FileRef] = []
        if index % 150 == 149:
            n_turns = rng.randint(150, 175)  # the occasional 300+ message thread
        else:
            # geometric, mean about 3.4 turns (~8 messages), capped so a bad draw stays small
            n_turns = min(40, 1 + int(math.log(1.0 - rng.random()) / math.log(0.7)))
        main = rng.randrange(len(self.caps))
        second = rng.randrange(len(self.caps)) if rng.random() < 0.08 else None
        turns: list[Turn] = []
        if rng.random() < 0.04:
            return [Turn("none", main, (self._user(rng, index, files),))], files, rng.random() < 0.5
        if rng.random() < 0.05:
            turns.append(Turn("seeded", main, (self._user(rng, index, files, "text"),)))
        for i in range(n_turns):
            a = second if second is not None and rng.random() < 0.4 else main
            caps = self.caps[a]
            kind = self._kind(rng, caps)
            override = (
                rng.choice(["instructions", "tools", "both"]) if caps.tools and rng.random() < 0.04 else ""
            )
            preamble = kind == "function" and rng.random() < 0.2
            if i == n_turns - 1 and rng.random() < 0.08:
                kind = "none"
            turns.append(self._turn(rng, index, files, a, kind, override=override, preamble=preamble))
        return turns, files, rng.random() < 0.6

    # -- showcase threads: every special shape, present in any corpus of 8+ threads -------------
    def _showcase(self, rng: random.Random, index: int) -> tuple[list[Turn], list[FileRef], bool]:
        files: list[FileRef] = []

        def u(flavour: str = "text", meta: bool = False, image: str | None = None) -> UserMsg:
            return self._user(rng, index, files, flavour, meta, image)

        def T(a: int, kind: str, **kw: Any) -> Turn:  # noqa: N802  reads like a table row
            return self._turn(rng, index, files, a, kind, **kw)

        full, bare, fn, other = self.a_full, self.a_bare, self.a_fn, self.a_other
        if index == 0:  # hosted tools, parallel calls, citations, images, attachments, metadata
            turns = [
                T(full, "file_search", users=[u("attach_vs", True)]),
                T(full, "parallel", users=[u()], calls=3),
                T(full, "code", users=[u("image_file", image="vision_png")]),
                T(full, "text", users=[u("image_url")]),
                T(full, "function", users=[u("text", True)], preamble=True),
            ]
        elif index == 1:  # runs that ended badly
            turns = [
                T(fn, "expired", users=[u()], calls=2),
                T(fn, "cancelled", users=[u()]),
                T(fn, "incomplete", users=[u()]),
                T(fn, "failed", users=[u()]),
                T(fn, "function", users=[u()]),
            ]
        elif index == 2:  # two assistants, run-level overrides
            turns = [
                T(full, "text", users=[u()]),
                T(other, "function", users=[u()], override="both"),
                T(full, "chain", users=[u()], override="instructions"),
                T(other, "parallel", users=[u(), u()], calls=2, override="tools"),
            ]
        elif index == 3:  # a long thread: more than one page of messages and of runs
            kinds = ["text", "text", "function", "text", "parallel", "text", "file_search"]
            turns = [T(full, kinds[i % len(kinds)]) for i in range(160)]
        elif index == 4:  # an assistant without tools, unicode, seeded history
            turns = [Turn("seeded", bare, (u(),))]
            turns += [T(bare, "text", users=[u("unicode", True)]) for _ in range(4)]
            turns.append(T(bare, "incomplete", users=[u("unicode")]))
        elif index == 5:  # a single message, no run at all
            turns = [Turn("none", fn, (u(),))]
        elif index == 6:  # an upload no vector store holds, a refusal, a JPEG
            turns = [
                T(self.a_code, "code", users=[u("attach_doc")]),
                T(self.a_code, "text", users=[u("image_file", image="vision_jpg")], refusal=True),
                Turn("none", self.a_code, (u(),)),
            ]
        else:  # index 7: two runs in a row without tools, then tools again
            turns = [T(bare, "text"), T(bare, "text"), T(full, "file_search"), T(full, "function")]
        return turns, files, True

    def _foundry(self, index: int, turns: list[Turn]) -> list[Turn]:
        """Give text turns of agents with Foundry tools a call of one, in rotation over the agent's tools.

        Decided by hashed coins, never by the planning generator, so the threads keep their shape.
        The showcase threads call a tool on every eligible turn, so a small corpus holds every type.
        """
        out, k, approved = [], 0, False
        for j, turn in enumerate(turns):
            tools = self.foundry_tools[turn.assistant]
            eligible = turn.kind == "text" and tools and not turn.override
            if eligible and (
                index < SHOWCASE or unit(self.seed, "foundry-turn", index, j) < FOUNDRY_TURN_RATE
            ):
                tool = tools[(index + k) % len(tools)]
                k += 1
                kind = turn.kind
                if tool == "mcp" and (
                    unit(self.seed, "approval", index, j) < APPROVAL_RATE or (index == 3 and not approved)
                ):
                    kind, approved = "approval", True
                turn = dataclasses.replace(turn, kind=kind, tool=tool)
            out.append(turn)
        return out

    def plan(self, index: int) -> ThreadPlan:
        rng = random.Random(f"{self.seed}:{index}")
        if index < SHOWCASE:
            turns, files, meta = self._showcase(rng, index)
        else:
            turns, files, meta = self._random(rng, index)
        if any(self.foundry_tools):
            turns = self._foundry(index, turns)
        return ThreadPlan(
            index=index,
            id=thread_id(self.seed, index),
            created_at=EPOCH + index * THREAD_SPACING,
            turns=tuple(turns),
            metadata=meta,
            files=tuple(files),
        )
