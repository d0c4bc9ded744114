"""Which column of the log holds which field: defaults, `--map FIELD=COLUMN`, and the check of both
against the columns the source returned (before anything is read or written)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from migrator.errors import UsageError

__all__ = ["REQUIRED", "OPTIONAL", "FIELDS", "Columns", "parse_maps", "resolve_columns"]

REQUIRED = ("thread_id", "role", "content", "created_at")
OPTIONAL = (
    "message_id",
    "assistant_id",
    "run_id",
    "model",
    "tool_calls",
    "tool_call_id",
    "name",
    "metadata",
)
FIELDS = REQUIRED + OPTIONAL


@dataclass(frozen=True)
class Columns:
    """Which column holds each field; every other column of a row becomes thread metadata."""

    names: tuple[str, ...]  # the columns the source returned, in its order
    index: dict[str, str]  # field -> column (required fields always, optional ones when present)
    used: frozenset[str]  # the columns some field reads
    # The column of each field in FIELDS order; a field without one gets a name no row has.
    lookup: tuple[str, ...] = ()


def parse_maps(maps: Iterable[str]) -> dict[str, str]:
    """`--map FIELD=COLUMN` values as {field: column}; a typo exits 2 naming the fields there are."""
    out: dict[str, str] = {}
    for item in maps:
        field, sep, column = item.partition("=")
        field, column = field.strip(), column.strip()
        if not sep or not field or not column:
            raise UsageError(f"--map {item!r}: write FIELD=COLUMN, e.g. --map thread_id=conversation_id")
        if field not in FIELDS:
            raise UsageError(f"--map {item!r}: {field!r} is not a field", hint=f"fields: {', '.join(FIELDS)}")
        if field in out and out[field] != column:
            raise UsageError(f"--map {field} is given twice ({out[field]!r} and {column!r})")
        out[field] = column
    return out


def resolve_columns(names: Sequence[str], maps: dict[str, str]) -> Columns:
    """Each field's column: the mapped one, else the column of the field's own name.

    A mapped column the source lacks, or a required field with no column, exits 2 naming it and
    listing the columns the source returned.
    """
    names = tuple(str(n) for n in names)
    returned = ", ".join(names) if names else "(none)"
    present = set(names)
    index: dict[str, str] = {}
    for field, column in maps.items():
        if column not in present:
            raise UsageError(
                f"column {column!r} (--map {field}={column}) is not in the source; it returned: {returned}"
            )
        index[field] = column
    mapped = set(maps.values())
    for field in FIELDS:
        if field in index:
            continue
        # A column mapped to another field is taken: `--map content=role` does not leave role there.
        # An optional field is read by its own name even when the first row lacks it (a JSONL log's
        # columns are its first object's keys; later rows may carry tool_calls).
        if field not in mapped and (field in present or field in OPTIONAL):
            index[field] = field
        elif field in REQUIRED:
            raise UsageError(
                f"no column for the required field {field!r}; the source returned: {returned}",
                hint=f"name the column with --map {field}=COLUMN",
            )
    lookup = tuple(index.get(field, "\x00") for field in FIELDS)
    return Columns(names, index, frozenset(index.values()), lookup)
