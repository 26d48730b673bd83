"""The machine a benchmark records is detected: cores, CPU model, GPUs from nvidia-smi or /proc, or none."""

from __future__ import annotations

import json
import os
import stat
import sys
import types
from pathlib import Path

import pytest

from mesh.cli import bench_cmds
from tests.bench import machine as bench_machine

_CPUINFO = """processor\t: 0
model name\t: Fake CPU 9000 @ 3.00GHz
physical id\t: 0
core id\t: 0

processor\t: 1
model name\t: Fake CPU 9000 @ 3.00GHz
physical id\t: 0
core id\t: 0

processor\t: 2
model name\t: Fake CPU 9000 @ 3.00GHz
physical id\t: 0
core id\t: 1
"""


@pytest.fixture
def proc(tmp_path: Path) -> Path:
    """A fake /proc with three logical CPUs on two cores and 16 GiB."""
    root = tmp_path / "proc"
    root.mkdir()
    (root / "cpuinfo").write_text(_CPUINFO)
    (root / "meminfo").write_text("MemTotal:       16777216 kB\nMemFree:  1 kB\n")
    return root


@pytest.fixture
def no_nvidia_smi(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


def fake_nvidia_smi(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, output: str, rc: int = 0) -> None:
    """An nvidia-smi on PATH that prints ``output`` and exits ``rc``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    tool = bin_dir / "nvidia-smi"
    lines = "".join(f"echo '{line}'\n" for line in output.splitlines())  # a builtin: PATH holds only this folder
    tool.write_text(f"#!/bin/sh\n{lines}exit {rc}\n")
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", str(bin_dir))


def test_cores_model_and_memory_come_from_proc(proc: Path, no_nvidia_smi: None) -> None:
    found = bench_machine.machine(proc)
    assert found["cpu_model"] == "Fake CPU 9000 @ 3.00GHz"
    assert found["physical_cores"] == 2
    assert found["memory_gib"] == 16.0
    assert found["cpus"] == os.cpu_count()


def test_no_gpu_is_reported_as_none_when_nothing_finds_one(proc: Path, no_nvidia_smi: None) -> None:
    found = bench_machine.machine(proc)
    assert (found["gpu"], found["gpu_count"], found["gpu_detected_by"]) == ("none", 0, "none")


def test_gpus_come_from_nvidia_smi(proc: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake_nvidia_smi(monkeypatch, tmp_path, "NVIDIA H100 80GB HBM3, 81559 MiB\nNVIDIA H100 80GB HBM3, 81559 MiB")
    found = bench_machine.machine(proc)
    assert found["gpu"] == "NVIDIA H100 80GB HBM3, 81559 MiB, NVIDIA H100 80GB HBM3, 81559 MiB"
    assert (found["gpu_count"], found["gpu_detected_by"]) == (2, "nvidia-smi")


def test_the_drivers_proc_entries_stand_in_for_a_failing_nvidia_smi(
    proc: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake_nvidia_smi(monkeypatch, tmp_path, "NVIDIA-SMI has failed", rc=9)
    gpu = proc / "driver" / "nvidia" / "gpus" / "0000:01:00.0"
    gpu.mkdir(parents=True)
    (gpu / "information").write_text("Model: \t\t NVIDIA L4\nIRQ:   \t\t 42\n")
    found = bench_machine.machine(proc)
    assert (found["gpu"], found["gpu_count"], found["gpu_detected_by"]) == ("NVIDIA L4", 1, "/proc")


def test_ragmesh_bench_records_the_machine_for_a_bench_that_does_not(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    area = types.ModuleType("tests.bench.bench_fakearea")
    area.run = lambda argv: {"figure_ms": 1.0}  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tests.bench.bench_fakearea", area)
    monkeypatch.setattr(bench_cmds, "_areas", lambda: ["fakearea"])
    out = tmp_path / "fakearea.json"
    args = types.SimpleNamespace(area="fakearea", bench_args=[], out=str(out))
    assert bench_cmds._run(args) == 0  # type: ignore[arg-type]
    recorded = json.loads(out.read_text())["figures"]
    assert recorded["figure_ms"] == 1.0
    assert recorded["machine"]["cpus"] == os.cpu_count()
    assert recorded["machine"]["gpu_detected_by"] in ("nvidia-smi", "/proc", "none")


def test_every_bench_records_the_detected_machine() -> None:
    """No bench writes machine facts of its own (a hard-coded "no GPU" once stood in a figure file)."""
    bench_dir = Path(bench_machine.__file__).parent
    for path in sorted(bench_dir.glob("bench_*.py")):
        source = path.read_text()
        assert "machine()" in source, f"{path.name} does not record tests.bench.machine.machine()"
        for assumed in ('"gpu": False', "no GPU", '"cpus": os.cpu_count()'):
            assert assumed not in source, f"{path.name} states {assumed!r} instead of detecting it"
