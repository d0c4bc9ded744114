"""Real file bytes: PNG and baseline JPEG images a decoder accepts, CSV reports.

Images are tiny but genuine (correct signatures, chunk CRCs, Huffman-coded scan), so a client that
sniffs MIME types from bytes, or inlines images as data: URLs, is exercised for real.
"""

from __future__ import annotations

import struct
import zlib


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A truecolour PNG with a diagonal gradient from `rgb`."""
    r0, g0, b0 = rgb
    rows = bytearray()
    for y in range(height):
        rows.append(0)  # filter type None
        for x in range(width):
            d = (x + y) * 4
            rows += bytes(((r0 + d) % 256, (g0 + d) % 256, (b0 + 2 * d) % 256))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(rows), 6))
        + chunk(b"IEND", b"")
    )


def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def jpeg(gray: int, comment: str = "") -> bytes:
    """A baseline JPEG of one 8x8 block of a single grey level.

    The block is flat, so the DCT has only a DC term (8 * (gray - 128) with an all-ones quantisation
    table) and every AC coefficient is zero: the scan is one DC category plus an end-of-block code,
    each from a one-symbol Huffman table.
    """
    dc = 8 * (max(0, min(255, gray)) - 128)
    category = abs(dc).bit_length()
    bits = "0"  # the single DC Huffman code
    if category:
        value = dc if dc > 0 else dc + (1 << category) - 1
        bits += format(value, f"0{category}b")
    bits += "0"  # end of block, the single AC Huffman code
    bits += "1" * (-len(bits) % 8)
    scan = bytearray()
    for i in range(0, len(bits), 8):
        byte = int(bits[i : i + 8], 2)
        scan.append(byte)
        if byte == 0xFF:
            scan.append(0)  # byte stuffing
    huff_counts = bytes([1] + [0] * 15)
    return b"".join(
        [
            b"\xff\xd8",
            _segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"),
            _segment(0xFE, comment.encode()) if comment else b"",
            _segment(0xDB, b"\x00" + bytes([1] * 64)),
            _segment(0xC0, struct.pack(">BHHB", 8, 8, 8, 1) + b"\x01\x11\x00"),
            _segment(0xC4, b"\x00" + huff_counts + bytes([category])),
            _segment(0xC4, b"\x10" + huff_counts + b"\x00"),
            _segment(0xDA, b"\x01\x01\x00\x00\x3f\x00"),
            bytes(scan),
            b"\xff\xd9",
        ]
    )


def csv_report(rows: list[tuple[str, int, float]]) -> bytes:
    lines = ["region,orders,refund_rate"]
    lines += [f"{name},{orders},{rate:.3f}" for name, orders, rate in rows]
    return ("\n".join(lines) + "\n").encode()
