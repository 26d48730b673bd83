"""Interop: the betterproto2 SDK and the grpcio stubs (gen/python) give the same answers through Envoy.

The same requests go to the same servers through the edge three ways: the
grpcio stubs with pb2 messages, the SDK's ``Client`` (betterproto2 over grpcio)
and its ``AsyncClient`` (betterproto2 over grpclib, another HTTP/2 stack).
Answers are compared on the wire: each SDK message is serialized and parsed back
as the pb2 type, so a field either side drops or mis-encodes shows up as a
difference. Only what each call makes anew (timings, ids of new sessions and
tool calls) is left out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

import ragmesh_client
from mesh.settings import MeshSettings
from ragmesh.agent.v1 import agent_service_pb2 as apb
from ragmesh.agent.v1 import agent_service_pb2_grpc as apb_grpc
from ragmesh.ingest.v1 import ingest_service_pb2 as ipb
from ragmesh.ingest.v1 import ingest_service_pb2_grpc as ipb_grpc
from ragmesh.retrieval.v1 import retrieval_service_pb2 as rpb
from ragmesh.retrieval.v1 import retrieval_service_pb2_grpc as rpb_grpc
from tests.support.sdk_corpus import Corpus, token

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

QUERY = "How does a Quillfeather rollout roll back a failed wave?"


def md() -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token()}"),)


def as_pb2(message: Any, pb2_type: Any) -> Any:
    """A betterproto2 message as the grpcio side's pb2 type, through its wire bytes."""
    return pb2_type.FromString(bytes(message))


@pytest.fixture(scope="module")
def channel(settings: MeshSettings, sdk_corpus: Corpus) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(settings.edge_addr) as chan:
        yield chan


def _search_unmeasured(response: rpb.SearchResponse) -> rpb.SearchResponse:
    response.ClearField("timings")
    return response


def test_search_gives_equal_results(settings: MeshSettings, channel: grpc.Channel) -> None:
    stub = rpb_grpc.RetrievalServiceStub(channel)  # type: ignore[no-untyped-call]
    for legs, skip_rerank in (((), False), (("dense", "sparse"), True)):
        request = rpb.SearchRequest(
            query=QUERY,
            top_k=4,
            legs=[ragmesh_client.common.RetrievalLeg[leg.upper()].value for leg in legs],
            skip_rerank=skip_rerank,
        )
        expected = _search_unmeasured(stub.Search(request, metadata=md(), timeout=30))
        assert expected.hits, "the corpus is not indexed"

        with ragmesh_client.Client(settings.edge_addr, token) as client:
            sync = client.search(QUERY, top_k=4, legs=legs, skip_rerank=skip_rerank)

        async def via_grpclib(legs: tuple[str, ...] = legs, skip_rerank: bool = skip_rerank) -> Any:
            async with ragmesh_client.AsyncClient(settings.edge_addr, token) as client:
                return await client.search(QUERY, top_k=4, legs=legs, skip_rerank=skip_rerank)

        asynchronous = asyncio.run(via_grpclib())
        for got in (sync, asynchronous):
            assert _search_unmeasured(as_pb2(got, rpb.SearchResponse)) == expected
        # The typed view reads the same values the pb2 side does.
        assert [h.chunk.chunk_id for h in sync.hits] == [h.chunk.chunk_id for h in expected.hits]
        assert [h.fused_score for h in sync.hits] == [h.fused_score for h in expected.hits]


def test_stream_ingest_job_gives_equal_events(
    settings: MeshSettings, channel: grpc.Channel, sdk_corpus: Corpus
) -> None:
    job_id = sdk_corpus.events[-1].job.job_id
    stub = ipb_grpc.IngestServiceStub(channel)  # type: ignore[no-untyped-call]
    request = ipb.StreamIngestJobRequest(job_id=job_id)
    expected = list(stub.StreamIngestJob(request, metadata=md(), timeout=30))

    with ragmesh_client.Client(settings.edge_addr, token) as client:
        sync_events = list(client.follow_job(job_id))

    async def via_grpclib() -> list[Any]:
        async with ragmesh_client.AsyncClient(settings.edge_addr, token) as client:
            return [e async for e in client.follow_job(job_id)]

    async_events = asyncio.run(via_grpclib())
    # A finished job streams one final snapshot, the same for every caller.
    assert [e.type for e in expected] == [ipb.INGEST_EVENT_TYPE_FINISHED]
    for got in (sync_events, async_events):
        assert [as_pb2(e, ipb.StreamIngestJobResponse) for e in got] == expected


def _chat_unmeasured(message: apb.StreamChatResponse) -> apb.StreamChatResponse:
    """A StreamChat message less what differs between two askings (session, tool call and trace ids, timings)."""
    message.ClearField("session_id")
    message.ClearField("message_id")
    kind = message.WhichOneof("event")
    if kind == "step":
        message.step.ClearField("duration_ms")
    elif kind == "tool_call":
        message.tool_call.ClearField("call_id")
    elif kind == "tool_result":
        message.tool_result.ClearField("call_id")
    elif kind == "final":
        # Each asking is its own trace (the id differs, or is empty when the stack runs untraced).
        message.final.ClearField("latency")
        message.final.ClearField("trace_id")
    return message


def test_stream_chat_gives_equal_events(settings: MeshSettings, channel: grpc.Channel) -> None:
    # A tool question: its path (plan -> calculator -> answer) and words do not depend on the model's sampling.
    question = "What is 6 * 7?"
    stub = apb_grpc.AgentServiceStub(channel)  # type: ignore[no-untyped-call]
    request = apb.StreamChatRequest(message=question, options=apb.ChatOptions(bypass_cache=True))
    expected = [_chat_unmeasured(m) for m in stub.StreamChat(request, metadata=md(), timeout=120)]
    assert expected[-1].WhichOneof("event") == "final"

    sdk_request = ragmesh_client.agent.StreamChatRequest(
        message=question, options=ragmesh_client.agent.ChatOptions(bypass_cache=True)
    )

    async def via_grpclib() -> list[Any]:
        async with ragmesh_client.AsyncClient(settings.edge_addr, token) as client:
            return [m async for m in client.agent.stream_chat(sdk_request, metadata=md(), timeout=120)]

    got = [_chat_unmeasured(as_pb2(m, apb.StreamChatResponse)) for m in asyncio.run(via_grpclib())]
    assert got == expected
