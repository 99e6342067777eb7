"""What each network takes of an agent's files: a picture within its photo limits goes as a
photo, anything else as a document, and a file over its size limit not at all, with a reason the
agent reads."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from bots.facebook.channel import FILE_LIMITS as MESSENGER
from bots.telegram.channel import FILE_LIMITS as TELEGRAM
from bots.vk.channel import FILE_LIMITS as VK
from bridge.channel import MB, FileLimits
from bridge.domain import DOCUMENT, PHOTO
from bridge.util.file_types import picture_size


def picture(width: int, height: int, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "#ffffff").save(buffer, format=fmt)
    return buffer.getvalue()


def kind(limits: FileLimits, content: bytes) -> str:
    return limits.kind_of(len(content), picture_size(content))


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF"])
def test_a_pictures_sides_are_read_from_its_header(fmt: str) -> None:
    assert picture_size(picture(321, 123, fmt)) == (321, 123)


def test_a_file_over_the_networks_limit_is_refused_with_the_limit_named() -> None:
    assert VK.refusal("backup.zip", 200 * MB + 1) == "file too large for VK: 200 MB max"
    assert VK.refusal("backup.zip", 200 * MB) is None
    assert MESSENGER.refusal("clip.mp4", 25 * MB + 1) == ("file too large for Messenger: 25 MB max")


def test_a_type_the_network_does_not_take_is_refused() -> None:
    assert VK.refusal("song.MP3", 1000) == "VK does not take .mp3 files"
    assert TELEGRAM.refusal("song.mp3", 1000) is None


def test_a_picture_goes_as_a_photo_and_any_other_file_as_a_document() -> None:
    assert kind(TELEGRAM, picture(640, 480, "JPEG")) == PHOTO
    assert kind(TELEGRAM, b"%PDF-1.4\n%%EOF\n") == DOCUMENT


def test_a_picture_a_network_would_not_show_as_a_photo_goes_as_a_document() -> None:
    long_screenshot = picture(200, 4100)  # one side more than 20 times the other

    assert kind(TELEGRAM, long_screenshot) == DOCUMENT
    assert kind(VK, picture(200, 3900)) == PHOTO
    assert kind(TELEGRAM, picture(5000, 5001)) == DOCUMENT  # sides over 10000 together
