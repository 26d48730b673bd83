"""``python -m svc_sandbox``: serve isolated execution of untrusted Python."""

from __future__ import annotations

import asyncio

from mesh.server import ServiceBinding, serve
from ragmesh.sandbox.v1 import sandbox_service_pb2, sandbox_service_pb2_grpc
from svc_sandbox import servicer
from svc_sandbox.config import Config
from svc_sandbox.domain import Sandbox


async def bindings(config: Config) -> list[ServiceBinding]:
    """Starts the sandbox (refusing to run without isolation unless told) and binds the servicer."""
    sandbox = await Sandbox.start(config.settings)
    return [
        ServiceBinding(
            full_name=sandbox_service_pb2.DESCRIPTOR.services_by_name["SandboxService"].full_name,
            add_to_server=sandbox_service_pb2_grpc.add_SandboxServiceServicer_to_server,
            servicer=servicer.SandboxServiceServicer(sandbox),
        )
    ]


def main() -> None:
    config = Config.from_env()
    asyncio.run(serve("svc_sandbox", lambda: bindings(config), config))


if __name__ == "__main__":
    main()
