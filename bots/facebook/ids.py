"""The Graph API's ids as the webhooks carry them."""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, StringConstraints

from bridge.domain import MAX_ID_CHARS

# Graph ids are strings in the documented payloads; a number is taken too, as the same id.
# One that no store column holds is not a Graph id: its event is skipped.
GraphId = Annotated[
    str,
    BeforeValidator(lambda value: str(value)),
    StringConstraints(min_length=1, max_length=MAX_ID_CHARS),
]
