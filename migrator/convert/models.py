"""What the converter needs to know about model names: tokenizer family and reasoning models."""

from __future__ import annotations

__all__ = ["encoding_name", "is_reasoning_model"]

# Longest prefix first matters only where prefixes nest (gpt-4o / gpt-4): checked in this order.
_O200K_PREFIXES = ("gpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "chatgpt-4o", "gpt-oss", "o1", "o3", "o4")
_CL100K_PREFIXES = ("gpt-4", "gpt-3.5", "gpt-35")
_REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5")


def _base(model: str | None) -> str:
    # Azure and fine-tunes decorate names: "ft:gpt-4o-mini:org::id", "openai/gpt-4.1".
    name = (model or "").lower().removeprefix("ft:")
    return name.rsplit("/", 1)[-1]


def encoding_name(model: str | None) -> str:
    """The tiktoken encoding of a model; o200k_base (every current family) when unknown."""
    name = _base(model)
    if name.startswith(_O200K_PREFIXES):
        return "o200k_base"
    if name.startswith(_CL100K_PREFIXES):
        return "cl100k_base"
    return "o200k_base"


def is_reasoning_model(model: str | None) -> bool:
    """o-series and gpt-5 reasoning models accept only the default temperature and top_p."""
    name = _base(model)
    return name.startswith(_REASONING_PREFIXES) and "-chat" not in name
