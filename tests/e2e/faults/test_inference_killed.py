"""svc_inference SIGKILLed, then a question asked.

However the agent answers (generating with the model, or quoting the evidence, which
needs the embedder), the caller's stream ends well inside its deadline, never hangs:
either with an answer that says which retrieval legs it lost (and is not cached, so the
next asking does not get the degraded one), or with UNAVAILABLE and nothing of the half
answer kept (no session, no message, no cache entry). Once ``ragmesh up`` has brought
svc_inference back, the same question is answered in full, not from a cache.
"""

from __future__ import annotations

import time

import grpc
import pytest

from mesh.settings import MeshSettings
from ragmesh.agent.v1 import agent_service_pb2 as apb
from ragmesh.agent.v1 import agent_service_pb2_grpc as apb_grpc
from tests.support import faults as harness
from tests.support.faults import Corpus

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

QUESTION = "How often does Zephyrine relay 3 forward telemetry to the harbour archive?"
DEADLINE_S = 120.0


def test_a_chat_whose_model_dies_ends_unavailable_and_leaves_nothing_behind(
    settings: MeshSettings, corpus: Corpus
) -> None:
    tenant, channel = corpus.tenant, corpus.channel
    agent = apb_grpc.AgentServiceStub(channel)  # type: ignore[no-untyped-call]
    sessions_before = harness.session_ids(channel, tenant)
    cached_before = harness.answer_cache_keys(settings, tenant)

    victim = harness.pid_of("svc_inference")
    with harness.healed_after():
        harness.kill("svc_inference", pid=victim)
        started = time.monotonic()
        events: list[apb.StreamChatResponse] = []
        code, details = grpc.StatusCode.OK, ""
        try:
            call = agent.StreamChat(
                apb.StreamChatRequest(message=QUESTION), metadata=harness.person(tenant), timeout=DEADLINE_S
            )
            events.extend(call)
        except grpc.RpcError as exc:
            code, details = exc.code(), exc.details() or ""
        elapsed = time.monotonic() - started
        assert elapsed < DEADLINE_S, "the stream ran into its deadline: nothing told the caller the model was gone"
        assert "Traceback" not in details and ".py" not in details
        finals = [e.final for e in events if e.WhichOneof("event") == "final"]
        if code == grpc.StatusCode.OK:
            (final,) = finals
            assert final.answer
            # The retrieve step says which leg it lost (the query embedding needs svc_inference).
            steps = [e.step.detail for e in events if e.WhichOneof("event") == "step"]
            assert any("degraded legs" in d and "dense" in d for d in steps), steps
            # A degraded answer is never cached: the next asking, healed, gets a whole one.
            assert harness.answer_cache_keys(settings, tenant) == cached_before
            healed_sessions = len(sessions_before) + 2
        else:
            assert code == grpc.StatusCode.UNAVAILABLE, (code, details)
            assert not finals
            # Nothing of the half answer was kept: no session, no message, no cached answer.
            assert harness.session_ids(channel, tenant) == sessions_before
            if events:
                with pytest.raises(grpc.RpcError) as missing:
                    agent.GetSession(
                        apb.GetSessionRequest(session_id=events[0].session_id),
                        metadata=harness.person(tenant),
                        timeout=30,
                    )
                assert missing.value.code() == grpc.StatusCode.NOT_FOUND
            assert harness.answer_cache_keys(settings, tenant) == cached_before
            healed_sessions = len(sessions_before) + 1

    # Back without manual steps beyond `ragmesh up`: the same question gets a whole answer from the model.
    replies = list(
        agent.StreamChat(apb.StreamChatRequest(message=QUESTION), metadata=harness.person(tenant), timeout=DEADLINE_S)
    )
    final = replies[-1].final
    assert replies[-1].WhichOneof("event") == "final" and final.answer
    assert final.cache_hit == apb.CACHE_HIT_NONE
    assert len(harness.session_ids(channel, tenant)) == healed_sessions
    stored = agent.GetSession(
        apb.GetSessionRequest(session_id=replies[-1].session_id), metadata=harness.person(tenant), timeout=30
    ).session
    assert [m.role for m in stored.messages] == ["user", "assistant"]
    assert stored.messages[1].content == final.answer
