"""The one redaction step: every text that comes from a server passes it before it is stored or printed.

Servers echo what they were sent: an error message that quotes the `Authorization` header, a body
that repeats the key. So every such text (failure rows, anomalies, replay ledger bodies, mapping
CSVs, verify's JSON and JUnit, error messages and stderr lines) goes through `redact()`, which removes

- every secret registered in this process, literally: each client registers its keys and tokens
  when it is built (`register_secret(key)`), a records source its database password, a Foundry
  source each token it is handed;
- and whatever looks like a credential: `Bearer …`, `sk-…`, `api-key: …` (and `api_key=…`).

The replacement keeps the text readable and a JSON text valid (`[redacted]` holds no quote or
backslash, and the patterns stop at the characters a token may hold).
"""

from __future__ import annotations

import re
import threading
from typing import Any

__all__ = ["REDACTED", "redact", "redact_bytes", "redact_json", "register_secret", "registered_secrets"]

REDACTED = "[redacted]"
# Shorter values are not redacted literally: a one-letter test key would blank every "k" of a message.
# A real key, token or password is longer; the patterns below catch credential-shaped text anyway.
MIN_SECRET_LENGTH = 4

_TOKEN = r"[A-Za-z0-9._~+/=-]+"  # RFC 6750 b64token: stops at a quote, a comma, a space, a brace
_PATTERNS = (
    (re.compile(rf"(?i)\b(bearer)(\s+){_TOKEN}"), rf"\1\2{REDACTED}"),
    (re.compile(r"(?i)\b(basic)(\s+)[A-Za-z0-9+/=]{8,}"), rf"\1\2{REDACTED}"),
    (re.compile(rf"(?i)\b(api[-_ ]?key)([\"']?\s*[:=]\s*[\"']?){_TOKEN}"), rf"\1\2{REDACTED}"),
    (re.compile(r"(?<![A-Za-z0-9_-])sk-[A-Za-z0-9_-]{6,}"), REDACTED),
)

_lock = threading.Lock()
_secrets: frozenset[str] = frozenset()
_literal: re.Pattern[str] | None = None


def register_secret(value: str | bytes | None) -> None:
    """Add a key, token or password to the process-wide set `redact()` removes (None and short
    values are ignored). Call it where the secret is first handed to a client."""
    global _secrets, _literal
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return
    value = value.strip()
    if len(value) < MIN_SECRET_LENGTH or value in _secrets:
        return
    with _lock:
        _secrets = _secrets | {value}
        # Longest first, so a secret that contains another is removed whole.
        ordered = sorted(_secrets, key=len, reverse=True)
        _literal = re.compile("|".join(re.escape(s) for s in ordered))


def registered_secrets() -> frozenset[str]:
    return _secrets


def redact(text: str | None) -> str | None:
    """The text with every registered secret and credential-shaped token replaced."""
    if not text:
        return text
    literal = _literal
    if literal is not None:
        text = literal.sub(REDACTED, text)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact_bytes(data: bytes) -> bytes:
    """`redact` for a document written as bytes (JUnit XML, a JSON report)."""
    text = data.decode("utf-8", "surrogateescape")
    cleaned = redact(text) or ""
    return data if cleaned == text else cleaned.encode("utf-8", "surrogateescape")


def redact_json(value: Any) -> Any:
    """Every string of a JSON-shaped value (keys too) redacted; other values as they are."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact_json(k): redact_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_json(v) for v in value]
    return value
