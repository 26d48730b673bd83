"""The Envoy edge killed and restarted while answers stream through it.

Every stream in flight ends with UNAVAILABLE inside its deadline (never a hang,
never a half answer passed off as whole), the agent keeps none of those turns
(their clients went away), and once ``ragmesh up`` has restarted the edge new
calls succeed on fresh channels and on the channel the caller already had.
"""

from __future__ import annotations

import threading
import time

import grpc
import pytest

from ragmesh.agent.v1 import agent_service_pb2 as apb
from ragmesh.agent.v1 import agent_service_pb2_grpc as apb_grpc
from ragmesh.retrieval.v1 import retrieval_service_pb2 as rpb
from ragmesh.retrieval.v1 import retrieval_service_pb2_grpc as rpb_grpc
from tests.support import faults as harness
from tests.support.faults import Corpus

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

STREAMS = 3
DEADLINE_S = 90.0


class _Stream:
    """One StreamChat in a thread of its own, on a channel of its own."""

    def __init__(self, edge: str, tenant: str, message: str) -> None:
        self.events: list[apb.StreamChatResponse] = []
        self.code: grpc.StatusCode | None = None
        self.details = ""
        self.elapsed_s = 0.0
        self.started = threading.Event()
        self._edge, self._tenant, self._message = edge, tenant, message
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        began = time.monotonic()
        with grpc.insecure_channel(self._edge) as channel:
            stub = apb_grpc.AgentServiceStub(channel)  # type: ignore[no-untyped-call]
            request = apb.StreamChatRequest(message=self._message, options=apb.ChatOptions(bypass_cache=True))
            try:
                for event in stub.StreamChat(request, metadata=harness.person(self._tenant), timeout=DEADLINE_S):
                    self.events.append(event)
                    self.started.set()
                self.code = grpc.StatusCode.OK
            except grpc.RpcError as exc:
                self.code, self.details = exc.code(), exc.details() or ""
            finally:
                self.elapsed_s = time.monotonic() - began
                self.started.set()


def test_streams_in_flight_fail_cleanly_when_the_edge_restarts_and_new_calls_succeed(corpus: Corpus) -> None:
    tenant, channel = corpus.tenant, corpus.channel
    edge = harness.status()["envoy"]["address"]
    assert isinstance(edge, str)
    sessions_before = harness.session_ids(channel, tenant)
    victim = harness.pid_of("envoy")

    with harness.healed_after():
        streams = [
            _Stream(edge, tenant, f"How often does Zephyrine relay {n} forward telemetry to the harbour archive?")
            for n in range(STREAMS)
        ]
        for stream in streams:
            assert stream.started.wait(DEADLINE_S)
        in_flight = [s for s in streams if s.code is None]
        assert in_flight, "every answer ended before the fault"
        harness.kill("envoy", pid=victim)
        for stream in streams:
            stream.thread.join(DEADLINE_S + 10)
            assert not stream.thread.is_alive(), "a stream hangs past its deadline"

        for stream in in_flight:
            assert stream.code == grpc.StatusCode.UNAVAILABLE, (stream.code, stream.details)
            assert stream.elapsed_s < DEADLINE_S
            assert not any(e.WhichOneof("event") == "final" for e in stream.events)

    # The channel the caller held through the restart reconnects by itself; so does a new one.
    search = rpb_grpc.RetrievalServiceStub(channel)  # type: ignore[no-untyped-call]
    assert search.Search(
        rpb.SearchRequest(query="Zephyrine relay keys", top_k=3), metadata=harness.person(tenant), timeout=30
    ).hits
    after = _Stream(edge, tenant, "After how many days are the keys of Zephyrine relay 2 rotated?")
    after.thread.join(DEADLINE_S + 10)
    assert after.code == grpc.StatusCode.OK, (after.code, after.details)
    assert after.events[-1].WhichOneof("event") == "final"

    # Stored: only the turn that finished; none of the streams cut by the restart.
    finished = {s.events[-1].session_id for s in [*streams, after] if s.code == grpc.StatusCode.OK}
    deadline = time.monotonic() + 10
    while True:
        sessions = set(harness.session_ids(channel, tenant)) - set(sessions_before)
        if sessions == finished or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert sessions == finished
