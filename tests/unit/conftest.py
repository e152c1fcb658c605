"""Unit-test fixtures: a fresh, fully migrated SQLite database per test.

The migrations run once per session into a template file; each test gets a copy made with
SQLite's backup API (a real database with the real schema, in milliseconds rather than seconds).
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gpucloud.db import Database
from gpucloud.db.migrate import upgrade


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture
async def db(migrated_template: Path, tmp_path: Path) -> AsyncIterator[Database]:
    """A real SQLite database with every migration applied, closed after the test."""
    path = tmp_path / "unit.db"
    source, target = sqlite3.connect(migrated_template), sqlite3.connect(path)
    try:
        source.backup(target)
    finally:
        source.close()
        target.close()
    database = Database(f"sqlite+aiosqlite:///{path}")
    try:
        yield database
    finally:
        await database.close()
