"""The files agents send, as the inbox's composer and the API upload them (a multipart form with
`text` and `files`): the form read within the product's bounds, and a reply with files sent."""

from __future__ import annotations

import asyncio
import re
from urllib.parse import quote

from aiohttp import web
from aiohttp.typedefs import Handler

from bridge.channel import MB
from bridge.inbox import actions
from bridge.inbox.outgoing_files import MAX_REPLY_BYTES, AgentFile, reply_with_files
from bridge.web.keys import BUS, ENGINE, FILE_LIMITS
from bridge.web.openapi import row_id

# Where agents upload files (a note is refused with its files, which must be read to say so).
UPLOAD_PATHS = re.compile(r"/c/[0-9]+/(reply|note)|/api/conversations/[0-9]+/files")
# Beside the files: the text, the CSRF token and the parts' headers.
FORM_OVERHEAD_BYTES = MB
TOO_LARGE = f"the files of one reply may have {MAX_REPLY_BYTES // MB} MB together"


class FilesTooLarge(web.HTTPClientError):
    status_code = 413


@web.middleware
async def larger_bodies(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Only where agents upload files may a request's body exceed the app's 1 MB; one larger
    still is refused with the reason (back to the conversation, for the inbox's form)."""
    if request.method != "POST" or not UPLOAD_PATHS.fullmatch(request.path):
        return await handler(request)
    try:
        return await handler(request.clone(client_max_size=MAX_REPLY_BYTES + FORM_OVERHEAD_BYTES))
    except web.HTTPRequestEntityTooLarge:
        if request.path.startswith("/api/"):
            raise FilesTooLarge(text=TOO_LARGE) from None
        conversation = request.path.split("/")[2]
        raise web.HTTPSeeOther(f"/c/{conversation}?error={quote(TOO_LARGE)}") from None


async def reply_form(request: web.Request) -> tuple[str, list[AgentFile]]:
    """The form's text and files; ValueError for a form that is not one of ours."""
    form = await request.post()
    text = form.get("text", "")
    if not isinstance(text, str):
        raise ValueError("text: a text field, not a file")
    files = []
    for value in form.getall("files", []):
        if isinstance(value, web.FileField):
            content = await asyncio.to_thread(value.file.read)  # spooled to disk when large
            files.append(AgentFile(value.filename, content, value.content_type))
        elif value:  # an empty file input sends an empty text
            raise ValueError("files: file parts (with a file name), not text")
    return text, files


async def send_reply(request: web.Request, conversation_id: int, agent_id: int) -> None:
    """The agent's reply from the form: its text, with the files it carries (FileRefused, a
    ValueError, when the network would not take one)."""
    text, files = await reply_form(request)
    engine, bus = request.app[ENGINE], request.app[BUS]
    if not files:
        # in a public thread, the comment the reply answers (the form's choice)
        reply_to = row_id(str((await request.post()).get("reply_to", "")))
        await actions.reply_as_agent(
            engine, bus, conversation_id, agent_id, text, reply_to=reply_to
        )
        return
    limits = request.app[FILE_LIMITS]
    await reply_with_files(engine, bus, conversation_id, agent_id, text, files, limits)
