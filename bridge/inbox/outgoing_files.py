"""The files an agent sends with a reply: checked against what the customer's network takes
before anything is stored (the agent is told at once why one cannot go), kept in the store so that
delivery, retried and perhaps after a restart, finds them, and described as the reply's
attachments."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.bus import Bus
from bridge.channel import MB, FileLimits
from bridge.domain import PHOTO, Attachment, Network, OutboundMessage
from bridge.inbox.actions import ConversationNotFound, reply_as_agent
from bridge.store.kept_files import StoredFiles
from bridge.store.models import conversations
from bridge.util.file_types import picture_size, picture_type

MAX_FILES = 10  # as many as a message carries (OutboundMessage.attachments)
# The store keeps them in its database until they are sent, and a sender holds one in memory.
MAX_REPLY_BYTES = 50 * MB


@dataclass(frozen=True, slots=True)
class AgentFile:
    """A file as the agent's browser (or an API client) uploaded it."""

    name: str
    content: bytes
    mime_type: str | None = None


class FileRefused(ValueError):
    """A file that cannot go to this customer, with the reason for the agent; `too_large` when
    its size is the reason."""

    def __init__(self, reason: str, *, too_large: bool = False) -> None:
        super().__init__(reason)
        self.too_large = too_large


def check_sizes(count: int, total_bytes: int) -> None:
    """The product's own bounds on one reply's files, whatever the network."""
    if count > MAX_FILES:
        raise FileRefused(f"at most {MAX_FILES} files go with one reply")
    if total_bytes > MAX_REPLY_BYTES:
        raise FileRefused(
            f"the files of one reply may have {MAX_REPLY_BYTES // MB} MB together", too_large=True
        )


async def reply_with_files(
    engine: AsyncEngine,
    bus: Bus,
    conversation_id: int,
    agent_id: int,
    text: str,
    files: Sequence[AgentFile],
    limits: Mapping[Network, FileLimits],
) -> OutboundMessage:
    """The agent's reply with `files` (the text is their caption, and may be empty): refused
    (FileRefused) before anything is stored when the customer's network would not take one."""
    check_sizes(len(files), sum(len(f.content) for f in files))
    network = await _network_of(engine, conversation_id)
    found = limits.get(network)
    if found is None:
        raise FileRefused(f"files cannot be sent on {network.value} from here")
    described = [_describe(found, sent) for sent in files]
    kept = StoredFiles(engine)
    for sent, attachment in zip(files, described, strict=True):
        await kept.keep(attachment.network_file_id, sent.content)
    return await reply_as_agent(engine, bus, conversation_id, agent_id, text, attachments=described)


async def _network_of(engine: AsyncEngine, conversation_id: int) -> Network:
    async with engine.connect() as conn:
        network = (
            await conn.execute(
                sa.select(conversations.c.network).where(conversations.c.id == conversation_id)
            )
        ).scalar_one_or_none()
    if network is None:
        raise ConversationNotFound(conversation_id)
    return Network(network)


def _describe(limits: FileLimits, sent: AgentFile) -> Attachment:
    # a browser may send a path (old Internet Explorer did): only its last part names the file
    name = sent.name.replace("\\", "/").rpartition("/")[2].strip()[-255:] or None
    if not sent.content:
        raise FileRefused(f"{name or 'a file'} is empty")
    if (why := limits.refusal(name, len(sent.content))) is not None:
        raise FileRefused(
            f"{name}: {why}" if name else why, too_large=len(sent.content) > limits.file_bytes
        )
    kind = limits.kind_of(len(sent.content), picture_size(sent.content))
    declared = (sent.mime_type or "")[:127] or None
    return Attachment(
        kind=kind,
        network_file_id=f"outbox:{uuid.uuid4().hex}",
        name=name,
        mime_type=picture_type(sent.content) if kind == PHOTO else declared,
        size=len(sent.content),
    )
