"""Versioned PostgreSQL migrations: ``migrations/NNNN_name.sql`` applied in order, once.

Each file runs in its own transaction and is recorded in ``schema_migrations``
with a checksum of its text; an applied file that was edited afterwards is an
error (write a new migration instead). A session-level advisory lock makes
concurrent starters (several replicas, a CLI and a service) apply each file
exactly once. ``python -m mesh.migrations [--dsn DSN]`` applies them by hand.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncpg

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
"""Where the project's migration files live."""

_FILE_RE = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql$")
# Arbitrary constant shared by every process that migrates this database.
_LOCK_KEY = 0x7261676D65736801

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer     PRIMARY KEY,
    name       text        NOT NULL,
    checksum   text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


class MigrationError(RuntimeError):
    """The migrations on disk and the ones recorded in the database disagree."""


@dataclass(frozen=True)
class Migration:
    """One migration file."""

    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        """SHA-256 of the file's text."""
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migration files in ``directory``, in version order; rejects duplicates and stray names."""
    migrations: list[Migration] = []
    seen: dict[int, str] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_RE.match(path.name)
        if match is None:
            raise MigrationError(f"{path.name}: migration files are named NNNN_lower_snake.sql")
        version = int(match.group("version"))
        if version in seen:
            raise MigrationError(f"{path.name} and {seen[version]} share version {version}")
        seen[version] = path.name
        migrations.append(Migration(version, match.group("name"), path.read_text()))
    return sorted(migrations, key=lambda m: m.version)


async def apply(conn: asyncpg.Connection, directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Applies the migrations ``conn``'s database lacks; returns the ones applied now."""
    wanted = load(directory)
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
    try:
        await conn.execute(_CREATE_TABLE)
        rows = await conn.fetch("SELECT version, name, checksum FROM schema_migrations")
        applied = {row["version"]: row for row in rows}
        known = {m.version for m in wanted}
        unknown = sorted(set(applied) - known)
        if unknown:
            # A newer release migrated this database; running older code against it is unsafe.
            raise MigrationError(f"the database has migrations this code does not know: {unknown}")
        done: list[Migration] = []
        for migration in wanted:
            row = applied.get(migration.version)
            if row is not None:
                if row["checksum"] != migration.checksum:
                    raise MigrationError(
                        f"migration {migration.version:04d}_{migration.name} changed after it was applied; "
                        "add a new migration instead of editing an applied one"
                    )
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
            done.append(migration)
        return done
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)


async def apply_dsn(dsn: str, directory: Path = MIGRATIONS_DIR, timeout_s: float = 30.0) -> list[Migration]:
    """Connects to ``dsn`` and applies the missing migrations."""
    conn = await asyncpg.connect(dsn, timeout=timeout_s)
    try:
        return await apply(conn, directory)
    finally:
        await conn.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    from mesh.settings import MeshSettings

    parser = argparse.ArgumentParser(description="apply ragmesh's PostgreSQL migrations")
    parser.add_argument("--dsn", default=MeshSettings.from_env().postgres_dsn)
    parser.add_argument("--dir", type=Path, default=MIGRATIONS_DIR)
    args = parser.parse_args(argv)
    done = asyncio.run(apply_dsn(args.dsn, args.dir))
    for migration in done:
        print(f"applied {migration.version:04d}_{migration.name}")
    if not done:
        print("up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
