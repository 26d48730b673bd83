"""The migration runner: ordered, once, checksummed, against a real PostgreSQL."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import asyncpg
import pytest

from mesh import migrations
from tests.support.ingest import Stores

pytestmark = [pytest.mark.integration]


async def _fresh_schema(stores: Stores) -> str:
    """A DSN whose connections work in a new, empty schema (the test user may not create databases)."""
    name = "mig_" + uuid.uuid4().hex[:10]
    conn = await asyncpg.connect(stores.postgres_dsn)
    try:
        await conn.execute(f'CREATE SCHEMA "{name}"')
    finally:
        await conn.close()
    return f"{stores.postgres_dsn}?search_path={name}"


@pytest.mark.asyncio(loop_scope="session")
async def test_applies_in_order_once_and_refuses_edits(stores: Stores, tmp_path: Path) -> None:
    dsn = await _fresh_schema(stores)
    folder = tmp_path / "migrations"
    folder.mkdir()
    shutil.copyfile(migrations.MIGRATIONS_DIR / "0001_ingest.sql", folder / "0001_ingest.sql")
    (folder / "0002_extra.sql").write_text("CREATE TABLE extra (id integer PRIMARY KEY);\n")

    applied = await migrations.apply_dsn(dsn, folder)
    assert [m.version for m in applied] == [1, 2]
    assert await migrations.apply_dsn(dsn, folder) == []
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT version, name FROM schema_migrations ORDER BY version")
        assert [(r["version"], r["name"]) for r in rows] == [(1, "ingest"), (2, "extra")]
        assert await conn.fetchval("SELECT count(*) FROM ingest_documents") == 0
    finally:
        await conn.close()

    (folder / "0002_extra.sql").write_text("CREATE TABLE extra (id bigint PRIMARY KEY);\n")
    with pytest.raises(migrations.MigrationError, match="changed after it was applied"):
        await migrations.apply_dsn(dsn, folder)

    (folder / "0002_extra.sql").unlink()
    with pytest.raises(migrations.MigrationError, match="does not know"):
        await migrations.apply_dsn(dsn, folder)


def test_file_names_are_checked(tmp_path: Path) -> None:
    (tmp_path / "1_bad.sql").write_text("SELECT 1;")
    with pytest.raises(migrations.MigrationError, match="NNNN_lower_snake"):
        migrations.load(tmp_path)
    (tmp_path / "1_bad.sql").unlink()
    (tmp_path / "0001_a.sql").write_text("SELECT 1;")
    (tmp_path / "0001_b.sql").write_text("SELECT 1;")
    with pytest.raises(migrations.MigrationError, match="share version"):
        migrations.load(tmp_path)
