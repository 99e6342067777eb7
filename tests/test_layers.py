"""Dependencies flow one way: the network adapters know the bridge's domain types and its channel
interface, never its store, pipeline or web pages (which reach the networks only through it)."""

from __future__ import annotations

import ast
from pathlib import Path

BOTS = Path(__file__).resolve().parents[1] / "bots"
BRIDGE_INSIDES = ("bridge.store", "bridge.pipeline", "bridge.web", "bridge.store.customer_history")
DATABASE_LIBRARIES = ("sqlalchemy", "asyncpg", "aiosqlite")


def imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_no_network_adapter_reaches_into_the_store_pipeline_or_web() -> None:
    forbidden = BRIDGE_INSIDES + DATABASE_LIBRARIES
    offending = {
        f"{path.relative_to(BOTS.parent)}: {module}"
        for path in BOTS.rglob("*.py")
        for module in imported_modules(path)
        if module.startswith(forbidden)
    }
    assert not offending, sorted(offending)
