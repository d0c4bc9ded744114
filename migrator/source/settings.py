"""Where the source is and how it is asked: a leaf, so that a command can hold its settings (or a
build after an export can run) without importing the openai SDK the client is made of."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from migrator.source.entra import EntraTokens

__all__ = ["DEFAULT_MAX_BODY_MB", "SourceSettings"]

# The largest answer the source client takes (--max-body-mb): large enough for any real object, finite
# so that one runaway body costs its object (a failure row), never the machine's memory.
DEFAULT_MAX_BODY_MB = 256


@dataclass
class SourceSettings:
    base_url: str | None = None
    api_key: str | None = None
    azure_endpoint: str | None = None
    api_version: str | None = None
    # An Azure AI Foundry project endpoint (no /v1) and the Entra ID tokens it takes instead of a key.
    foundry_endpoint: str | None = None
    tokens: EntraTokens | None = None
    timeout: float = 60.0
    max_attempts: int = 6
    max_backoff: float = 30.0
    max_body_mb: float = DEFAULT_MAX_BODY_MB

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mb * 1024 * 1024)
