"""`Bits`: a set that may answer "maybe" for a key it was never given, never "no" for one it was (a
Bloom filter of one hash): a fixed 4 MiB however many keys, where a set of 340,000 ids would be tens
of megabytes. "maybe" costs a look in a table, which has the answer. Owns no table."""

from __future__ import annotations

__all__ = ["Bits"]


class Bits:
    _SIZE = 1 << 25  # bits

    def __init__(self, size: int = _SIZE) -> None:
        self.size = size
        self.bits = bytearray(size >> 3)  # written through: all of it is resident

    @classmethod
    def empty(cls) -> Bits:
        """One that holds nothing and takes nothing (for no keys to be given)."""
        return cls(8)

    def add(self, key: object) -> None:
        h = hash(key) & (self.size - 1)
        self.bits[h >> 3] |= 1 << (h & 7)

    def maybe(self, key: object) -> bool:
        h = hash(key) & (self.size - 1)
        return bool(self.bits[h >> 3] & (1 << (h & 7)))
