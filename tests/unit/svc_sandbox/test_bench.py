"""Benchmark helpers (the benchmark itself runs under ``ragmesh bench sandbox``)."""

from __future__ import annotations

from svc_sandbox.domain.bench import percentile


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) in (50.0, 51.0)
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([3.0], 99) == 3.0
