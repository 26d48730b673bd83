"""The sandbox's settings, as plain values: isolation, per-execution limits and fair use.

svc_sandbox.config nests them in the service's Config and fills them from the
environment (``RAGMESH_SANDBOX_<FIELD_NAME_UPPER>``), where contradictory values are
refused at startup. Limits a caller may request are bounded by the ``max_*`` fields;
the ``default_*`` fields apply when a request leaves a limit out.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

_KIB = 1024
_MIB = 1024 * _KIB


@dataclass(frozen=True)
class SandboxSettings:
    """Settings of the sandbox: isolation, per-execution limits and fair use."""

    # --- isolation -----------------------------------------------------------------
    bwrap_path: str = "bwrap"
    """bubblewrap executable: an absolute path, or a name looked up on PATH at startup."""

    python_path: Path = Path("/usr/bin/python3")
    """Interpreter that runs the code inside the sandbox (the system one; run with -I)."""

    allow_insecure_no_isolation: bool = False
    """Development only: start without bubblewrap and run code with rlimits alone.

    Without it, a missing bwrap is a startup error. With it, every start logs a loud
    warning; code then sees the host's files, network and processes.
    """

    run_as_uid: int = 65534
    """Unprivileged host uid that bwrap runs as when the service itself runs as root.

    RLIMIT_NPROC is not enforced for uid 0, and code must never run as host root.
    Ignored when the service is not root (it then keeps its own uid).
    """

    run_as_gid: int = 65534
    """Host gid that goes with ``run_as_uid``."""

    # --- per-execution limits a caller may ask for ------------------------------------
    default_wall_timeout_ms: int = 5_000
    """Wall-clock limit when the request sets none, in milliseconds."""

    max_wall_timeout_ms: int = 30_000
    """Largest wall-clock limit a request may ask for, in milliseconds."""

    default_cpu_time_ms: int = 5_000
    """CPU-time limit per process when the request sets none, in milliseconds.

    Enforced with RLIMIT_CPU, which counts whole seconds: the limit is rounded up.
    """

    max_cpu_time_ms: int = 30_000
    """Largest CPU-time limit a request may ask for, in milliseconds."""

    default_memory_bytes: int = 256 * _MIB
    """Address-space limit (RLIMIT_AS) per process when the request sets none, in bytes."""

    min_memory_bytes: int = 64 * _MIB
    """Smallest address-space limit a request may ask for (the interpreter needs ~30 MiB)."""

    max_memory_bytes: int = 1024 * _MIB
    """Largest address-space limit a request may ask for, in bytes."""

    default_output_bytes: int = 64 * _KIB
    """Cap on stdout plus stderr when the request sets none, in bytes."""

    max_output_bytes: int = 1 * _MIB
    """Largest cap on stdout plus stderr a request may ask for, in bytes."""

    # --- request size --------------------------------------------------------------
    max_code_bytes: int = 64 * _KIB
    """Largest source code accepted, in bytes of UTF-8."""

    max_stdin_bytes: int = 1 * _MIB
    """Largest stdin accepted, in bytes."""

    max_input_files: int = 16
    """Most input files one request may carry."""

    max_input_file_bytes: int = 1 * _MIB
    """Largest single input file, in bytes."""

    max_input_total_bytes: int = 4 * _MIB
    """Largest total size of all input files of one request, in bytes."""

    # --- fixed sandbox resources (not requestable) ---------------------------------------
    work_dir_bytes: int = 32 * _MIB
    """Size of the private tmpfs mounted on /work (code, inputs, outputs), in bytes."""

    scratch_dir_bytes: int = 8 * _MIB
    """Size of each private tmpfs on /tmp and /dev/shm, in bytes."""

    max_file_size_bytes: int = 16 * _MIB
    """RLIMIT_FSIZE: largest file a sandboxed process may write, in bytes."""

    max_processes: int = 32
    """RLIMIT_NPROC inside the sandbox: processes and threads, the sandbox's init included."""

    max_open_files: int = 64
    """RLIMIT_NOFILE: open file descriptors per sandboxed process."""

    # --- fair use ------------------------------------------------------------------
    max_concurrent_executions: int = 0
    """Executions running at once across all tenants; 0 means the machine's CPU count."""

    max_queued_executions: int = 16
    """Executions that may wait for a free slot; beyond it requests get SANDBOX_QUEUE_FULL."""

    max_executions_per_tenant: int = 4
    """Executions (running or queued) one tenant may have at once."""

    queue_timeout_s: float = 30.0
    """Longest wait for a free slot before giving up with SANDBOX_QUEUE_TIMEOUT, in seconds."""

    @property
    def effective_concurrency(self) -> int:
        """Executions allowed to run at once: the configured value, or the CPU count for 0."""
        if self.max_concurrent_executions > 0:
            return self.max_concurrent_executions
        return os.cpu_count() or 1
