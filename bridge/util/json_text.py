"""JSON from outside (a network's body, a web-chat frame, a bus entry), parsed as orjson does, but
keeping a lone surrogate: orjson refuses one, a browser or a client library may send one, and the
domain models make such text storable (bridge.domain.storable) rather than lose the message."""

from __future__ import annotations

import json
from typing import Any

import orjson


def loads(raw: bytes | str) -> Any:
    """Raises ValueError on anything that is not JSON."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "surrogate" not in str(exc):
            raise
    try:
        return json.loads(raw)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
