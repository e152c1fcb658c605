"""Migrations: the head schema matches the models, upgrading is idempotent and stepwise, and a
'%' in the URL survives Alembic's config interpolation."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from alembic.script import ScriptDirectory

from gpucloud.db import Base
from gpucloud.db.migrate import alembic_config, upgrade_async


def _tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as connection:
        rows = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {r[0] for r in rows} - {"alembic_version"}


def _revision(path: Path) -> str:
    with sqlite3.connect(path) as connection:
        return str(connection.execute("SELECT version_num FROM alembic_version").fetchone()[0])


def test_the_head_schema_has_every_models_table_and_column(migrated_template: Path) -> None:
    assert _tables(migrated_template) == set(Base.metadata.tables)
    with sqlite3.connect(migrated_template) as connection:
        for name, table in Base.metadata.tables.items():
            columns = {r[1] for r in connection.execute(f'PRAGMA table_info("{name}")')}
            assert columns == set(table.columns.keys()), name


def test_one_head_and_a_linear_history() -> None:
    scripts = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert len(scripts.get_heads()) == 1
    revisions = list(scripts.walk_revisions())
    assert revisions[-1].down_revision is None
    assert all(not isinstance(r.down_revision, tuple) for r in revisions)  # no merges


async def test_upgrading_stepwise_reaches_the_same_head_and_again_is_a_no_op(tmp_path: Path) -> None:
    path = tmp_path / "steps.db"
    url = f"sqlite+aiosqlite:///{path}"
    await upgrade_async(url, "0001")
    assert _revision(path) == "0001"
    assert "jobs" in _tables(path)
    await upgrade_async(url)
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    assert _revision(path) == head
    await upgrade_async(url)
    assert _revision(path) == head


def test_a_percent_sign_in_the_url_survives_interpolation() -> None:
    url = "postgresql+asyncpg://u:p%40ss%25word@127.0.0.1/db"
    assert alembic_config(url).get_main_option("sqlalchemy.url") == url
