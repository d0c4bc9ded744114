"""Property tests: generated threads (runs, steps, parallel calls, unanswered calls, same-second ties).

The generator is as rude as the API: ids are random (they never sort in creation order), and a
turn's user message, run, steps and answer often share one second, as may the next turn when the
data still says which came first. The lists are handed over in the source's (creation) order.

Invariants: no message lost or duplicated, every tool call answered exactly once and immediately,
order preserved, output deterministic and independent of the input order across seconds (only the
list order of one second's objects may matter), and the validator finds no error.
"""

from __future__ import annotations

import importlib.util
import random
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from migrator.convert import (
    FINDING_CODES,
    ConversionOptions,
    ThreadBundle,
    bundle_from_json,
    bundle_to_json,
    convert_thread,
    validate_session,
)

_RAW = Path(__file__).parent.parent / "fixtures" / "convert" / "rawobjects.py"
_spec = importlib.util.spec_from_file_location("convert_rawobjects", _RAW)
assert _spec and _spec.loader
raw = importlib.util.module_from_spec(_spec)
sys.modules["convert_rawobjects"] = raw
_spec.loader.exec_module(raw)

TID, AID = "thread_prop", "asst_prop"
TOOLS = [
    raw.function_tool("alpha", "A.", {"type": "object", "properties": {"x": {"type": "integer"}}}),
    raw.function_tool("beta", "B.", {"type": "object", "properties": {}}),
]
DANGLING = ("expired", "cancelled", "requires_action")
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)


@dataclass
class Generated:
    bundle: ThreadBundle
    order: list[tuple[str, Any]]  # ("msg", id) / ("calls", (call ids...)) in true order
    unanswered: set[str] = field(default_factory=set)


@st.composite
def threads(draw: st.DrawFn) -> Generated:
    rng = draw(st.randoms(use_true_random=False))
    taken: set[str] = set()

    def nid(prefix: str) -> str:
        # Random, like the API's: an id says nothing about when its object was created.
        while (new := f"{prefix}_{rng.getrandbits(48):012x}") in taken:
            pass
        taken.add(new)
        return new

    # Rude: everything of a turn in one second. Otherwise each object may take its own second.
    rude = draw(st.booleans())
    step = (lambda: 0) if rude else (lambda: draw(st.integers(0, 1)))
    t = raw.T0
    spoke = True  # did the last run leave a message (which says where the next turn starts)?
    messages: list[dict[str, Any]] = []
    runs: list[dict[str, Any]] = []
    steps: list[dict[str, Any]] = []
    order: list[tuple[str, Any]] = []
    unanswered: set[str] = set()
    for turn in range(draw(st.integers(0, 5))):
        for _ in range(draw(st.integers(1 if turn == 0 else 0, 2))):
            # A user message in the second a silent run started: nothing says which came first,
            # and the documented rule puts the message first, so such a turn starts a second later.
            t += draw(st.integers(0 if spoke else 1, 2))
            spoke = True
            mid = nid("msg")
            messages.append(raw.message(mid, TID, t, "user", draw(TEXT)))
            order.append(("msg", mid))
        if not draw(st.booleans()) and turn:
            continue
        status = draw(
            st.sampled_from(("completed", "completed", "completed", *DANGLING, "failed", "incomplete"))
        )
        start = t
        rid = nid("run")
        tool_less = draw(st.booleans())
        run_obj = raw.run(rid, TID, AID, start, tools=[] if tool_less else TOOLS, status=status)
        runs.append(run_obj)
        now = start
        segments = draw(st.lists(st.sampled_from(("message", "tools")), max_size=4))
        if tool_less:
            segments = [s for s in segments if s == "message"]
        if status in DANGLING and not tool_less:
            segments.append("open")  # the run stopped on calls nobody answered
        spoke = "message" in segments
        for segment in segments:
            now += step()
            if segment == "message":
                mid = nid("msg")
                messages.append(
                    raw.message(mid, TID, now, "assistant", draw(TEXT), run_id=rid, assistant_id=AID)
                )
                if not tool_less:
                    steps.append(raw.step_message(nid("step"), run_obj, now, mid))
                order.append(("msg", mid))
                continue
            calls = []
            for _ in range(draw(st.integers(1, 3))):
                cid = nid("call")
                output = None if segment == "open" and draw(st.booleans()) else draw(TEXT)
                if segment == "open" and output is None:
                    unanswered.add(cid)
                calls.append(raw.fn_call(cid, draw(st.sampled_from(("alpha", "beta"))), '{"x": 1}', output))
            step_status = "completed" if segment == "tools" else "in_progress"
            open_calls = [c for c in calls if c["id"] in unanswered]
            if segment == "open" and open_calls and status != "cancelled" and draw(st.booleans()):
                # Abandoned: the step listing was never archived; only required_action remembers.
                calls = open_calls
                run_obj["required_action"] = {
                    "type": "submit_tool_outputs",
                    "submit_tool_outputs": {
                        "tool_calls": [
                            raw.required_call(c["id"], c["function"]["name"], c["function"]["arguments"])
                            for c in calls
                        ]
                    },
                }
            else:
                steps.append(raw.step_tools(nid("step"), run_obj, now, calls, status=step_status))
            order.append(("calls", tuple(c["id"] for c in calls)))
        end = now + step()
        for key in ("completed_at", "failed_at", "cancelled_at"):
            if run_obj[key] is not None:
                run_obj[key] = end
        t = end
    bundle = ThreadBundle(
        thread=raw.thread(TID),
        messages=messages,
        runs=runs,
        steps=steps,
        assistants={AID: raw.assistant(AID, "gpt-4o", "You are a helpful assistant.", TOOLS)},
        files={},
    )
    return Generated(bundle, order, unanswered)


OPTIONS = st.builds(
    ConversionOptions,
    system_role=st.sampled_from(("system", "developer")),
    hosted_tools=st.sampled_from(("emulate", "drop", "text")),
    citations=st.sampled_from(("keep", "strip", "footnote")),
)
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def observed_order(record: dict[str, Any]) -> list[tuple[str, Any]]:
    seen: list[tuple[str, Any]] = []
    for message, source in zip(record["messages"], record["sources"], strict=True):
        if message.get("tool_calls"):
            seen.append(("calls", tuple(call["id"] for call in message["tool_calls"])))
        elif source.startswith("msg_"):
            seen.append(("msg", source))
    return seen


@SETTINGS
@given(threads(), OPTIONS)
def test_nothing_lost_duplicated_or_reordered(gen: Generated, options: ConversionOptions) -> None:
    record = convert_thread(gen.bundle, options)
    assert observed_order(record) == gen.order
    message_sources = [s for s in record["sources"] if s.startswith("msg_")]
    assert sorted(message_sources) == sorted(m["id"] for m in gen.bundle.messages)
    assert len(set(record["sources"])) == len(record["sources"])


@SETTINGS
@given(threads(), OPTIONS)
def test_every_call_answered_once_immediately(gen: Generated, options: ConversionOptions) -> None:
    record = convert_thread(gen.bundle, options)
    messages = record["messages"]
    answered: list[str] = []
    for index, message in enumerate(messages):
        if message["role"] == "tool":
            continue
        calls = [call["id"] for call in message.get("tool_calls") or ()]
        following = []
        for reply in messages[index + 1 :]:
            if reply["role"] != "tool":
                break
            following.append(reply["tool_call_id"])
        assert following == calls
        answered += calls
    assert len(answered) == len(set(answered))
    all_calls = [c for kind, ids in gen.order if kind == "calls" for c in ids]
    assert sorted(answered) == sorted(all_calls)
    closed = {
        m["tool_call_id"]
        for m in messages
        if m["role"] == "tool" and m["content"].startswith("No output was ever submitted")
    }
    assert closed == gen.unanswered
    dangling = [w for w in record["warnings"] if w["code"] == "dangling_tool_call_closed"]
    assert len(dangling) == len(gen.unanswered)


@SETTINGS
@given(threads(), OPTIONS, st.randoms(use_true_random=False))
def test_deterministic_and_independent_of_order_across_seconds(
    gen: Generated, options: ConversionOptions, rng: random.Random
) -> None:
    first = orjson.dumps(convert_thread(gen.bundle, options), option=orjson.OPT_SORT_KEYS)
    assert orjson.dumps(convert_thread(gen.bundle, options), option=orjson.OPT_SORT_KEYS) == first
    b = gen.bundle
    shuffled = ThreadBundle(
        thread=b.thread,
        messages=raw.shuffle_keeping_ties(b.messages, rng),
        runs=raw.shuffle_keeping_ties(b.runs, rng),
        steps=raw.shuffle_keeping_ties(b.steps, rng),
        assistants=b.assistants,
        files=b.files,
    )
    assert orjson.dumps(convert_thread(shuffled, options), option=orjson.OPT_SORT_KEYS) == first


@SETTINGS
@given(threads(), OPTIONS, st.randoms(use_true_random=False))
def test_order_does_not_come_from_ids(gen: Generated, options: ConversionOptions, rng: random.Random) -> None:
    """Renaming every id (so they sort some other way) changes the ids in the session, nothing else."""
    b = gen.bundle
    blob = orjson.dumps(bundle_to_json(b)).decode()
    ids = sorted({*re.findall(r"(?:msg|run|step|call)_[0-9a-f]{12}", blob)})
    renamed = dict(zip(ids, rng.sample(ids, len(ids)), strict=True))
    swapped = re.sub(r"(?:msg|run|step|call)_[0-9a-f]{12}", lambda m: renamed[m.group(0)], blob)
    other = convert_thread(bundle_from_json(orjson.loads(swapped)), options)
    back = {new: old for old, new in renamed.items()}
    restored = re.sub(
        r"(?:msg|run|step|call)_[0-9a-f]{12}", lambda m: back[m.group(0)], orjson.dumps(other).decode()
    )
    expected, got = convert_thread(b, options), orjson.loads(restored)
    # Warnings are sorted by their text, which names ids: the same set, in another order.
    assert sorted(map(orjson.dumps, got.pop("warnings"))) == sorted(
        map(orjson.dumps, expected.pop("warnings"))
    )
    assert got == expected


@SETTINGS
@given(threads(), OPTIONS)
def test_validator_finds_no_error(gen: Generated, options: ConversionOptions) -> None:
    record = convert_thread(gen.bundle, options)
    errors = [f for f in validate_session(record) if f.severity == "error"]
    assert errors == []


@settings(max_examples=200, deadline=None)
@given(st.lists(TEXT, min_size=1, max_size=4), st.sampled_from(("keep", "strip", "footnote")))
def test_text_without_markers_passes_through(texts: list[str], citations: str) -> None:
    parts = [raw.text(value) for value in texts]
    message = raw.message("msg_1", TID, raw.T0, "user", parts)
    bundle = ThreadBundle(
        thread=raw.thread(TID), messages=[message], runs=[], steps=[], assistants={}, files={}
    )
    record = convert_thread(bundle, ConversionOptions(citations=citations))
    content = record["messages"][0]["content"]
    got = [content] if isinstance(content, str) else [part["text"] for part in content]
    if not any("【" in value for value in texts):
        assert got == texts
    else:
        assert len(got) == len(texts)


# --- malformed input: look-alike servers send nulls, strings and lists where the spec has objects --

_GOLDEN = sorted((Path(__file__).parent.parent / "fixtures" / "convert").glob("*/input.json"))
_ODD_VALUES = (None, "", 0, 1.5, True, "x", [], {}, [None], {"type": None}, [{"type": "text"}])
_FAITHFUL = {"tool_schema_invalid", "tool_strict_invalid"}  # kept as declared, on purpose


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(_GOLDEN),
    st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, len(_ODD_VALUES))), min_size=1, max_size=3),
    OPTIONS,
)
def test_malformed_input_never_crashes(
    path: Path, edits: list[tuple[int, int]], options: ConversionOptions
) -> None:
    from migrator.convert import bundle_from_json

    body = orjson.loads(path.read_bytes())["bundle"]
    for where, what in edits:
        candidates = [
            p
            for p in _paths(body)
            if len(p) >= 2 and p[0] in ("thread", "messages", "runs", "steps", "assistants")
        ]
        target = candidates[where % len(candidates)]
        parent = body
        for key in target[:-1]:
            parent = parent[key]
        if what == len(_ODD_VALUES) and isinstance(parent, dict):
            del parent[target[-1]]
        else:
            parent[target[-1]] = orjson.loads(orjson.dumps(_ODD_VALUES[what % len(_ODD_VALUES)]))
    record = convert_thread(bundle_from_json(body), options)
    orjson.dumps(record, option=orjson.OPT_SORT_KEYS)
    assert [f for f in validate_session(record) if f.severity == "error" and f.code not in _FAITHFUL] == []


_GOLDEN_RECORDS = sorted((Path(__file__).parent.parent / "fixtures" / "convert").glob("*/expected.json"))


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(_GOLDEN_RECORDS),
    st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, len(_ODD_VALUES))), min_size=1, max_size=3),
)
def test_validator_never_crashes_on_a_damaged_record(path: Path, edits: list[tuple[int, int]]) -> None:
    """verify runs the validator on stored records, which may be damaged: it reports, never raises."""
    record = orjson.loads(path.read_bytes())
    for where, what in edits:
        candidates = [p for p in _paths(record) if p]
        target = candidates[where % len(candidates)]
        parent = record
        for key in target[:-1]:
            parent = parent[key]
        if what == len(_ODD_VALUES) and isinstance(parent, dict):
            del parent[target[-1]]
        else:
            parent[target[-1]] = orjson.loads(orjson.dumps(_ODD_VALUES[what % len(_ODD_VALUES)]))
    for finding in validate_session(record):
        assert finding.code in FINDING_CODES
