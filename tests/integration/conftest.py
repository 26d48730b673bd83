"""Fixtures shared by the integration suites: svc_inference in-process, started once per session."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from tests.integration.local_inference import Inference, serve_local_inference


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def local_inference() -> AsyncIterator[Inference]:
    """The real InferenceService (svc_inference, hosting inprocess) with the packaged models, on a free port."""
    async with serve_local_inference() as served:
        yield served
