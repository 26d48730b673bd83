"""Benchmarks run by ``ragmesh bench AREA``: each prints its figures and writes ``.bench/AREA.json``."""

from __future__ import annotations

import os
from pathlib import Path

from ragmesh.ingest.v1 import ingest_service_pb2 as _gpb

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("RAGMESH_SHARED_DIR", str(REPO.parent / "shared")))
"""The shared data next to the checkout (the full corpora and the dev questions); benchmarks fall back
to the project's samples and say so when it is absent."""
DEV_QUESTIONS = SHARED / "eval" / "dev_questions.jsonl"

JOB_ENDED = frozenset(
    {_gpb.JOB_STATE_SUCCEEDED, _gpb.JOB_STATE_PARTIAL_SUCCESS, _gpb.JOB_STATE_FAILED, _gpb.JOB_STATE_CANCELLED}
)
"""Ingest job states a job does not leave: a benchmark waiting for a job stops polling at these."""
