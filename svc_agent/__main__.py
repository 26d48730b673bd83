"""``python -m svc_agent``: serve the agentic answer loop, streamed with citations."""

from __future__ import annotations

import asyncio

from mesh.server import ServiceBinding, serve
from ragmesh.agent.v1 import agent_service_pb2, agent_service_pb2_grpc
from svc_agent import servicer
from svc_agent.config import Config


def bindings() -> list[ServiceBinding]:
    return [
        ServiceBinding(
            full_name=agent_service_pb2.DESCRIPTOR.services_by_name["AgentService"].full_name,
            add_to_server=agent_service_pb2_grpc.add_AgentServiceServicer_to_server,
            servicer=servicer.AgentServiceServicer(),
        ),
    ]


def main() -> None:
    asyncio.run(serve("svc_agent", bindings(), Config.from_env()))


if __name__ == "__main__":
    main()
