"""``python -m svc_agent``: serve the agentic answer loop, streamed with citations."""

from __future__ import annotations

import asyncio

from mesh.server import ServiceBinding, serve_opened
from mesh.settings import MeshSettings
from ragmesh.agent.v1 import agent_service_pb2, agent_service_pb2_grpc
from svc_agent import servicer
from svc_agent.app import Components, open_components
from svc_agent.config import Config


def bindings(components: Components) -> list[ServiceBinding]:
    """AgentService over the opened components."""
    return [
        ServiceBinding(
            full_name=agent_service_pb2.DESCRIPTOR.services_by_name["AgentService"].full_name,
            add_to_server=agent_service_pb2_grpc.add_AgentServiceServicer_to_server,
            servicer=servicer.AgentServiceServicer(components.agent, components.memory),
        ),
    ]


def main() -> None:
    """Runs the service until SIGTERM/SIGINT."""
    config = Config.from_env()
    settings = MeshSettings.from_env()
    asyncio.run(serve_opened("svc_agent", lambda: open_components(config, settings), bindings, config))


if __name__ == "__main__":
    main()
