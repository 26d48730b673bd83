"""`ragmesh up` heals the stack: a stopped service is shown unhealthy and restarted alone.

Runs against the stack `make test` started; it leaves the stack as it found it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from mesh.settings import MeshSettings

pytestmark = pytest.mark.e2e

VICTIM = "svc_sandbox"


def _ragmesh(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mesh.cli", *args], capture_output=True, text=True, timeout=600, check=False
    )


def _status() -> dict[str, dict[str, object]]:
    out = _ragmesh("status", "--json")
    return {part["name"]: part for part in json.loads(out.stdout)["parts"]}


def test_status_shows_a_stopped_service_and_up_restarts_only_it(settings: MeshSettings) -> None:
    before = _status()
    assert all(p["healthy"] for p in before.values()), {n: p for n, p in before.items() if not p["healthy"]}
    victim_pid = int(before[VICTIM]["pid"])  # type: ignore[call-overload]
    os.kill(victim_pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(victim_pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)

    during = _status()
    assert during[VICTIM]["healthy"] is False
    assert all(p["healthy"] for n, p in during.items() if n != VICTIM)

    result = _ragmesh("up")
    assert result.returncode == 0, result.stderr + result.stdout

    after = _status()
    assert all(p["healthy"] for p in after.values())
    assert after[VICTIM]["pid"] != victim_pid
    for name, part in before.items():
        if name != VICTIM:
            assert after[name]["pid"] == part["pid"], f"{name} was restarted but should have been kept"
