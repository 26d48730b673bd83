"""``ragmesh up`` brings a SIGKILLed part back, alone, and ``ragmesh status`` shows the restart and why.

svc_sandbox is the victim (it restarts in about a second): while it is down a
sandboxed run through the edge is UNAVAILABLE, never INTERNAL or a hang; after
``ragmesh up`` the next run succeeds, the other parts kept their processes, and
the status (JSON and table) counts the restart with its time, reason and pid.
"""

from __future__ import annotations

import grpc
import pytest

from mesh.settings import MeshSettings
from ragmesh.sandbox.v1 import sandbox_service_pb2 as spb
from ragmesh.sandbox.v1 import sandbox_service_pb2_grpc as spb_grpc
from tests.support import faults as harness
from tests.support.tenants import new_tenant

pytestmark = pytest.mark.e2e

VICTIM = "svc_sandbox"


def _run(channel: grpc.Channel, tenant: str) -> spb.ExecuteResponse:
    stub = spb_grpc.SandboxServiceStub(channel)  # type: ignore[no-untyped-call]
    request = spb.ExecuteRequest(code="print(6 * 7)")
    response: spb.ExecuteResponse = stub.Execute(request, metadata=harness.person(tenant), timeout=60)
    return response


def test_up_restarts_a_killed_part_alone_and_status_shows_the_restart(settings: MeshSettings) -> None:
    tenant = new_tenant("faults-supervisor")
    before = harness.status()
    assert all(p["healthy"] for p in before.values()), {n: p["detail"] for n, p in before.items() if not p["healthy"]}
    restarts_before = int(before[VICTIM]["restarts"])  # type: ignore[call-overload]

    with grpc.insecure_channel(settings.edge_addr) as channel:
        assert "42" in _run(channel, tenant).result.stdout
        with harness.healed_after():
            victim = harness.kill(VICTIM)
            during = harness.status()
            assert during[VICTIM]["healthy"] is False and during[VICTIM]["state"] == "stopped"
            assert all(p["healthy"] for n, p in during.items() if n != VICTIM)
            with pytest.raises(grpc.RpcError) as refused:
                _run(channel, tenant)
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE, refused.value.details()

            done = harness.ragmesh("up")
            assert done.returncode == 0, done.stdout + done.stderr
            assert f"{VICTIM}: it was not running (pid {victim} had exited); restarting" in done.stdout

        after = harness.status()
        assert after[VICTIM]["pid"] not in (None, victim)
        assert {n: p["pid"] for n, p in after.items() if n != VICTIM} == {
            n: p["pid"] for n, p in before.items() if n != VICTIM
        }
        assert after[VICTIM]["restarts"] == restarts_before + 1
        last = after[VICTIM]["last_restart"]
        assert isinstance(last, dict)
        assert last["reason"] == f"it was not running (pid {victim} had exited)"
        assert last["pid"] == after[VICTIM]["pid"]
        table = harness.ragmesh("status", timeout_s=60).stdout
        assert f"{VICTIM}: restarted {restarts_before + 1}x by ragmesh up, last at {last['at']}:" in table

        assert "42" in _run(channel, tenant).result.stdout
