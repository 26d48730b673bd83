"""PostgreSQL or Redis SIGKILLed under the running mesh: what still works, what is refused, what is kept.

PostgreSQL down: chat still answers (the memory is degraded, and a STEP_MEMORY
FAILED step event says so: the history was not read, the turn not saved);
ingest refuses a new job with UNAVAILABLE. Redis down: the answer cache is
bypassed (a failed cache step, the answer still comes, nothing cached) and the
edge's per-tenant limit fails open while its local token bucket still counts
every call. After ``ragmesh up`` the next requests succeed and use the store.
"""

from __future__ import annotations

import re

import grpc
import pytest

from mesh.settings import MeshSettings
from mesh.stack import StackConfig
from mesh.stack.envoy_ratelimit import read_edge_limit_counters
from mesh.stack.probes import http_get
from ragmesh.agent.v1 import agent_service_pb2 as apb
from ragmesh.agent.v1 import agent_service_pb2_grpc as apb_grpc
from ragmesh.retrieval.v1 import retrieval_service_pb2 as rpb
from ragmesh.retrieval.v1 import retrieval_service_pb2_grpc as rpb_grpc
from tests.support import faults as harness
from tests.support.faults import Corpus
from tests.support.tenants import new_tenant

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TIMEOUT_S = 120.0


def _chat(channel: grpc.Channel, tenant: str, message: str, **kwargs: object) -> list[apb.StreamChatResponse]:
    stub = apb_grpc.AgentServiceStub(channel)  # type: ignore[no-untyped-call]
    request = apb.StreamChatRequest(message=message, **kwargs)  # type: ignore[arg-type]
    return list(stub.StreamChat(request, metadata=harness.person(tenant), timeout=TIMEOUT_S))


def _steps(replies: list[apb.StreamChatResponse], step: int) -> list[apb.StepEvent]:
    return [r.step for r in replies if r.WhichOneof("event") == "step" and r.step.step == step]


def _final(replies: list[apb.StreamChatResponse]) -> apb.FinalAnswer:
    assert replies and replies[-1].WhichOneof("event") == "final", [r.WhichOneof("event") for r in replies]
    return replies[-1].final


def _messages(channel: grpc.Channel, tenant: str, session_id: str) -> list[str]:
    stub = apb_grpc.AgentServiceStub(channel)  # type: ignore[no-untyped-call]
    request = apb.GetSessionRequest(session_id=session_id)
    return [m.role for m in stub.GetSession(request, metadata=harness.person(tenant), timeout=30).session.messages]


def test_with_postgres_down_chat_answers_degraded_and_ingest_refuses_new_jobs(
    settings: MeshSettings, corpus: Corpus, tmp_path_factory: pytest.TempPathFactory
) -> None:
    tenant, channel = corpus.tenant, corpus.channel
    # A session from before the fault, to follow up on while its history cannot be read.
    opened = _chat(channel, tenant, "What does Zephyrine relay 1 forward?", options=apb.ChatOptions(bypass_cache=True))
    session = opened[-1].session_id
    sessions_before = harness.session_ids(channel, tenant)
    newcomer = new_tenant("faults-refused")  # a tenant whose first job comes while the store is down
    cached_before = harness.answer_cache_keys(settings, tenant)

    with harness.healed_after():
        harness.kill("postgres")

        fresh = _chat(channel, tenant, "How often does Zephyrine relay 4 forward telemetry to the harbour archive?")
        answer = _final(fresh)
        assert answer.answer and answer.citations
        [saved] = _steps(fresh, apb.STEP_MEMORY)
        assert saved.status == apb.STEP_STATUS_FAILED
        assert saved.detail.startswith("memory degraded: the turn was not saved")

        follow_up = _chat(channel, tenant, "After how many days are relay 2's keys rotated?", session_id=session)
        assert _final(follow_up).answer and follow_up[-1].session_id == session
        read, saved = _steps(follow_up, apb.STEP_MEMORY)
        assert read.status == saved.status == apb.STEP_STATUS_FAILED
        assert read.detail.startswith("memory degraded: the session's history could not be read")

        folder = harness.write_corpus(tmp_path_factory.mktemp("refused"), 2)
        with pytest.raises(grpc.RpcError) as refused:
            harness.create_job(channel, newcomer, folder)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE, refused.value.details()
        assert "PostgreSQL" in (refused.value.details() or "")

    # Stored: no session or message of the degraded turns, no document record or point of the refused job.
    assert harness.session_ids(channel, tenant) == sessions_before
    assert _messages(channel, tenant, session) == ["user", "assistant"]
    with pytest.raises(grpc.RpcError) as missing:
        _messages(channel, tenant, fresh[-1].session_id)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    assert harness.document_records(channel, newcomer) == []
    assert set(harness.index_counts(settings, newcomer).values()) == {0}
    # The whole answer of the new session was cached, as in a run with the store up; the follow-up's was
    # not (it was made without its history).
    assert harness.answer_cache_keys(settings, tenant) == cached_before + 1

    # Back: the session takes the follow-up with its history, and the refused job runs.
    again = _chat(channel, tenant, "After how many days are relay 2's keys rotated?", session_id=session)
    assert _final(again).answer and not _steps(again, apb.STEP_MEMORY)
    assert _messages(channel, tenant, session) == ["user", "assistant"] * 2
    job = harness.ingest(channel, newcomer, folder)
    assert job.counts.documents_ingested == 2
    assert len(harness.document_records(channel, newcomer)) == 2


def _local_bucket_calls(config: StackConfig) -> int:
    """Calls the edge's local token bucket has seen (its ``enabled`` counter)."""
    status, body = http_get(f"http://{config.host}:{config.envoy_admin_port}/stats?filter=edge_local_rate_limit", 5)
    assert status == 200
    match = re.search(r"edge_local_rate_limit\.http_local_rate_limit\.enabled: (\d+)", body)
    assert match, body
    return int(match.group(1))


def test_with_redis_down_caches_are_bypassed_and_the_edge_limits_with_its_local_bucket(
    settings: MeshSettings, corpus: Corpus
) -> None:
    tenant, channel = corpus.tenant, corpus.channel
    config = StackConfig.from_env()
    question = "How often does Zephyrine relay 5 forward telemetry to the harbour archive?"
    retrieval = rpb_grpc.RetrievalServiceStub(channel)  # type: ignore[no-untyped-call]

    with harness.healed_after():
        harness.kill("redis")
        limits_before = read_edge_limit_counters(config)
        bucket_before = _local_bucket_calls(config)
        assert limits_before is not None

        replies = _chat(channel, tenant, question)
        assert _final(replies).answer and _final(replies).cache_hit == apb.CACHE_HIT_NONE
        lookups = _steps(replies, apb.STEP_CACHE_LOOKUP)
        assert any(s.status == apb.STEP_STATUS_FAILED and "cache unavailable" in s.detail for s in lookups)

        searches = 5
        for _ in range(searches):
            hits = retrieval.Search(
                rpb.SearchRequest(query="Zephyrine relay keys", top_k=3), metadata=harness.person(tenant), timeout=30
            ).hits
            assert hits
        limits_after = read_edge_limit_counters(config)
        assert limits_after is not None
        # Every call of the outage passed the edge without a per-tenant check (fail open) and through the
        # local token bucket, which still counts and limits them.
        assert limits_after.failure_mode_allowed - limits_before.failure_mode_allowed >= searches + 1
        assert _local_bucket_calls(config) - bucket_before >= searches + 1

    # Nothing was cached while Redis was down; after ragmesh up the cache stores and answers again.
    first = _final(_chat(channel, tenant, question))
    assert first.cache_hit == apb.CACHE_HIT_NONE
    second = _final(_chat(channel, tenant, question))
    assert second.cache_hit == apb.CACHE_HIT_EXACT and second.answer == first.answer
