"""MIME types from the bytes' signature (then the file name), never the source's header.

The API sends `application/octet-stream` for everything, so the header says nothing.
"""

from __future__ import annotations

import mimetypes

__all__ = ["sniff_mime"]

_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"%PDF-", "application/pdf"),
    (b"PK\x03\x04", "application/zip"),
    (b"\x1f\x8b", "application/gzip"),
)


def sniff_mime(data: bytes, filename: str | None = None) -> str:
    for magic, mime in _SIGNATURES:
        if data.startswith(magic):
            if mime == "application/zip" and filename:
                # docx/xlsx/pptx are zip containers; the name tells which.
                guessed = mimetypes.guess_type(filename)[0]
                return guessed or mime
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if filename:
        guessed = mimetypes.guess_type(filename)[0]
        if guessed:
            return guessed
    try:
        data[:4096].decode("utf-8")
    except UnicodeDecodeError:
        return "application/octet-stream"
    return "text/plain"
