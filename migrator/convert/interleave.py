"""The order of a thread: messages, and inside each run its steps, as one timeline.

Timestamps have one-second resolution and ids are random, so ties are common and the source's list
order is the truth: every list arrives in the order the source listed it (the archive keeps it as
`position`), and a stable sort by `created_at` keeps that order among objects of one second. An id
is never compared. The other rules:
- the messages come out in their own (created_at, list) order, and a run sits where its messages
  are among them;
- a run that left no message, and a message without a run in the same second as it: the message
  first (a run reads the messages already there, and no message can be added while a run is active);
- inside a run, a step before an unplaced message of the same second (the run's final message
  follows its tool calls).
A message_creation step places its message exactly; only messages no step names fall back to
created_at.

A run with no steps at all whose earlier versions (a polling loop's snapshots) asked for tool outputs
gets those calls back: they sit before the run's last message (the answer that followed them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, NamedTuple

from migrator.convert.raw import as_dict, as_str, dicts, epoch_seconds, oid

__all__ = ["Entry", "order_thread", "recovered_calls"]

_NEVER = 1 << 62  # after every real index


class Entry(NamedTuple):
    """One place of the timeline (a tuple: one is made per message of every thread converted)."""

    kind: Literal["message", "tool_calls", "required_action", "recovered"]
    # the message, the tool_calls step, or the run with an open required_action / recovered calls
    obj: dict[str, Any]
    run: dict[str, Any] | None
    # required_action: calls the run still waits for that no step recorded; recovered: calls only an
    # earlier version of a run without steps recorded (their outputs were never saved)
    calls: tuple[dict[str, Any], ...] = ()


def _ts(obj: dict[str, Any]) -> int:
    return epoch_seconds(obj.get("created_at")) or 0


def order_thread(
    messages: Sequence[dict[str, Any]],
    runs: Sequence[dict[str, Any]],
    steps: Sequence[dict[str, Any]],
    run_versions: Mapping[str, Sequence[dict[str, Any]]] | None = None,
) -> tuple[list[Entry], list[str]]:
    """The timeline, and the ids of messages that message_creation steps name but nobody has.

    Each list is taken in the source's order; objects of one second keep their order in it.
    `run_versions` holds every version of a run the archive kept (by run id, in arrival order).
    """
    by_id: dict[str, dict[str, Any]] = {}
    for message in sorted(messages, key=_ts):  # stable: ties keep the list order
        by_id.setdefault(oid(message), message)
    if not runs and not steps:
        # What the rules below come to without runs or steps (every message free, in order), without
        # their bookkeeping: many threads never ran (a messages-only dump), and each one costs it.
        return [Entry("message", message, None) for message in by_id.values()], []
    runs_by_id = {oid(run): run for run in runs}

    steps_of: dict[str, list[dict[str, Any]]] = {}
    for step in sorted(steps, key=_ts):
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

    # The runs in their list order, then steps of runs the archive lacks (such a run began with its
    # first step); a stable sort by start keeps that order within a second.
    groups: list[tuple[int, str]] = []
    known: set[str] = set()
    for run in sorted(runs, key=_ts):
        run_id = oid(run)
        if run_id not in known:
            known.add(run_id)
            groups.append((_ts(runs_by_id[run_id]), run_id))
    groups += [(_ts(group[0]), run_id) for run_id, group in steps_of.items() if run_id not in runs_by_id]
    groups.sort(key=lambda group: group[0])
    known.update(steps_of)

    members: dict[str, list[dict[str, Any]]] = {}
    free: list[tuple[int, int, dict[str, Any]]] = []  # (created_at, index among messages, message)
    anchor: dict[str, int] = {}  # run id -> index of its first message among all messages
    for index, (message_id, message) in enumerate(by_id.items()):
        owner = placed_by.get(message_id) or as_str(message.get("run_id"))
        if owner and owner in known:
            members.setdefault(owner, []).append(message)
            anchor.setdefault(owner, index)
        else:
            free.append((_ts(message), index, message))

    # A run without messages may not pass a message that a later run's messages precede.
    later_anchor = [_NEVER] * (len(groups) + 1)
    for k in range(len(groups) - 1, -1, -1):
        later_anchor[k] = min(later_anchor[k + 1], anchor.get(groups[k][1], _NEVER))

    timeline: list[Entry] = []
    i = 0
    for k, (start, run_id) in enumerate(groups):
        if run_id in anchor:
            # The run sits where its messages are: after every message listed before them.
            while i < len(free) and free[i][1] < anchor[run_id]:
                timeline.append(Entry("message", free[i][2], None))
                i += 1
        else:
            while i < len(free) and free[i][0] <= start and free[i][1] < later_anchor[k + 1]:
                timeline.append(Entry("message", free[i][2], None))
                i += 1
        _run_timeline(
            runs_by_id.get(run_id),
            steps_of.get(run_id, []),
            members.get(run_id, []),
            by_id,
            timeline,
            (run_versions or {}).get(run_id, ()),
        )
    timeline += [Entry("message", message, None) for _, _, message in free[i:]]
    return timeline, sorted(set(missing))


def _created_message(step: dict[str, Any]) -> str | None:
    if step.get("type") != "message_creation":
        return None
    details = as_dict(step.get("step_details"))
    return as_str(as_dict(details.get("message_creation")).get("message_id")) or None


def _required_calls(run: Mapping[str, Any]) -> list[dict[str, Any]]:
    action = as_dict(as_dict(run.get("required_action")).get("submit_tool_outputs"))
    return list(dicts(action.get("tool_calls")))


def recovered_calls(run: Mapping[str, Any] | None, versions: Sequence[Any]) -> tuple[dict[str, Any], ...]:
    """Calls earlier versions of a run asked for that the run itself no longer lists, first seen first."""
    if run is None:
        return ()
    current = {oid(call) for call in _required_calls(run)}
    found: dict[str, dict[str, Any]] = {}
    for version in versions:
        if isinstance(version, dict):
            for call in _required_calls(version):
                if oid(call) and oid(call) not in current:
                    found.setdefault(oid(call), call)
    return tuple(found.values())


def _run_timeline(
    run: dict[str, Any] | None,
    steps: list[dict[str, Any]],
    messages: list[dict[str, Any]],
    by_id: dict[str, dict[str, Any]],
    out: list[Entry],
    versions: Sequence[dict[str, Any]] = (),
) -> None:
    named = {mid for step in steps if (mid := _created_message(step))}
    member_ids = {oid(m) for m in messages}
    # Steps and messages arrive in their list order; the index keeps it within a second.
    items: list[tuple[tuple[int, int, int], str, dict[str, Any]]] = [
        ((_ts(s), 0, i), "step", s) for i, s in enumerate(steps)
    ]
    items += [((_ts(m), 1, i), "message", m) for i, m in enumerate(messages) if oid(m) not in named]
    items.sort(key=lambda item: item[0])
    recovered = recovered_calls(run, versions) if run is not None and not steps else ()
    if recovered:
        # Steps would say where the calls were; without them, before the run's final message.
        last = max((n for n, item in enumerate(items) if item[1] == "message"), default=len(items))
        items.insert(last, ((0, 0, 0), "recovered", run))
    emitted: set[str] = set()
    recorded_calls: set[str] = set()
    for _, kind, obj in items:
        if kind == "message":
            out.append(Entry("message", obj, run))
            continue
        if kind == "recovered":
            out.append(Entry("recovered", obj, run, recovered))
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
        open_calls = tuple(c for c in _required_calls(run) if oid(c) not in recorded_calls)
        if open_calls:
            out.append(Entry("required_action", run, run, open_calls))
