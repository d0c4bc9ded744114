"""The canonical JSON form and the tagged digest that make verification possible.

Canonical form (part of the archive contract): orjson with sorted keys, compact separators,
UTF-8. A digest is tagged with its algorithm, `sha256:<hex>`, so a later change of algorithm
can live beside old archives.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

__all__ = ["canonical_json", "digest", "object_hash", "sha256_hex", "dumps"]


def canonical_json(obj: Any) -> bytes:
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def object_hash(obj: Any) -> str:
    """Digest of an object's canonical form: equal for equal content, whatever the key order."""
    return digest(canonical_json(obj))


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def dumps(obj: Any) -> str:
    """The verbatim text we store for a raw object (source key order preserved)."""
    return orjson.dumps(obj).decode()
