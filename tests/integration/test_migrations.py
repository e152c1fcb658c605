"""Migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command

from gpucloud.db.migrate import alembic_config, upgrade
from tests.support import create_pg_database, drop_pg_database


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_upgrade_matches_models_and_is_repeatable(backend: str, tmp_path: Path) -> None:
    url = create_pg_database() if backend == "postgres" else f"sqlite+aiosqlite:///{tmp_path}/m.db"
    try:
        upgrade(url)
        upgrade(url)  # a second upgrade is a no-op
        command.check(alembic_config(url))  # raises if the models and the migrations differ
        command.downgrade(alembic_config(url), "base")
        upgrade(url)
    finally:
        if backend == "postgres":
            drop_pg_database(url)
