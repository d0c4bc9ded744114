"""The order of a thread: messages, and inside each run its steps, as one timeline.

Timestamps have one-second resolution, so ties are common; every tie has a rule:
- a message without a run and a run created in the same second: the message first (a run reads the
  messages already there, and no message can be added while a run is active);
- two runs or two steps in the same second: the one that ended first, then the id; two messages
  in the same second: the id (the API's own order is not in the objects);
- inside a run, a step before an unplaced message of the same second (the run's final message
  follows its tool calls).
A message_creation step places its message exactly; only messages no step names fall back to
created_at. Nothing depends on the order of the input lists.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from migrator.convert.raw import as_dict, as_str, dicts, oid

__all__ = ["Entry", "order_thread"]

_NEVER = 1 << 62  # sorts after every real timestamp


@dataclass(frozen=True, slots=True)
class Entry:
    kind: Literal["message", "tool_calls", "required_action"]
    obj: dict[str, Any]  # the message, the tool_calls step, or the run with an open required_action
    run: dict[str, Any] | None
    calls: tuple[dict[str, Any], ...] = ()  # required_action only: calls no step recorded


def _ts(obj: dict[str, Any]) -> int:
    value = obj.get("created_at")
    return value if isinstance(value, int) else 0


def _ended(obj: dict[str, Any]) -> int:
    for key in ("completed_at", "failed_at", "cancelled_at", "expired_at"):
        value = obj.get(key)
        if isinstance(value, int):
            return value
    return _NEVER


def order_thread(
    messages: Sequence[dict[str, Any]], runs: Sequence[dict[str, Any]], steps: Sequence[dict[str, Any]]
) -> tuple[list[Entry], list[str]]:
    """The timeline, and the ids of messages that message_creation steps name but nobody has."""
    by_id: dict[str, dict[str, Any]] = {}
    for message in sorted(messages, key=lambda m: (_ts(m), oid(m))):
        by_id.setdefault(oid(message), message)
    runs_by_id = {oid(run): run for run in runs}

    steps_of: dict[str, list[dict[str, Any]]] = {}
    for step in sorted(steps, key=lambda s: (_ts(s), _ended(s), oid(s))):
        steps_of.setdefault(as_str(step.get("run_id")), []).append(step)

    # A message belongs to the run whose step created it; failing that, to its run_id.
    placed_by: dict[str, str] = {}
    missing: list[str] = []
    for run_id, run_steps in steps_of.items():
        for step in run_steps:
            message_id = _created_message(step)
            if message_id is None:
                continue
            if message_id not in by_id:
                missing.append(message_id)
            placed_by.setdefault(message_id, run_id)

    groups = runs_by_id.keys() | steps_of.keys()
    members: dict[str, list[dict[str, Any]]] = {}
    events: list[tuple[tuple[int, int, int, str], str, dict[str, Any] | None]] = []
    for message_id, message in by_id.items():
        owner = placed_by.get(message_id) or as_str(message.get("run_id"))
        if owner and owner in groups:
            members.setdefault(owner, []).append(message)
        else:
            events.append(((_ts(message), 0, 0, message_id), "message", message))
    for run_id in groups:
        run = runs_by_id.get(run_id)
        if run is not None:
            start, end = _ts(run), _ended(run)
        else:  # steps of a run the archive lacks: the run began with its first step
            start, end = min(_ts(s) for s in steps_of[run_id]), _NEVER
        events.append(((start, 1, end, run_id), "run", None))
    events.sort(key=lambda event: event[0])

    timeline: list[Entry] = []
    for key, kind, message in events:
        if kind == "message" and message is not None:
            timeline.append(Entry("message", message, None))
        else:
            run_id = key[3]
            _run_timeline(
                runs_by_id.get(run_id), steps_of.get(run_id, []), members.get(run_id, []), by_id, timeline
            )
    return timeline, sorted(set(missing))


def _created_message(step: dict[str, Any]) -> str | None:
    if step.get("type") != "message_creation":
        return None
    details = as_dict(step.get("step_details"))
    return as_str(as_dict(details.get("message_creation")).get("message_id")) or None


def _run_timeline(
    run: dict[str, Any] | None,
    steps: list[dict[str, Any]],
    messages: list[dict[str, Any]],
    by_id: dict[str, dict[str, Any]],
    out: list[Entry],
) -> None:
    named = {mid for step in steps if (mid := _created_message(step))}
    member_ids = {oid(m) for m in messages}
    items: list[tuple[tuple[int, int, int, str], str, dict[str, Any]]] = [
        ((_ts(s), 0, _ended(s), oid(s)), "step", s) for s in steps
    ]
    items += [((_ts(m), 1, 0, oid(m)), "message", m) for m in messages if oid(m) not in named]
    items.sort(key=lambda item: item[0])
    emitted: set[str] = set()
    recorded_calls: set[str] = set()
    for _, kind, obj in items:
        if kind == "message":
            out.append(Entry("message", obj, run))
            continue
        if obj.get("type") == "tool_calls":
            calls = as_dict(obj.get("step_details")).get("tool_calls")
            recorded_calls.update(oid(call) for call in dicts(calls))
            out.append(Entry("tool_calls", obj, run))
            continue
        message_id = _created_message(obj)
        # A message in another run's group was claimed by that run's step; never emit one twice.
        if message_id is not None and message_id in member_ids and message_id not in emitted:
            emitted.add(message_id)
            out.append(Entry("message", by_id[message_id], run))
    if run is not None:
        action = as_dict(as_dict(run.get("required_action")).get("submit_tool_outputs"))
        open_calls = tuple(c for c in dicts(action.get("tool_calls")) if oid(c) not in recorded_calls)
        if open_calls:
            out.append(Entry("required_action", run, run, open_calls))
