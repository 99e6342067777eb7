"""The networks' file servers, as the emulators serve them: the files customers send, at
absolute addresses under `/_files/` (a network's CDN is a host of its own, so its addresses in
attachments are absolute; `url` is where the emulator listens, set once it does)."""

from __future__ import annotations

import base64
import binascii
import secrets

from aiohttp import web


def uploaded(value: object) -> bytes:
    """A customer's file as a test or the sandbox hands it to an emulator: `data_base64`."""
    try:
        return base64.b64decode(str(value), validate=True)
    except binascii.Error:
        raise ValueError("data_base64 is not base64") from None


class FileHost:
    def __init__(self, url: str | None = None) -> None:
        self.url = url
        self._files: dict[str, tuple[bytes, str]] = {}

    def add(self, data: bytes, content_type: str, *, served: bool = True) -> str:
        """The address of a new file; one not `served` answers 404 as an expired address does."""
        if self.url is None:
            raise ValueError("set the emulator's files url (where it listens) before sending files")
        name = secrets.token_hex(12)
        if served:
            self._files[name] = (data, content_type)
        return f"{self.url.rstrip('/')}/_files/{name}"

    def content(self, url: str) -> bytes | None:
        """The file served at `url` (what a customer's app downloads), None when it is not."""
        found = self._files.get(url.split("?", 1)[0].rsplit("/", 1)[-1])
        return found[0] if found is not None else None

    def forget(self, url: str | None = None) -> None:
        """The file at `url` (every file, without one) is no longer served: the address expired
        or the file was removed."""
        if url is None:
            self._files.clear()
        else:
            self._files.pop(url.split("?", 1)[0].rsplit("/", 1)[-1], None)

    def route(self) -> web.RouteDef:
        return web.get("/_files/{name}", self._serve)

    async def _serve(self, request: web.Request) -> web.Response:
        found = self._files.get(request.match_info["name"])
        if found is None:
            return web.Response(status=404, text="not found")
        data, content_type = found
        return web.Response(body=data, content_type=content_type)
