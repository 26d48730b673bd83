"""gRPC servicers of svc_agent: the agentic answer loop, streamed with citations, and chat sessions.

One thin method per RPC: proto -> domain (convert.py) -> domain call -> proto.
The tenant and the subject always come from the caller's verified identity
(``mesh.context``): sessions belong to one person of one tenant.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from mesh import context, telemetry
from ragmesh.agent.v1 import agent_service_pb2 as pb
from ragmesh.agent.v1 import agent_service_pb2_grpc
from svc_agent import convert, metrics
from svc_agent.domain.loop import Agent
from svc_agent.domain.ports import ChatMemory


class AgentServiceServicer(agent_service_pb2_grpc.AgentServiceServicer):
    """``ragmesh.agent.v1.AgentService``: one thin method per RPC (proto -> domain -> proto)."""

    def __init__(self, agent: Agent, memory: ChatMemory) -> None:
        self._agent = agent
        self._memory = memory

    async def StreamChat(
        self, request: pb.StreamChatRequest, ctx: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[pb.StreamChatResponse]:
        """Answers one message, streaming steps, tokens, tool calls, citations and the final answer."""
        identity = context.identity()
        # The answer names its trace (the request id in every service's logs) for `ragmesh trace`.
        trace_id = telemetry.trace_id_hex()
        async for envelope in self._agent.run(convert.chat_request(request, identity.tenant, identity.subject)):
            metrics.observe(envelope)
            message = convert.envelope_to_proto(envelope)
            if message.HasField("final"):
                message.final.trace_id = trace_id
            yield message

    async def GetSession(
        self, request: pb.GetSessionRequest, ctx: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.GetSessionResponse:
        """The caller's session with its messages."""
        identity = context.identity()
        session = await self._memory.get_session(identity.tenant, identity.subject, request.session_id)
        return pb.GetSessionResponse(session=convert.session_to_proto(session))

    async def ListSessions(
        self, request: pb.ListSessionsRequest, ctx: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ListSessionsResponse:
        """The caller's sessions, most recently updated first."""
        identity = context.identity()
        page = await self._memory.list_sessions(
            identity.tenant, identity.subject, request.page_size, request.page_token
        )
        return pb.ListSessionsResponse(
            sessions=[convert.session_to_proto(s) for s in page.sessions], next_page_token=page.next_page_token
        )

    async def DeleteSession(
        self, request: pb.DeleteSessionRequest, ctx: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.DeleteSessionResponse:
        """Deletes one of the caller's sessions with its messages and feedback."""
        identity = context.identity()
        await self._memory.delete_session(identity.tenant, identity.subject, request.session_id)
        return pb.DeleteSessionResponse()

    async def SubmitFeedback(
        self, request: pb.SubmitFeedbackRequest, ctx: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.SubmitFeedbackResponse:
        """Records the caller's opinion of an answer (a second one replaces the first)."""
        identity = context.identity()
        feedback_id = await self._memory.submit_feedback(
            identity.tenant,
            request.session_id,
            request.message_id,
            identity.subject,
            convert.RATINGS[request.rating],
            request.comment,
        )
        return pb.SubmitFeedbackResponse(feedback_id=feedback_id)
