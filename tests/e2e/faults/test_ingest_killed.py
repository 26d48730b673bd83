"""svc_retrieval (the only writer of the index) SIGKILLed while an ingest job runs.

The job retries its writes, then ends FAILED with the index named as the
cause; after ``ragmesh up`` a rerun converges to exactly the counts of the
clean run of the same corpus in another tenant (points, document and chunk
nodes, entities, relationships, document records). The slower variant that
kills the index between two write batches of one job (and reruns it twice)
runs in ``ragmesh bench faults``.
"""

from __future__ import annotations

import time

import pytest

from mesh.settings import MeshSettings
from ragmesh.ingest.v1 import ingest_service_pb2 as gpb
from tests.support import faults as harness
from tests.support.faults import Corpus
from tests.support.tenants import new_tenant

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_a_job_whose_index_dies_fails_and_a_rerun_converges_to_a_clean_runs_counts(
    settings: MeshSettings, corpus: Corpus
) -> None:
    channel = corpus.channel
    expected = harness.index_counts(settings, corpus.tenant)
    expected_records = harness.document_records(channel, corpus.tenant)
    assert expected["points"] > 0 and expected["documents"] == len(expected_records)
    tenant = new_tenant("faults-killed")

    victim = harness.pid_of("svc_retrieval")
    with harness.healed_after():
        job = harness.create_job(channel, tenant, corpus.folder)
        deadline = time.monotonic() + 60
        while harness.get_job(channel, tenant, job.job_id).state == gpb.JOB_STATE_QUEUED:
            assert time.monotonic() < deadline, "the job never started"
            time.sleep(0.1)
        harness.kill("svc_retrieval", pid=victim)
        ended = harness.wait_job(channel, tenant, job.job_id)
        assert ended.state == gpb.JOB_STATE_FAILED, gpb.JobState.Name(ended.state)
        assert "index" in ended.failure and "Traceback" not in ended.failure, ended.failure

    rerun = harness.ingest(channel, tenant, corpus.folder)
    assert rerun.counts.files_discovered == len(expected_records)
    assert harness.index_counts(settings, tenant) == expected
    assert harness.document_records(channel, tenant) == expected_records
