"""Which version of an object a dump holds is current, and the thread made up for message lists.

A polling loop saves a run at every state and two files may hold one id with other content. The
current version is the one furthest along: a finished state (completed, failed, cancelled, expired,
incomplete) beats an unfinished one, then the latest timestamp the object carries, then the one read
last. Every other version stays in the archive's raw versions, verbatim.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from migrator.convert.raw import SYNTHESIZED

__all__ = ["NewestWins", "synthesized_thread"]

_FINISHED = frozenset({"completed", "failed", "cancelled", "expired", "incomplete"})
# Every moment an Assistants object records; the latest says how far along this version is.
_TIMES = (
    "created_at",
    "started_at",
    "completed_at",
    "failed_at",
    "cancelled_at",
    "expired_at",
    "incomplete_at",
    "last_active_at",
)


def _progress(obj: Mapping[str, Any]) -> tuple[int, int]:
    times = [t for key in _TIMES if isinstance(t := obj.get(key), int | float) and not isinstance(t, bool)]
    return (1 if obj.get("status") in _FINISHED else 0, int(max(times, default=0)))


class NewestWins:
    def prefer(self, held: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
        if self.genuine(held) != self.genuine(new):
            return self.genuine(new)  # the source's own object always beats one we made up
        return _progress(new) >= _progress(held)  # a tie: the one read last, as before

    def genuine(self, obj: Mapping[str, Any]) -> bool:
        return SYNTHESIZED not in obj


def synthesized_thread(
    thread_id: str, messages: Sequence[Mapping[str, Any]], runs: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """A thread object for messages saved without theirs: as old as its oldest object, no metadata."""
    times = [t for o in (*messages, *runs) if isinstance(t := o.get("created_at"), int) and t > 0]
    return {
        "id": thread_id,
        "object": "thread",
        "created_at": min(times, default=0),
        "metadata": {},
        "tool_resources": None,
        SYNTHESIZED: "the dump held this thread's messages but not its thread object",
    }
