"""The examples' vectors in the store on both backends: kept under the model's name as float32
bytes, read back only for the texts asked, the unused ones dropped."""

from __future__ import annotations

import numpy as np
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.knowledge.example_vectors import keep_vectors, load_vectors, text_hash
from bridge.store.models import example_vectors
from kb.embedding.base import Vectors, unit_rows

MODEL = "a-model@1"


def vectors(*texts: str) -> dict[str, Vectors]:
    """A distinct unit vector for each text."""
    rows = unit_rows(np.arange(1, 1 + 8 * len(texts), dtype=np.float32).reshape(len(texts), 8))
    return dict(zip(texts, rows, strict=True))


async def stored(engine: AsyncEngine) -> set[tuple[str, str]]:
    v = example_vectors.c
    async with engine.connect() as conn:
        return {(m, t) for m, t in await conn.execute(sa.select(v.model, v.text))}


async def test_kept_vectors_come_back_exactly_for_the_texts_asked(engine: AsyncEngine) -> None:
    kept = vectors("где мой счёт", "where is my bill", "тариф")
    await keep_vectors(engine, MODEL, kept, kept)

    found = await load_vectors(engine, MODEL, ["где мой счёт", "тариф", "never embedded"])

    assert set(found) == {"где мой счёт", "тариф"}
    for text, vector in found.items():
        assert vector.dtype == np.float32
        assert np.array_equal(vector, kept[text])


async def test_vectors_of_another_model_are_not_reused(engine: AsyncEngine) -> None:
    kept = vectors("где мой счёт")
    await keep_vectors(engine, MODEL, kept, kept)

    assert await load_vectors(engine, "another-model@2", ["где мой счёт"]) == {}


async def test_a_vector_is_keyed_by_the_model_and_the_hash_of_its_text(engine: AsyncEngine) -> None:
    await keep_vectors(engine, MODEL, vectors("тариф"), ["тариф"])

    async with engine.connect() as conn:
        key = (
            await conn.execute(sa.select(example_vectors.c.model, example_vectors.c.text_hash))
        ).one()
    assert tuple(key) == (MODEL, text_hash("тариф"))


async def test_keeping_a_vector_already_stored_changes_nothing(engine: AsyncEngine) -> None:
    kept = vectors("тариф")
    await keep_vectors(engine, MODEL, kept, kept)

    await keep_vectors(engine, MODEL, kept, kept)  # another process fitted the same articles

    assert await stored(engine) == {(MODEL, "тариф")}


async def test_vectors_of_texts_no_longer_in_use_are_deleted_for_that_model_only(
    engine: AsyncEngine,
) -> None:
    await keep_vectors(engine, MODEL, vectors("old", "stays"), ["old", "stays"])
    await keep_vectors(engine, "another-model@2", vectors("old"), ["old"])

    deleted = await keep_vectors(engine, MODEL, vectors("new"), ["stays", "new"])

    assert deleted == 1
    assert await stored(engine) == {(MODEL, "stays"), (MODEL, "new"), ("another-model@2", "old")}


async def test_more_texts_than_one_statement_binds_are_kept_and_read(engine: AsyncEngine) -> None:
    texts = [f"example {n}" for n in range(2500)]
    kept = dict(zip(texts, unit_rows(np.random.default_rng(0).normal(size=(2500, 8))), strict=True))

    await keep_vectors(engine, MODEL, kept, texts)

    assert len(await load_vectors(engine, MODEL, texts)) == 2500
