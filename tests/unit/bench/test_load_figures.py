"""The load and soak benches' bookkeeping: ghz reports read back, process trees from /proc, growth, the ledger."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import grpc
import pytest

from tests.bench import bench_load, bench_soak, ghz, procs


def _report(statuses: list[tuple[str, float]], total_s: float = 2.0) -> dict[str, Any]:
    dist: dict[str, int] = {}
    for status, _ in statuses:
        dist[status] = dist.get(status, 0) + 1
    return {
        "count": len(statuses),
        "total": total_s * 1e9,
        "details": [{"status": s, "latency": ms * 1e6} for s, ms in statuses],
        "statusCodeDistribution": dist,
        "errorDistribution": {"rpc error: code = ResourceExhausted desc = edge rate limit exceeded": 1},
    }


def test_summarize_counts_every_call_and_times_refusals_apart() -> None:
    step = ghz.summarize(_report([("OK", 10.0), ("OK", 30.0), ("ResourceExhausted", 3.0), ("Unavailable", 250.0)]), 4)
    assert step["calls"] == 4 and step["accounted"]
    assert step["codes"] == {"OK": 2, "RESOURCE_EXHAUSTED": 1, "UNAVAILABLE": 1}
    assert step["rps"] == 2.0 and step["ok_rps"] == 1.0
    assert step["latency_ok"]["p50_ms"] == 20.0 and step["latency_ok"]["max_ms"] == 30.0
    assert step["rejected"] == {
        "count": 1,
        "within_100ms": 1,
        "p50_ms": 3.0,
        "p95_ms": 3.0,
        "p99_ms": 3.0,
        "max_ms": 3.0,
    }
    assert step["errors_other_than_resource_exhausted"] == 1
    assert step["top_errors"][0]["count"] == 1


def test_summarize_flags_a_report_whose_details_miss_calls() -> None:
    report = _report([("OK", 10.0), ("OK", 12.0)])
    report["count"] = 3
    assert ghz.summarize(report, 1)["accounted"] is False


def test_placeholders_are_filled_and_ghz_templates_left_alone() -> None:
    data = {"sources": ["$folder"], "job_id": "$job_id", "query": "q {{.RequestNumber}}", "n": 3}
    filled = ghz._fill(data, {"folder": "/x", "job_id": "j1"})
    assert filled == {"sources": ["/x"], "job_id": "j1", "query": "q {{.RequestNumber}}", "n": 3}


def test_every_scenario_has_a_ghz_config_naming_a_real_method() -> None:
    from google.protobuf import descriptor_pool

    from ragmesh.agent.v1 import agent_service_pb2  # noqa: F401 - loads the descriptors
    from ragmesh.inference.v1 import inference_service_pb2  # noqa: F401
    from ragmesh.ingest.v1 import ingest_service_pb2  # noqa: F401
    from ragmesh.retrieval.v1 import retrieval_service_pb2  # noqa: F401

    pool = descriptor_pool.Default()
    for scenario in bench_load.SCENARIOS.values():
        config = ghz.load_config(scenario.config)
        service, method = config["call"].rsplit(".", 1)
        assert pool.FindServiceByName(service).FindMethodByName(method) is not None, config["call"]


def _fake_proc(root: Path, processes: dict[int, tuple[int, int, int]], pss_kib: dict[int, int] | None = None) -> Path:
    """pid -> (ppid, rss_kib, fds) as /proc would show them; PSS (smaps_rollup) only for the pids in ``pss_kib``."""
    for pid, (ppid, rss_kib, fds) in processes.items():
        folder = root / str(pid)
        (folder / "fd").mkdir(parents=True)
        (folder / "stat").write_text(f"{pid} (a name) with spaces) S {ppid} 1 1 0\n")
        (folder / "status").write_text(f"Name:\tx\nVmRSS:\t{rss_kib} kB\n")
        if pss_kib is not None and pid in pss_kib:
            (folder / "smaps_rollup").write_text(
                f"00400000-7fff [rollup]\nRss:\t{rss_kib} kB\nPss:\t{pss_kib[pid]} kB\nPss_Anon:\t1 kB\n"
            )
        for fd in range(fds):
            (folder / "fd" / str(fd)).touch()
    return root


def test_sample_sums_a_part_over_its_process_tree(tmp_path: Path) -> None:
    proc = _fake_proc(tmp_path, {10: (1, 100, 3), 11: (10, 50, 2), 12: (11, 25, 1), 20: (1, 7, 4)})
    sample = procs.sample({"ray": 10, "envoy": 20, "stopped": None, "gone": 99}, proc)
    assert sample["ray"] == {
        "rss_bytes": 100 * 1024,
        "fds": 3,
        "tree_rss_bytes": 175 * 1024,
        "tree_pss_bytes": None,
        "tree_fds": 6,
        "tree_processes": 3,
    }
    assert sample["envoy"] is not None and sample["envoy"]["tree_processes"] == 1
    assert sample["stopped"] is None and sample["gone"] is None


def test_a_trees_pss_counts_each_shared_page_once(tmp_path: Path) -> None:
    # Two processes each resident on the same 80 KiB they share, and on 20 KiB of their own.
    proc = _fake_proc(tmp_path, {10: (1, 100, 1), 11: (10, 100, 1)}, pss_kib={10: 60, 11: 60})
    sample = procs.sample({"postgres": 10}, proc)["postgres"]
    assert sample is not None
    assert sample["tree_rss_bytes"] == 200 * 1024
    assert sample["tree_pss_bytes"] == 120 * 1024


def test_a_process_that_ends_between_the_reads_is_left_out_of_the_sample(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    proc = _fake_proc(tmp_path, {10: (1, 100, 1), 11: (10, 100, 1)}, pss_kib={10: 60, 11: 60})
    real = procs._pss_bytes

    def ends_while_read(pid: int, root: Path) -> int | None:
        if pid == 11:
            shutil.rmtree(root / "11")
            return None
        return real(pid, root)

    monkeypatch.setattr(procs, "_pss_bytes", ends_while_read)
    sample = procs.sample({"ray": 10}, proc)["ray"]
    assert sample is not None
    assert sample["tree_processes"] == 1
    assert sample["tree_rss_bytes"] == 100 * 1024 and sample["tree_pss_bytes"] == 60 * 1024


def test_a_tree_with_a_process_of_unknown_pss_has_no_pss(tmp_path: Path) -> None:
    proc = _fake_proc(tmp_path, {10: (1, 100, 1), 11: (10, 100, 1)}, pss_kib={10: 60})
    sample = procs.sample({"postgres": 10}, proc)["postgres"]
    assert sample is not None and sample["tree_pss_bytes"] is None


def _usage(rss: int, fds: int, pss: int | None = None) -> dict[str, int | None]:
    return {
        "rss_bytes": rss,
        "fds": fds,
        "tree_rss_bytes": rss * 2,
        "tree_pss_bytes": pss,
        "tree_fds": fds * 2,
        "tree_processes": 2,
    }


def test_growth_runs_from_the_first_sample_past_the_baseline_to_the_last() -> None:
    samples = [
        {"t_s": 0.0, "parts": {"a": _usage(50, 5), "b": _usage(10, 1)}},
        {"t_s": 120.0, "parts": {"a": _usage(100, 10), "b": _usage(10, 1)}},
        {"t_s": 600.0, "parts": {"a": _usage(105, 10), "b": None}},
    ]
    out = bench_soak.growth(samples, 120.0)
    assert out["baseline_t_s"] == 120.0 and out["last_t_s"] == 600.0
    assert out["parts"]["a"]["rss_bytes"] == {"baseline": 100, "last": 105, "growth_pct": 5.0}
    assert out["parts"]["a"]["tree_fds"]["growth_pct"] == 0.0
    assert out["parts"]["a"]["tree_processes"]["growth_pct"] == 0.0
    assert out["parts"]["b"] is None
    # No PSS in these samples: no PSS growth, rather than a made-up one.
    assert "tree_pss_bytes" not in out["parts"]["a"]


def test_growth_reports_pss_beside_rss_when_both_samples_have_it() -> None:
    samples = [
        {"t_s": 120.0, "parts": {"a": _usage(100, 10, pss=80)}},
        {"t_s": 600.0, "parts": {"a": _usage(130, 10, pss=84)}},
    ]
    out = bench_soak.growth(samples, 120.0)
    assert out["parts"]["a"]["tree_rss_bytes"]["growth_pct"] == 30.0
    assert out["parts"]["a"]["tree_pss_bytes"] == {"baseline": 80, "last": 84, "growth_pct": 5.0}


def test_store_growth_reads_the_index_size_at_the_baseline_and_the_end() -> None:
    samples = [
        {"t_s": 0.0, "parts": {}, "store": {"points": 10, "documents": 1}},
        {"t_s": 120.0, "parts": {}, "store": {"points": 40, "documents": 2}},
        {"t_s": 600.0, "parts": {}, "store": {"points": 100, "documents": 5}},
    ]
    assert bench_soak.store_growth(samples, 120.0) == {
        "points": {"baseline": 40, "last": 100, "added": 60},
        "documents": {"baseline": 2, "last": 5, "added": 3},
    }
    samples[-1]["store"] = None
    assert bench_soak.store_growth(samples, 120.0) is None
    assert bench_soak.store_growth([], 120.0) is None


def test_ledger_accounts_for_answers_codes_and_hung_calls() -> None:
    ledger = bench_soak.Ledger(grace_s=0.05)

    async def ok(_: float) -> str:
        return "answer"

    async def refused(_: float) -> None:
        raise grpc.aio.AioRpcError(grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.aio.Metadata(), grpc.aio.Metadata())

    async def hangs(_: float) -> None:
        await asyncio.sleep(10)

    async def broken(_: float) -> None:
        raise ValueError("bad")

    async def main() -> list[Any]:
        return [
            await ledger.call("Search", 0.05, ok),
            await ledger.call("Search", 0.05, refused),
            await ledger.call("StreamChat", 0.05, hangs),
            await ledger.call("StreamChat", 0.05, broken),
        ]

    assert asyncio.run(main()) == ["answer", None, None, None]
    report = ledger.report()
    assert report["started"] == 4 and report["every_call_accounted"] and report["unaccounted"] == 0
    assert report["outcomes"] == {"CLIENT_ERROR": 1, "HUNG": 1, "OK": 1, "RESOURCE_EXHAUSTED": 1}
    assert report["hung"] == 1
    assert report["per_rpc"]["Search"]["rejected"]["count"] == 1
    assert "ValueError" in report["first_client_errors"][0]


class _FakeIngestStub:
    """A fake IngestService stub (unit test only) that refuses every CreateIngestJob as INVALID_ARGUMENT."""

    def __init__(self) -> None:
        self.created = 0

    async def CreateIngestJob(self, request: Any, **_: Any) -> None:
        self.created += 1
        raise grpc.aio.AioRpcError(grpc.StatusCode.INVALID_ARGUMENT, grpc.aio.Metadata(), grpc.aio.Metadata())


def test_soak_ingester_does_not_repeat_a_refused_request(tmp_path: Path) -> None:
    ledger = bench_soak.Ledger(grace_s=0.05)

    async def main() -> int:
        async with grpc.aio.insecure_channel("127.0.0.1:1") as channel:
            traffic = bench_soak.Traffic(channel, [], ledger)
            fake = _FakeIngestStub()
            traffic.ingest = fake  # type: ignore[assignment]
            await asyncio.wait_for(traffic.ingester(tmp_path, False, poll_s=0.01, timeout_s=0.05), 2.0)
            return fake.created

    assert asyncio.run(main()) == 1
    assert ledger.report()["outcomes"] == {"INVALID_ARGUMENT": 1}


def test_soak_ingest_source_is_resolved_against_the_working_directory(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    seen: dict[str, Any] = {}

    async def fake_bench(args: Any) -> dict[str, Any]:
        seen["source"] = args.ingest_source
        return {}

    monkeypatch.setattr(bench_soak, "_bench", fake_bench)
    bench_soak.run(["--ingest-source", "docs", "--chart", ""])
    assert seen["source"] == tmp_path / "docs"


@pytest.mark.parametrize("text", ["", "0", "1,x"])
def test_concurrency_list_is_validated(text: str) -> None:
    import argparse

    with pytest.raises((argparse.ArgumentTypeError, ValueError)):
        bench_load._ints(text)
