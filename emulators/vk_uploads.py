"""VK's file uploads for messages, as the VK emulator serves them (emulators.vk): an upload
address (photos.getMessagesUploadServer, docs.getMessagesUploadServer), the upload server that
takes the file (multipart: `photo` for a photo, `file` for a document), the save
(photos.saveMessagesPhoto, docs.save) that makes it an attachment, and the `attachment` of
messages.send that names it (`photo<owner>_<id>_<access_key>`, `doc<owner>_<id>`).

Limits as VK documents them (docs/networks.md 2.4): photos JPEG, PNG or GIF of 50 MB, sides
adding up to 14000 px, at most 1:20; documents of 200 MB, not MP3 nor executables. Unconfirmed and
chosen here: the upload server's refusal is HTTP 200 with `{"error": "<reason>"}`; which
extensions count as executable; the owner of a community's upload is the community (-group_id);
a document's access key is left out; error 100 for an attachment that names no saved file.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bridge.util.file_types import picture_size, picture_type
from emulators.files import FileHost

JSON = dict[str, Any]
MB = 1024 * 1024
MAX_PHOTO_BYTES = 50 * MB
MAX_DOCUMENT_BYTES = 200 * MB
MAX_PHOTO_SIDES = 14_000
MAX_PHOTO_RATIO = 20
MAX_ATTACHMENTS = 10
REFUSED_EXTENSIONS = frozenset({"mp3", "exe", "msi", "bat", "cmd", "com", "scr"})
# VK's own address of a saved file in `attachment`: type, owner, id and perhaps an access key
ATTACHMENT_NAME = re.compile(r"(photo|doc)(-?[0-9]+)_([0-9]+)(?:_([A-Za-z0-9]+))?")
# The sizes a photo is offered in: VK's type letter and the largest side (px)
PHOTO_SIZES = (("s", 75), ("m", 130), ("x", 604), ("y", 807), ("z", 1080), ("w", 2560))

Method = Callable[[JSON, web.Request], Awaitable[Any]]


class AttachmentError(Exception):
    """A parameter naming files VK does not have (the emulator answers error 100)."""


@dataclass(slots=True)
class _Ticket:
    kind: str  # photo or doc
    peer_id: int


class VkUploads:
    """The community's uploads: what the upload server took (until saved), what was saved."""

    def __init__(self, group_id: int, files: FileHost, rng: random.Random) -> None:
        self.group_id = group_id
        self.files = files
        self._rng = rng
        self._ids = itertools.count(rng.randint(10**8, 9 * 10**8))
        self._tickets: dict[str, _Ticket] = {}
        self._taken: dict[str, tuple[str, str, bytes]] = {}  # token -> (kind, name, data)
        self._saved: dict[str, JSON] = {}  # "<type><owner>_<id>" -> the attachment object

    def methods(self) -> dict[str, Method]:
        return {
            "photos.getMessagesUploadServer": self._photo_server,
            "photos.saveMessagesPhoto": self._save_photo,
            "docs.getMessagesUploadServer": self._doc_server,
            "docs.save": self._save_doc,
        }

    def route(self) -> web.RouteDef:
        return web.post("/upload/{ticket}", self._upload, name="vk_upload")

    def attachments(self, raw: str) -> list[JSON]:
        """The saved files `attachment` names, as messages.send shows them to the customer."""
        names = [part.strip() for part in raw.split(",") if part.strip()]
        if len(names) > MAX_ATTACHMENTS:
            raise AttachmentError(f"at most {MAX_ATTACHMENTS} attachments")
        found = []
        for name in names:
            match = ATTACHMENT_NAME.fullmatch(name)
            saved = self._saved.get(f"{match[1]}{match[2]}_{match[3]}") if match else None
            key = saved[saved["type"]].get("access_key") if saved else None
            if saved is None or (key is not None and match is not None and match[4] != key):
                raise AttachmentError(f"attachment {name} is invalid")
            found.append(saved)
        return found

    # ---- the upload addresses -----------------------------------------------------------------

    async def _photo_server(self, params: JSON, request: web.Request) -> JSON:
        return {
            "upload_url": self._ticket("photo", params, request),
            "album_id": -3,  # the album VK keeps photos sent in messages in
            "group_id": self.group_id,
        }

    async def _doc_server(self, params: JSON, request: web.Request) -> JSON:
        return {"upload_url": self._ticket("doc", params, request)}

    def _ticket(self, kind: str, params: JSON, request: web.Request) -> str:
        try:
            peer_id = int(str(params.get("peer_id", "0")))
        except ValueError:
            peer_id = 0
        ticket = f"{self._rng.getrandbits(96):024x}"
        self._tickets[ticket] = _Ticket(kind, peer_id)
        path = request.app.router["vk_upload"].url_for(ticket=ticket)
        return str(request.url.origin().join(path))

    # ---- the upload server -------------------------------------------------------------------

    async def _upload(self, request: web.Request) -> web.Response:
        ticket = self._tickets.get(request.match_info["ticket"])
        if ticket is None:
            return web.json_response({"error": "ERR_UPLOAD_BAD_URL: the address is not valid"})
        try:
            form = await request.post()
        except web.HTTPRequestEntityTooLarge:
            return web.json_response({"error": "ERR_UPLOAD_FILE_TOO_BIG: the file is too large"})
        fields = ("photo", "file0", "file1") if ticket.kind == "photo" else ("file",)
        part = next((form[f] for f in fields if isinstance(form.get(f), web.FileField)), None)
        if not isinstance(part, web.FileField):
            return web.json_response({"error": f"ERR_UPLOAD_NO_FILE: no {fields[0]} field"})
        data = part.file.read()
        why = self._refusal(ticket.kind, part.filename or "", data)
        if why is not None:
            return web.json_response({"error": why})
        token = hashlib.sha256(self._rng.randbytes(16) + data[:64]).hexdigest()[:32]
        self._taken[token] = (ticket.kind, part.filename or "file", data)
        if ticket.kind == "photo":
            server = 1000 + self.group_id
            return web.json_response(
                {
                    "server": server,
                    "photo": json.dumps([{"photo": token, "sizes": []}]),
                    "hash": self._hash(token, server),
                }
            )
        return web.json_response({"file": f"{self.group_id}|0|0|{token}"})

    @staticmethod
    def _refusal(kind: str, name: str, data: bytes) -> str | None:
        if kind == "photo":
            if len(data) > MAX_PHOTO_BYTES:
                return "ERR_UPLOAD_FILE_TOO_BIG: a photo may have 50 MB"
            sides = picture_size(data)
            if sides is None:
                return "ERR_UPLOAD_BAD_IMAGE: JPG, PNG or GIF only"
            if sum(sides) > MAX_PHOTO_SIDES or max(sides) > MAX_PHOTO_RATIO * max(1, min(sides)):
                return "ERR_UPLOAD_BAD_IMAGE_SIZE: width + height at most 14000 px, 1:20 at most"
            return None
        if len(data) > MAX_DOCUMENT_BYTES:
            return "ERR_UPLOAD_FILE_TOO_BIG: a document may have 200 MB"
        if name.rpartition(".")[2].lower() in REFUSED_EXTENSIONS and "." in name:
            return "ERR_UPLOAD_FILE_TYPE: MP3 and executable files are not taken"
        if not data:
            return "ERR_UPLOAD_NO_FILE: the file is empty"
        return None

    def _hash(self, token: str, server: int) -> str:
        return hashlib.sha256(f"{token}:{server}:{self.group_id}".encode()).hexdigest()[:32]

    # ---- saving ------------------------------------------------------------------------------

    async def _save_photo(self, params: JSON, _request: web.Request) -> list[JSON]:
        try:
            described = json.loads(str(params.get("photo", "")))
            token = str(described[0]["photo"])
            server = int(str(params.get("server", "")))
        except (ValueError, LookupError, TypeError):
            raise AttachmentError("photo is undefined or invalid") from None
        taken = self._taken.get(token)
        if taken is None or taken[0] != "photo" or params.get("hash") != self._hash(token, server):
            raise AttachmentError("hash is invalid")
        del self._taken[token]
        data = taken[2]
        width, height = picture_size(data) or (0, 0)
        photo = {
            "id": next(self._ids),
            "album_id": -3,
            "owner_id": -self.group_id,
            "access_key": f"{self._rng.getrandbits(64):016x}",
            "date": int(time.time()),
            "text": "",
            "sizes": self._sizes(data, width, height),
        }
        self._saved[f"photo{photo['owner_id']}_{photo['id']}"] = {"type": "photo", "photo": photo}
        return [photo]

    def _sizes(self, data: bytes, width: int, height: int) -> list[JSON]:
        sizes = []
        for kind, side in PHOTO_SIZES:
            scale = min(1.0, side / max(width, height, 1))
            content_type = picture_type(data) or "image/jpeg"
            sizes.append(
                {
                    "type": kind,
                    "url": self.files.add(data, content_type),  # each size is the file here
                    "width": round(width * scale),
                    "height": round(height * scale),
                }
            )
            if scale == 1.0:
                break
        return sizes

    async def _save_doc(self, params: JSON, _request: web.Request) -> JSON:
        token = str(params.get("file", "")).split("|")[-1]
        taken = self._taken.get(token)
        if taken is None or taken[0] != "doc":
            raise AttachmentError("file is undefined or invalid")
        del self._taken[token]
        _kind, name, data = taken
        title = str(params.get("title") or name)
        doc = {
            "id": next(self._ids),
            "owner_id": -self.group_id,
            "title": title,
            "size": len(data),
            "ext": title.rpartition(".")[2].lower() if "." in title else "",
            "url": self.files.add(data, "application/octet-stream"),
            "date": int(time.time()),
            "type": 8,  # "unknown" in VK's document types
        }
        self._saved[f"doc{doc['owner_id']}_{doc['id']}"] = {"type": "doc", "doc": doc}
        return {"type": "doc", "doc": doc}
