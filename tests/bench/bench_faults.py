"""``ragmesh bench faults``: the slow fault scenarios, with what each caller saw and how long recovery took.

The fault tests (tests/e2e/faults) cover each fault in CI; this runs the
slower variants against a stack ``ragmesh up`` started:

- ``ingest-mid-write``: a job over ``--documents`` files (several write batches)
  loses svc_retrieval (SIGKILL) after its first batch is written; the job's end
  state and failure, then ``ragmesh up`` and a rerun compared with a clean run
  of the same files in another tenant (points, nodes, relationships, document
  records), then a second rerun that must write nothing.
- ``neo4j-mid-write``: the same with Neo4j SIGKILLed instead.

It reports per scenario the faults injected, the job states seen, whether the
counts converged (and both sets of counts), and the seconds each phase took.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import grpc

from mesh.settings import MeshSettings
from ragmesh.ingest.v1 import ingest_service_pb2 as gpb
from ragmesh.ingest.v1 import ingest_service_pb2_grpc as gpb_grpc
from tests.bench.machine import machine
from tests.support import faults
from tests.support.tenants import new_tenant

SCENARIOS = {"ingest-mid-write": "svc_retrieval", "neo4j-mid-write": "neo4j"}


def _kill_after_first_write(channel: grpc.Channel, tenant: str, job_id: str, part: str, pid: int) -> int | None:
    """Follows the job; kills ``part`` once some points are written and files remain. Points written by then."""
    stub = gpb_grpc.IngestServiceStub(channel)  # type: ignore[no-untyped-call]
    request = gpb.StreamIngestJobRequest(job_id=job_id)
    for event in stub.StreamIngestJob(request, metadata=faults.person(tenant), timeout=600):
        counts = event.job.counts
        if counts.points_written > 0 and counts.files_processed < counts.files_discovered:
            faults.kill(part, pid=pid)
            return int(counts.points_written)
        if event.type == gpb.INGEST_EVENT_TYPE_FINISHED:
            return None
    return None


def _scenario(settings: MeshSettings, name: str, documents: int, folder: Path) -> dict[str, Any]:
    part = SCENARIOS[name]
    clean, faulted = new_tenant("faults-bench-clean"), new_tenant("faults-bench-killed")
    seconds: dict[str, float] = {}
    with grpc.insecure_channel(settings.edge_addr) as channel:
        started = time.perf_counter()
        faults.ingest(channel, clean, folder)
        seconds["clean_run"] = time.perf_counter() - started
        expected = faults.index_counts(settings, clean)
        expected_records = faults.document_records(channel, clean)

        pid = faults.pid_of(part)
        started = time.perf_counter()
        job = faults.create_job(channel, faulted, folder)
        killed_after = _kill_after_first_write(channel, faulted, job.job_id, part, pid)
        killed_at = time.perf_counter()
        ended = faults.wait_job(channel, faulted, job.job_id, timeout_s=600)
        seconds["fault_to_job_end"] = time.perf_counter() - killed_at
        started = time.perf_counter()
        faults.heal()
        seconds["ragmesh_up"] = time.perf_counter() - started

        started = time.perf_counter()
        rerun = faults.ingest(channel, faulted, folder)
        seconds["rerun"] = time.perf_counter() - started
        counts = faults.index_counts(settings, faulted)
        records = faults.document_records(channel, faulted)
        again = faults.ingest(channel, faulted, folder)
    return {
        "killed": part,
        "faults_injected": 1 if killed_after is not None else 0,
        "points_written_before_the_kill": killed_after,
        "job_state": gpb.JobState.Name(ended.state),
        "job_failure": ended.failure,
        "rerun_state": gpb.JobState.Name(rerun.state),
        "converged": counts == expected and records == expected_records,
        "clean_counts": expected,
        "rerun_counts": counts,
        "documents": documents,
        "second_rerun_points_written": int(again.counts.points_written),
        "seconds": {k: round(v, 2) for k, v in seconds.items()},
    }


def run(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="ragmesh bench faults")
    parser.add_argument("--documents", type=int, default=48, help="files in the corpus (16 per write batch)")
    parser.add_argument(
        "--scenario", action="append", choices=sorted(SCENARIOS), default=[], help="run only these (repeatable)"
    )
    args = parser.parse_args(argv)
    settings = MeshSettings.from_env()
    names = args.scenario or sorted(SCENARIOS)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="ragmesh-bench-faults-") as tmp:
        folder = faults.write_corpus(Path(tmp) / "relays", args.documents)
        for name in names:
            try:
                results[name] = _scenario(settings, name, args.documents, folder)
            finally:
                faults.heal()
    return {
        "scenarios": results,
        "faults_injected": sum(r["faults_injected"] for r in results.values()),
        "all_converged": all(r["converged"] and r["second_rerun_points_written"] == 0 for r in results.values()),
        "machine": machine(),
    }
