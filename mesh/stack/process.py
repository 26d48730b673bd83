"""Process control: start detached processes, record them in pid files, check and stop them.

Every part runs as the leader of its own session, so its process group holds
the part and every helper it forks, and stopping a part never touches a
process it did not start. A pid file holds the pid and the kernel's start time
of that process, so a reused pid is never mistaken for the part.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

# Popen objects of the processes this interpreter started, kept so that their
# exit is collected (no zombies, no "still running" warnings) while we live.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


@dataclasses.dataclass(frozen=True)
class ProcessRecord:
    """A process the stack started: its pid, the kernel's start time for it, and what it was started with."""

    pid: int
    start_ticks: int
    fingerprint: str = ""
    """Digest of the command and configuration the process was started with."""


def _proc_stat(pid: int) -> tuple[str, int, int] | None:
    """(state, process group, start time in clock ticks) of ``pid``, or None if there is no such process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name may contain spaces and parentheses; the fields we need follow the last ')'.
    fields = raw[raw.rindex(")") + 2 :].split()
    return fields[0], int(fields[2]), int(fields[19])


def _reap(pid: int) -> None:
    # poll() collects the exit status; the Popen stays registered so exit_code() can report it.
    child = _CHILDREN.get(pid)
    if child is not None:
        child.poll()


def exit_code(pid: int, wait_s: float = 2.0) -> int | None:
    """The exit status of ``pid`` if this interpreter started it and it has exited.

    Waits up to ``wait_s``: a multi-threaded process (a JVM) shows up as a zombie
    in /proc before its last thread is gone and waitpid() can report it.
    """
    child = _CHILDREN.get(pid)
    if child is None:
        return None
    try:
        return child.wait(timeout=wait_s)
    except subprocess.TimeoutExpired:
        return None


def is_running(pid: int) -> bool:
    """True if ``pid`` exists and has not exited (a zombie counts as exited)."""
    _reap(pid)
    stat = _proc_stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")


def record_is_running(record: ProcessRecord) -> bool:
    """True if the process in ``record`` is still the one that was started."""
    _reap(record.pid)
    stat = _proc_stat(record.pid)
    return stat is not None and stat[0] not in ("Z", "X") and stat[2] == record.start_ticks


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes in process group ``pgid``."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        stat = _proc_stat(pid)
        if stat is not None and stat[1] == pgid and stat[0] not in ("Z", "X"):
            members.append(pid)
    return members


def command_name(pid: int) -> str:
    """A short description of ``pid`` for messages, like ``pid 123 (redis-server)``."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        argv = [part.decode(errors="replace") for part in cmdline if part]
    except OSError:
        argv = []
    if not argv:
        return f"pid {pid}"
    shown = " ".join(argv)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return f"pid {pid} ({shown})"


def read_pid_file(path: Path) -> ProcessRecord | None:
    """The record in ``path``, or None when it is missing or unreadable."""
    try:
        lines = path.read_text().split()
    except OSError:
        return None
    try:
        fingerprint = lines[2] if len(lines) > 2 else ""
        return ProcessRecord(pid=int(lines[0]), start_ticks=int(lines[1]), fingerprint=fingerprint)
    except (IndexError, ValueError):
        return None


def write_pid_file(path: Path, record: ProcessRecord) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(f"{record.pid}\n{record.start_ticks}\n{record.fingerprint}\n")
    tmp.replace(path)


def running_record(pid_file: Path) -> ProcessRecord | None:
    """The record in ``pid_file`` if that process is still running, else None."""
    record = read_pid_file(pid_file)
    if record is None or not record_is_running(record):
        return None
    return record


def spawn(
    argv: Sequence[str],
    *,
    log_file: Path,
    pid_file: Path,
    env: Mapping[str, str],
    cwd: Path,
    fingerprint: str = "",
    priority_boost: int = 0,
) -> ProcessRecord:
    """Start ``argv`` detached in a new session, output appended to ``log_file``; record it in ``pid_file``.

    ``priority_boost`` lowers the process's nice value by that much (set before it can start
    children, which inherit it), where this user may; ``set_group_priority`` takes it back.
    """
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} starting: {' '.join(argv)}\n".encode())
        log.flush()
        child = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env),
            cwd=cwd,
            start_new_session=True,
            close_fds=True,
        )
    _CHILDREN[child.pid] = child
    if priority_boost:
        set_group_priority([child.pid], -priority_boost)
    stat = _proc_stat(child.pid)
    record = ProcessRecord(pid=child.pid, start_ticks=stat[2] if stat else 0, fingerprint=fingerprint)
    write_pid_file(pid_file, record)
    return record


def set_group_priority(pids: Sequence[int], nice: int) -> bool:
    """Sets the nice value of ``pids`` and of their scheduler autogroups; False where this user may not.

    With the kernel's autogroups on (``kernel.sched_autogroup_enabled``), each session competes
    for the CPU as one group and a process's own nice value only counts inside its session; a
    part runs in a session of its own, so its autogroup's nice is what gives it more of a busy
    machine.
    """
    allowed = True
    for pid in pids:
        try:
            os.setpriority(os.PRIO_PROCESS, pid, nice)
        except PermissionError:
            allowed = False
        except ProcessLookupError:
            continue
        with contextlib.suppress(OSError):
            Path(f"/proc/{pid}/autogroup").write_text(f"{nice}\n")
    return allowed


def _orphaned_group(record: ProcessRecord) -> bool:
    """True if the leader in ``record`` is gone but processes of its group are still running.

    The kernel never hands out a pid whose process group still exists, so such a
    group is ours; if the pid now belongs to a different process, it is not.
    """
    stat = _proc_stat(record.pid)
    if stat is not None and stat[0] not in ("Z", "X"):
        return False
    return bool(group_members(record.pid))


def _wait(condition: Callable[[], bool], deadline: float) -> bool:
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def stop(record: ProcessRecord, *, stop_signal: signal.Signals, timeout_s: float) -> bool:
    """Stop the part in ``record`` and every process of its group.

    The leader gets ``stop_signal`` (it knows how to shut its helpers down);
    helpers still running once the leader is gone get SIGTERM; whatever is left
    when ``timeout_s`` runs out gets SIGKILL. Returns True if nothing had to be killed.
    """
    pgid = record.pid  # the leader of a new session leads its process group too
    deadline = time.monotonic() + timeout_s
    if record_is_running(record):
        with contextlib.suppress(ProcessLookupError):
            os.kill(record.pid, stop_signal)
        _wait(lambda: not record_is_running(record), deadline)
    if not record_is_running(record) and group_members(pgid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
    if _wait(lambda: not record_is_running(record) and not group_members(pgid), deadline):
        return True
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    _wait(lambda: not record_is_running(record) and not group_members(pgid), time.monotonic() + 5.0)
    return False


def stop_pid_file(pid_file: Path, *, stop_signal: signal.Signals, timeout_s: float) -> bool | None:
    """Stop the process recorded in ``pid_file`` (if any) and remove the file.

    Returns None if nothing was running, else what :func:`stop` returned.
    """
    record = read_pid_file(pid_file)
    result: bool | None = None
    if record is not None and (record_is_running(record) or _orphaned_group(record)):
        result = stop(record, stop_signal=stop_signal, timeout_s=timeout_s)
    with contextlib.suppress(FileNotFoundError):
        pid_file.unlink()
    return result


def tail(path: Path, lines: int = 20) -> list[str]:
    """The last ``lines`` lines of ``path`` (empty if it does not exist)."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            data = f.read()
    except OSError:
        return []
    text = data.decode(errors="replace").splitlines()
    return text[-lines:]


def run_checked(
    argv: Sequence[str], *, env: Mapping[str, str] | None = None, timeout_s: float = 120.0, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a short helper command to completion, capturing its output (never raises on a non-zero exit)."""
    return subprocess.run(
        list(argv),
        env=None if env is None else dict(env),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
