"""A job notices a worker group whose nodes all left, and counts which node did what (no Ray: fakes of the GCS)."""

from __future__ import annotations

import asyncio

import pytest

from svc_ingest.domain.model import Job, JobOptions, JobState
from svc_ingest.jobs import cluster


def _fake_gcs(monkeypatch: pytest.MonkeyPatch, missing: list[list[str]]) -> None:
    answers = iter(missing)
    monkeypatch.setattr(cluster, "missing_groups", lambda groups: next(answers))


def test_a_group_that_had_nodes_and_lost_them_fails_after_the_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_gcs(monkeypatch, [[], ["embed"], ["embed"]])
    watch = cluster.GroupWatch(("parse", "embed"), timeout_s=0.05)

    async def scenario() -> None:
        await watch.check()  # both groups present
        await watch.check()  # embed gone: the clock starts
        await asyncio.sleep(0.06)
        with pytest.raises(cluster.GroupLost, match="worker group 'embed'") as lost:
            await watch.check()
        assert lost.value.reason == "RAY_NODES_LOST"

    asyncio.run(scenario())


def test_a_group_never_seen_is_waited_for_and_a_returning_one_resets(monkeypatch: pytest.MonkeyPatch) -> None:
    # "always" placement may start before an autoscaler brings the group's first node.
    _fake_gcs(monkeypatch, [["parse"], ["parse"], [], ["parse"], []])
    watch = cluster.GroupWatch(("parse", "embed"), timeout_s=0.01)

    async def scenario() -> None:
        for _ in range(5):
            await watch.check()
            await asyncio.sleep(0.02)

    asyncio.run(scenario())
    assert watch.missing_since == {}


def test_unplaced_jobs_do_not_watch() -> None:
    watch = cluster.GroupWatch((), timeout_s=1)
    assert watch.interval_s >= 3600
    asyncio.run(watch.check())


def test_node_tally_counts_files_and_chunks_per_node_and_names_them(monkeypatch: pytest.MonkeyPatch) -> None:
    job = Job(job_id="j", tenant="t", state=JobState.RUNNING, sources=(), options=JobOptions(240, 32))
    monkeypatch.setattr(
        cluster, "node_directory", lambda: {"n1": ("ray_worker_1", "parse"), "n2": ("ray_worker_2", "embed")}
    )
    rows = [
        {"kind": "doc", "parse_node": "n1"},
        {"kind": "error", "parse_node": "n1"},
        {"kind": "chunk", "parse_node": "n1", "embed_node": "n2"},
        {"kind": "chunk", "parse_node": "n1", "embed_node": "n2"},
    ]
    asyncio.run(cluster.NodeTally(job).add(rows))
    placed = {(w.stage, w.node_name, w.node_group): w.items for w in job.counts.placement}
    assert placed == {("parse", "ray_worker_1", "parse"): 2, ("embed", "ray_worker_2", "embed"): 2}
