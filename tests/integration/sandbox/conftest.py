"""Real-bubblewrap sandbox tests: a sandbox per test, small limits, and host-side checks.

The tests go through the domain API (``Sandbox``) with the real bwrap. They skip, with
the reason, when this machine cannot run the sandbox (bwrap missing, user namespaces
off). Every test is also checked afterwards for processes left behind on the host.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from svc_sandbox.domain import (
    Isolation,
    Sandbox,
    decide_isolation,
)
from svc_sandbox.domain.settings import SandboxSettings
from tests.support.sandbox import TEST_CONFIG, check_sandbox_works, processes_of_uid, wait_until_gone


@pytest.fixture(scope="session")
def isolation() -> Isolation:
    """The isolation of this machine; skips the suite when the real sandbox cannot run."""
    return check_sandbox_works()


@pytest.fixture
def config() -> SandboxSettings:
    """The test config; tests needing other limits use ``dataclasses.replace``."""
    return TEST_CONFIG


@pytest.fixture
async def sandbox(isolation: Isolation, config: SandboxSettings) -> AsyncIterator[Sandbox]:
    """A sandbox on this test's event loop (self-tested once per session, not per test)."""
    yield Sandbox(config, decide_isolation(config))


@pytest.fixture
def marker() -> bytes:
    """A unique string for argv of processes a test's code starts, to find them on the host."""
    return f"ragmesh-sbx-marker-{uuid.uuid4().hex}".encode()


@pytest.fixture(autouse=True)
def no_process_left_behind(isolation: Isolation) -> Iterator[None]:
    """After each test, no process of the sandbox's host uid that it started may remain."""
    uid = isolation.host_uid
    before = processes_of_uid(uid) if uid is not None else set()
    yield
    if uid is None:
        return  # the service's own uid: cannot tell sandbox processes apart
    left = wait_until_gone(lambda: processes_of_uid(uid) - before)
    assert not left, f"sandbox processes left on the host: {sorted(left)}"
