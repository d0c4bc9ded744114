"""The canonical JSON form and the tagged digest that make verification possible.

Canonical form (part of the archive contract): orjson with sorted keys, compact separators,
UTF-8. A digest is tagged with its algorithm, `sha256:<hex>`, so a later change of algorithm
can live beside old archives.

Servers send text orjson refuses: a lone surrogate escape (`"\\ud83d"`, half an emoji cut by a
byte limit) or bytes that are not UTF-8. Such a body is still read (`loads` falls back to the
standard library, bad bytes become lone surrogates), and written back with each lone surrogate as
its `\\uXXXX` escape (everything else exactly as orjson writes it), so the raw object keeps what the
source sent and the archive stays valid UTF-8. Only the derived session replaces them (U+FFFD).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import orjson

__all__ = ["canonical_json", "digest", "object_hash", "sha256_hex", "dumps", "loads", "JSONDecodeError"]

JSONDecodeError = orjson.JSONDecodeError


def canonical_json(obj: Any) -> bytes:
    try:
        return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return _lenient(obj, sort_keys=True)


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def object_hash(obj: Any) -> str:
    """Digest of an object's canonical form: equal for equal content, whatever the key order."""
    return digest(canonical_json(obj))


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def dumps(obj: Any) -> str:
    """The verbatim text we store for a raw object (source key order preserved)."""
    try:
        return orjson.dumps(obj).decode()
    except TypeError:
        return _lenient(obj, sort_keys=False).decode()


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    """orjson.loads, but a body whose only fault is its text encoding is read, not refused.

    Raises JSONDecodeError (orjson's) for anything that is not JSON.
    """
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        if "surrogate" not in str(exc) and "UTF-8" not in str(exc):
            raise
        return _loads_lenient(data, exc)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _loads_lenient(data: bytes | bytearray | memoryview | str, error: orjson.JSONDecodeError) -> Any:
    if not isinstance(data, str):
        raw = bytes(data)
        try:
            data = raw.decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            data = raw.decode("utf-8", "surrogateescape")  # each bad byte becomes a lone surrogate
    try:
        return json.loads(data, parse_constant=_refuse_constant)
    except ValueError:
        raise error from None


def _lenient(obj: Any, *, sort_keys: bool) -> bytes:
    """orjson's output for `obj`, except that lone surrogates are written as `\\uXXXX` escapes."""
    out: list[bytes] = []
    _encode(obj, sort_keys, out)
    return b"".join(out)


def _encode(obj: Any, sort_keys: bool, out: list[bytes]) -> None:
    if isinstance(obj, str):
        out.append(_string(obj))
    elif isinstance(obj, dict):
        out.append(b"{")
        items = sorted(obj.items()) if sort_keys else obj.items()
        for i, (key, value) in enumerate(items):
            if i:
                out.append(b",")
            out.append(_string(key) if isinstance(key, str) else orjson.dumps(str(key)))
            out.append(b":")
            _encode(value, sort_keys, out)
        out.append(b"}")
    elif isinstance(obj, int) and not isinstance(obj, bool):
        out.append(str(obj).encode())  # also past 64 bits, which the standard library reads
    elif isinstance(obj, list | tuple):
        out.append(b"[")
        for i, value in enumerate(obj):
            if i:
                out.append(b",")
            _encode(value, sort_keys, out)
        out.append(b"]")
    else:
        out.append(orjson.dumps(obj))


def _string(text: str) -> bytes:
    try:
        return orjson.dumps(text)
    except TypeError:
        pass
    parts: list[bytes] = [b'"']
    start = 0
    for i, char in enumerate(text):
        if "\ud800" <= char <= "\udfff":
            if start < i:
                parts.append(orjson.dumps(text[start:i])[1:-1])
            parts.append(b"\\u%04x" % ord(char))
            start = i + 1
    if start < len(text):
        parts.append(orjson.dumps(text[start:])[1:-1])
    parts.append(b'"')
    return b"".join(parts)
