"""What a file's first bytes say it is, for the pictures the product shows as such: a type a
sender declares is never trusted to show a file (an HTML page declared as an image would run)."""

from __future__ import annotations

PICTURES = {
    b"\xff\xd8\xff": "image/jpeg",
    b"\x89PNG\r\n\x1a\n": "image/png",
    b"GIF87a": "image/gif",
    b"GIF89a": "image/gif",
}


def picture_type(content: bytes) -> str | None:
    """The picture type of `content` (JPEG, PNG, GIF), or None for anything else."""
    return next((kind for magic, kind in PICTURES.items() if content.startswith(magic)), None)
