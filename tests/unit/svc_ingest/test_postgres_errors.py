"""svc_ingest's stores when PostgreSQL cannot be reached: UNAVAILABLE (retryable), never an unmapped exception."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from mesh.errors import Code, Unavailable
from svc_ingest.clients.postgres import DocumentRepository, JobRepository
from svc_ingest.domain.model import Job, JobOptions, JobState


class FakeDownPool:
    """A pool whose every query fails as asyncpg fails when the server is gone."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    async def _fail(self, *args: Any, **kwargs: Any) -> Any:
        raise self.error

    fetch = fetchrow = fetchval = execute = executemany = _fail


def _job() -> Job:
    return Job(job_id="j1", tenant="acme", sources=("/data",), options=JobOptions(512, 64), state=JobState.QUEUED)


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 5432)"),
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.CannotConnectNowError("the database system is shutting down"),
        TimeoutError(),
    ],
)
async def test_a_store_that_cannot_be_reached_is_unavailable(error: BaseException) -> None:
    jobs = JobRepository(FakeDownPool(error))  # type: ignore[arg-type]
    documents = DocumentRepository(FakeDownPool(error))  # type: ignore[arg-type]
    calls = [
        jobs.create(_job(), "owner"),
        jobs.get("acme", "j1"),
        jobs.save(_job(), "owner"),
        documents.get_many("acme", ["d1"]),
        documents.mark_failed("acme", [("d1", "file:///a", "md", "CODE", "why")], "j1"),
    ]
    for call in calls:
        with pytest.raises(Unavailable) as raised:
            await call
        assert raised.value.code is Code.UNAVAILABLE and raised.value.reason == "POSTGRES_UNAVAILABLE"


async def test_a_query_error_is_not_made_retryable() -> None:
    jobs = JobRepository(FakeDownPool(asyncpg.UndefinedColumnError("column x does not exist")))  # type: ignore[arg-type]
    with pytest.raises(asyncpg.UndefinedColumnError):
        await jobs.get("acme", "j1")
