"""Real models behind real servers for the inference integration tests.

A private Ray instance started here (2 CPUs, no dashboard, token auth with an
in-memory token: a developer's stack and ~/.ray are never touched), the Ray
Serve applications of the local profile plus two test variants, and for each
hosting (``serve`` and ``inprocess``) a mesh gRPC server in-process on port 0.
Models are the packaged ones: the Gemma 3 270M GGUF on llama.cpp and
all-MiniLM-L6-v2. The variants: ``gemma3-270m-tight`` (one request running,
one queued, small context) for overload and crash tests, and a tiny
cross-encoder that tests/support/inference.py builds and saves (random weights, a vocabulary
of a few hundred words), so the CrossEncoder path runs without a download.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from svc_inference.app import open_runtime
from svc_inference.config import Config
from tests.support.inference import APP_PREFIX, Stack, build_tiny_cross_encoder, open_stack, profile_for_tests


@pytest.fixture(scope="package")
def tiny_cross_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny cross-encoder's directory."""
    return build_tiny_cross_encoder(tmp_path_factory.mktemp("tiny-cross-encoder"))


@pytest.fixture(scope="package")
def ray_cluster() -> Iterator[None]:
    """A private Ray instance for these tests (or the one this process already joined), shut down after them."""
    import ray

    from svc_inference.serve.cluster import start_local

    if ray.is_initialized():
        yield
        return
    connection = start_local(2)
    try:
        yield
    finally:
        connection.close()


@pytest_asyncio.fixture(scope="package", loop_scope="session")
async def serve_stack(ray_cluster: None, tiny_cross_encoder: Path) -> AsyncIterator[Stack]:
    """The service on Ray Serve: the test profile deployed as Serve applications."""
    config = Config(hosting="serve", serve_app_prefix=APP_PREFIX, serve_deploy="always")
    runtime = await open_runtime(config, "127.0.0.1:1", profile=profile_for_tests(tiny_cross_encoder))
    stack = await open_stack("serve", runtime)
    yield stack
    await stack.close()


@pytest_asyncio.fixture(scope="package", loop_scope="session")
async def inprocess_stack(tiny_cross_encoder: Path) -> AsyncIterator[Stack]:
    """The service with every model of the test profile loaded into this process."""
    config = Config(hosting="inprocess")
    runtime = await open_runtime(config, "127.0.0.1:1", profile=profile_for_tests(tiny_cross_encoder))
    stack = await open_stack("inprocess", runtime)
    yield stack
    await stack.close()


@pytest.fixture(params=["serve", "inprocess"])
def stack(request: pytest.FixtureRequest) -> Stack:
    """Each hosting in turn."""
    value: Stack = request.getfixturevalue(f"{request.param}_stack")
    return value
