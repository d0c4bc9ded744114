"""One log row -> the fields it holds, checked. Pure functions: no I/O, no clock.

A row that cannot be used (an unknown role, a time that does not parse, bad JSON where JSON is
required, no thread id) gives a `Rejected` naming why; the caller lists it with its row number.
"""

from __future__ import annotations

import base64
import functools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any, NamedTuple

import orjson

from migrator.records.fields import Columns

__all__ = ["Fields", "Rejected", "ROLES", "parse_row", "parse_time", "jsonable", "raw_row"]

ROLES = ("user", "assistant", "system", "tool")
_ALIASES = {"developer": "system"}  # the newer name of the system role
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
# Epoch numbers: seconds below 1e11 (the year 5138), then milliseconds, then microseconds.
_SCALES = ((1e11, 1.0), (1e14, 1e3), (1e17, 1e6))


class Fields(NamedTuple):
    """What one row says, checked and normalized (the raw row is kept beside it, verbatim).

    A tuple, not a dataclass: one is made per row twice over (read, and read back from the spill),
    and a tuple is made in one step where a frozen dataclass sets each field by hand."""

    thread_id: str
    at: float  # epoch seconds, at the precision the row gave
    role: str  # user | assistant | system | tool
    content: str | list[dict[str, Any]]  # text, or content parts in the Assistants form
    message_id: str | None = None
    assistant_id: str | None = None
    run_id: str | None = None
    model: str | None = None
    tool_calls: list[dict[str, Any]] | None = None  # in the Assistants (run step) form
    tool_call_id: str | None = None
    name: str | None = None
    metadata: dict[str, Any] | None = None
    thread_metadata: dict[str, str] | None = None  # the columns no field uses

    def as_list(self) -> list[Any]:
        return list(self)

    @classmethod
    def from_list(cls, values: list[Any]) -> Fields:
        return cls._make(values)


@dataclass(frozen=True, slots=True)
class Rejected:
    thread_id: str | None
    reason: str


_PLAIN = (str, int, type(None))  # JSON as they are (bool is not int's type, float may be NaN)


def jsonable(value: Any) -> Any:
    """A database value as JSON can hold it, saying the same thing (for the verbatim raw row)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Decimal):
        return str(value)  # exactly as the database holds it: 12.50 stays 12.50
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return "base64:" + base64.b64encode(data).decode()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return str(value)  # UUID, IP address, interval... as the driver prints it


def raw_row(names: Sequence[str], values: Sequence[Any]) -> dict[str, Any]:
    """The row verbatim: every column by name in the source's order (a repeated name gets `#2`)."""
    row = {
        name: value if type(value) in _PLAIN else jsonable(value)
        for name, value in zip(names, values, strict=False)
    }
    if len(row) == len(names) or len(row) == len(values):
        return row
    row = {}
    for name, value in zip(names, values, strict=False):
        key, n = name, 2
        while key in row:
            key, n = f"{name}#{n}", n + 1
        row[key] = jsonable(value)
    return row


@functools.lru_cache(maxsize=256)
def _iso_time(text: str) -> float | None:
    """An ISO 8601 text as epoch seconds, or None. Cached: a log in time order repeats its times
    (several rows a second; six rows in seven of the bench's log), and parsing one costs a sixth
    of checking its row."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def parse_time(value: Any) -> float | None:
    """Epoch seconds (or milliseconds, or microseconds) or ISO 8601 with or without a zone (no zone
    is UTC), as epoch seconds; None when it is none of these."""
    if type(value) is str:  # the common case first: an ISO time from a file or a text column
        at = _iso_time(value)
        if at is not None:
            return at
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.timestamp()
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC).timestamp()
    if isinstance(value, Decimal):
        value = float(value)
    if isinstance(value, str):
        text = value.strip()
        if _NUMBER.match(text):
            value = float(text)
        else:
            try:
                return parse_time(datetime.fromisoformat(text)) if text else None
            except ValueError:
                return None
    if isinstance(value, int | float):
        if not math.isfinite(value) or value < 0:
            return None
        for limit, scale in _SCALES:
            if value < limit:
                return value / scale
    return None


def _text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return value if type(value) is str else str(jsonable(value))


def _metadata_value(value: Any) -> str | None:
    """Thread metadata is strings, as the Assistants API keeps it (so a CSV and a database agree)."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    value = jsonable(value)
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def _json(value: Any, field: str) -> tuple[Any, str | None]:
    """A JSON field's value: a string is parsed, a database's JSON column arrives parsed already."""
    if value is None or value == "":
        return None, None
    if isinstance(value, bytes | bytearray | memoryview):
        value = bytes(value).decode("utf-8", "replace")
    if isinstance(value, str):
        try:
            return orjson.loads(value), None
        except orjson.JSONDecodeError as exc:
            return None, f"{field} is not JSON ({exc})"
    return jsonable(value), None


def _part(part: dict[str, Any]) -> dict[str, Any]:
    """A content part in the Assistants form; chat-completions and Responses text parts are rewritten."""
    kind = part.get("type")
    if kind in ("text", "input_text", "output_text") and isinstance(part.get("text"), str):
        return {"type": "text", "text": {"value": part["text"], "annotations": []}}
    if kind == "image_url" and isinstance(part.get("image_url"), str):
        return {"type": "image_url", "image_url": {"url": part["image_url"]}}
    return part


def _content(value: Any) -> tuple[str | list[dict[str, Any]], str | None]:
    if value is None:
        return "", None
    parts: Any = None
    if isinstance(value, str):
        if value.lstrip().startswith("["):
            try:
                parts = orjson.loads(value)
            except orjson.JSONDecodeError:
                return value, None  # text that happens to start with a bracket
            if not _are_parts(parts):
                return value, None
        else:
            return value, None
    elif isinstance(value, list | dict):
        parts = jsonable([value] if isinstance(value, dict) else value)
        if not _are_parts(parts):
            return "", "content is JSON but not a list of content parts (objects with a `type`)"
    else:
        return str(jsonable(value)), None
    return [_part(p) for p in parts], None


def _are_parts(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(p, dict) and isinstance(p.get("type"), str) for p in value)
    )


def _tool_calls(value: Any) -> tuple[list[dict[str, Any]] | None, str | None]:
    calls, problem = _json(value, "tool_calls")
    if problem or calls is None:
        return None, problem
    if isinstance(calls, dict):
        calls = [calls]
    if not isinstance(calls, list):
        return None, "tool_calls is not a JSON array of calls"
    out = []
    for i, call in enumerate(calls):
        if not isinstance(call, dict):
            return None, f"tool_calls[{i}] is not an object"
        kind = call.get("type") or ("function" if "function" in call else None)
        call_id = call.get("id") if isinstance(call.get("id"), str) and call.get("id") else None
        if kind == "function":
            function = call.get("function")
            if not isinstance(function, dict) or not isinstance(function.get("name"), str):
                return None, f"tool_calls[{i}] is a function call without a function name"
            arguments = function.get("arguments")
            if not isinstance(arguments, str):
                arguments = "" if arguments is None else orjson.dumps(arguments).decode()
            output = function.get("output")
            out.append(
                {
                    "id": call_id,
                    "type": "function",
                    "function": {
                        "name": function["name"],
                        "arguments": arguments,
                        "output": output
                        if output is None or isinstance(output, str)
                        else orjson.dumps(output).decode(),
                    },
                }
            )
        elif isinstance(kind, str):
            out.append({**call, "id": call_id})  # an Assistants hosted call (code_interpreter...), as given
        else:
            return None, f"tool_calls[{i}] has no `type`"
    return out, None


def parse_row(row: dict[str, Any], columns: Columns) -> Fields | Rejected:
    """The fields of one row (its columns by name, as `raw_row` gives them), or why it cannot be used."""
    get = row.get
    (c_thread, c_role, c_content, c_time, c_message, c_assistant, c_run, c_model, c_calls, c_call, c_name,
     c_meta) = columns.lookup  # fmt: skip
    thread_id = _text(get(c_thread))
    if thread_id is None:
        return Rejected(None, "no thread_id")
    raw_role = get(c_role)
    role = raw_role.strip().lower() if isinstance(raw_role, str) else None
    role = _ALIASES.get(role, role) if role else None
    if role not in ROLES:
        return Rejected(thread_id, f"unknown role {raw_role!r} (expected one of {', '.join(ROLES)})")
    raw_time = get(c_time)
    at = parse_time(raw_time)
    if at is None:
        return Rejected(
            thread_id,
            f"created_at {raw_time!r} is not epoch seconds or milliseconds, nor an ISO 8601 time",
        )
    content = get(c_content)
    if type(content) is not str or content[:1] == "[" or content.lstrip()[:1] == "[":
        content, problem = _content(content)
        if problem:
            return Rejected(thread_id, problem)
    tool_calls = get(c_calls)
    if tool_calls is not None and tool_calls != "":
        tool_calls, problem = _tool_calls(tool_calls)
        if problem:
            return Rejected(thread_id, problem)
    metadata = get(c_meta)
    if metadata is not None and metadata != "":
        metadata, problem = _json(metadata, "metadata")
        if problem:
            return Rejected(thread_id, problem)
        if metadata is not None and not isinstance(metadata, dict):
            return Rejected(thread_id, "metadata is not a JSON object")
    used = columns.used
    extra = {}
    for name, value in row.items():
        if name in used or value is None or value == "":
            continue
        kind = type(value)
        extra[name] = value if kind is str else str(value) if kind is int else _metadata_value(value)
    # Most optional fields are absent from most rows: `_text` is called only for a value.
    return Fields(
        thread_id,
        at,
        role,
        content,
        None if (v := get(c_message)) is None else _text(v),
        None if (v := get(c_assistant)) is None else _text(v),
        None if (v := get(c_run)) is None else _text(v),
        None if (v := get(c_model)) is None else _text(v),
        tool_calls or None,
        None if (v := get(c_call)) is None else _text(v),
        None if (v := get(c_name)) is None else _text(v),
        metadata or None,
        extra or None,
    )
