"""Opening an attachment for an agent. The store keeps only what the network said of a customer's
file (kind, name, type, size, the network's id); its content is fetched when an agent opens it,
through the channel of the customer's network (the web chat's own from the store, as no network
keeps them). A file an agent sent is read from the store, where it was kept to be sent."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.channel import MAX_FILE_BYTES, FileFetcher, StoreUnavailable
from bridge.domain import Attachment, Direction, Network
from bridge.store.kept_files import StoredFiles
from bridge.store.models import messages
from bridge.util.file_types import picture_type

log = logging.getLogger(__name__)

FETCH_TIMEOUT_S = 30.0
SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


class AttachmentNotFound(LookupError):
    """No such attachment: the message, its conversation or its number does not match."""


class AttachmentUnavailable(Exception):
    """The attachment exists but its file cannot be had now; the reason is for the agent."""


@dataclass(frozen=True, slots=True)
class AttachmentFile:
    content: bytes
    content_type: str
    content_disposition: str


async def open_attachment(
    engine: AsyncEngine,
    files: Mapping[Network, FileFetcher],
    conversation_id: int,
    message_id: int,
    number: int,
) -> AttachmentFile:
    """The `number`-th (from 1) attachment of a message: a customer's, fetched from its network,
    or one an agent sent, from the store."""
    network, direction, attachment = await _find(engine, conversation_id, message_id, number)
    if direction is Direction.OUTBOUND:
        content = await _kept(engine, attachment)
    else:
        content = await _fetched(files, network, attachment, message_id)
    return _as_file(content, attachment, message_id, number)


async def _kept(engine: AsyncEngine, attachment: Attachment) -> bytes:
    try:
        return await StoredFiles(engine).load(attachment.network_file_id)
    except (LookupError, StoreUnavailable) as exc:
        raise AttachmentUnavailable(str(exc)) from None


async def _fetched(
    files: Mapping[Network, FileFetcher], network: Network, attachment: Attachment, message_id: int
) -> bytes:
    fetch = files.get(network)
    if fetch is None:
        raise AttachmentUnavailable(f"files of {network.value} cannot be opened from here")
    try:
        async with asyncio.timeout(FETCH_TIMEOUT_S):
            content = await fetch(attachment.network_file_id)
    except TimeoutError:
        raise AttachmentUnavailable(f"{network.value} did not hand the file over in time") from None
    except Exception as exc:
        # Whatever the network's library raises, the agent is told and the inbox goes on.
        log.warning("attachment of message %d not fetched: %r", message_id, exc)
        raise AttachmentUnavailable(f"{network.value} did not hand the file over: {exc}") from None
    if len(content) > MAX_FILE_BYTES:
        raise AttachmentUnavailable(f"the file is larger than {MAX_FILE_BYTES} bytes")
    return content


async def _find(
    engine: AsyncEngine, conversation_id: int, message_id: int, number: int
) -> tuple[Network, Direction, Attachment]:
    m = messages.c
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                sa.select(m.network, m.direction, m.attachments).where(
                    m.id == message_id,
                    m.conversation_id == conversation_id,
                    m.direction.in_((Direction.INBOUND, Direction.OUTBOUND)),
                )
            )
        ).first()
    if row is None or not 1 <= number <= len(row.attachments or ()):
        raise AttachmentNotFound("no such attachment")
    try:
        return (
            Network(row.network),
            Direction(row.direction),
            Attachment.model_validate(row.attachments[number - 1]),
        )
    except (ValueError, ValidationError):
        raise AttachmentNotFound("no such attachment") from None


def _as_file(
    content: bytes, attachment: Attachment, message_id: int, number: int
) -> AttachmentFile:
    # a picture is shown; anything else is downloaded, so that an HTML or SVG file a customer
    # sent never runs as a page of the inbox
    inline = picture_type(content)
    if inline is not None:
        return AttachmentFile(content, inline, "inline")
    name = attachment.name or f"{attachment.kind}-{message_id}-{number}"
    fallback = SAFE_NAME.sub("_", name).strip("._") or "file"
    disposition = f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"
    return AttachmentFile(content, "application/octet-stream", disposition)
