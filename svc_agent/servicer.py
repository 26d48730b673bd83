"""gRPC servicers of svc_agent: the agentic answer loop, streamed with citations."""

from __future__ import annotations

from ragmesh.agent.v1 import agent_service_pb2_grpc


class AgentServiceServicer(agent_service_pb2_grpc.AgentServiceServicer):
    """``ragmesh.agent.v1.AgentService``: one thin method per RPC (proto -> domain -> proto)."""
