"""Message content: Assistants content parts -> chat-completions content, citations, file references.

Everything here is per message and allocation-light: the common case (one text part, no citation
marker, no annotation) returns the source string itself.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from migrator.convert.bundle import FileInfo
from migrator.convert.codes import Notes
from migrator.convert.options import ConversionOptions
from migrator.convert.raw import as_dict, as_list, as_str, dicts, oid

__all__ = ["ContentContext", "convert_content", "file_label"]

# A citation marker as the Assistants API writes them: 【4:0†source】 (also 【4†source】).
_MARKER = re.compile(r"【[^【】]*†([^【】]*)】")
_MARKER_OPEN = "【"
# What chat completions accepts in an image_url data: URL.
_IMAGE_MIMES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
_DETAILS = ("auto", "low", "high")
_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


@dataclass
class ContentContext:
    """The per-conversion state content conversion reads and fills."""

    options: ConversionOptions
    files: Mapping[str, FileInfo]
    notes: Notes
    file_refs: set[str] = field(default_factory=set)
    # file id -> name seen in file_search results, for files the archive does not know by name.
    result_names: dict[str, str] = field(default_factory=dict)


def file_label(file_id: str, ctx: ContentContext) -> str:
    info = ctx.files.get(file_id)
    name = (info.filename if info else None) or ctx.result_names.get(file_id)
    return f"{name} ({file_id})" if name else file_id


def convert_content(message: dict[str, Any], role: str, ctx: ContentContext) -> dict[str, Any]:
    """The chat-completions message for one Assistants message (role user or assistant)."""
    msg_id = oid(message) or "?"
    texts_only = True
    parts: list[dict[str, Any]] = []
    refusals: list[str] = []
    for part in as_list(message.get("content")):
        kind = part.get("type") if isinstance(part, dict) else f"non-object {type(part).__name__}"
        if kind == "text":
            parts.append({"type": "text", "text": _render_text(_text_object(part.get("text")), ctx)})
        elif kind == "image_file":
            image = as_dict(part.get("image_file"))
            converted = _image_file(msg_id, as_str(image.get("file_id")), image.get("detail"), role, ctx)
            texts_only = texts_only and converted["type"] == "text"
            parts.append(converted)
        elif kind == "image_url":
            converted = _image_url(msg_id, as_dict(part.get("image_url")), role, ctx)
            texts_only = texts_only and converted["type"] == "text"
            parts.append(converted)
        elif kind == "refusal":
            if role == "assistant":
                refusals.append(as_str(part.get("refusal")))
            else:
                parts.append({"type": "text", "text": as_str(part.get("refusal"))})
        else:
            ctx.notes.add("unknown_content", f"{msg_id}: content part of type {as_str(kind) or kind!r}")
            parts.append({"type": "text", "text": f"[unsupported content part: {kind}]"})
    for attachment in dicts(message.get("attachments")):
        parts.append({"type": "text", "text": _attachment_note(attachment, ctx)})

    out: dict[str, Any] = {"role": role}
    if refusals and not parts:
        # Chat completions: "one or more text parts, or exactly one refusal part".
        out["content"] = [{"type": "refusal", "refusal": "\n".join(refusals)}]
        return out
    if texts_only and len(parts) <= 1:
        out["content"] = parts[0]["text"] if parts else ""
    else:
        out["content"] = parts
    if refusals:
        out["refusal"] = "\n".join(refusals)
    return out


def _attachment_note(attachment: dict[str, Any], ctx: ContentContext) -> str:
    # The target model cannot see Assistants attachments; say one was there, and where it lives.
    file_id = as_str(attachment.get("file_id")) or "?"
    ctx.file_refs.add(file_id)
    tools = sorted({as_str(t.get("type")) or "?" for t in dicts(attachment.get("tools"))})
    suffix = f", for {' and '.join(tools)}" if tools else ""
    return f"[attached file: {file_label(file_id, ctx)}{suffix}]"


def _image_file(
    msg_id: str, file_id: str, detail: str | None, role: str, ctx: ContentContext
) -> dict[str, Any]:
    ctx.file_refs.add(file_id)
    label = file_label(file_id, ctx)
    if role != "user":
        ctx.notes.add("assistant_image_as_text", f"{msg_id}: {file_id}")
        return {"type": "text", "text": f"[image: {label}]"}
    info = ctx.files.get(file_id)
    reason = "its bytes are not in the archive"
    if info is not None and info.data is not None:
        mime = info.mime or _sniff(info.data)
        if mime in _IMAGE_MIMES:
            url = f"data:{mime};base64,{base64.b64encode(info.data).decode()}"
            image: dict[str, Any] = {"url": url}
            if detail in _DETAILS:
                image["detail"] = detail
            return {"type": "image_url", "image_url": image}
        reason = f"{mime or 'unknown type'} is not an image type chat completions accepts"
    ctx.notes.add("image_not_inlined", f"{msg_id}: {file_id}: {reason}")
    return {"type": "text", "text": f"[image {label} not inlined: {reason}]"}


def _image_url(msg_id: str, image: Mapping[str, Any], role: str, ctx: ContentContext) -> dict[str, Any]:
    url = as_str(image.get("url"))
    if role != "user":
        # Assistant messages carry text (or one refusal) only; keep the URL readable.
        ctx.notes.add("assistant_image_as_text", f"{msg_id}: {url[:100]}")
        return {"type": "text", "text": f"[image: {url}]"}
    out: dict[str, Any] = {"url": url}
    if image.get("detail") in _DETAILS:
        out["detail"] = image["detail"]
    return {"type": "image_url", "image_url": out}


def _sniff(data: bytes) -> str | None:
    for magic, mime in _SIGNATURES:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _text_object(text: Any) -> Mapping[str, Any]:
    """A text part's `text` read liberally: OpenAI's `{value, annotations}`, or a look-alike's bare
    string or list of `{value}` pieces (joined in order, their annotations kept)."""
    if isinstance(text, str):
        return {"value": text}
    if isinstance(text, list):
        pieces = [p if isinstance(p, dict) else {"value": p} for p in text]
        value = "".join(v if isinstance(v := p.get("value"), str) else "" for p in pieces)
        return {"value": value, "annotations": [a for p in pieces for a in as_list(p.get("annotations"))]}
    return as_dict(text)


def _render_text(text: Mapping[str, Any], ctx: ContentContext) -> str:
    value = as_str(text.get("value"))
    listed = text.get("annotations")
    annotations = [a for a in listed if isinstance(a, dict)] if isinstance(listed, list) and listed else []
    mode = ctx.options.citations
    for annotation in annotations:
        for key in ("file_citation", "file_path"):
            file_id = as_str(as_dict(annotation.get(key)).get("file_id"))
            if file_id:
                ctx.file_refs.add(file_id)
    if mode == "keep" or (_MARKER_OPEN not in value and not annotations):
        return value
    return _rewrite_citations(value, annotations, mode == "footnote", ctx)


def _rewrite_citations(
    value: str, annotations: list[dict[str, Any]], footnote: bool, ctx: ContentContext
) -> str:
    """Strip citation markers, or number them [n] with a footnote list naming each file."""
    spans: list[tuple[int, int, str, str]] = []  # start, end, footnote key, footnote label
    path_notes: list[str] = []
    taken: set[int] = set()
    for annotation in annotations:
        marker = as_str(annotation.get("text"))
        if annotation.get("type") == "file_path":
            # A sandbox path inside a markdown link: the text stays; the footnote maps it to the file.
            file_id = as_str(as_dict(annotation.get("file_path")).get("file_id")) or "?"
            if footnote and marker:
                path_notes.append(f"{marker} → {file_label(file_id, ctx)}")
            continue
        if annotation.get("type") != "file_citation" or not marker:
            continue
        start = _locate(value, marker, annotation.get("start_index"), taken)
        if start is None or _overlaps(start, start + len(marker), spans):
            continue  # overlapping annotations: the one listed first wins
        taken.add(start)
        file_id = as_str(as_dict(annotation.get("file_citation")).get("file_id")) or "?"
        spans.append((start, start + len(marker), file_id, file_label(file_id, ctx)))
    if _MARKER_OPEN in value:
        # Markers the source left without an annotation still go; their footnote names the source.
        for match in _MARKER.finditer(value):
            if not _overlaps(match.start(), match.end(), spans):
                label = match.group(1) or match.group(0)
                spans.append((match.start(), match.end(), "marker:" + label, label))
    spans.sort()

    pieces: list[str] = []
    numbers: dict[str, int] = {}
    lines: list[str] = []
    cursor = 0
    for start, end, key, label in spans:
        pieces.append(value[cursor:start])
        cursor = end
        if footnote:
            if key not in numbers:
                numbers[key] = len(numbers) + 1
                lines.append(f"[{numbers[key]}] {label}")
            pieces.append(f"[{numbers[key]}]")
    pieces.append(value[cursor:])
    out = "".join(pieces)
    lines.extend(path_notes)
    return f"{out}\n\n" + "\n".join(lines) if lines else out


def _overlaps(start: int, end: int, spans: list[tuple[int, int, str, str]]) -> bool:
    return any(start < other_end and other_start < end for other_start, other_end, _, _ in spans)


def _locate(value: str, marker: str, start: Any, taken: set[int]) -> int | None:
    """Where `marker` sits: at its start_index when that matches, else its first untaken occurrence."""
    if isinstance(start, int) and value.startswith(marker, start) and start not in taken:
        return start
    found = value.find(marker)
    while found != -1 and found in taken:
        found = value.find(marker, found + 1)
    return found if found != -1 else None
