"""svc_inference SIGKILLed while StreamChat streams an answer.

The caller's stream ends with UNAVAILABLE well inside its deadline (never a
hang), nothing of the half answer is kept (no session, no message, no answer
cache entry), and once ``ragmesh up`` has brought svc_inference back the same
question is answered in full, from the model, not from a cache.
"""

from __future__ import annotations

import threading
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

    events: list[apb.StreamChatResponse] = []
    outcome: dict[str, object] = {}
    first_token = threading.Event()

    def chat() -> None:
        started = time.monotonic()
        try:
            call = agent.StreamChat(
                apb.StreamChatRequest(message=QUESTION), metadata=harness.person(tenant), timeout=DEADLINE_S
            )
            for event in call:
                events.append(event)
                if event.WhichOneof("event") == "token":
                    first_token.set()
            outcome["code"] = grpc.StatusCode.OK
        except grpc.RpcError as exc:
            outcome["code"], outcome["details"] = exc.code(), exc.details()
        finally:
            outcome["elapsed_s"] = time.monotonic() - started
            first_token.set()

    victim = harness.pid_of("svc_inference")
    with harness.healed_after():
        worker = threading.Thread(target=chat, daemon=True)
        worker.start()
        assert first_token.wait(DEADLINE_S), "no token streamed"
        assert "code" not in outcome, f"the answer ended before the fault: {outcome}"
        harness.kill("svc_inference", pid=victim)
        worker.join(DEADLINE_S + 10)
        assert not worker.is_alive(), "the stream hangs past its deadline"

        assert outcome["code"] == grpc.StatusCode.UNAVAILABLE, outcome
        assert float(outcome["elapsed_s"]) < DEADLINE_S  # type: ignore[arg-type]
        assert "Traceback" not in str(outcome["details"]) and ".py" not in str(outcome["details"])
        assert not any(e.WhichOneof("event") == "final" for e in events)
        session_id = events[0].session_id
        # Nothing of the half answer was kept: no session, no message, no cached answer.
        assert harness.session_ids(channel, tenant) == sessions_before
        with pytest.raises(grpc.RpcError) as missing:
            agent.GetSession(apb.GetSessionRequest(session_id=session_id), metadata=harness.person(tenant), timeout=30)
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
        assert harness.answer_cache_keys(settings, tenant) == cached_before

    # Back without manual steps beyond `ragmesh up`: the same question gets a whole answer from the model.
    replies = list(
        agent.StreamChat(apb.StreamChatRequest(message=QUESTION), metadata=harness.person(tenant), timeout=DEADLINE_S)
    )
    final = replies[-1].final
    assert replies[-1].WhichOneof("event") == "final" and final.answer
    assert final.cache_hit == apb.CACHE_HIT_NONE
    assert len(harness.session_ids(channel, tenant)) == len(sessions_before) + 1
    stored = agent.GetSession(
        apb.GetSessionRequest(session_id=replies[-1].session_id), metadata=harness.person(tenant), timeout=30
    ).session
    assert [m.role for m in stored.messages] == ["user", "assistant"]
    assert stored.messages[1].content == final.answer
