"""Chat memory in PostgreSQL through asyncpg: sessions, messages and feedback per tenant.

The tables come from ``migrations/0100_agent.sql`` (applied by ``ragmesh up``
through ``mesh.migrations``). Every query is scoped by tenant, and every call
gets a timeout from the request's remaining deadline.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime as dt
import json
import uuid
from collections.abc import Iterator
from typing import Any

import asyncpg

from mesh import telemetry
from mesh.context import call_timeout_s
from mesh.errors import FailedPrecondition, FieldViolation, InvalidArgument, NotFound, PermissionDenied, Unavailable
from svc_agent.clients.codec import citations_from_json, citations_to_json
from svc_agent.domain.model import Role, Turn
from svc_agent.domain.ports import CompletedTurn, SessionInfo, SessionPage, StoredMessage
from svc_agent.domain.text import shorten

TITLE_CHARS = 80
DEFAULT_PAGE_SIZE = 20


@contextlib.contextmanager
def _store_errors() -> Iterator[None]:
    """Connection trouble becomes UNAVAILABLE; missing tables, FAILED_PRECONDITION; the rest is a bug."""
    try:
        yield
    except asyncpg.UndefinedTableError as exc:
        raise FailedPrecondition(
            "the chat memory tables are missing: apply the migrations (ragmesh up does)",
            reason="SCHEMA_MISSING",
        ) from exc
    except (
        asyncpg.PostgresConnectionError,
        asyncpg.CannotConnectNowError,
        asyncpg.TooManyConnectionsError,
        asyncpg.InterfaceError,
        asyncpg.SerializationError,
        asyncpg.DeadlockDetectedError,
        OSError,
        TimeoutError,
    ) as exc:
        raise Unavailable(f"chat memory unavailable: {exc}", reason="POSTGRES_UNAVAILABLE") from exc


def _encode_token(updated_at: dt.datetime, session_id: str) -> str:
    raw = json.dumps({"u": updated_at.isoformat(), "s": session_id}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str) -> tuple[dt.datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        return dt.datetime.fromisoformat(data["u"]), str(data["s"])
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise InvalidArgument(
            "page_token is not a token ListSessions returned",
            reason="INVALID_PAGE_TOKEN",
            violations=[FieldViolation("page_token", "not a token ListSessions returned")],
        ) from exc


def _session_not_found(session_id: str) -> NotFound:
    return NotFound(f"session {session_id} not found", reason="SESSION_NOT_FOUND", metadata={"session_id": session_id})


def _session(row: Any, messages: tuple[StoredMessage, ...] = ()) -> SessionInfo:
    return SessionInfo(
        session_id=row["session_id"],
        title=row["title"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        message_count=row["message_count"],
        messages=messages,
    )


def _text(value: str) -> str:
    """Text as PostgreSQL can store it: the model or a document may produce a NUL, which text cannot hold."""
    return value.replace("\x00", "")


def _json_text(document: str) -> str:
    """A JSON document without NULs in its strings (jsonb refuses \\u0000)."""
    if "\\u0000" not in document:
        return document
    return json.dumps(json.loads(document, object_hook=_no_nul_values))


def _no_nul_values(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _text(v) if isinstance(v, str) else v for k, v in item.items()}


class PostgresChatMemory:
    """ChatMemory over an asyncpg pool."""

    def __init__(self, pool: asyncpg.Pool, *, timeout_s: float = 5.0) -> None:
        self._pool = pool
        self._timeout_s = timeout_s

    def _timeout(self) -> float:
        return call_timeout_s(self._timeout_s)

    async def _check_owner(self, conn: Any, tenant: str, subject: str, session_id: str) -> None:
        """NotFound for an unknown session, PermissionDenied for another subject's."""
        owner = await conn.fetchval(
            "SELECT subject FROM agent_sessions WHERE tenant = $1 AND session_id = $2",
            tenant,
            session_id,
            timeout=self._timeout(),
        )
        if owner is None:
            raise _session_not_found(session_id)
        if owner != subject:
            raise PermissionDenied(
                f"session {session_id} belongs to another user",
                reason="SESSION_NOT_OWNED",
                metadata={"session_id": session_id},
            )

    @telemetry.traced_store("postgresql", "history")
    async def history(self, tenant: str, subject: str, session_id: str, max_turns: int) -> list[Turn]:
        """The session's last ``max_turns`` messages, oldest first; NotFound for an unknown session."""
        with _store_errors():
            async with self._pool.acquire(timeout=self._timeout()) as conn:
                await self._check_owner(conn, tenant, subject, session_id)
                rows = await conn.fetch(
                    "SELECT role, content, rewritten_query FROM agent_messages "
                    "WHERE tenant = $1 AND session_id = $2 ORDER BY position DESC LIMIT $3",
                    tenant,
                    session_id,
                    max_turns,
                    timeout=self._timeout(),
                )
        return [Turn(Role(r["role"]), r["content"], r["rewritten_query"]) for r in reversed(rows)]

    @telemetry.traced_store("postgresql", "record_turn")
    async def record_turn(self, turn: CompletedTurn) -> None:
        """Writes question and answer (and the session when new) in one transaction."""
        with _store_errors():
            async with self._pool.acquire(timeout=self._timeout()) as conn, conn.transaction():
                if turn.new_session:
                    await conn.execute(
                        "INSERT INTO agent_sessions (tenant, session_id, subject, title, message_count) "
                        "VALUES ($1, $2, $3, $4, 2)",
                        turn.tenant,
                        turn.session_id,
                        turn.subject,
                        shorten(_text(turn.question), TITLE_CHARS),
                        timeout=self._timeout(),
                    )
                    count = 2
                else:
                    # The row lock this takes orders concurrent turns of one session.
                    count = await conn.fetchval(
                        "UPDATE agent_sessions SET message_count = message_count + 2, updated_at = now() "
                        "WHERE tenant = $1 AND session_id = $2 AND subject = $3 RETURNING message_count",
                        turn.tenant,
                        turn.session_id,
                        turn.subject,
                        timeout=self._timeout(),
                    )
                    if count is None:
                        await self._check_owner(conn, turn.tenant, turn.subject, turn.session_id)
                        raise NotFound(
                            f"session {turn.session_id} was deleted while the answer was written",
                            reason="SESSION_NOT_FOUND",
                            metadata={"session_id": turn.session_id},
                        )
                await conn.executemany(
                    "INSERT INTO agent_messages (tenant, message_id, session_id, position, role, content, "
                    "rewritten_query, citations, answered_from_documents, cache_hit) "
                    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10)",
                    [
                        (
                            turn.tenant,
                            turn.user_message_id,
                            turn.session_id,
                            count - 1,
                            Role.USER.value,
                            _text(turn.question),
                            _text(turn.rewritten_query),
                            "[]",
                            None,
                            "",
                        ),
                        (
                            turn.tenant,
                            turn.answer_message_id,
                            turn.session_id,
                            count,
                            Role.ASSISTANT.value,
                            _text(turn.answer),
                            "",
                            _json_text(citations_to_json(turn.citations)),
                            turn.answered_from_documents,
                            turn.cache_hit,
                        ),
                    ],
                    timeout=self._timeout(),
                )

    @telemetry.traced_store("postgresql", "get_session")
    async def get_session(self, tenant: str, subject: str, session_id: str) -> SessionInfo:
        """The session with its messages, oldest first."""
        with _store_errors():
            async with self._pool.acquire(timeout=self._timeout()) as conn:
                row = await conn.fetchrow(
                    "SELECT session_id, subject, title, message_count, created_at, updated_at FROM agent_sessions "
                    "WHERE tenant = $1 AND session_id = $2",
                    tenant,
                    session_id,
                    timeout=self._timeout(),
                )
                if row is None or row["subject"] != subject:
                    await self._check_owner(conn, tenant, subject, session_id)
                # The reader's own rating of each answer comes with it, so a reopened conversation shows it.
                rows = await conn.fetch(
                    "SELECT m.message_id, m.role, m.content, m.citations::text AS citations, m.created_at, "
                    "m.rewritten_query, coalesce(f.rating, '') AS rating, coalesce(f.comment, '') AS rating_comment "
                    "FROM agent_messages m LEFT JOIN agent_feedback f "
                    "ON f.tenant = m.tenant AND f.message_id = m.message_id AND f.subject = $3 "
                    "WHERE m.tenant = $1 AND m.session_id = $2 ORDER BY m.position",
                    tenant,
                    session_id,
                    subject,
                    timeout=self._timeout(),
                )
        messages = tuple(
            StoredMessage(
                message_id=r["message_id"],
                role=Role(r["role"]),
                content=r["content"],
                citations=citations_from_json(r["citations"]),
                created_at=r["created_at"],
                rewritten_query=r["rewritten_query"],
                rating=r["rating"],
                rating_comment=r["rating_comment"],
            )
            for r in rows
        )
        return _session(row, messages)

    @telemetry.traced_store("postgresql", "list_sessions")
    async def list_sessions(self, tenant: str, subject: str, page_size: int, page_token: str) -> SessionPage:
        """The subject's sessions in the tenant, most recently updated first, ``page_size`` at a time."""
        size = page_size or DEFAULT_PAGE_SIZE
        after: tuple[dt.datetime, str] | None = _decode_token(page_token) if page_token else None
        with _store_errors():
            async with self._pool.acquire(timeout=self._timeout()) as conn:
                rows = await conn.fetch(
                    "SELECT session_id, title, message_count, created_at, updated_at FROM agent_sessions "
                    "WHERE tenant = $1 AND subject = $5 "
                    "AND ($2::timestamptz IS NULL OR (updated_at, session_id) < ($2, $3)) "
                    "ORDER BY updated_at DESC, session_id DESC LIMIT $4",
                    tenant,
                    after[0] if after else None,
                    after[1] if after else "",
                    size + 1,
                    subject,
                    timeout=self._timeout(),
                )
        page = rows[:size]
        token = _encode_token(page[-1]["updated_at"], page[-1]["session_id"]) if len(rows) > size else ""
        return SessionPage(tuple(_session(r) for r in page), token)

    @telemetry.traced_store("postgresql", "delete_session")
    async def delete_session(self, tenant: str, subject: str, session_id: str) -> None:
        """Deletes the session; its messages and their feedback go with it."""
        with _store_errors():
            async with self._pool.acquire(timeout=self._timeout()) as conn:
                deleted = await conn.fetchval(
                    "DELETE FROM agent_sessions WHERE tenant = $1 AND session_id = $2 AND subject = $3 "
                    "RETURNING session_id",
                    tenant,
                    session_id,
                    subject,
                    timeout=self._timeout(),
                )
                if deleted is None:
                    await self._check_owner(conn, tenant, subject, session_id)

    @telemetry.traced_store("postgresql", "submit_feedback")
    async def submit_feedback(
        self, tenant: str, session_id: str, message_id: str, subject: str, rating: str, comment: str
    ) -> str:
        """Stores the subject's opinion of an answer, replacing an earlier one; returns its id."""
        with _store_errors():
            async with self._pool.acquire(timeout=self._timeout()) as conn:
                await self._check_owner(conn, tenant, subject, session_id)
                role = await conn.fetchval(
                    "SELECT role FROM agent_messages WHERE tenant = $1 AND session_id = $2 AND message_id = $3",
                    tenant,
                    session_id,
                    message_id,
                    timeout=self._timeout(),
                )
                if role is None:
                    raise NotFound(
                        f"message {message_id} not found in session {session_id}",
                        reason="MESSAGE_NOT_FOUND",
                        metadata={"session_id": session_id, "message_id": message_id},
                    )
                if role != Role.ASSISTANT.value:
                    raise InvalidArgument(
                        "feedback is given on answers, and this message is a question",
                        reason="NOT_AN_ANSWER",
                        violations=[FieldViolation("message_id", "names a user message, not an answer")],
                    )
                feedback_id: str = await conn.fetchval(
                    "INSERT INTO agent_feedback "
                    "(tenant, feedback_id, session_id, message_id, subject, rating, comment) "
                    "VALUES ($1, $2, $3, $4, $5, $6, $7) "
                    "ON CONFLICT (tenant, message_id, subject) DO UPDATE "
                    "SET rating = EXCLUDED.rating, comment = EXCLUDED.comment, updated_at = now() "
                    "RETURNING feedback_id",
                    tenant,
                    uuid.uuid4().hex,
                    session_id,
                    message_id,
                    subject,
                    rating,
                    comment,
                    timeout=self._timeout(),
                )
        return feedback_id
