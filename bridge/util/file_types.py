"""What a file's first bytes say it is, for the pictures the product shows as such: a type a
sender declares is never trusted to show a file (an HTML page declared as an image would run)."""

from __future__ import annotations

import struct

PICTURES = {
    b"\xff\xd8\xff": "image/jpeg",
    b"\x89PNG\r\n\x1a\n": "image/png",
    b"GIF87a": "image/gif",
    b"GIF89a": "image/gif",
}
# JPEG markers that start a frame and carry its size (SOF0..SOF15 but DHT, JPG and DAC)
_JPEG_FRAMES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def picture_type(content: bytes) -> str | None:
    """The picture type of `content` (JPEG, PNG, GIF), or None for anything else."""
    return next((kind for magic, kind in PICTURES.items() if content.startswith(magic)), None)


def picture_size(content: bytes) -> tuple[int, int] | None:
    """(width, height) of a JPEG, PNG or GIF from its header; None when it is none of them or
    the header is cut short (networks refuse a photo by its sides, so they are read here)."""
    kind = picture_type(content)
    try:
        if kind == "image/png":
            width, height = struct.unpack(">II", content[16:24])
            return width, height
        if kind == "image/gif":
            width, height = struct.unpack("<HH", content[6:10])
            return width, height
        if kind == "image/jpeg":
            return _jpeg_size(content)
    except struct.error:
        return None
    return None


def _jpeg_size(content: bytes) -> tuple[int, int] | None:
    at = 2
    while at + 4 <= len(content):
        if content[at] != 0xFF:
            return None
        marker = content[at + 1]
        if marker == 0xFF:  # fill bytes before a marker
            at += 1
            continue
        (length,) = struct.unpack(">H", content[at + 2 : at + 4])
        if marker in _JPEG_FRAMES:
            height, width = struct.unpack(">HH", content[at + 5 : at + 9])
            return width, height
        at += 2 + length
    return None
