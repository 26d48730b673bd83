"""svc_inference, the real InferenceService, served in-process for the integration tests of its callers.

The local profile's packaged models (the Gemma 3 270M GGUF on llama.cpp,
all-MiniLM-L6-v2 and its cosine reranker) are loaded into this process
(hosting ``inprocess``) and served by the mesh server on a free port, as
``python -m svc_inference`` would serve them. Loading them takes tens of
seconds, so the tests start it once per session (the ``local_inference``
fixture of tests/integration/conftest.py); a caller's suite may name a running
svc_inference instead, and then there is no runtime to look into.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable, Sequence

from mesh.server import ServerConfig, ServiceBinding, start_server
from svc_inference.__main__ import bindings
from svc_inference.app import open_runtime
from svc_inference.config import Config
from svc_inference.domain.runtime import ModelRuntime
from tests.support.auth import auth_settings


@dataclasses.dataclass(frozen=True)
class Inference:
    """Where the tests' InferenceService listens, and its runtime when it runs in this process."""

    addr: str
    """host:port of the InferenceService."""
    runtime: ModelRuntime | None
    """The in-process service's models (their backend counters); None for an external svc_inference."""


@contextlib.asynccontextmanager
async def serve_local_inference(
    services: Callable[[ModelRuntime], Sequence[ServiceBinding]] = bindings,
) -> AsyncIterator[Inference]:
    """svc_inference with the local profile loaded in-process, on a free port; ``services`` builds its bindings."""
    # The ray address is not used by the in-process hosting.
    runtime = await open_runtime(Config(hosting="inprocess"), "")
    try:
        server = await start_server(services(runtime), ServerConfig(port=0), auth=auth_settings())
        try:
            yield Inference(addr=f"127.0.0.1:{server.port}", runtime=runtime)
        finally:
            await server.stop(None)
    finally:
        await runtime.close()
