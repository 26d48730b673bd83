"""What a job run works through, handed to it explicitly (as the agent's loop gets its ports)."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import NamedTuple

from svc_ingest.config import Config
from svc_ingest.domain.ports import DocumentStore, IndexWriter, JobStore, SourceReader
from svc_ingest.domain.sources import SourceFile
from svc_ingest.jobs.cluster import RayCluster


@dataclasses.dataclass(frozen=True)
class RunDependencies:
    """The ports and shared pieces of every run of one JobManager."""

    config: Config
    documents: DocumentStore
    jobs: JobStore
    index: IndexWriter
    sources: SourceReader
    cluster: RayCluster
    slots: asyncio.Semaphore
    """Bounds the jobs that run at once in this process; the others wait QUEUED."""
    owner: str
    """This instance's name in the job store (whose heartbeat keeps a job alive)."""
    inference_addr: str


class Selected(NamedTuple):
    """A file the run sends through the pipeline: its content hash and the version being written."""

    file: SourceFile
    content_hash: str
    version: int
