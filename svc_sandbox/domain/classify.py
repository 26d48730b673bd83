"""Why did an execution end? Turns the raw facts of a run into an ExecutionResult.

Pure functions over plain values, so every rule is unit-tested without a sandbox. The
facts come from three places, in order of trust:

1. what the service itself did (``KillReason``: it killed the run for the wall clock, the
   output cap, or because the caller went away);
2. the sandbox init's report (``InitReport``): the main process's exact exit code or
   signal from ``wait4``, whether it died of an uncaught MemoryError, and the rusage of
   every process in the sandbox;
3. bwrap's own wait status and CPU time, when the init could not report (peak memory
   is then unknown and reported as 0: bwrap's ru_maxrss is inherited from the service).
"""

from __future__ import annotations

import enum
import os
import signal
from dataclasses import dataclass

from svc_sandbox.domain.model import EffectiveLimits, ExecutionResult, StopReason

# Crashes that, with a memory-error message on stderr, mean an allocation failed under
# RLIMIT_AS in code that could not raise MemoryError (C extensions, the runtime itself).
_CRASH_SIGNALS = frozenset({signal.SIGSEGV, signal.SIGBUS, signal.SIGABRT})
_MEMORY_HINTS = (b"MemoryError", b"Cannot allocate memory", b"out of memory", b"std::bad_alloc")
# Only the end of stderr is searched: the crash message is the last thing printed.
_HINT_WINDOW_BYTES = 4096


class KillReason(enum.Enum):
    """Why the service killed a run from outside."""

    TIMEOUT = "TIMEOUT"
    """The wall-clock limit passed."""
    OUTPUT_LIMIT = "OUTPUT_LIMIT"
    """stdout plus stderr went over the cap."""
    CANCELLED = "CANCELLED"
    """The caller went away (cancelled RPC, closed stream)."""


@dataclass(frozen=True)
class InitReport:
    """What the sandbox init reported after the main process ended and the rest was reaped."""

    exit_code: int
    """Exit code of the main process; -1 when a signal ended it."""
    signal: int
    """Signal that ended the main process, 0 if none."""
    memory_error: bool
    """The main process ended with an uncaught MemoryError."""
    main_cpu_ms: int
    """CPU time (user + system) of the main process, in milliseconds."""
    cpu_ms: int
    """CPU time of every process the init reaped, in milliseconds."""
    max_rss_bytes: int
    """Largest peak RSS among the reaped processes, in bytes."""
    tree_peak_bytes: int = 0
    """Largest sampled sum of anonymous + shared resident memory of all processes, in bytes."""
    tree_over_limit: bool = False
    """The init ended the run because that sum went over the memory limit."""

    @classmethod
    def parse(cls, text: bytes) -> InitReport | None:
        """Parse the init's one-line report; None when it is missing or malformed."""
        parts = text.split()
        if len(parts) != 8:
            return None
        try:
            exit_code, signo, memory_error, main_cpu_ms, cpu_ms, max_rss, tree_peak, over = (int(p) for p in parts)
        except ValueError:
            return None
        return cls(exit_code, signo, bool(memory_error), main_cpu_ms, cpu_ms, max_rss, tree_peak, bool(over))


@dataclass(frozen=True)
class RawOutcome:
    """Everything observed about one run, before interpretation."""

    kill_reason: KillReason | None
    """Why the service killed the run, or None if it ended by itself."""
    report: InitReport | None
    """The init's report, or None if it never wrote one (killed, or failed to start)."""
    wait_status: int
    """Raw wait status of the process the service started (bwrap, or the init in insecure mode)."""
    wall_ms: int
    """Milliseconds from start until that process was reaped."""
    rusage_cpu_ms: int
    """CPU time of that process and the descendants it reaped, from wait4 (a lower bound)."""
    stdout: bytes
    """Captured stdout (within the cap)."""
    stderr: bytes
    """Captured stderr (within the cap)."""
    stdout_truncated: bool
    """Whether stdout was cut at the cap."""
    stderr_truncated: bool
    """Whether stderr was cut at the cap."""


def _signal_name(signo: int) -> str:
    try:
        return signal.Signals(signo).name
    except ValueError:
        return f"signal {signo}"


def _last_line(data: bytes) -> str:
    lines = [line for line in data.decode("utf-8", "replace").splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def _looks_out_of_memory(stderr: bytes) -> bool:
    tail = stderr[-_HINT_WINDOW_BYTES:]
    return any(hint in tail for hint in _MEMORY_HINTS)


def _decide(outcome: RawOutcome, limits: EffectiveLimits) -> tuple[StopReason, int, int, str]:
    """(stop reason, exit code, signal, detail) for one run."""
    killed = outcome.kill_reason
    report = outcome.report
    if killed is not None:
        # The init reports the main process as SIGKILLed when it was stopped; a report
        # with a clean exit means the program ended on its own as it was being stopped
        # (or, for output read after exit, had already ended).
        exit_code, signo = (report.exit_code, report.signal) if report is not None else (-1, int(signal.SIGKILL))
        if killed is KillReason.TIMEOUT:
            return StopReason.TIMEOUT, exit_code, signo, f"wall-clock limit of {limits.wall_timeout_ms} ms reached"
        if killed is KillReason.OUTPUT_LIMIT:
            return StopReason.OUTPUT_LIMIT, exit_code, signo, f"output limit of {limits.output_bytes} bytes reached"
        return StopReason.KILLED, exit_code, signo, "cancelled by the caller"

    if report is None:
        # The init never reported: bwrap failed to build the sandbox (exit 1 and a
        # "bwrap: ..." line), or something outside killed it (bwrap exits 128 + signal).
        code = os.waitstatus_to_exitcode(outcome.wait_status)
        signo = -code if code < 0 else code - 128 if code > 128 else 0
        if signo:
            return StopReason.KILLED, -1, signo, f"sandbox killed from outside by {_signal_name(signo)}"
        reason = _last_line(outcome.stderr) or f"exit status {code}"
        return StopReason.ERROR, -1, 0, f"sandbox failed: {reason}"

    if report.memory_error:
        return StopReason.MEMORY_LIMIT, report.exit_code, report.signal, _memory_detail(limits)
    if report.tree_over_limit:
        detail = f"processes together held more than the memory limit of {limits.memory_bytes} bytes"
        return StopReason.MEMORY_LIMIT, report.exit_code, report.signal, detail
    if report.signal == signal.SIGXCPU or (
        report.signal == signal.SIGKILL and report.main_cpu_ms >= limits.cpu_time_whole_s * 1000
    ):
        # Soft RLIMIT_CPU sends SIGXCPU; if the code ignores it, the hard limit SIGKILLs.
        return StopReason.TIMEOUT, -1, report.signal, f"CPU-time limit of {limits.cpu_time_whole_s} s reached"
    if report.signal in _CRASH_SIGNALS and _looks_out_of_memory(outcome.stderr):
        return StopReason.MEMORY_LIMIT, -1, report.signal, _memory_detail(limits)
    if report.signal:
        return StopReason.KILLED, -1, report.signal, f"killed by {_signal_name(report.signal)}"
    return StopReason.COMPLETED, report.exit_code, 0, f"exited with code {report.exit_code}"


def _memory_detail(limits: EffectiveLimits) -> str:
    return f"memory limit of {limits.memory_bytes} bytes reached"


def classify(outcome: RawOutcome, limits: EffectiveLimits) -> ExecutionResult:
    """The ExecutionResult for one run: stop reason, exit status, output and usage.

    Usage comes from the init's report when there is one (it covers exactly the
    sandboxed processes); otherwise CPU time is wait4's on the process the service
    started and peak memory is 0 (unknown).
    """
    stop_reason, exit_code, signo, detail = _decide(outcome, limits)
    report = outcome.report
    cpu_ms = report.cpu_ms if report is not None else outcome.rusage_cpu_ms
    peak = max(report.max_rss_bytes, report.tree_peak_bytes) if report is not None else 0
    return ExecutionResult(
        stop_reason=stop_reason,
        exit_code=exit_code,
        signal=int(signo),
        stdout=outcome.stdout,
        stderr=outcome.stderr,
        stdout_truncated=outcome.stdout_truncated,
        stderr_truncated=outcome.stderr_truncated,
        wall_ms=outcome.wall_ms,
        cpu_ms=max(cpu_ms, 0),
        peak_memory_bytes=max(peak, 0),
        detail=detail,
    )
