"""Deterministic object ids with OpenAI's prefixes, derived from (seed, kind, numbers) by hashing.

Ids are never sortable by creation order (neither are OpenAI's), so nothing in the sandbox may
compare ids to order objects: lists keep their own order and cursors are looked up by position.
"""

from __future__ import annotations

import hashlib

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def token(*parts: object, length: int = 24) -> str:
    """`length` base62 characters that depend on every part and nothing else."""
    digest = hashlib.blake2b(
        "\x1f".join(map(str, parts)).encode(), digest_size=min(64, max(24, length))
    ).digest()
    n = int.from_bytes(digest, "big")
    out = []
    for _ in range(length):
        n, r = divmod(n, 62)
        out.append(_ALPHABET[r])
    return "".join(out)


def make_id(prefix: str, seed: int, kind: str, *numbers: int, length: int = 24) -> str:
    return prefix + token(seed, kind, *numbers, length=length)


def unit(*parts: object) -> float:
    """A uniform number in [0, 1) from the parts: the seeded coin behind every per-object choice."""
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def thread_id(seed: int, index: int) -> str:
    return make_id("thread_", seed, "thread", index)


def thread_ids(n: int, seed: int) -> list[str]:
    """The ids of a corpus of `n` threads, in index order; no server and no thread generation needed."""
    if n < 0:
        raise ValueError("n must be >= 0")
    return [thread_id(seed, i) for i in range(n)]
