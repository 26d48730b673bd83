"""Helpers of the real-bubblewrap sandbox tests: small limits, running code, host processes a sandbox left."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from mesh.errors import FailedPrecondition
from svc_sandbox.domain import (
    ExecutionRequest,
    ExecutionResult,
    Isolation,
    IsolationMode,
    ResourceLimits,
    Sandbox,
    decide_isolation,
)
from svc_sandbox.domain.settings import SandboxSettings

MIB = 1024 * 1024

# Small limits keep the suite fast on 2 cores; tests that need others override them.
TEST_CONFIG = SandboxSettings(
    default_wall_timeout_ms=3_000,
    max_wall_timeout_ms=10_000,
    default_cpu_time_ms=2_000,
    max_cpu_time_ms=5_000,
    default_memory_bytes=128 * MIB,
    max_memory_bytes=512 * MIB,
    default_output_bytes=64 * 1024,
    work_dir_bytes=8 * MIB,
    scratch_dir_bytes=2 * MIB,
    max_file_size_bytes=4 * MIB,
    max_processes=16,
    max_concurrent_executions=8,
    max_queued_executions=8,
    max_executions_per_tenant=8,
    queue_timeout_s=10.0,
)


def check_sandbox_works() -> Isolation:
    """The isolation of this machine; skips the calling test when the real sandbox cannot run here."""
    try:
        sandbox = asyncio.run(Sandbox.start(TEST_CONFIG))
    except FailedPrecondition as exc:
        pytest.skip(f"the sandbox cannot run on this machine: {exc}")
    if sandbox.isolation.mode is not IsolationMode.BUBBLEWRAP:
        pytest.skip("bubblewrap is not in use")
    return sandbox.isolation


def make_sandbox(config: SandboxSettings, **changes: Any) -> Sandbox:
    """A sandbox with ``changes`` applied to ``config``."""
    changed = replace(config, **changes)
    return Sandbox(changed, decide_isolation(changed))


async def run(
    sandbox: Sandbox,
    code: str,
    *,
    tenant: str = "tenant-a",
    stdin: bytes = b"",
    files: dict[str, bytes] | None = None,
    **limits: int,
) -> ExecutionResult:
    """Execute ``code`` with the given limits (``wall_timeout_ms=...`` and so on)."""
    request = ExecutionRequest(code=code, stdin=stdin, files=files or {}, limits=ResourceLimits(**limits))
    return await sandbox.execute(request, tenant=tenant)


def processes_with(needle: bytes) -> list[tuple[int, bytes]]:
    """Host processes whose command line contains ``needle`` (this process excluded)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if needle in cmdline:
            found.append((int(entry.name), cmdline))
    return found


def processes_of_uid(uid: int) -> set[int]:
    """Host pids whose real uid is ``uid``."""
    pids = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("Uid:") and int(line.split()[1]) == uid:
                pids.add(int(entry.name))
    return pids


def wait_until_gone(check: Any, timeout_s: float = 2.0) -> Any:
    """Poll ``check()`` until it returns something falsy or the timeout passes; return the last value."""
    deadline = time.monotonic() + timeout_s
    value = check()
    while value and time.monotonic() < deadline:
        time.sleep(0.02)
        value = check()
    return value
