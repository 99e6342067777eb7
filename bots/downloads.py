"""Downloading a file a customer sent from where their network serves it."""

from __future__ import annotations

import aiohttp

from bridge.channel import MAX_FILE_BYTES


async def download(http: aiohttp.ClientSession, url: str, *, timeout_s: float) -> bytes:
    """The file at `url`. LookupError when the server does not hand it over or it is larger
    than MAX_FILE_BYTES; transport errors propagate."""
    content = bytearray()
    async with http.get(url, timeout=aiohttp.ClientTimeout(total=timeout_s)) as response:
        if response.status != 200:
            raise LookupError(f"the file server answered {response.status}")
        async for chunk in response.content.iter_chunked(64 * 1024):
            content += chunk
            if len(content) > MAX_FILE_BYTES:
                raise LookupError(f"the file is larger than {MAX_FILE_BYTES} bytes")
    return bytes(content)
