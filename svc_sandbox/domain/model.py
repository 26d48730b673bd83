"""Values that go in and out of the sandbox: requests, limits, output chunks, results.

Conventions follow ``ragmesh.sandbox.v1`` so that ``convert.py`` stays a field-by-field
copy: times in milliseconds, ``exit_code`` is -1 and ``signal`` non-zero when a signal
ended the program, stdout/stderr are bytes here (the servicer decodes them).
"""

from __future__ import annotations

import enum
import signal as _signal
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

CODE_FILE_NAME = "main.py"
"""Name of the file in the work directory that holds the request's code."""

WORK_DIR = "/work"
"""The sandbox's working directory (a private tmpfs), also its HOME."""


class StopReason(enum.Enum):
    """Why an execution ended."""

    COMPLETED = "COMPLETED"
    """The program exited by itself, with any exit code."""
    TIMEOUT = "TIMEOUT"
    """The wall-clock or the CPU-time limit was reached."""
    MEMORY_LIMIT = "MEMORY_LIMIT"
    """The memory (address-space) limit was reached."""
    OUTPUT_LIMIT = "OUTPUT_LIMIT"
    """stdout plus stderr went over the output limit; the run was killed."""
    KILLED = "KILLED"
    """A signal ended the program that no limit of ours sent (or the caller went away)."""
    ERROR = "ERROR"
    """The sandbox itself failed; ``detail`` says how."""


class OutputStream(enum.Enum):
    """Which pipe a chunk of output came from."""

    STDOUT = "STDOUT"
    STDERR = "STDERR"


@dataclass(frozen=True)
class ResourceLimits:
    """Limits a caller asks for; ``None`` means the configured default.

    Each value must lie within the service's configured bounds, or the request is
    rejected with InvalidArgument naming the field (``limits.<name>``) and the bound.
    """

    wall_timeout_ms: int | None = None
    """Wall-clock limit for the whole execution, in milliseconds."""
    cpu_time_ms: int | None = None
    """CPU time per process, in milliseconds (enforced in whole seconds, rounded up)."""
    memory_bytes: int | None = None
    """Memory limit, in bytes: the address space of each process (RLIMIT_AS, exact) and
    the sum of all processes' resident anonymous memory (sampled every 50 ms)."""
    output_bytes: int | None = None
    """Most bytes of stdout plus stderr kept; more ends the run with OUTPUT_LIMIT."""


@dataclass(frozen=True)
class EffectiveLimits:
    """The limits an execution runs under, after defaults and bounds were applied."""

    wall_timeout_ms: int
    """Wall-clock limit, in milliseconds."""
    cpu_time_ms: int
    """CPU time per process, in milliseconds."""
    memory_bytes: int
    """RLIMIT_AS per process, in bytes."""
    output_bytes: int
    """Cap on stdout plus stderr, in bytes."""
    file_size_bytes: int
    """RLIMIT_FSIZE per process, in bytes."""
    processes: int
    """RLIMIT_NPROC inside the sandbox (processes and threads)."""
    open_files: int
    """RLIMIT_NOFILE per process."""

    @property
    def cpu_time_whole_s(self) -> int:
        """The CPU limit as RLIMIT_CPU sees it: whole seconds, rounded up, at least 1."""
        return max(1, -(-self.cpu_time_ms // 1000))


@dataclass(frozen=True)
class ExecutionRequest:
    """One piece of Python to run, with its stdin, input files and requested limits.

    ``files`` maps plain file names (no directories) to contents; they are written into
    the work directory next to the code before it starts.
    """

    code: str
    """Python source, run as ``/work/main.py`` with ``__name__ == "__main__"``."""
    stdin: bytes = b""
    """Bytes the program reads on standard input."""
    files: Mapping[str, bytes] = field(default_factory=dict)
    """Input files: name -> content."""
    limits: ResourceLimits = field(default_factory=ResourceLimits)
    """Requested limits."""

    def __post_init__(self) -> None:
        # A read-only copy keeps the request immutable after validation.
        object.__setattr__(self, "files", MappingProxyType(dict(self.files)))


@dataclass(frozen=True)
class OutputChunk:
    """A piece of output, streamed as the program produced it (within the output cap)."""

    stream: OutputStream
    """Where it came from."""
    data: bytes
    """The bytes."""


@dataclass(frozen=True)
class ExecutionResult:
    """The outcome of one execution."""

    stop_reason: StopReason
    """Why it ended."""
    exit_code: int
    """Exit code of the program; -1 when a signal ended it."""
    signal: int
    """Number of the signal that ended the program (or that the sandbox sent), 0 if none."""
    stdout: bytes
    """Standard output, at most the output cap."""
    stderr: bytes
    """Standard error; stdout plus stderr stay within the output cap."""
    stdout_truncated: bool
    """Whether stdout was cut at the cap."""
    stderr_truncated: bool
    """Whether stderr was cut at the cap."""
    wall_ms: int
    """Wall-clock time from start to the end of the last process, in milliseconds."""
    cpu_ms: int
    """User plus system CPU time of every process of the execution, in milliseconds."""
    peak_memory_bytes: int
    """Peak resident memory, in bytes: the larger of the biggest single process's
    ru_maxrss and the largest sampled sum of all processes' anonymous and shared
    resident memory; 0 when unknown (the sandbox never reported)."""
    detail: str = ""
    """More about the stop reason, for people."""

    @property
    def signal_name(self) -> str:
        """The signal's name (``SIGKILL``), or an empty string when no signal ended it."""
        if not self.signal:
            return ""
        try:
            return _signal.Signals(self.signal).name
        except ValueError:
            return f"SIG{self.signal}"


ExecutionEvent = OutputChunk | ExecutionResult
"""What ``stream_execute`` yields: output chunks, then exactly one result, last."""
