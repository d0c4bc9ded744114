"""What replay sends: one chat-completions request per chosen assistant turn of a session.

A *turn* is an assistant message of the session (text and/or `tool_calls`). Its *prefix* is every
message before it, and the request is the prefix sent the way the session says it is sent:

    {"model": M, "messages": prefix, "tools": tools (left out when empty), **params}

The canonical JSON of that body (sorted keys, compact, UTF-8) is hashed with sha256; the 64 hex
digits are the request's identity: the ledger key in the archive and the `custom_id` of batch
files, so a live replay and a batch run of the same archive land on the same ledger rows.
With `api="responses"` the body is the Responses API's (`replay/responses.py`), hashed the same
way: the two APIs' requests of one turn are different ledger rows.
Everything here is pure: no I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from migrator.replay.responses import RESPONSES_URL, StoreBinding, responses_body

__all__ = [
    "URLS",
    "Api",
    "BuildProblem",
    "ReplayRequest",
    "Turns",
    "assistant_turns",
    "request_body",
    "request_hash",
    "requests_for_record",
    "requests_for_session",
]

Turns = Literal["last", "all"]
Api = Literal["chat", "responses"]
URLS = {"chat": "/v1/chat/completions", "responses": RESPONSES_URL}


@dataclass(frozen=True)
class ReplayRequest:
    thread_id: str
    turn: int  # index in the session's messages of the assistant message being replayed
    model: str
    body: bytes  # the canonical JSON of the request body: exactly what is hashed and written
    request_hash: str  # sha256 hex of `body`: the ledger key and the batch `custom_id`
    expected: dict[str, Any]  # the original assistant message
    api: Api = "chat"

    @property
    def url(self) -> str:
        """Where it goes, as the Batch API names it (`/v1/chat/completions`, `/v1/responses`)."""
        return URLS[self.api]

    def body_dict(self) -> dict[str, Any]:
        return orjson.loads(self.body)


@dataclass(frozen=True)
class BuildProblem:
    """A session no request could be built from (named so the user can look at it)."""

    thread_id: str
    code: str  # record_unreadable | record_shape | no_model
    detail: str


def request_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def assistant_turns(messages: list[Any], turns: Turns) -> list[int]:
    """Indexes of the assistant messages to replay: every one, or only the last (`last`).

    A turn needs something before it to answer, so an assistant message at index 0 is skipped.
    """
    found = [
        i for i, m in enumerate(messages) if i > 0 and isinstance(m, dict) and m.get("role") == "assistant"
    ]
    return found[-1:] if turns == "last" else found


def request_body(record: dict[str, Any], turn: int, model: str) -> dict[str, Any]:
    """The chat-completions body replaying `turn`: the prefix with the session's tools and params."""
    body: dict[str, Any] = {"model": model, "messages": record["messages"][:turn]}
    tools = record.get("tools")
    if tools:
        body["tools"] = tools
    params = record.get("params") or {}
    for key, value in params.items():
        if key not in ("model", "messages", "tools"):  # a session's params never override those
            body[key] = value
    return body


def requests_for_session(
    thread_id: str,
    record_json: bytes,
    *,
    turns: Turns,
    model: str | None,
    api: Api = "chat",
    binding: StoreBinding | None = None,
) -> tuple[list[ReplayRequest], BuildProblem | None]:
    """The requests of one stored session (`model` overrides the session's own)."""
    try:
        record = orjson.loads(record_json)
    except orjson.JSONDecodeError as exc:
        return [], BuildProblem(thread_id, "record_unreadable", f"the stored record is not JSON ({exc})")
    return requests_for_record(thread_id, record, turns=turns, model=model, api=api, binding=binding)


def requests_for_record(
    thread_id: str,
    record: Any,
    *,
    turns: Turns,
    model: str | None,
    api: Api = "chat",
    binding: StoreBinding | None = None,
) -> tuple[list[ReplayRequest], BuildProblem | None]:
    messages = record.get("messages") if isinstance(record, dict) else None
    if not isinstance(messages, list):
        return [], BuildProblem(thread_id, "record_shape", "the record has no list of messages")
    if not messages:
        return [], None  # an empty thread: nothing to replay, nothing wrong
    target = model or record.get("model")
    if not isinstance(target, str) or not target:
        return [], BuildProblem(thread_id, "no_model", "the session names no model; pass --model")
    out = []
    for turn in assistant_turns(messages, turns):
        built = (
            request_body(record, turn, target)
            if api == "chat"
            else responses_body(record, turn, target, binding)
        )
        body = orjson.dumps(built, option=orjson.OPT_SORT_KEYS)
        out.append(ReplayRequest(thread_id, turn, target, body, request_hash(body), messages[turn], api))
    return out, None


def iter_chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
