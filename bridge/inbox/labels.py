"""Labels on conversations: admins keep the labels (a name and a colour), agents put them on
conversations and take them off; the inbox filters by them and the reports count them.

What rules will need is here: `add_label` with `agent_id=None` puts one on for no agent,
`has_label` is the condition "carries this label", and each change is a `conversation.labels`
event."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bridge.bus import Bus
from bridge.domain import Event, EventKind
from bridge.inbox.actions import ConversationNotFound
from bridge.store.engine import insert_ignoring_conflicts
from bridge.store.models import conversation_labels, conversations, labels, utcnow

MAX_NAME_CHARS = 50
COLOUR_PATTERN = r"^#[0-9a-fA-F]{6}$"
_COLOUR = re.compile(COLOUR_PATTERN)
DARK_INK, LIGHT_INK = "#111827", "#ffffff"


class LabelError(ValueError):
    """A label refused (a name blank or taken, a colour not #rrggbb), with the reason."""


class LabelNotFound(LookupError):
    """No label has this id."""


@dataclass(frozen=True, slots=True)
class Label:
    id: int
    name: str
    colour: str  # "#rrggbb"

    @property
    def ink(self) -> str:
        """The colour of the name written on the label's colour."""
        return ink_for(self.colour)


def _luminance(colour: str) -> float:
    """WCAG 2's relative luminance of a #rrggbb colour."""

    def linear(channel: str) -> float:
        value = int(channel, 16) / 255
        return value / 12.92 if value <= 0.04045 else ((value + 0.055) / 1.055) ** 2.4

    red, green, blue = (linear(colour[i : i + 2]) for i in (1, 3, 5))
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def ink_for(colour: str) -> str:
    """Dark or light text, whichever contrasts more with `colour` (WCAG's contrast ratio)."""
    background = _luminance(colour)
    light = (_luminance(LIGHT_INK) + 0.05) / (background + 0.05)
    dark = (background + 0.05) / (_luminance(DARK_INK) + 0.05)
    return LIGHT_INK if light >= dark else DARK_INK


def _clean_name(name: str) -> str:
    cleaned = " ".join(name.split())
    if not cleaned or len(cleaned) > MAX_NAME_CHARS or not cleaned.isprintable():
        raise LabelError(f"a label's name needs 1 to {MAX_NAME_CHARS} printable characters")
    return cleaned


def _clean_colour(colour: str) -> str:
    if not _COLOUR.fullmatch(colour):
        raise LabelError("a colour is written #rrggbb, e.g. #1f9d55")
    return colour.lower()


def _taken(name: str) -> LabelError:
    return LabelError(f"a label named “{name}” exists already")


_COLUMNS = (labels.c.id, labels.c.name, labels.c.colour)


async def list_labels(engine: AsyncEngine) -> list[Label]:
    """Every label, by name."""
    async with engine.connect() as conn:
        rows = await conn.execute(sa.select(*_COLUMNS).order_by(labels.c.name_key))
        return [Label(*row) for row in rows]


async def label_usage(engine: AsyncEngine) -> dict[int, int]:
    """How many conversations carry each label (one on none is left out)."""
    cl = conversation_labels.c
    async with engine.connect() as conn:
        rows = await conn.execute(sa.select(cl.label_id, sa.func.count()).group_by(cl.label_id))
        return {label_id: n for label_id, n in rows}


async def create_label(engine: AsyncEngine, name: str, colour: str) -> Label:
    """A new label; a name is taken whatever its case ("VIP", "vip")."""
    name, colour = _clean_name(name), _clean_colour(colour)
    insert = sa.insert(labels).values(
        name=name, name_key=name.casefold(), colour=colour, created_at=utcnow()
    )
    try:
        async with engine.begin() as conn:
            label_id = (await conn.execute(insert.returning(labels.c.id))).scalar_one()
    except IntegrityError:  # the unique name key: the name is taken
        raise _taken(name) from None
    return Label(int(label_id), name, colour)


async def change_label(
    engine: AsyncEngine, label_id: int, *, name: str | None = None, colour: str | None = None
) -> Label:
    """Rename or recolour a label (None: unchanged); the conversations keep it."""
    values: dict[str, str] = {}
    if name is not None:
        name = _clean_name(name)
        values |= {"name": name, "name_key": name.casefold()}
    if colour is not None:
        values["colour"] = _clean_colour(colour)
    try:
        async with engine.begin() as conn:
            if values:
                await conn.execute(sa.update(labels).where(labels.c.id == label_id).values(values))
            row = (await conn.execute(sa.select(*_COLUMNS).where(labels.c.id == label_id))).first()
    except IntegrityError:
        raise _taken(str(name)) from None
    if row is None:
        raise LabelNotFound(label_id)
    return Label(*row)


async def delete_label(engine: AsyncEngine, label_id: int) -> None:
    """Delete a label; the conversations lose it (the foreign key cascades)."""
    async with engine.begin() as conn:
        deleted = await conn.execute(sa.delete(labels).where(labels.c.id == label_id))
    if deleted.rowcount != 1:
        raise LabelNotFound(label_id)


def has_label(label_id: int) -> sa.ColumnElement[bool]:
    """The conversations that carry the label (a condition on `conversations`)."""
    cl = conversation_labels.c
    return conversations.c.id.in_(sa.select(cl.conversation_id).where(cl.label_id == label_id))


async def labels_on(
    conn: AsyncConnection, conversation_ids: Sequence[int]
) -> dict[int, list[Label]]:
    """The labels each of these conversations carries, by name (one without any is left out)."""
    cl = conversation_labels.c
    rows = await conn.execute(
        sa.select(cl.conversation_id, *_COLUMNS)
        .join(labels, labels.c.id == cl.label_id)
        .where(cl.conversation_id.in_(conversation_ids))
        .order_by(labels.c.name_key)
    )
    found: dict[int, list[Label]] = {}
    for conversation_id, *label in rows:
        found.setdefault(conversation_id, []).append(Label(*label))
    return found


async def set_labels(
    engine: AsyncEngine,
    bus: Bus,
    conversation_id: int,
    label_ids: Iterable[int],
    agent_id: int | None,
) -> list[Label]:
    """The conversation carries exactly these labels (those it had keep who added them).
    Returns its labels."""
    wanted = set(label_ids)
    return await _relabel(engine, bus, conversation_id, agent_id, wanted, lambda _had: wanted)


async def add_label(
    engine: AsyncEngine, bus: Bus, conversation_id: int, label_id: int, agent_id: int | None
) -> list[Label]:
    """Put the label on the conversation (nothing changes if it is there already)."""
    return await _relabel(
        engine, bus, conversation_id, agent_id, {label_id}, lambda had: had | {label_id}
    )


async def remove_label(
    engine: AsyncEngine, bus: Bus, conversation_id: int, label_id: int
) -> list[Label]:
    """Take the label off the conversation (nothing changes if it is not there)."""
    return await _relabel(
        engine, bus, conversation_id, None, {label_id}, lambda had: had - {label_id}
    )


async def _relabel(
    engine: AsyncEngine,
    bus: Bus,
    conversation_id: int,
    agent_id: int | None,
    named: set[int],
    change: Callable[[set[int]], set[int]],
) -> list[Label]:
    """Give the conversation the labels `change` makes of those it has; every label `named`
    must exist. Announced to open pages when something changed."""
    cl = conversation_labels.c
    async with engine.begin() as conn:
        # one change of a conversation's labels at a time (two agents' edits do not interleave)
        locked = sa.select(conversations.c.id).where(conversations.c.id == conversation_id)
        if (await conn.execute(locked.with_for_update())).first() is None:
            raise ConversationNotFound(conversation_id)
        known = set(await conn.scalars(sa.select(labels.c.id).where(labels.c.id.in_(named))))
        if missing := named - known:
            raise LabelNotFound(min(missing))
        mine = cl.conversation_id == conversation_id
        had = set(await conn.scalars(sa.select(cl.label_id).where(mine)))
        wanted = change(had)
        if gone := had - wanted:
            await conn.execute(sa.delete(conversation_labels).where(mine, cl.label_id.in_(gone)))
        if added := wanted - had:
            now = utcnow()
            await conn.execute(
                insert_ignoring_conflicts(conn, conversation_labels),
                [
                    {
                        "conversation_id": conversation_id,
                        "label_id": label_id,
                        "added_by": agent_id,
                        "added_at": now,
                    }
                    for label_id in sorted(added)
                ],
            )
        carried = (await labels_on(conn, [conversation_id])).get(conversation_id, [])
    if gone or added:
        await bus.publish_events(
            [
                Event(
                    kind=EventKind.CONVERSATION_LABELS,
                    conversation_id=conversation_id,
                    data={"label_ids": [label.id for label in carried]},
                )
            ]
        )
    return carried
