"""sendPhoto and sendDocument, as the Bot API takes a file uploaded with the call (multipart):
the limits of an upload through the public server (photos 10 MB, sides adding up to 10000 px, one
at most 20 times the other; other files 50 MB; captions of 1024 characters), the Message the
customer then sees, and the file kept where the customer's app downloads it. Facts and sources:
docs/networks.md 1.4."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bridge.util.file_types import picture_size
from emulators.telegram.answers import ApiError
from emulators.telegram.params import Params, arg_str
from emulators.telegram.state import Bot, StoredFile

MB = 1024 * 1024
MAX_PHOTO_BYTES = 10 * MB
MAX_UPLOAD_BYTES = 50 * MB
MAX_PHOTO_SIDES = 10_000
MAX_PHOTO_RATIO = 20
MAX_CAPTION_CHARS = 1024
# The server's words: PHOTO_INVALID_DIMENSIONS and IMAGE_PROCESS_FAILED as public integrations
# quote them; the one for a photo over 10 MB is unconfirmed.
BAD_SIDES = "Bad Request: PHOTO_INVALID_DIMENSIONS"
NOT_AN_IMAGE = "Bad Request: IMAGE_PROCESS_FAILED"
PHOTO_TOO_BIG = "Bad Request: photo is too big"
# A request larger than the server takes is refused by its HTTP layer.
TOO_LARGE = "Request Entity Too Large"
# The largest side of the sizes a photo is offered in (px).
PHOTO_SIDES = (90, 320, 800, 1280, 2560)


@dataclass(frozen=True, slots=True)
class Upload:
    name: str
    data: bytes
    mime_type: str


def upload_of(params: Params, name: str) -> Upload:
    """The file sent as the parameter `name`, uploaded with the call: as that part of the form,
    or in the part named by `attach://<part>` (what aiogram sends)."""
    value = params.get(name)
    if isinstance(value, str) and value.startswith("attach://"):
        value = params.get(value.removeprefix("attach://"))
    if isinstance(value, web.FileField):
        data = value.file.read()
        if len(data) > MAX_UPLOAD_BYTES:
            raise ApiError(413, TOO_LARGE)
        return Upload(value.filename or name, data, value.content_type)
    if not value:
        raise ApiError(400, f"Bad Request: there is no {name} in the request")
    # a file_id of a file the bot already sent, or a URL: not emulated (the product uploads)
    raise ApiError(400, "Bad Request: wrong remote file identifier specified")


def caption_of(params: Params) -> str:
    caption = arg_str(params, "caption")
    if len(caption) > MAX_CAPTION_CHARS:
        raise ApiError(400, "Bad Request: message caption is too long")
    return caption


def photo_sides(upload: Upload) -> tuple[int, int]:
    """The photo's (width, height); ApiError where the server refuses it as a photo."""
    if len(upload.data) > MAX_PHOTO_BYTES:
        raise ApiError(400, PHOTO_TOO_BIG)
    sides = picture_size(upload.data)
    if sides is None:
        raise ApiError(400, NOT_AN_IMAGE)
    width, height = sides
    if width + height > MAX_PHOTO_SIDES or max(sides) > MAX_PHOTO_RATIO * max(1, min(sides)):
        raise ApiError(400, BAD_SIDES)
    return width, height


def keep(bot: Bot, upload: Upload, folder: str, mime_type: str) -> StoredFile:
    """The uploaded file among the bot's, where getFile and the customer's app find it."""
    extension = upload.name.rpartition(".")[2].lower() if "." in upload.name else "bin"
    number = len(bot.files)
    digest = hashlib.sha256(f"{bot.id}:{number}:".encode() + upload.data).digest()
    stored = StoredFile(
        file_id=base64.urlsafe_b64encode(digest[:24]).decode().rstrip("="),
        # the same file has the same unique id (as on Telegram)
        file_unique_id=base64.urlsafe_b64encode(hashlib.sha256(upload.data).digest()[:9])
        .decode()
        .rstrip("="),
        file_path=f"{folder}/file_{number}.{'jpg' if folder == 'photos' else extension}",
        data=upload.data,
        mime_type=mime_type,
    )
    bot.files[stored.file_id] = stored
    return stored


def photo_sizes(stored: StoredFile, width: int, height: int) -> list[dict[str, Any]]:
    """The PhotoSize array of a photo, smallest first, up to its own size (each is the one file
    here: the customer's app shows the largest)."""
    sizes = []
    for side in PHOTO_SIDES:
        scale = min(1.0, side / max(width, height))
        sizes.append(
            {
                "file_id": stored.file_id,
                "file_unique_id": stored.file_unique_id,
                "width": max(1, round(width * scale)),
                "height": max(1, round(height * scale)),
                "file_size": len(stored.data),
            }
        )
        if scale == 1.0:
            break
    return sizes


def document_of(stored: StoredFile, upload: Upload) -> dict[str, Any]:
    return {
        "file_id": stored.file_id,
        "file_unique_id": stored.file_unique_id,
        "file_name": upload.name,
        "mime_type": upload.mime_type,
        "file_size": len(upload.data),
    }
