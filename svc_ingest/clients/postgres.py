"""Postgres access for svc_ingest: document state and jobs (tables from migrations/0001_ingest.sql).

Every call passes a timeout: the caller's remaining deadline when there is one, at
most the store timeout of the config (``mesh.context.call_timeout_s``).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

import asyncpg

from mesh.context import call_timeout_s
from mesh.errors import Unavailable
from svc_ingest.domain.model import (
    DocStatus,
    DocumentRecord,
    FileError,
    Job,
    JobCounts,
    JobOptions,
    JobState,
)

_CONNECTION_ERRORS = (
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.InterfaceError,
    OSError,
    TimeoutError,
)


@contextlib.contextmanager
def _store_errors() -> Iterator[None]:
    """A store that cannot be reached is UNAVAILABLE (retryable), not a bug: the caller may try again."""
    try:
        yield
    except _CONNECTION_ERRORS as exc:
        raise Unavailable(
            f"the ingest store (PostgreSQL) is unavailable: {exc}", reason="POSTGRES_UNAVAILABLE"
        ) from exc


class _Store:
    """The pool's query methods, with connection trouble mapped to UNAVAILABLE."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def fetch(self, query: str, *args: Any, **options: Any) -> list[Any]:
        with _store_errors():
            return list(await self._pool.fetch(query, *args, **options))

    async def fetchrow(self, query: str, *args: Any, **options: Any) -> Any:
        with _store_errors():
            return await self._pool.fetchrow(query, *args, **options)

    async def fetchval(self, query: str, *args: Any, **options: Any) -> Any:
        with _store_errors():
            return await self._pool.fetchval(query, *args, **options)

    async def execute(self, query: str, *args: Any, **options: Any) -> str:
        with _store_errors():
            result: str = await self._pool.execute(query, *args, **options)
            return result

    async def executemany(self, query: str, args: Iterable[Sequence[Any]], **options: Any) -> None:
        with _store_errors():
            await self._pool.executemany(query, args, **options)


def _record(row: asyncpg.Record) -> DocumentRecord:
    return DocumentRecord(
        tenant=row["tenant"],
        doc_id=row["doc_id"],
        source_uri=row["source_uri"],
        title=row["title"],
        document_type=row["document_type"],
        content_hash=row["content_hash"],
        doc_version=row["doc_version"],
        chunk_count=row["chunk_count"],
        status=DocStatus(row["status"]),
        pending_hash=row["pending_hash"],
        pending_version=row["pending_version"],
        settings_signature=row["settings_signature"],
        error_code=row["error_code"],
        error_reason=row["error_reason"],
        updated_at=row["updated_at"],
    )


class DocumentRepository:
    """Document state of every tenant."""

    def __init__(self, pool: asyncpg.Pool, timeout_s: float = 10.0) -> None:
        self._pool = _Store(pool)
        self._timeout_s = timeout_s

    async def get_many(self, tenant: str, doc_ids: Sequence[str]) -> dict[str, DocumentRecord]:
        """The records of ``doc_ids`` that exist, by doc id."""
        if not doc_ids:
            return {}
        rows = await self._pool.fetch(
            "SELECT * FROM ingest_documents WHERE tenant = $1 AND doc_id = ANY($2::text[])",
            tenant,
            list(doc_ids),
            timeout=call_timeout_s(self._timeout_s),
        )
        return {row["doc_id"]: _record(row) for row in rows}

    async def get(self, tenant: str, doc_id: str) -> DocumentRecord | None:
        """One record, or None."""
        return (await self.get_many(tenant, [doc_id])).get(doc_id)

    async def mark_pending(
        self, tenant: str, entries: Iterable[tuple[str, str, str, str, str, int]], job_id: str
    ) -> None:
        """Records that these versions are being written: (doc_id, uri, title, type, content_hash, version)."""
        rows = [(tenant, d, u, t, ty, h, v, job_id) for d, u, t, ty, h, v in entries]
        if not rows:
            return
        await self._pool.executemany(
            """
            INSERT INTO ingest_documents (tenant, doc_id, source_uri, title, document_type, status,
                                          pending_hash, pending_version, last_job_id)
            VALUES ($1, $2, $3, $4, $5, 'PENDING', $6, $7, $8)
            ON CONFLICT (tenant, doc_id) DO UPDATE SET
                source_uri = EXCLUDED.source_uri, status = 'PENDING',
                pending_hash = EXCLUDED.pending_hash, pending_version = EXCLUDED.pending_version,
                last_job_id = EXCLUDED.last_job_id, error_code = '', error_reason = '', updated_at = now()
            """,
            rows,
            timeout=call_timeout_s(self._timeout_s),
        )

    async def mark_indexed(
        self, tenant: str, entries: Iterable[tuple[str, str, str, str, int, int]], settings_signature: str
    ) -> None:
        """Records completed writes: (doc_id, title, type, content_hash, version, chunk_count)."""
        rows = [(tenant, d, t, ty, h, v, c, settings_signature) for d, t, ty, h, v, c in entries]
        if not rows:
            return
        await self._pool.executemany(
            """
            UPDATE ingest_documents SET
                title = $3, document_type = $4, content_hash = $5, doc_version = $6, chunk_count = $7,
                settings_signature = $8, status = 'INDEXED', pending_hash = NULL, pending_version = NULL,
                error_code = '', error_reason = '', updated_at = now()
            WHERE tenant = $1 AND doc_id = $2
            """,
            rows,
            timeout=call_timeout_s(self._timeout_s),
        )

    async def mark_failed(self, tenant: str, entries: Iterable[tuple[str, str, str, str, str]], job_id: str) -> None:
        """Records failed ingests: (doc_id, uri, document_type, code, reason); an indexed version stays."""
        rows = [(tenant, d, u, ty, c, r, job_id) for d, u, ty, c, r in entries]
        if not rows:
            return
        await self._pool.executemany(
            """
            INSERT INTO ingest_documents (tenant, doc_id, source_uri, document_type, status,
                                          error_code, error_reason, last_job_id)
            VALUES ($1, $2, $3, $4, 'FAILED', $5, $6, $7)
            ON CONFLICT (tenant, doc_id) DO UPDATE SET
                status = 'FAILED', error_code = EXCLUDED.error_code, error_reason = EXCLUDED.error_reason,
                last_job_id = EXCLUDED.last_job_id, updated_at = now()
            """,
            rows,
            timeout=call_timeout_s(self._timeout_s),
        )

    async def delete(self, tenant: str, doc_ids: Sequence[str]) -> int:
        """Removes records; returns how many existed."""
        if not doc_ids:
            return 0
        result = await self._pool.execute(
            "DELETE FROM ingest_documents WHERE tenant = $1 AND doc_id = ANY($2::text[])",
            tenant,
            list(doc_ids),
            timeout=call_timeout_s(self._timeout_s),
        )
        return int(result.split()[-1])

    async def under_prefix(self, tenant: str, prefix: str) -> list[tuple[str, str]]:
        """(doc_id, source_uri) of the tenant's documents whose URI starts with ``prefix``."""
        rows = await self._pool.fetch(
            "SELECT doc_id, source_uri FROM ingest_documents WHERE tenant = $1 AND starts_with(source_uri, $2)",
            tenant,
            prefix,
            timeout=call_timeout_s(self._timeout_s),
        )
        return [(row["doc_id"], row["source_uri"]) for row in rows]

    async def page(
        self, tenant: str, *, source_prefix: str, after_uri: str, after_doc_id: str, limit: int
    ) -> list[DocumentRecord]:
        """A page of documents ordered by (source_uri, doc_id), after the given key."""
        rows = await self._pool.fetch(
            """
            SELECT * FROM ingest_documents
            WHERE tenant = $1 AND starts_with(source_uri, $2) AND (source_uri, doc_id) > ($3, $4)
            ORDER BY source_uri, doc_id
            LIMIT $5
            """,
            tenant,
            source_prefix,
            after_uri,
            after_doc_id,
            limit,
            timeout=call_timeout_s(self._timeout_s),
        )
        return [_record(row) for row in rows]


def _job(row: asyncpg.Record) -> Job:
    options = json.loads(row["options"])
    errors = json.loads(row["errors"])
    return Job(
        job_id=row["job_id"],
        tenant=row["tenant"],
        state=JobState(row["state"]),
        sources=tuple(json.loads(row["sources"])),
        options=JobOptions(**options),
        counts=JobCounts.from_json(json.loads(row["counts"])),
        errors=[FileError(**e) for e in errors],
        create_time=row["create_time"],
        start_time=row["start_time"],
        end_time=row["end_time"],
        failure=row["failure"],
    )


class JobRepository:
    """Ingest jobs of every tenant."""

    def __init__(self, pool: asyncpg.Pool, timeout_s: float = 10.0) -> None:
        self._pool = _Store(pool)
        self._timeout_s = timeout_s

    async def create(self, job: Job, owner: str) -> Job:
        """Inserts a QUEUED job and returns it with its creation time."""
        row = await self._pool.fetchrow(
            """
            INSERT INTO ingest_jobs (job_id, tenant, state, sources, options, owner, heartbeat_at)
            VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6, now())
            RETURNING *
            """,
            job.job_id,
            job.tenant,
            job.state.value,
            json.dumps(list(job.sources)),
            json.dumps(vars(job.options)),
            owner,
            timeout=call_timeout_s(self._timeout_s),
        )
        assert row is not None
        return _job(row)

    async def get(self, tenant: str, job_id: str) -> Job | None:
        """The job, when it exists and belongs to ``tenant``."""
        row = await self._pool.fetchrow(
            "SELECT * FROM ingest_jobs WHERE job_id = $1 AND tenant = $2",
            job_id,
            tenant,
            timeout=call_timeout_s(self._timeout_s),
        )
        return None if row is None else _job(row)

    async def save(self, job: Job, owner: str) -> None:
        """Writes a job's state, counts and errors, and renews its heartbeat."""
        await self._pool.execute(
            """
            UPDATE ingest_jobs SET state = $2, counts = $3::jsonb, errors = $4::jsonb, failure = $5,
                start_time = $6, end_time = $7, owner = $8, heartbeat_at = now()
            WHERE job_id = $1
            """,
            job.job_id,
            job.state.value,
            json.dumps(job.counts.to_json()),
            json.dumps([vars(e) for e in job.errors]),
            job.failure,
            job.start_time,
            job.end_time,
            owner,
            timeout=call_timeout_s(self._timeout_s),
        )

    async def request_cancel(self, tenant: str, job_id: str) -> bool:
        """Flags a job for cancellation; False when no such job of the tenant exists."""
        result = await self._pool.execute(
            "UPDATE ingest_jobs SET cancel_requested = true WHERE job_id = $1 AND tenant = $2",
            job_id,
            tenant,
            timeout=call_timeout_s(self._timeout_s),
        )
        return bool(result.endswith(" 1"))

    async def cancel_requested(self, job_id: str) -> bool:
        """Whether someone asked this job to stop."""
        value = await self._pool.fetchval(
            "SELECT cancel_requested FROM ingest_jobs WHERE job_id = $1",
            job_id,
            timeout=call_timeout_s(self._timeout_s),
        )
        return bool(value)

    async def fail_abandoned(self, stale_before: datetime, failure: str, exclude: Sequence[str] = ()) -> list[str]:
        """Marks QUEUED/RUNNING jobs whose owner stopped heartbeating as FAILED; returns their ids."""
        rows = await self._pool.fetch(
            """
            UPDATE ingest_jobs SET state = 'FAILED', failure = $2, end_time = now()
            WHERE state IN ('QUEUED', 'RUNNING') AND (heartbeat_at IS NULL OR heartbeat_at < $1)
              AND NOT (job_id = ANY($3::text[]))
            RETURNING job_id
            """,
            stale_before,
            failure,
            list(exclude),
            timeout=call_timeout_s(self._timeout_s),
        )
        return [row["job_id"] for row in rows]

    async def fail_owned(self, owner: str, failure: str) -> list[str]:
        """Marks this instance's unfinished jobs FAILED (used on start-up: they died with the last run)."""
        rows = await self._pool.fetch(
            """
            UPDATE ingest_jobs SET state = 'FAILED', failure = $2, end_time = now()
            WHERE state IN ('QUEUED', 'RUNNING') AND owner = $1
            RETURNING job_id
            """,
            owner,
            failure,
            timeout=call_timeout_s(self._timeout_s),
        )
        return [row["job_id"] for row in rows]


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 8, timeout_s: float = 10.0) -> Any:
    """An asyncpg pool with JSON codecs left as text (the repositories encode JSON themselves)."""
    return await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, timeout=timeout_s, command_timeout=timeout_s * 6
    )
