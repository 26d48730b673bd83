"""A job running in this process, as its run, its watchers and cancellation share it."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass

from svc_ingest.domain.model import FileError, Job


@dataclass(frozen=True)
class ProgressEvent:
    """One StreamIngestJob event: kind is "progress", "file_failed" or "finished"."""

    kind: str
    job: Job
    error: FileError | None = None
    files_per_second: float = 0.0
    chunks_per_second: float = 0.0
    eta_seconds: float = -1.0


class LiveJob:
    """A job running in this process: its state plus what watchers and cancellation need."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.cancel = threading.Event()
        self.changed = asyncio.Condition()
        self.started = time.monotonic()
        self.task: asyncio.Task[None] | None = None

    async def notify(self) -> None:
        """Wakes the watchers: the job's state or counts changed."""
        async with self.changed:
            self.changed.notify_all()

    def fail_file(self, uri: str, fmt: str, code: str, reason: str) -> None:
        """Counts one file as failed and records why."""
        counts = self.job.counts
        counts.documents_failed += 1
        counts.files_processed += 1
        counts.format(fmt).failed += 1
        self.job.add_error(FileError(path=uri, reason=reason, code=code))

    def rates(self) -> tuple[float, float, float]:
        """Files per second, chunks per second and the seconds left (-1 when unknown) so far."""
        elapsed = max(1e-3, time.monotonic() - self.started)
        counts = self.job.counts
        fps = counts.files_processed / elapsed
        cps = counts.chunks_embedded / elapsed
        remaining = counts.files_discovered - counts.files_processed
        eta = remaining / fps if fps > 0 and remaining >= 0 else -1.0
        return fps, cps, eta
