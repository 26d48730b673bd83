"""``python -m svc_agent``: serve the agentic answer loop, streamed with citations."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from mesh.server import ServiceBinding, serve
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
    opened: list[Components] = []

    @contextlib.asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        async with open_components(config, settings) as components:
            opened.append(components)
            yield

    async def resolve() -> list[ServiceBinding]:
        return bindings(opened[0])

    asyncio.run(serve("svc_agent", resolve, config, lifespan=lifespan))


if __name__ == "__main__":
    main()
