"""Runs a job's Ray Data pipeline in a thread and feeds its rows, reassembled into documents, to the writer."""

from __future__ import annotations

import asyncio
import threading

from mesh.errors import Unavailable
from svc_ingest.domain.assembly import DocumentAssembler
from svc_ingest.domain.failures import FailureCode, describe
from svc_ingest.jobs.cluster import GroupLost, GroupWatch, NodeTally
from svc_ingest.jobs.dependencies import RunDependencies, Selected
from svc_ingest.jobs.live import LiveJob
from svc_ingest.jobs.writer import Writer
from svc_ingest.pipeline import KIND_CHUNK, PipelineSettings, WorkItem, iterate, placed_groups


async def feed(
    deps: RunDependencies,
    live: LiveJob,
    settings: PipelineSettings,
    items: list[WorkItem],
    selected: dict[str, Selected],
    writer: Writer,
) -> None:
    """Sends ``items`` through the pipeline and every finished document to ``writer``."""
    job = live.job
    loop = asyncio.get_running_loop()
    try:
        settings = await asyncio.to_thread(deps.cluster.placed, settings, job.job_id)
    except Exception as exc:
        raise Unavailable(f"the pipeline failed: {describe(exc)}", reason="PIPELINE_FAILED") from exc
    queue: asyncio.Queue[object] = asyncio.Queue(maxsize=4)
    done = object()
    stop = threading.Event()
    cancel = live.cancel

    def stopped() -> bool:
        return stop.is_set() or cancel.is_set()

    def put(item: object) -> None:
        # Once the consumer has stopped reading (a job given up on), items are dropped, so the
        # producer never blocks on a queue nobody drains.
        future = asyncio.run_coroutine_threadsafe(queue.put(item), loop)
        while True:
            try:
                future.result(timeout=0.5)
                return
            except TimeoutError:
                if stop.is_set() and abandoned.is_set():
                    future.cancel()
                    return

    def produce() -> None:
        try:
            for batch in iterate(items, settings, stopped):
                put(batch)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which raises it
            put(exc)
        finally:
            put(done)

    abandoned = threading.Event()
    watch = GroupWatch(placed_groups(settings), deps.config.ray_group_lost_timeout_s)
    producer = threading.Thread(target=produce, name=f"ingest-pipeline-{job.job_id}", daemon=True)
    producer.start()
    assembler = DocumentAssembler()
    tally = NodeTally(job)
    failure: BaseException | None = None
    finished = False
    try:
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), timeout=watch.interval_s)
            except TimeoutError:
                await watch.check()
                continue
            if item is done:
                finished = True
                break
            if isinstance(item, BaseException):
                failure = item
                continue
            rows = item.to_dict("records")  # type: ignore[attr-defined]
            job.counts.chunks_embedded += sum(1 for r in rows if r["kind"] == KIND_CHUNK)
            await tally.add(rows)
            ready, failed = assembler.add(rows)
            for failure_row in failed:
                await writer.failed(failure_row)
            for doc in ready:
                await writer.add(doc)
            await live.notify()
        await writer.flush()
    except GroupLost:
        # Ray Data waits for ever for a resource no node offers: give the run up and leave the
        # producer to end by itself once the group is back (its output is dropped).
        abandoned.set()
        raise
    finally:
        # On an early exit the producer may be blocked on a full queue: tell it to stop and
        # keep draining until it says it is done.
        stop.set()
        if not abandoned.is_set():
            while not finished:
                item = await queue.get()
                finished = item is done
            await asyncio.to_thread(producer.join, 60)
    if failure is not None:
        raise Unavailable(f"the pipeline failed: {describe(failure)}", reason="PIPELINE_FAILED") from failure
    lost = assembler.unfinished()
    if lost and not live.cancel.is_set():
        for doc_id in lost:
            f = selected[doc_id].file
            live.fail_file(f.uri, f.format_name, FailureCode.PARSER_ERROR.value, "the pipeline lost part of it")
