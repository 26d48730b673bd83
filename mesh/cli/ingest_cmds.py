"""``ragmesh ingest PATH...``: start an ingest job and follow it to the end.

The progress bar is drawn from StreamIngestJob events (Ray Data draws its own
bars only on a terminal of the process that runs the pipeline, which is the
service, not this client). With ``--json`` only one summary object is printed:
``{"job_id", "status", "documents": {"ingested", "unchanged", "failed",
"deleted"}, "chunks_written", "formats": {FORMAT: {"files", "failed"}},
"errors": [{"path", "reason"}]}``, plus ``"placement": [{"stage", "node_name",
"node_group", "node_id", "items"}]`` (which Ray node did which stage's work) when the
service reports it. Ctrl-C asks the
service to cancel the job. Exit status: 0 succeeded, 4 partial success (some
files failed), 1 failed or cancelled, 3 bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import ragmesh_client
from mesh.cli.common import add_connection_args, client, report_error

ingest_v1 = ragmesh_client.ingest

_EXIT_PARTIAL = 4
_BAR_WIDTH = 28


def _source(text: str) -> str:
    """Local paths become absolute (the service does not share the caller's directory)."""
    if "://" in text:
        return text
    return str(Path(text).expanduser().resolve())


def summary(job: Any) -> dict[str, Any]:
    """The ``--json`` summary of a finished job (an SDK ``IngestJob``)."""
    counts = job.counts or ingest_v1.JobCounts()
    return {
        "job_id": job.job_id,
        "status": ingest_v1.JobState(job.state).name,
        "documents": {
            "ingested": counts.documents_ingested,
            "unchanged": counts.documents_unchanged,
            "failed": counts.documents_failed,
            "deleted": counts.documents_deleted,
        },
        "chunks_written": counts.points_written,
        "formats": {f.format: {"files": f.files, "failed": f.failed} for f in counts.formats},
        "errors": [{"path": e.path, "reason": e.reason} for e in job.errors],
        **({"failure": job.failure} if job.failure else {}),
        **(
            {
                "placement": [
                    {
                        "stage": w.stage,
                        "node_name": w.node_name,
                        "node_group": w.node_group,
                        "node_id": w.node_id,
                        "items": w.items,
                    }
                    for w in counts.placement
                ]
            }
            if counts.placement
            else {}
        ),
    }


class _Progress:
    """Renders progress events: a redrawn bar on a terminal, a line every few seconds otherwise."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.tty = out.isatty()
        self.last_line = 0.0

    def update(self, event: Any) -> None:
        counts = event.job.counts or ingest_v1.JobCounts()
        total = max(counts.files_discovered, 1)
        done = min(counts.files_processed, total)
        filled = int(_BAR_WIDTH * done / total)
        eta = f"{event.eta_seconds:5.0f}s" if event.eta_seconds >= 0 else "    ?"
        line = (
            f"[{'#' * filled}{'.' * (_BAR_WIDTH - filled)}] {done}/{counts.files_discovered} files "
            f"| {counts.chunks_embedded} chunks embedded, {counts.points_written} points, "
            f"{counts.nodes_written} nodes | {event.files_per_second:.1f} files/s "
            f"{event.chunks_per_second:.0f} chunks/s | eta {eta} | {counts.documents_failed} failed"
        )
        if self.tty:
            self.out.write("\r\x1b[2K" + line)
            self.out.flush()
        elif time.monotonic() - self.last_line >= 5.0:
            self.out.write(line + "\n")
            self.out.flush()
            self.last_line = time.monotonic()

    def file_failed(self, error: Any) -> None:
        prefix = "\r\x1b[2K" if self.tty else ""
        self.out.write(f"{prefix}failed: {error.path}: {error.reason} [{error.code}]\n")
        self.out.flush()

    def finish(self, job: Any) -> None:
        if self.tty:
            self.out.write("\n")
        c = job.counts or ingest_v1.JobCounts()
        state = ingest_v1.JobState(job.state).name
        self.out.write(
            f"{state}: {c.documents_ingested} ingested, {c.documents_unchanged} unchanged, "
            f"{c.documents_failed} failed, {c.documents_deleted} deleted; {c.points_written} chunks written"
            f" ({job.job_id})\n"
        )
        formats = ", ".join(f"{f.format} {f.files - f.failed}/{f.files}" for f in c.formats)
        if formats:
            self.out.write(f"formats (ok/seen): {formats}\n")
        for w in c.placement:
            unit = "files" if w.stage == "parse" else "chunks"
            group = f" (group {w.node_group})" if w.node_group else ""
            self.out.write(f"{w.stage} on node {w.node_name or w.node_id[:12]}{group}: {w.items} {unit}\n")
        if job.failure:
            self.out.write(f"failure: {job.failure}\n")
        self.out.flush()


async def _ingest(args: argparse.Namespace) -> int:
    progress = None if args.json else _Progress(sys.stderr)
    job_id = ""
    async with client(args) as sdk:
        try:
            created = await sdk.create_ingest_job(
                [_source(p) for p in args.paths],
                chunk_size_tokens=args.chunk_size,
                chunk_overlap_tokens=args.overlap,
                skip_graph=args.no_graph,
                sync=args.sync,
            )
            job_id = created.job_id
            final = created
            async for event in sdk.follow_job(job_id):
                if event.job is not None:
                    final = event.job
                if progress is None:
                    continue
                if event.type == ingest_v1.IngestEventType.FILE_FAILED and event.error is not None:
                    progress.file_failed(event.error)
                elif event.job is not None:
                    progress.update(event)
        except asyncio.CancelledError:
            if job_id:
                await sdk.cancel_job(job_id, timeout_s=10)
                print(f"\ncancel requested for job {job_id}", file=sys.stderr)
            raise
        except ragmesh_client.RagmeshError as err:
            return report_error(err, as_json=args.json)
    if args.json:
        print(json.dumps(summary(final)))
    elif progress is not None:
        progress.finish(final)
    if final.state == ingest_v1.JobState.SUCCEEDED:
        return 0
    if final.state == ingest_v1.JobState.PARTIAL_SUCCESS:
        return _EXIT_PARTIAL
    return 1


def _run(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_ingest(args))
    except KeyboardInterrupt:
        return 130


def register(sub: Any) -> None:
    """Adds ``ingest``."""
    parser = sub.add_parser("ingest", help="ingest files (local paths, file:// or s3:// URIs) and follow the job")
    parser.add_argument("paths", nargs="+", metavar="PATH", help="files, folders, file:// or s3://bucket/prefix")
    parser.add_argument("--no-graph", action="store_true", help="skip knowledge-graph extraction")
    parser.add_argument("--sync", action="store_true", help="remove indexed documents that vanished from the sources")
    parser.add_argument("--json", action="store_true", help="print only a final JSON summary")
    parser.add_argument("--chunk-size", type=int, default=0, help="chunk size in tokens (default: the service's)")
    parser.add_argument("--overlap", type=int, default=0, help="chunk overlap in tokens (default: the service's)")
    add_connection_args(parser)
    parser.set_defaults(func=_run)
