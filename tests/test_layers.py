"""Dependencies flow one way (docs/architecture.md): each rule below is checked on every import of
every module, so a new arrow that runs back up fails here, naming the file and the import."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("supportbridge", "bridge", "bots", "emulators", "kb", "bench")
DATABASE_LIBRARIES = ("sqlalchemy", "asyncpg", "aiosqlite", "alembic")
# The bridge's ground floor: what every layer above it may use.
GROUND = ("bridge.domain", "bridge.channel", "bridge.settings", "bridge.util")
# What each room may import of the project besides itself: a room is a top package or a folder of
# bridge/, and a prefix admits the module and everything under it.
MAY_IMPORT: dict[str, tuple[str, ...]] = {
    "supportbridge": PACKAGES,
    "bench": ("bridge", "bots", "emulators", "kb"),
    "emulators": GROUND,
    "bots": ("bridge.domain", "bridge.channel", "bridge.util"),
    "kb": (),
    "bridge.domain": (),
    "bridge.util": ("bridge.domain",),
    "bridge.settings": ("bridge.domain",),
    "bridge.channel": ("bridge.domain",),
    # Inside bridge, from the bottom up: each layer knows only those below it.
    "bridge.bus": GROUND,
    "bridge.store": GROUND,
    "bridge.delivery": (*GROUND, "bridge.bus", "bridge.store"),
    "bridge.inbox": (*GROUND, "bridge.bus", "bridge.store"),
    "bridge.pipeline": (*GROUND, "bridge.bus", "bridge.store", "kb"),
    "bridge.knowledge": (*GROUND, "bridge.store", "bridge.pipeline", "kb"),
    "bridge.reports": (*GROUND, "bridge.store", "bridge.pipeline"),
    "bridge.backends": (*GROUND, "bridge.bus", "bridge.delivery"),
    "bridge.web": (
        *GROUND,
        *("bridge.bus", "bridge.store", "bridge.pipeline", "bridge.knowledge"),
        *("bridge.inbox", "bridge.reports", "kb"),
    ),
}
BRIDGE_ROOT = {"__init__.py", "domain.py", "channel.py", "settings.py"}


def imported_modules(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def room_of(module: str) -> str:
    parts = module.split(".")
    if parts[0] == "bridge" and len(parts) > 1:
        return ".".join(parts[:2])
    return parts[0]


def within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def project_imports() -> Iterator[tuple[str, str, str]]:
    """(file, its room, a module of the project it imports)."""
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            for imported in imported_modules(path):
                if within(imported, PACKAGES):
                    yield str(path.relative_to(ROOT)), room_of(module), imported


def test_every_room_has_a_rule() -> None:
    rooms = {room for _, room, _ in project_imports()}
    assert rooms <= MAY_IMPORT.keys(), sorted(rooms - MAY_IMPORT.keys())


@pytest.mark.parametrize("room", sorted(MAY_IMPORT))
def test_a_room_imports_only_what_lies_below_it(room: str) -> None:
    allowed = (room, *MAY_IMPORT[room])
    offending = sorted(
        f"{file}: {imported}"
        for file, importer, imported in project_imports()
        if importer == room and not within(imported, allowed)
    )
    assert not offending, offending


def test_nothing_imports_the_program_assembly() -> None:
    offending = sorted(
        f"{file}: {imported}"
        for file, importer, imported in project_imports()
        if importer != "supportbridge" and within(imported, ("supportbridge",))
    )
    assert not offending, offending


def test_the_network_adapters_use_no_database_library() -> None:
    offending = sorted(
        f"{path.relative_to(ROOT)}: {module}"
        for path in (ROOT / "bots").rglob("*.py")
        for module in imported_modules(path)
        if within(module, DATABASE_LIBRARIES)
    )
    assert not offending, offending


def test_the_bridge_root_holds_only_the_domain_types_the_channel_seam_and_the_settings() -> None:
    assert {path.name for path in (ROOT / "bridge").glob("*.py")} == BRIDGE_ROOT


def test_a_rule_that_is_broken_is_reported() -> None:
    """The checker itself: an upward import is caught (so a green run means something)."""
    assert not within("bridge.web.app", MAY_IMPORT["bridge.store"])
    assert within("bridge.store.models", MAY_IMPORT["bridge.inbox"])
    assert room_of("bridge.inbox.actions") == "bridge.inbox"
