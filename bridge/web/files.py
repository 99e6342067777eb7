"""Customers' attachments, opened by agents: the inbox's link and the API's endpoint answer with
the file as the network hands it over (`bridge.inbox.attachments`)."""

from __future__ import annotations

from aiohttp import web

from bridge.inbox.attachments import AttachmentNotFound, AttachmentUnavailable, open_attachment
from bridge.web.keys import ENGINE, FILES
from bridge.web.openapi import row_id

routes = web.RouteTableDef()


async def attachment_response(request: web.Request) -> web.Response:
    conversation_id, message_id, number = (
        row_id(request.match_info[name]) for name in ("conversation_id", "message_id", "number")
    )
    try:
        if conversation_id is None or message_id is None or number is None:
            raise AttachmentNotFound
        found = await open_attachment(
            request.app[ENGINE], request.app[FILES], conversation_id, message_id, number
        )
    except AttachmentNotFound:
        raise web.HTTPNotFound(text="no such attachment") from None
    except AttachmentUnavailable as exc:
        raise web.HTTPBadGateway(text=str(exc)) from None
    return web.Response(
        body=found.content,
        content_type=found.content_type,
        headers={
            "Content-Disposition": found.content_disposition,
            "Cache-Control": "private, max-age=3600",
        },
    )


@routes.get("/c/{conversation_id}/messages/{message_id}/attachments/{number}")
async def attachment_page(request: web.Request) -> web.Response:
    return await attachment_response(request)
