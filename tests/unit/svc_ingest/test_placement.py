"""Sending the pipeline's stages to worker groups, and the job's record of which node did what."""

from __future__ import annotations

import pytest

from mesh.config import ConfigError
from svc_ingest.config import Config
from svc_ingest.domain.chunk import ChunkingOptions
from svc_ingest.domain.model import JobCounts
from svc_ingest.domain.parse import ParseOptions
from svc_ingest.pipeline import PipelineSettings, _stage_resources, place, placed_groups


def _settings(**values: object) -> PipelineSettings:
    return PipelineSettings(
        inference_addr="x:1",
        tenant="t",
        parse=ParseOptions(),
        chunking=ChunkingOptions(max_tokens=200, overlap_tokens=20, combine_under_tokens=100),
        graph=None,
        **values,  # type: ignore[arg-type]
    )


def test_auto_places_only_when_the_cluster_offers_both_groups() -> None:
    settings = _settings(parse_concurrency=4, embed_concurrency=2)
    assert place(settings, "auto", "parse", "embed", {"CPU": 4.0, "parse": 2.0}) == settings
    placed = place(settings, "auto", "parse", "embed", {"CPU": 4.0, "parse": 2.0, "embed": 3.0})
    assert (placed.parse_resource, placed.embed_resource) == ("parse", "embed")
    # No more at once than the group has units: more would wait for ever where nothing autoscales.
    assert (placed.parse_concurrency, placed.embed_concurrency) == (2, 2)
    assert placed_groups(placed) == ("parse", "embed")
    assert placed_groups(settings) == ()


def test_always_places_without_looking_and_off_never() -> None:
    settings = _settings(parse_concurrency=16)
    always = place(settings, "always", "parse", "embed", {})
    assert (always.parse_resource, always.embed_resource, always.parse_concurrency) == ("parse", "embed", 16)
    assert place(settings, "off", "parse", "embed", {"parse": 1.0, "embed": 1.0}) == settings
    assert place(settings, "auto", "", "embed", {"parse": 1.0, "embed": 1.0}) == settings


def test_a_placed_stage_asks_for_a_unit_of_its_group_instead_of_cpus() -> None:
    assert _stage_resources("parse", 1.0) == {"num_cpus": 0, "resources": {"parse": 1}}
    assert _stage_resources("", 0.25) == {"num_cpus": 0.25}


def test_placement_is_counted_per_stage_and_node_and_survives_json() -> None:
    counts = JobCounts()
    counts.add_node_work("parse", "n1", 3)
    counts.add_node_work("embed", "n2", 10)
    entry = counts.add_node_work("parse", "n1", 2)
    entry.node_name, entry.node_group = "ray_worker_1", "parse"
    assert [(w.stage, w.node_id, w.items) for w in counts.placement] == [("parse", "n1", 5), ("embed", "n2", 10)]
    again = JobCounts.from_json(counts.to_json())
    assert again.placement == counts.placement
    assert JobCounts.from_json({"files_discovered": 2}).placement == []


def test_placement_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="RAY_GROUP_PLACEMENT"):
        Config(ray_group_placement="sometimes")
    with pytest.raises(ConfigError, match="LOST_TIMEOUT"):
        Config(ray_group_lost_timeout_s=0)
