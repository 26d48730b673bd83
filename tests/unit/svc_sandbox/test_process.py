"""The bundle handed to the sandbox init, read back by the init's own parser."""

from __future__ import annotations

import importlib

from svc_sandbox.domain import EffectiveLimits, ExecutionRequest
from svc_sandbox.domain.process import build_bundle

init = importlib.import_module("svc_sandbox.domain._sandbox_init")

LIMITS = EffectiveLimits(
    wall_timeout_ms=1_000,
    cpu_time_ms=2_500,
    memory_bytes=64 << 20,
    output_bytes=100,
    file_size_bytes=1 << 20,
    processes=16,
    open_files=32,
)


def test_bundle_round_trips_through_the_init_parser() -> None:
    request = ExecutionRequest(
        code="print('héllo')\n",
        files={"b.bin": b"\x00\n\n\x01", "a.txt": b"", "c": b"x" * 1000},
    )
    limits, files = init._parse_bundle(build_bundle(request, LIMITS))
    assert limits == [3, 64 << 20, 1 << 20, 16, 32]
    assert files == [
        ("main.py", "print('héllo')\n".encode()),
        ("a.txt", b""),
        ("b.bin", b"\x00\n\n\x01"),
        ("c", b"x" * 1000),
    ]


def test_bundle_without_files_holds_just_the_code() -> None:
    limits, files = init._parse_bundle(build_bundle(ExecutionRequest(code="pass"), LIMITS))
    assert files == [("main.py", b"pass")]
    assert len(limits) == 5
