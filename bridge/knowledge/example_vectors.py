"""The articles' examples embedded by a model, kept in the store (`example_vectors`) under the
model's name, so that a restart or a refit embeds only the examples it has not seen."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

import numpy as np
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.store.engine import insert_ignoring_conflicts
from bridge.store.models import example_vectors, utcnow
from kb.embedding.base import Vectors

# Keys per IN (...) or rows per INSERT: well under both backends' limits on bound parameters.
_CHUNK = 1000
# float32, little-endian: the same bytes on every machine that reads them back
_STORED = np.dtype("<f4")


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


async def load_vectors(engine: AsyncEngine, model: str, texts: Iterable[str]) -> dict[str, Vectors]:
    """The stored vectors of `model` for those of `texts` it has embedded before."""
    wanted = {text_hash(text): text for text in texts}
    hashes = sorted(wanted)
    v = example_vectors.c
    found: dict[str, Vectors] = {}
    async with engine.connect() as conn:
        for start in range(0, len(hashes), _CHUNK):
            rows = await conn.execute(
                sa.select(v.text_hash, v.text, v.vector).where(
                    v.model == model, v.text_hash.in_(hashes[start : start + _CHUNK])
                )
            )
            for digest, text, blob in rows:
                # a row that is not this text's (it cannot be, short of a collision) or not whole
                # floats is embedded again rather than trusted
                if text == wanted[digest] and blob and len(blob) % _STORED.itemsize == 0:
                    found[text] = np.frombuffer(blob, dtype=_STORED).astype(np.float32)
    return found


async def keep_vectors(
    engine: AsyncEngine, model: str, computed: Mapping[str, Vectors], in_use: Iterable[str]
) -> int:
    """Store the `computed` vectors of `model` and delete its vectors of texts no longer in use
    by any article; returns how many were deleted."""
    keep = {text_hash(text) for text in in_use}
    now = utcnow()
    rows = [
        {
            "model": model,
            "text_hash": text_hash(text),
            "text": text,
            "vector": np.asarray(vector, dtype=_STORED).tobytes(),
            "created_at": now,
        }
        for text, vector in computed.items()
    ]
    v = example_vectors.c
    async with engine.begin() as conn:
        for start in range(0, len(rows), _CHUNK):
            # another process fitting the same articles may have stored the same rows meanwhile
            await conn.execute(
                insert_ignoring_conflicts(conn, example_vectors), rows[start : start + _CHUNK]
            )
        stored = (await conn.execute(sa.select(v.text_hash).where(v.model == model))).scalars()
        gone = sorted(set(stored) - keep)
        for start in range(0, len(gone), _CHUNK):
            await conn.execute(
                sa.delete(example_vectors).where(
                    v.model == model, v.text_hash.in_(gone[start : start + _CHUNK])
                )
            )
    return len(gone)
