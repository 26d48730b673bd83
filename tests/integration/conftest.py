"""Fixtures shared by the integration suites: svc_inference in-process, started once per session."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.integration.local_inference import Inference, serve_local_inference
from tests.support.auth import use_service_token


@pytest.fixture(autouse=True)
def service_identity() -> None:
    """The test process holds a service token, as each service does under ``ragmesh up``:
    the in-process services present it on their internal calls (and to Ray workers).
    Set before every test, so a unit test that took it away leaves no trace here."""
    use_service_token()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def local_inference() -> AsyncIterator[Inference]:
    """The real InferenceService (svc_inference, hosting inprocess) with the packaged models, on a free port."""
    async with serve_local_inference() as served:
        yield served
