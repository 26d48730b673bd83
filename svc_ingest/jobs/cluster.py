"""The Ray cluster as a job sees it: connecting, placing stages on worker groups, lost groups, work per node."""

from __future__ import annotations

import asyncio
import logging
import time

from mesh.errors import Unavailable
from svc_ingest.config import Config
from svc_ingest.domain.model import Job
from svc_ingest.pipeline import (
    KIND_CHUNK,
    KIND_DOC,
    KIND_ERROR,
    NODE_COLUMNS,
    STAGE_EMBED,
    STAGE_GRAPH,
    STAGE_PARSE,
    PipelineSettings,
    cluster_resources,
    ensure_ray,
    missing_groups,
    node_directory,
    place,
    placed_groups,
)

log = logging.getLogger(__name__)


class RayCluster:
    """Connects to (or starts) Ray and places a job's stages as the config says (blocking calls)."""

    def __init__(self, config: Config, address: str) -> None:
        self._config = config
        self._address = address

    def connect(self) -> None:
        """Connects to (or starts) Ray."""
        ensure_ray(self._address, num_cpus=self._config.ray_num_cpus or None)

    def placed(self, settings: PipelineSettings, job_id: str) -> PipelineSettings:
        """Connects, then sends the stages to their worker groups as configured."""
        self.connect()
        cfg = self._config
        resources = cluster_resources() if cfg.ray_group_placement == "auto" else {}
        settings = place(settings, cfg.ray_group_placement, cfg.ray_parse_group, cfg.ray_embed_group, resources)
        if placed_groups(settings):
            log.info(
                "pipeline stages placed on worker groups",
                extra={
                    "fields": {"job_id": job_id, "parse": settings.parse_resource, "embed": settings.embed_resource}
                },
            )
        return settings


class GroupLost(Unavailable):
    """Every node of a worker group the pipeline needs left the cluster and none came back in time."""


class GroupWatch:
    """Notices, while a job waits for the pipeline, that a worker group it was placed on has no node left."""

    def __init__(self, groups: tuple[str, ...], timeout_s: float) -> None:
        self.groups = groups
        self.timeout_s = timeout_s
        self.interval_s = min(5.0, max(0.5, timeout_s / 4)) if groups else 3600.0
        self.seen: set[str] = set()
        self.missing_since: dict[str, float] = {}

    async def check(self) -> None:
        """Raises GroupLost once a group that had nodes in this job has had none for ``timeout_s``."""
        if not self.groups:
            return
        missing = set(await asyncio.to_thread(missing_groups, self.groups))
        now = time.monotonic()
        self.seen.update(g for g in self.groups if g not in missing)
        for group in self.groups:
            # Only a group that had nodes in this job is lost: "always" placement may start with
            # none while an autoscaler brings them.
            if group in missing and group in self.seen:
                since = self.missing_since.setdefault(group, now)
                if now - since >= self.timeout_s:
                    raise GroupLost(
                        f"every Ray node of worker group {group!r} left the cluster and none came back in "
                        f"{self.timeout_s:.0f}s; run the job again to resume (documents already written "
                        "are skipped as unchanged)",
                        reason="RAY_NODES_LOST",
                    )
            else:
                self.missing_since.pop(group, None)


class NodeTally:
    """Counts, per pipeline stage, the work each Ray node did (JobCounts.placement), with the nodes' names."""

    def __init__(self, job: Job) -> None:
        self.counts = job.counts
        self.named: set[str] = {w.node_id for w in job.counts.placement if w.node_name}

    async def add(self, rows: list[dict[str, object]]) -> None:
        """Counts the rows' work per (stage, node) and names nodes seen for the first time."""
        work: dict[tuple[str, str], int] = {}
        for row in rows:
            kind = row["kind"]
            if kind in (KIND_DOC, KIND_ERROR):
                self._count(work, STAGE_PARSE, row)
            elif kind == KIND_CHUNK:
                self._count(work, STAGE_EMBED, row)
                self._count(work, STAGE_GRAPH, row)
        entries = [self.counts.add_node_work(stage, node, n) for (stage, node), n in work.items()]
        unnamed = [e for e in entries if e.node_id not in self.named]
        if unnamed:
            try:
                nodes = await asyncio.to_thread(node_directory)
            except Exception:  # names are a report's nicety; the counts stand without them
                log.warning("could not read the Ray node names", exc_info=True)
                return
            for entry in unnamed:
                name, group = nodes.get(entry.node_id, ("", ""))
                entry.node_name, entry.node_group = name, group
                if name:
                    self.named.add(entry.node_id)
            for entry in self.counts.placement:
                if entry.node_id in nodes and not entry.node_name:
                    entry.node_name, entry.node_group = nodes[entry.node_id]

    @staticmethod
    def _count(work: dict[tuple[str, str], int], stage: str, row: dict[str, object]) -> None:
        node = row.get(NODE_COLUMNS[stage])
        if isinstance(node, str) and node:
            work[(stage, node)] = work.get((stage, node), 0) + 1
