"""Chat memory in the real PostgreSQL: turns, history, sessions, pagination, feedback, tenants."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid

import asyncpg
import pytest

from mesh.errors import InvalidArgument, NotFound, PermissionDenied
from svc_agent.clients.memory import PostgresChatMemory
from svc_agent.domain.model import Citation, Role
from svc_agent.domain.ports import CompletedTurn
from tests.support.tenants import new_tenant

pytestmark = pytest.mark.integration

CITATION = Citation(1, "c1", "d1", "file:///docs/a.md", "A", "snippet", 0.7)


def turn(tenant: str, session_id: str, question: str, *, new: bool, subject: str = "alice") -> CompletedTurn:
    return CompletedTurn(
        tenant=tenant,
        subject=subject,
        session_id=session_id,
        new_session=new,
        user_message_id=uuid.uuid4().hex,
        question=question,
        rewritten_query=question + " (standalone)",
        answer_message_id=uuid.uuid4().hex,
        answer=f"answer to {question} [1]",
        citations=(CITATION,),
        answered_from_documents=True,
        cache_hit="none",
    )


async def test_turns_build_a_session_and_its_history(pool: asyncpg.Pool) -> None:
    memory = PostgresChatMemory(pool)
    tenant, session = new_tenant(), uuid.uuid4().hex
    first = turn(tenant, session, "What is a Pod?", new=True)
    await memory.record_turn(first)
    await memory.record_turn(turn(tenant, session, "How do I create one?", new=False))

    history = await memory.history(tenant, "alice", session, max_turns=3)
    assert [(t.role, t.content) for t in history] == [
        (Role.ASSISTANT, "answer to What is a Pod? [1]"),
        (Role.USER, "How do I create one?"),
        (Role.ASSISTANT, "answer to How do I create one? [1]"),
    ]
    assert history[1].rewritten_query == "How do I create one? (standalone)"

    stored = await memory.get_session(tenant, "alice", session)
    assert stored.title == "What is a Pod?" and stored.message_count == 4
    assert [m.role for m in stored.messages] == [Role.USER, Role.ASSISTANT, Role.USER, Role.ASSISTANT]
    assert stored.messages[1].message_id == first.answer_message_id
    assert stored.messages[1].citations == (CITATION,)


async def test_concurrent_turns_in_one_session_lose_nothing(pool: asyncpg.Pool) -> None:
    memory = PostgresChatMemory(pool)
    tenant, session = new_tenant(), uuid.uuid4().hex
    await memory.record_turn(turn(tenant, session, "q0", new=True))
    await asyncio.gather(*(memory.record_turn(turn(tenant, session, f"q{i}", new=False)) for i in range(1, 9)))
    stored = await memory.get_session(tenant, "alice", session)
    assert stored.message_count == 18 == len(stored.messages)
    assert sorted(m.content for m in stored.messages if m.role is Role.USER) == sorted(f"q{i}" for i in range(9))


async def test_sessions_are_per_tenant(pool: asyncpg.Pool) -> None:
    memory = PostgresChatMemory(pool)
    owner, other, session = new_tenant(), new_tenant(), uuid.uuid4().hex
    await memory.record_turn(turn(owner, session, "mine", new=True))
    with pytest.raises(NotFound):
        await memory.get_session(other, "alice", session)
    with pytest.raises(NotFound):
        await memory.history(other, "alice", session, 4)
    with pytest.raises(NotFound):
        await memory.delete_session(other, "alice", session)
    assert (await memory.list_sessions(other, "alice", 10, "")).sessions == ()
    with pytest.raises(NotFound):
        await memory.record_turn(turn(other, session, "not yours", new=False))
    assert (await memory.get_session(owner, "alice", session)).message_count == 2


async def test_sessions_are_per_person_within_a_tenant(pool: asyncpg.Pool) -> None:
    memory = PostgresChatMemory(pool)
    tenant, session = new_tenant(), uuid.uuid4().hex
    done = turn(tenant, session, "mine", new=True, subject="alice")
    await memory.record_turn(done)
    with pytest.raises(PermissionDenied):
        await memory.get_session(tenant, "bob", session)
    with pytest.raises(PermissionDenied):
        await memory.history(tenant, "bob", session, 4)
    with pytest.raises(PermissionDenied):
        await memory.delete_session(tenant, "bob", session)
    with pytest.raises(PermissionDenied):
        await memory.record_turn(turn(tenant, session, "not yours", new=False, subject="bob"))
    with pytest.raises(PermissionDenied):
        await memory.submit_feedback(tenant, session, done.answer_message_id, "bob", "up", "")
    assert (await memory.list_sessions(tenant, "bob", 10, "")).sessions == ()
    assert [s.session_id for s in (await memory.list_sessions(tenant, "alice", 10, "")).sessions] == [session]
    assert (await memory.get_session(tenant, "alice", session)).message_count == 2


async def test_list_sessions_pages_newest_first(pool: asyncpg.Pool) -> None:
    memory = PostgresChatMemory(pool)
    tenant = new_tenant()
    ids = [uuid.uuid4().hex for _ in range(5)]
    for index, session in enumerate(ids):
        await memory.record_turn(turn(tenant, session, f"question {index}", new=True))
    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        page = await memory.list_sessions(tenant, "alice", 2, token)
        seen += [s.session_id for s in page.sessions]
        pages += 1
        token = page.next_page_token
        if not token:
            break
    assert seen == list(reversed(ids)) and pages == 3
    assert all(s.messages == () for s in (await memory.list_sessions(tenant, "alice", 0, "")).sessions)


async def test_a_bad_page_token_is_invalid_argument(pool: asyncpg.Pool) -> None:
    with pytest.raises(InvalidArgument) as info:
        await PostgresChatMemory(pool).list_sessions(new_tenant(), "alice", 10, "not-a-token")
    assert [v.field for v in info.value.violations] == ["page_token"]


async def test_feedback_is_one_per_answer_from_the_sessions_owner_and_goes_with_the_session(
    pool: asyncpg.Pool,
) -> None:
    memory = PostgresChatMemory(pool)
    tenant, session = new_tenant(), uuid.uuid4().hex
    done = turn(tenant, session, "What is a Pod?", new=True)
    await memory.record_turn(done)
    first = await memory.submit_feedback(tenant, session, done.answer_message_id, "alice", "up", "")
    again = await memory.submit_feedback(tenant, session, done.answer_message_id, "alice", "down", "wrong page")
    assert first == again
    with pytest.raises(PermissionDenied):
        await memory.submit_feedback(tenant, session, done.answer_message_id, "bob", "up", "")
    rows = await pool.fetch("SELECT subject, rating, comment FROM agent_feedback WHERE tenant = $1", tenant)
    assert sorted(tuple(r) for r in rows) == [("alice", "down", "wrong page")]
    # Reading the session back gives the reader's own rating on the answer, none on the question.
    read = (await memory.get_session(tenant, "alice", session)).messages
    assert [(m.role, m.rating, m.rating_comment) for m in read] == [
        (Role.USER, "", ""),
        (Role.ASSISTANT, "down", "wrong page"),
    ]

    with pytest.raises(InvalidArgument):
        await memory.submit_feedback(tenant, session, done.user_message_id, "alice", "up", "")
    with pytest.raises(NotFound):
        await memory.submit_feedback(tenant, session, "no-such-message", "alice", "up", "")
    with pytest.raises(NotFound):
        await memory.submit_feedback(new_tenant(), session, done.answer_message_id, "alice", "up", "")

    await memory.delete_session(tenant, "alice", session)
    left = await pool.fetchval(
        "SELECT (SELECT count(*) FROM agent_messages WHERE tenant = $1) + "
        "(SELECT count(*) FROM agent_feedback WHERE tenant = $1)",
        tenant,
    )
    assert left == 0
    with pytest.raises(NotFound):
        await memory.delete_session(tenant, "alice", session)


async def test_a_nul_from_the_model_or_a_document_is_dropped_not_an_error(pool: asyncpg.Pool) -> None:
    # Text columns and jsonb cannot hold NUL; StreamChat refuses one in the message, but the
    # model's answer and a cited snippet come from elsewhere (the fuzzer's INTERNAL before this).
    memory = PostgresChatMemory(pool)
    tenant, session = new_tenant(), uuid.uuid4().hex
    cited = Citation(1, "c1", "d1", "file:///docs/a.md", "A\x00", "snip\x00pet", 0.7)
    done = dataclasses.replace(turn(tenant, session, "q\x00", new=True), answer="an\x00swer [1]", citations=(cited,))
    await memory.record_turn(done)
    stored = await memory.get_session(tenant, "alice", session)
    assert [m.content for m in stored.messages] == ["q", "answer [1]"]
    assert stored.messages[1].citations[0].snippet == "snippet"
