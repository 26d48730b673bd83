"""Process control on real (tiny) processes: detached start, pid files, group stop, pid reuse."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from mesh.stack import process

pytestmark = pytest.mark.integration


def _spawn(tmp_path: Path, script: str) -> process.ProcessRecord:
    return process.spawn(
        ["sh", "-c", script],
        log_file=tmp_path / "logs" / "p.log",
        pid_file=tmp_path / "run" / "p.pid",
        env=dict(os.environ),
        cwd=tmp_path,
    )


def _wait_members(pgid: int, count: int) -> list[int]:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        members = process.group_members(pgid)
        if len(members) >= count:
            return members
        time.sleep(0.05)
    raise AssertionError(f"group {pgid} never had {count} members")


def test_spawn_detaches_logs_and_records(tmp_path: Path) -> None:
    record = _spawn(tmp_path, "echo hello; exec sleep 30")
    try:
        assert os.getsid(record.pid) == record.pid  # a session (and group) of its own
        assert process.read_pid_file(tmp_path / "run" / "p.pid") == record
        assert process.record_is_running(record)
        deadline = time.monotonic() + 5
        while "hello" not in process.tail(tmp_path / "logs" / "p.log") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert process.tail(tmp_path / "logs" / "p.log")[-1] == "hello"
    finally:
        process.stop_pid_file(tmp_path / "run" / "p.pid", stop_signal=signal.SIGTERM, timeout_s=5)
    assert not process.record_is_running(record)
    assert not (tmp_path / "run" / "p.pid").exists()


def test_stop_takes_down_the_whole_group(tmp_path: Path) -> None:
    record = _spawn(tmp_path, "sleep 30 & sleep 30 & wait")
    members = _wait_members(record.pid, 3)
    assert process.stop(record, stop_signal=signal.SIGTERM, timeout_s=5) is True
    assert not any(process.is_running(pid) for pid in members)


def test_a_process_ignoring_sigterm_is_killed(tmp_path: Path) -> None:
    record = _spawn(tmp_path, "trap '' TERM; while true; do sleep 0.1; done")
    _wait_members(record.pid, 1)
    time.sleep(0.2)  # let the shell install its trap
    started = time.monotonic()
    assert process.stop(record, stop_signal=signal.SIGTERM, timeout_s=1) is False
    assert time.monotonic() - started < 5
    assert not process.record_is_running(record)


def test_orphaned_helpers_of_a_dead_leader_are_stopped(tmp_path: Path) -> None:
    record = _spawn(tmp_path, "sleep 30 & exit 0")
    deadline = time.monotonic() + 5
    while process.record_is_running(record) and time.monotonic() < deadline:
        time.sleep(0.05)
    orphans = process.group_members(record.pid)
    assert orphans, "the background sleep should outlive its shell"
    assert process.running_record(tmp_path / "run" / "p.pid") is None
    assert process.stop_pid_file(tmp_path / "run" / "p.pid", stop_signal=signal.SIGTERM, timeout_s=5) is not None
    assert not any(process.is_running(pid) for pid in orphans)


def test_a_reused_pid_is_not_mistaken_for_the_part(tmp_path: Path) -> None:
    record = _spawn(tmp_path, "exec sleep 30")
    try:
        impostor = process.ProcessRecord(record.pid, record.start_ticks + 1)
        assert process.is_running(record.pid)
        assert not process.record_is_running(impostor)
        # stop_pid_file must leave a process that merely has the recorded pid alone.
        process.write_pid_file(tmp_path / "run" / "other.pid", impostor)
        assert process.stop_pid_file(tmp_path / "run" / "other.pid", stop_signal=signal.SIGKILL, timeout_s=1) is None
        assert process.record_is_running(record)
    finally:
        process.stop(record, stop_signal=signal.SIGTERM, timeout_s=5)


def test_exit_code_of_a_child(tmp_path: Path) -> None:
    record = _spawn(tmp_path, "exit 3")
    deadline = time.monotonic() + 5
    while process.record_is_running(record) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.exit_code(record.pid) == 3
