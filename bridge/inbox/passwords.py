"""Agents' passwords: the policy a new one must meet, and argon2 hashing off the event loop."""

from __future__ import annotations

import asyncio
import os
import re
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from bridge.inbox.common_passwords import COMMON_PASSWORDS

MIN_CHARS = 12
MAX_CHARS = 1024
MIN_DIFFERENT_CHARS = 5
# One kind of character only (all digits, all lowercase) is guessed far sooner: it must be longer.
ONE_KIND_MIN_CHARS = 16

_hasher = PasswordHasher()
# argon2 takes tens of milliseconds of CPU and 64 MiB per hash. It runs in threads of its own,
# so that a burst of sign-ins neither stalls the event loop (webhooks, /healthz) nor fills the
# default pool other work shares; at most half the cores, so the loop keeps one for itself.
_threads = ThreadPoolExecutor(
    max_workers=max(1, (os.cpu_count() or 2) // 2), thread_name_prefix="argon2"
)
# Checked against when the login is unknown, so that the answer takes as long as a real check.
DUMMY_HASH = _hasher.hash("not a password anyone has")
_EDGES = re.compile(r"^[\W\d_]+|[\W\d_]+$")  # digits, symbols and spaces around the letters


def _kind(char: str) -> str:
    if char.islower():
        return "lowercase letters"
    if char.isupper():
        return "capital letters"
    if char.isalpha():
        return "letters"
    if char.isdigit():
        return "digits"
    return "symbols"


def _stem(text: str) -> str:
    return _EDGES.sub("", text.lower())


def password_problem(password: str, login: str) -> str | None:
    """Why the policy refuses `password` for the agent `login`, or None when it is good."""
    lowered = password.lower()
    stem = _stem(password)
    if len(password) < MIN_CHARS:
        return f"a password needs at least {MIN_CHARS} characters"
    if len(password) > MAX_CHARS:
        return f"a password has at most {MAX_CHARS} characters"
    if lowered == login or stem in {login, _stem(login)} - {""}:
        return "a password must not be the login"
    if len(set(password)) < MIN_DIFFERENT_CHARS:
        return f"a password needs at least {MIN_DIFFERENT_CHARS} different characters"
    if re.fullmatch(r"(.+?)\1+", lowered, re.DOTALL):
        return "a password must not be a shorter one repeated"
    kinds = {_kind(char) for char in password}
    if len(kinds) == 1 and len(password) < ONE_KIND_MIN_CHARS:
        return f"a password of {kinds.pop()} only needs at least {ONE_KIND_MIN_CHARS} characters"
    if lowered in COMMON_PASSWORDS:
        return "this is one of the most common passwords"
    if stem in COMMON_PASSWORDS:
        return "this is one of the most common passwords with digits or symbols added"
    return None


async def hash_password(password: str) -> str:
    return await asyncio.get_running_loop().run_in_executor(_threads, _hasher.hash, password)


def _matches(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


async def verify_password(stored: str, password: str) -> bool:
    return await asyncio.get_running_loop().run_in_executor(_threads, _matches, stored, password)


def needs_rehash(stored: str) -> bool:
    """The hash was made with weaker parameters than today's (reads the hash, hashes nothing)."""
    return _hasher.check_needs_rehash(stored)
