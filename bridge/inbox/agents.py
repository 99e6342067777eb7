"""The people who answer: agents and admins, their passwords (argon2) and roles. A changed
password, or disabling an agent, ends the agent's sessions and API tokens in the same
transaction."""

from __future__ import annotations

import enum
import secrets
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bridge.inbox.passwords import (
    DUMMY_HASH,
    hash_password,
    needs_rehash,
    password_problem,
    verify_password,
)
from bridge.store.models import agents, api_tokens, utcnow, web_sessions


class Role(enum.StrEnum):
    AGENT = "agent"
    ADMIN = "admin"


class AgentError(ValueError):
    """A change to an agent that cannot be made, with the reason."""


class WeakPassword(AgentError):
    """A password the policy refuses (`bridge.inbox.passwords`); the message says why."""


@dataclass(frozen=True, slots=True)
class AgentInfo:
    id: int
    login: str
    display_name: str
    role: Role
    language: str
    active: bool

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


def _info(row: Any) -> AgentInfo:
    mapping = row._mapping
    return AgentInfo(
        id=mapping["id"],
        login=mapping["login"],
        display_name=mapping["display_name"],
        role=Role(mapping["role"]),
        language=mapping["language"],
        active=mapping["active"],
    )


_COLUMNS = (
    agents.c.id,
    agents.c.login,
    agents.c.display_name,
    agents.c.role,
    agents.c.language,
    agents.c.active,
)


async def _new_hash(password: str, login: str) -> str:
    problem = password_problem(password, login)
    if problem is not None:
        raise WeakPassword(problem)
    return await hash_password(password)


def _normalise(login: str) -> str:
    return login.strip().lower()


async def _end_sessions_and_tokens(conn: AsyncConnection, agent_id: int) -> None:
    await conn.execute(sa.delete(web_sessions).where(web_sessions.c.agent_id == agent_id))
    await conn.execute(
        sa.update(api_tokens)
        .where(api_tokens.c.agent_id == agent_id, api_tokens.c.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


async def add_agent(
    engine: AsyncEngine,
    login: str,
    password: str,
    *,
    display_name: str | None = None,
    role: Role = Role.AGENT,
    language: str = "en",
) -> AgentInfo:
    login = _normalise(login)
    if not login or len(login) > 128:
        raise AgentError("a login needs 1 to 128 characters")
    if language not in ("ru", "en"):
        raise AgentError("the interface language is ru or en")
    password_hash = await _new_hash(password, login)
    try:
        async with engine.begin() as conn:
            row = (
                await conn.execute(
                    sa.insert(agents)
                    .values(
                        login=login,
                        display_name=(display_name or login).strip()[:255],
                        role=role.value,
                        password_hash=password_hash,
                        language=language,
                        active=True,
                        created_at=utcnow(),
                    )
                    .returning(*_COLUMNS)
                )
            ).one()
    except IntegrityError:
        raise AgentError(f"the login {login!r} is taken") from None
    return _info(row)


async def authenticate(engine: AsyncEngine, login: str, password: str) -> AgentInfo | None:
    """The active agent with this login and password, else None (same time either way).
    Callers facing the network throttle it (`bridge.web.throttle`)."""
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                sa.select(*_COLUMNS, agents.c.password_hash).where(
                    agents.c.login == _normalise(login)
                )
            )
        ).first()
    stored = row.password_hash if row is not None and row.password_hash else DUMMY_HASH
    if not await verify_password(stored, password):
        return None
    if row is None or not row.active or stored is DUMMY_HASH:
        return None
    if needs_rehash(stored):
        rehashed = await hash_password(password)
        async with engine.begin() as conn:
            await conn.execute(
                sa.update(agents)
                .where(agents.c.id == row.id, agents.c.password_hash == stored)
                .values(password_hash=rehashed)
            )
    return _info(row)


async def get_agent(engine: AsyncEngine, agent_id: int) -> AgentInfo | None:
    async with engine.connect() as conn:
        row = (await conn.execute(sa.select(*_COLUMNS).where(agents.c.id == agent_id))).first()
    return _info(row) if row is not None else None


async def find_agent(engine: AsyncEngine, login: str) -> AgentInfo:
    async with engine.connect() as conn:
        row = (
            await conn.execute(sa.select(*_COLUMNS).where(agents.c.login == _normalise(login)))
        ).first()
    if row is None:
        raise AgentError(f"no agent with the login {login!r}")
    return _info(row)


async def list_agents(engine: AsyncEngine) -> list[AgentInfo]:
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(*_COLUMNS).order_by(agents.c.login))).all()
    return [_info(row) for row in rows]


async def update_agent(
    engine: AsyncEngine,
    agent_id: int,
    *,
    role: Role | None = None,
    active: bool | None = None,
    language: str | None = None,
    password: str | None = None,
) -> AgentInfo:
    """Change an agent; the last active admin can be neither demoted nor disabled. A new
    password or disabling ends every session and API token the agent has: whoever held one
    signs in again (and re-enabling brings none back)."""
    values: dict[str, object] = {}
    if role is not None:
        values["role"] = role.value
    if active is not None:
        values["active"] = active
    if language is not None:
        if language not in ("ru", "en"):
            raise AgentError("the interface language is ru or en")
        values["language"] = language
    if password is not None:  # hashed before the transaction, which must stay short
        found = await get_agent(engine, agent_id)
        if found is None:
            raise AgentError(f"no agent {agent_id}")
        values["password_hash"] = await _new_hash(password, found.login)
    async with engine.begin() as conn:
        current = (await conn.execute(sa.select(*_COLUMNS).where(agents.c.id == agent_id))).first()
        if current is None:
            raise AgentError(f"no agent {agent_id}")
        losing_admin = (
            current.role == Role.ADMIN
            and current.active
            and (values.get("role", Role.ADMIN) != Role.ADMIN or values.get("active") is False)
        )
        if losing_admin:
            admins = (
                await conn.execute(
                    sa.select(sa.func.count()).where(
                        agents.c.role == Role.ADMIN.value, agents.c.active.is_(True)
                    )
                )
            ).scalar_one()
            if admins <= 1:
                raise AgentError("the last active admin cannot be demoted or disabled")
        if values:
            await conn.execute(sa.update(agents).where(agents.c.id == agent_id).values(values))
        if password is not None or active is False:
            await _end_sessions_and_tokens(conn, agent_id)
        row = (await conn.execute(sa.select(*_COLUMNS).where(agents.c.id == agent_id))).one()
    return _info(row)


async def ensure_first_admin(engine: AsyncEngine, login: str = "admin") -> str | None:
    """A new installation gets one admin with a random password, returned once to be shown;
    None when agents exist already."""
    async with engine.connect() as conn:
        if (await conn.execute(sa.select(sa.func.count()).select_from(agents))).scalar_one():
            return None
    password = secrets.token_urlsafe(12)
    try:
        await add_agent(engine, login, password, display_name="Admin", role=Role.ADMIN)
    except AgentError:  # another process created it a moment ago
        return None
    return password
