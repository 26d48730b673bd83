"""svc_retrieval (the only writer of the index) SIGKILLed while an ingest job writes.

The job ends FAILED with the index named as the cause, or retries its writes
into success; either way a rerun after ``ragmesh up`` converges to exactly the
counts of a clean run of the same corpus in another tenant: points, document
and chunk nodes, relationships and document records. Nothing is written twice.
"""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from mesh.settings import MeshSettings
from ragmesh.ingest.v1 import ingest_service_pb2 as gpb
from ragmesh.ingest.v1 import ingest_service_pb2_grpc as gpb_grpc
from tests.e2e.faults import harness

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DOCUMENTS = 48  # three write batches of 16: the kill lands after the first, before the last


def _kill_after_first_write(channel: grpc.Channel, tenant: str, job_id: str, victim: int) -> dict[str, object]:
    """Follows the job; kills svc_retrieval once some points are written and files remain."""
    seen: dict[str, object] = {"killed_after_points": None}
    stub = gpb_grpc.IngestServiceStub(channel)  # type: ignore[no-untyped-call]
    request = gpb.StreamIngestJobRequest(job_id=job_id)
    for event in stub.StreamIngestJob(request, metadata=harness.person(tenant), timeout=300):
        counts = event.job.counts
        if (
            seen["killed_after_points"] is None
            and counts.points_written > 0
            and counts.files_processed < counts.files_discovered
        ):
            harness.kill("svc_retrieval", pid=victim)
            seen["killed_after_points"] = counts.points_written
        if event.type == gpb.INGEST_EVENT_TYPE_FINISHED:
            break
    return seen


def test_a_job_whose_index_dies_mid_write_converges_on_rerun_to_a_clean_runs_counts(
    settings: MeshSettings, tmp_path: Path
) -> None:
    folder = harness.write_corpus(tmp_path / "relays", DOCUMENTS)
    clean, faulted = harness.new_tenant("clean"), harness.new_tenant("killed")
    with grpc.insecure_channel(settings.edge_addr) as channel:
        harness.ingest(channel, clean, folder)
        expected = harness.index_counts(settings, clean)
        assert expected["points"] >= DOCUMENTS and expected["documents"] == DOCUMENTS
        expected_records = harness.document_records(channel, clean)

        victim = harness.pid_of("svc_retrieval")
        with harness.healed_after():
            job = harness.create_job(channel, faulted, folder)
            seen = _kill_after_first_write(channel, faulted, job.job_id, victim)
            assert seen["killed_after_points"], "the job wrote everything before the fault could land"
            ended = harness.wait_job(channel, faulted, job.job_id)
            # Its writes are retried; with no index to take them the job fails and says why.
            assert ended.state == gpb.JOB_STATE_FAILED, gpb.JobState.Name(ended.state)
            assert "index" in ended.failure and "Traceback" not in ended.failure, ended.failure

        rerun = harness.ingest(channel, faulted, folder)
        assert rerun.counts.files_discovered == DOCUMENTS
        assert harness.index_counts(settings, faulted) == expected
        assert harness.document_records(channel, faulted) == expected_records
        # And once more: a converged tenant takes nothing new.
        again = harness.ingest(channel, faulted, folder)
        assert again.counts.points_written == 0
        assert harness.index_counts(settings, faulted) == expected
