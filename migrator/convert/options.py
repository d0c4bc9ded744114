"""Conversion options: the `[CONVERSION]` flags of export and rebuild, recorded in the archive."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal, get_args

__all__ = ["Citations", "ConversionOptions", "HostedTools", "SystemRole"]

SystemRole = Literal["system", "developer"]
HostedTools = Literal["emulate", "drop", "text"]
Citations = Literal["keep", "strip", "footnote"]

_CHOICES: dict[str, tuple[str, ...]] = {
    "system_role": get_args(SystemRole),
    "hosted_tools": get_args(HostedTools),
    "citations": get_args(Citations),
}


@dataclass(frozen=True)
class ConversionOptions:
    """How a thread becomes a session. Defaults match the CLI: system, emulate, footnote."""

    system_role: SystemRole = "system"
    hosted_tools: HostedTools = "emulate"
    citations: Citations = "footnote"

    def __post_init__(self) -> None:
        # An archive records these; a bad value must fail here, not produce a silently odd session.
        for name, choices in _CHOICES.items():
            value = getattr(self, name)
            if value not in choices:
                flag = "--" + name.replace("_", "-")
                raise ValueError(f"{flag} must be one of {', '.join(choices)}, not {value!r}")

    def as_dict(self) -> dict[str, str]:
        return asdict(self)

    def with_flags(
        self,
        *,
        system_role: SystemRole | None = None,
        hosted_tools: HostedTools | None = None,
        citations: Citations | None = None,
    ) -> ConversionOptions:
        """These options with the flags that were given (None: not given, so kept as they are)."""
        given = {"system_role": system_role, "hosted_tools": hosted_tools, "citations": citations}
        return replace(self, **{name: value for name, value in given.items() if value is not None})

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ConversionOptions:
        """The inverse of as_dict. Unknown keys are refused: they mean a newer converter wrote them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown conversion option(s): {', '.join(unknown)}")
        return cls(**data)
