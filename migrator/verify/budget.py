"""Context windows of target models: a small built-in table, keyed by model-name prefix.

Only a handful of families matter for a move off the Assistants API. A name that matches no
prefix (an Azure deployment name, a self-hosted model) is reported as unchecked, never guessed:
pass `--context-window N` for those.
"""

from __future__ import annotations

from dataclasses import dataclass

from migrator.errors import UsageError

__all__ = ["CONTEXT_WINDOWS", "Budget", "context_window_for"]

# Input tokens a chat-completions request may carry. The longest matching prefix wins, so
# "gpt-4o-mini" finds "gpt-4o" and "gpt-4-turbo" beats "gpt-4".
CONTEXT_WINDOWS: dict[str, int] = {
    "gpt-5": 400_000,
    "gpt-4.1": 1_047_576,
    "gpt-4.5": 128_000,
    "gpt-4o": 128_000,
    "chatgpt-4o": 128_000,
    "gpt-4-turbo": 128_000,
    "gpt-4-1106": 128_000,
    "gpt-4-0125": 128_000,
    "gpt-4-32k": 32_768,
    "gpt-4": 8_192,
    "gpt-3.5-turbo": 16_385,
    "o1-mini": 128_000,
    "o1": 200_000,
    "o3": 200_000,
    "o4-mini": 200_000,
}


def context_window_for(model: str | None) -> int | None:
    """The context window of a model by longest prefix, or None when the table does not know it."""
    if not model:
        return None
    name = model.lower()
    best = max((prefix for prefix in CONTEXT_WINDOWS if name.startswith(prefix)), key=len, default=None)
    return CONTEXT_WINDOWS[best] if best else None


@dataclass(frozen=True)
class Budget:
    """What sessions are measured against: a fixed window, or each session's own model."""

    context_window: int | None = None  # fixed, from --context-window or --model
    model: str | None = None  # the target model named with --model

    @classmethod
    def resolve(cls, context_window: int | None = None, model: str | None = None) -> Budget:
        if context_window is not None and model is not None:
            raise UsageError("give --context-window or --model, not both")
        if context_window is not None:
            if context_window < 1:
                raise UsageError(
                    f"--context-window must be a positive number of tokens, not {context_window}"
                )
            return cls(context_window=context_window)
        if model is not None:
            window = context_window_for(model)
            if window is None:
                known = ", ".join(sorted(CONTEXT_WINDOWS))
                raise UsageError(
                    f"no built-in context window for model {model!r}",
                    hint=f"pass --context-window N instead; known prefixes: {known}",
                )
            return cls(context_window=window, model=model)
        return cls()

    def window_for(self, session_model: str | None) -> int | None:
        return self.context_window if self.context_window is not None else context_window_for(session_model)

    def describe(self) -> str:
        if self.model:
            return f"{self.model} ({self.context_window:,} tokens)"
        if self.context_window is not None:
            return f"{self.context_window:,} tokens (--context-window)"
        return "each session's own model"
