"""A file a customer sent, fetched from their network when asked for (`bridge.web.files`)."""

from __future__ import annotations

from aiohttp import web

from bridge.web.files import attachment_response
from bridge.web.openapi import Endpoints

endpoints = Endpoints()


@endpoints.route(
    "GET",
    "/api/conversations/{conversation_id}/messages/{message_id}/attachments/{number}",
    "A file the customer sent (the number-th of the message's attachments, from 1), fetched"
    " from their network: images as such, anything else as a download",
    file_type="*/*",
)
async def get_attachment(request: web.Request) -> web.Response:
    return await attachment_response(request)
