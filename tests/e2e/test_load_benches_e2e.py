"""``ragmesh bench load`` and ``ragmesh bench soak`` with tiny settings against the running stack.

Behaviour, not speed: the ghz configs in tests/load/ run through the edge (a
wrong field or method name would end ghz without a report), every call of every
step is accounted for with a status code, the codes are answers or
RESOURCE_EXHAUSTED (StreamChat may also meet its short deadline), no SDK stream
or soak call hangs past its deadline, and the figures have the shape the
benches document (JSON-serialisable, a PNG chart).
The figures themselves are not checked: on a loaded 2-core runner they mean little.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mesh.settings import MeshSettings
from tests.bench import bench_contention, bench_load, bench_soak

pytestmark = pytest.mark.e2e

_PNG = b"\x89PNG\r\n\x1a\n"


def _is_png(path: str) -> bool:
    return Path(path).read_bytes()[:8] == _PNG


def test_bench_load_accounts_for_every_call(settings: MeshSettings, tmp_path: Path) -> None:
    del settings  # the edge is up
    chart = tmp_path / "load.png"
    figures = bench_load.run(
        [
            *(
                "--concurrency",
                "2",
                "--duration-s",
                "1",
                "--warmup-s",
                "1",
                "--corpus",
                "none",
                "--chat-timeout-s",
                "30",
            ),
            *("--drain-timeout-s", "180", "--chart", str(chart)),
        ]
    )
    json.dumps(figures)
    assert set(figures["scenarios"]) == set(bench_load.SCENARIOS)
    for name, steps in figures["scenarios"].items():
        assert [s["concurrency"] for s in steps] == [2], name
        for step in steps:
            assert step["accounted"], (name, step)
            assert step["calls"] == sum(step["codes"].values()) > 0, (name, step)
            # A generation may outlast a short deadline on a loaded runner; anything else is a fault.
            allowed = {"OK", "RESOURCE_EXHAUSTED"} | ({"DEADLINE_EXCEEDED"} if name == "stream_chat" else set())
            assert set(step["codes"]) <= allowed, (name, step["codes"], step["top_errors"])
            assert step["rejected"]["count"] == step["codes"].get("RESOURCE_EXHAUSTED", 0)
            assert {"p50_ms", "p95_ms", "p99_ms"} <= step["latency_ok"].keys() or "OK" not in step["codes"]
        assert any(s["codes"].get("OK") for s in steps), (name, steps)
    assert all("queued_jobs_drained_s" in s for s in figures["scenarios"]["create_ingest_job"])
    # Every scenario but the rate-capped one warmed up first, every warm-up call with an outcome too.
    assert set(figures["warmup"]) == set(bench_load.SCENARIOS) - {"create_ingest_job"}
    for name, warm in figures["warmup"].items():
        assert warm["concurrency"] == 2 and warm["accounted"], (name, warm)
        assert warm["calls"] == sum(warm["codes"].values()) > 0, (name, warm)
    sdk = figures["stream_chat_sdk"]
    assert [s["concurrency"] for s in sdk] == [2]
    for step in sdk:
        assert step["accounted"] and step["calls"] == sum(step["codes"].values()) > 0, step
        assert "HUNG" not in step["codes"], step
    judgements = figures["judgements"]
    assert judgements["every_call_accounted"] is True
    assert judgements["sdk_streams_hung"] == 0
    assert {k: v for k, v in judgements["errors_other_than_resource_exhausted"].items() if k != "stream_chat"} == {
        name: 0 for name in bench_load.SCENARIOS if name != "stream_chat"
    }
    assert figures["machine"]["load_average_at_end"]
    assert _is_png(figures["chart"])


def test_bench_soak_accounts_for_every_call_and_samples_every_part(settings: MeshSettings, tmp_path: Path) -> None:
    del settings
    chart = tmp_path / "soak.png"
    figures = bench_soak.run(
        [
            *("--duration-s", "12", "--sample-s", "3", "--baseline-s", "3", "--poll-s", "2"),
            *("--ingest-source", str(bench_load.tiny_folder()), "--chat-timeout-s", "20", "--chart", str(chart)),
        ]
    )
    json.dumps(figures)
    calls = figures["calls"]
    assert calls["every_call_accounted"] is True and calls["unaccounted"] == 0, calls
    assert calls["hung"] == 0, calls
    assert calls["started"] == sum(calls["outcomes"].values())
    assert {"Search", "StreamChat", "CreateIngestJob"} <= calls["per_rpc"].keys(), calls["per_rpc"].keys()
    for rpc, row in calls["per_rpc"].items():
        assert row["unaccounted"] == 0 and row["started"] == sum(row["outcomes"].values()), (rpc, row)
    assert calls["per_rpc"]["Search"]["outcomes"].get("OK"), calls["per_rpc"]["Search"]
    assert figures["ingest_job"] is not None and figures["ingest_job"]["job_id"]
    samples = figures["samples"]
    assert len(samples) >= 4
    parts = bench_soak.part_pids()
    running = {name for name, pid in parts.items() if pid}
    assert running and running <= samples[-1]["parts"].keys()
    for name in running:
        usage = samples[-1]["parts"][name]
        assert usage is not None and usage["rss_bytes"] > 0 and usage["fds"] > 0, (name, usage)
        assert usage["tree_rss_bytes"] >= usage["rss_bytes"] and usage["tree_processes"] >= 1
        # The stack's parts run as this user: the kernel gives their PSS, which never exceeds their RSS.
        assert usage["tree_pss_bytes"] is not None and 0 < usage["tree_pss_bytes"] <= usage["tree_rss_bytes"]
        assert figures["growth"]["parts"][name]["tree_fds"]["growth_pct"] is not None
    assert figures["restarted_parts"] == []
    # The tenant's index size is read at every sample, beside the processes (an ingest only adds).
    stores = [sample["store"] for sample in samples]
    assert all(store is not None and store.keys() >= {"points", "documents"} for store in stores), stores
    assert stores[-1]["points"] >= stores[0]["points"], stores
    assert (
        figures["store_growth"]["points"]["added"]
        == stores[-1]["points"] - figures["store_growth"]["points"]["baseline"]
    )
    assert _is_png(figures["chart"])


def test_bench_contention_measures_queries_beside_an_ingest_and_accounts_for_every_call(
    settings: MeshSettings,
) -> None:
    del settings
    figures = bench_contention.run(
        [*("--source", str(bench_load.tiny_folder()), "--idle-s", "3", "--corpus", "none", "--chat-timeout-s", "30")]
    )
    json.dumps(figures)
    calls = figures["calls"]
    assert calls["every_call_accounted"] is True and calls["hung"] == 0, calls
    assert {"Search", "StreamChat", "CreateIngestJob", "GetIngestJob"} <= calls["per_rpc"].keys()
    for phase in ("idle_before", "during_ingest", "idle_after"):
        assert figures[phase]["searches"] > 0, (phase, figures[phase])
    for job in ("ingest_alone", "ingest_with_queries"):
        row = figures[job]
        assert row["state"] in ("JOB_STATE_SUCCEEDED", "JOB_STATE_PARTIAL_SUCCESS"), row
        assert row["chunks_embedded"] > 0 and row["run_s"] is not None, row
    # Two tenants, so the second job embeds the same chunks rather than skipping unchanged files.
    assert figures["ingest_alone"]["chunks_embedded"] == figures["ingest_with_queries"]["chunks_embedded"]
    judgements = figures["judgements"]
    assert judgements["search_p50_during_over_idle"] is not None
    assert judgements["every_call_accounted"] is True
