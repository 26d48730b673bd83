"""Stop-reason classification from the raw facts of a run."""

from __future__ import annotations

import signal

import pytest

from svc_sandbox.domain import EffectiveLimits, StopReason
from svc_sandbox.domain.classify import InitReport, KillReason, RawOutcome, classify

LIMITS = EffectiveLimits(
    wall_timeout_ms=2_000,
    cpu_time_ms=1_500,
    memory_bytes=128 << 20,
    output_bytes=1_000,
    file_size_bytes=1 << 20,
    processes=16,
    open_files=64,
)


def report(exit_code: int = 0, signo: int = 0, memory_error: bool = False, main_cpu_ms: int = 10) -> InitReport:
    return InitReport(exit_code, signo, memory_error, main_cpu_ms, cpu_ms=main_cpu_ms + 5, max_rss_bytes=9 << 20)


def outcome(
    init: InitReport | None = None,
    kill: KillReason | None = None,
    wait_status: int = 0,
    stderr: bytes = b"",
) -> RawOutcome:
    return RawOutcome(
        kill_reason=kill,
        report=init,
        wait_status=wait_status,
        wall_ms=42,
        rusage_cpu_ms=7,
        stdout=b"out",
        stderr=stderr,
        stdout_truncated=False,
        stderr_truncated=False,
    )


@pytest.mark.parametrize("code", [0, 1, 3, 137, 255])
def test_any_exit_code_is_completed(code: int) -> None:
    result = classify(outcome(report(exit_code=code)), LIMITS)
    assert (result.stop_reason, result.exit_code, result.signal) == (StopReason.COMPLETED, code, 0)
    assert result.cpu_ms == 15
    assert result.peak_memory_bytes == 9 << 20
    assert result.wall_ms == 42
    assert result.stdout == b"out"


def test_uncaught_memory_error_is_memory_limit() -> None:
    result = classify(outcome(report(exit_code=1, memory_error=True)), LIMITS)
    assert result.stop_reason is StopReason.MEMORY_LIMIT
    assert str(LIMITS.memory_bytes) in result.detail


def test_processes_together_over_the_limit_is_memory_limit() -> None:
    stopped = InitReport(-1, signal.SIGKILL, False, 10, 20, 60 << 20, tree_peak_bytes=300 << 20, tree_over_limit=True)
    result = classify(outcome(stopped), LIMITS)
    assert (result.stop_reason, result.signal) == (StopReason.MEMORY_LIMIT, signal.SIGKILL)
    assert result.peak_memory_bytes == 300 << 20  # the sampled sum beats any single process
    assert "processes together" in result.detail


@pytest.mark.parametrize("signo", [signal.SIGSEGV, signal.SIGABRT, signal.SIGBUS])
def test_crash_with_memory_message_is_memory_limit(signo: int) -> None:
    stderr = b"Fatal Python error: _PyErr_NoMemory: MemoryError\n"
    result = classify(outcome(report(exit_code=-1, signo=signo), stderr=stderr), LIMITS)
    assert (result.stop_reason, result.signal) == (StopReason.MEMORY_LIMIT, signo)


def test_crash_without_memory_message_is_killed() -> None:
    result = classify(outcome(report(exit_code=-1, signo=signal.SIGSEGV), stderr=b"boom"), LIMITS)
    assert (result.stop_reason, result.exit_code, result.signal) == (StopReason.KILLED, -1, signal.SIGSEGV)
    assert "SIGSEGV" in result.detail


def test_sigxcpu_is_a_cpu_timeout() -> None:
    result = classify(outcome(report(exit_code=-1, signo=signal.SIGXCPU, main_cpu_ms=1_990)), LIMITS)
    assert (result.stop_reason, result.signal) == (StopReason.TIMEOUT, signal.SIGXCPU)
    assert "CPU-time limit of 2 s" in result.detail


def test_sigkill_after_the_cpu_limit_is_a_cpu_timeout() -> None:
    # Code that ignores SIGXCPU gets SIGKILL at the hard limit, one second later.
    result = classify(outcome(report(exit_code=-1, signo=signal.SIGKILL, main_cpu_ms=2_950)), LIMITS)
    assert result.stop_reason is StopReason.TIMEOUT


def test_sigkill_without_cpu_use_is_killed() -> None:
    result = classify(outcome(report(exit_code=-1, signo=signal.SIGKILL, main_cpu_ms=5)), LIMITS)
    assert result.stop_reason is StopReason.KILLED


@pytest.mark.parametrize(
    ("kill", "reason", "words"),
    [
        (KillReason.TIMEOUT, StopReason.TIMEOUT, "wall-clock limit of 2000 ms"),
        (KillReason.OUTPUT_LIMIT, StopReason.OUTPUT_LIMIT, "output limit of 1000 bytes"),
        (KillReason.CANCELLED, StopReason.KILLED, "cancelled"),
    ],
)
def test_kills_by_the_service_win(kill: KillReason, reason: StopReason, words: str) -> None:
    stopped = report(exit_code=-1, signo=signal.SIGKILL)
    result = classify(outcome(stopped, kill=kill), LIMITS)
    assert (result.stop_reason, result.exit_code, result.signal) == (reason, -1, signal.SIGKILL)
    assert words in result.detail
    assert result.peak_memory_bytes == 9 << 20  # the init still reported usage


def test_kill_without_a_report_uses_bwrap_figures() -> None:
    result = classify(outcome(None, kill=KillReason.TIMEOUT, wait_status=signal.SIGKILL), LIMITS)
    assert (result.stop_reason, result.exit_code, result.signal) == (StopReason.TIMEOUT, -1, signal.SIGKILL)
    assert result.cpu_ms == 7
    assert result.peak_memory_bytes == 0  # unknown


def test_output_over_the_cap_after_a_clean_exit_keeps_the_exit_code() -> None:
    result = classify(outcome(report(exit_code=0), kill=KillReason.OUTPUT_LIMIT), LIMITS)
    assert (result.stop_reason, result.exit_code, result.signal) == (StopReason.OUTPUT_LIMIT, 0, 0)


def test_bwrap_setup_failure_is_an_error() -> None:
    status = 1 << 8  # exited with 1
    result = classify(outcome(None, wait_status=status, stderr=b"bwrap: Can't mount proc on /newroot/proc\n"), LIMITS)
    assert result.stop_reason is StopReason.ERROR
    assert "Can't mount proc" in result.detail


def test_init_killed_from_outside_is_killed() -> None:
    status = (128 + signal.SIGKILL) << 8  # bwrap exits 128 + the init's signal
    result = classify(outcome(None, wait_status=status), LIMITS)
    assert (result.stop_reason, result.signal) == (StopReason.KILLED, signal.SIGKILL)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b"0 0 0 5 7 1024 2048 0\n", InitReport(0, 0, False, 5, 7, 1024, 2048, False)),
        (b"-1 9 1 5 7 1024 0 1", InitReport(-1, 9, True, 5, 7, 1024, 0, True)),
        (b"0 0 0 5 7 1024", None),
        (b"", None),
        (b"1 2 3", None),
        (b"a b c d e f", None),
    ],
)
def test_init_report_parsing(text: bytes, expected: InitReport | None) -> None:
    assert InitReport.parse(text) == expected
