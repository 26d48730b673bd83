"""The machine a benchmark ran on, detected (not assumed): cores, CPU model, memory, GPU or none.

Every ``ragmesh bench`` area records ``machine()`` with its figures, so a figure
is never read without the hardware that produced it. GPUs come from
``nvidia-smi`` when it runs, else from the NVIDIA driver's ``/proc`` entries
(a driver without its tools); "none" means neither found one.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from pathlib import Path
from typing import Any

PROC = Path("/proc")


def _cpuinfo(proc: Path) -> list[dict[str, str]]:
    """/proc/cpuinfo as one dict per logical CPU."""
    try:
        text = (proc / "cpuinfo").read_text()
    except OSError:
        return []
    cpus: list[dict[str, str]] = []
    for block in text.split("\n\n"):
        fields = {}
        for line in block.splitlines():
            key, sep, value = line.partition(":")
            if sep:
                fields[key.strip()] = value.strip()
        if fields:
            cpus.append(fields)
    return cpus


def cpu_model(proc: Path = PROC) -> str:
    """The CPU's model name ("unknown" when neither /proc nor the platform says)."""
    for cpu in _cpuinfo(proc):
        if cpu.get("model name"):
            return cpu["model name"]
    return platform.processor() or "unknown"


def physical_cores(proc: Path = PROC) -> int | None:
    """Distinct (package, core) pairs in /proc/cpuinfo; None when it does not list them."""
    cpus = _cpuinfo(proc)
    cores = {(cpu["physical id"], cpu["core id"]) for cpu in cpus if "physical id" in cpu and "core id" in cpu}
    return len(cores) or None


def memory_gib(proc: Path = PROC) -> float | None:
    """Total memory in GiB from /proc/meminfo."""
    try:
        for line in (proc / "meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except (OSError, ValueError, IndexError):
        pass
    return None


def _nvidia_smi() -> list[str] | None:
    """GPU names as nvidia-smi lists them; None when it is missing or fails."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        done = subprocess.run(
            [smi, "--query-gpu=name,memory.total", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    return [line.strip() for line in done.stdout.splitlines() if line.strip()]


def _proc_nvidia(proc: Path) -> list[str]:
    """GPU models the NVIDIA kernel driver lists under /proc/driver/nvidia/gpus/."""
    names: list[str] = []
    for info in sorted((proc / "driver" / "nvidia" / "gpus").glob("*/information")):
        try:
            for line in info.read_text().splitlines():
                key, _, value = line.partition(":")
                if key.strip() == "Model":
                    names.append(value.strip())
        except OSError:
            continue
    return names


def gpus(proc: Path = PROC) -> tuple[list[str], str]:
    """The GPUs found and what found them: ("nvidia-smi" | "/proc" | "none")."""
    found = _nvidia_smi()
    if found:
        return found, "nvidia-smi"
    found = _proc_nvidia(proc)
    if found:
        return found, "/proc"
    return [], "none"


def machine(proc: Path = PROC) -> dict[str, Any]:
    """What ``ragmesh bench`` records with every figure."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    found, source = gpus(proc)
    return {
        "cpus": os.cpu_count(),
        "cpus_usable": usable,
        "physical_cores": physical_cores(proc),
        "cpu_model": cpu_model(proc),
        "memory_gib": memory_gib(proc),
        "platform": platform.platform(),
        "gpu": ", ".join(found) if found else "none",
        "gpu_count": len(found),
        "gpu_detected_by": source,
    }
