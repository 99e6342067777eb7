"""The Instagram channel: an Instagram professional account's direct messages, which the
Messenger Platform carries as it carries a page's (docs/networks.md 3.3).

The webhooks come signed like Messenger's, with object "instagram" and the person's IGSID as
the sender; replies go through the Send API with the token of the Facebook Page linked to the
account, under the same 24-hour and 7-day (HUMAN_AGENT) windows. What differs is here: a text
of at most 1000 UTF-8 bytes, and files taken by type, each type with its own size.
"""

from __future__ import annotations

from bots.facebook.channel import FacebookChannel
from bridge.channel import MB, FileLimits, OutgoingFile
from bridge.domain import PHOTO, Network

WEBHOOK_PATH = "/webhooks/instagram"
MAX_MESSAGE_BYTES = 1000
PICTURES = frozenset({"png", "jpg", "jpeg", "gif"})
VIDEOS = frozenset({"mp4", "ogg", "avi", "mov", "webm"})
SOUNDS = frozenset({"aac", "m4a", "wav"})
DOCUMENTS = frozenset({"pdf"})
# Images 8 MB, video, audio and PDF files 25 MB (docs/networks.md 3.3; GIF and the PDF-only
# rule are each on one revision of Meta's pages only).
FILE_LIMITS = FileLimits(
    "Instagram",
    file_bytes=25 * MB,
    photo_bytes=8 * MB,
    only_extensions={
        **dict.fromkeys(PICTURES, 8 * MB),
        **dict.fromkeys(VIDEOS | SOUNDS | DOCUMENTS, 25 * MB),
    },
)


class InstagramChannel(FacebookChannel):
    network = Network.INSTAGRAM
    name = "Instagram"
    file_limits = FILE_LIMITS
    webhook_path = WEBHOOK_PATH
    reply_edge = "replies"
    post_fields = ("caption", "permalink")
    comment_text = "text"
    account_field = "instagram_business_account"  # the Page's linked Instagram account

    def split(self, text: str) -> list[str]:
        return split_utf8(text, MAX_MESSAGE_BYTES)

    def attachment_type(self, file: OutgoingFile) -> str:
        """Instagram shows a file by the type it is sent as, so the type follows the file."""
        extension = (file.attachment.name or "").rpartition(".")[2].lower()
        if file.attachment.kind == PHOTO or extension in PICTURES:
            return "image"
        if extension in VIDEOS:
            return "video"
        if extension in SOUNDS:
            return "audio"
        return "file"


def split_utf8(text: str, max_bytes: int) -> list[str]:
    """`text` in pieces of at most `max_bytes` UTF-8 bytes each, cut between characters."""
    pieces: list[str] = []
    start, size = 0, 0
    for end, char in enumerate(text):
        width = len(char.encode("utf-8", "surrogatepass"))
        if size + width > max_bytes:
            pieces.append(text[start:end])
            start, size = end, 0
        size += width
    if start < len(text):
        pieces.append(text[start:])
    return pieces
