"""One sandboxed run on the asyncio loop: start it, feed it, watch it, cap it, kill it, reap it.

Why it is built this way:

* ``subprocess.Popen`` rather than ``asyncio.create_subprocess_exec``: asyncio's child
  watcher reaps with ``waitpid`` and throws the rusage away, which is the CPU figure
  left when the sandbox's init could not report. Exit is noticed through a pidfd
  registered with the loop, then reaped with ``os.wait4(WNOHANG)``; output pipes are
  non-blocking fds read by loop callbacks. No thread is involved.
* Popen runs on the loop's thread, which lives as long as the service: bwrap's
  ``--die-with-parent`` is a parent-death signal tied to the thread that forked it.
* Everything the sandbox gets travels as file descriptors, never as host paths: the
  init script, the bundle (limits, code, files) and stdin are sealed memfds; output,
  the init's report and bwrap's ``--info-fd`` are pipes; ``close_fds`` drops all else.
* Stopping: bwrap reports the host pid of the sandbox's init on ``--info-fd``; a pidfd
  on it (no pid-reuse race) carries the stop signal, upon which the init kills and
  reaps every process and still reports usage. If it does not finish within
  ``_STOP_GRACE_S`` it gets SIGKILL, which makes the kernel tear the pid namespace down.
  Before the pid is known (the first milliseconds), bwrap's process group is killed
  and ``--die-with-parent`` takes the init with it. ``wait4`` on bwrap cannot replace
  the init's figures: the kernel reaps a dying namespace's processes without
  accounting, and bwrap's ru_maxrss starts at the service's RSS (inherited over fork).
* Output is capped as a whole (stdout plus stderr, like the proto's ``output_bytes``);
  going over the cap kills the run with OUTPUT_LIMIT, whatever the order of reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from svc_sandbox.domain.classify import InitReport, KillReason, RawOutcome
from svc_sandbox.domain.isolation import (
    Isolation,
    IsolationMode,
    SandboxFds,
    bwrap_argv,
    etc_files,
    init_argv,
    insecure_env,
)
from svc_sandbox.domain.model import CODE_FILE_NAME, EffectiveLimits, ExecutionRequest, OutputChunk, OutputStream

_READ_CHUNK_BYTES = 64 * 1024
# The init needs milliseconds to kill, reap and report after the stop signal; past this
# grace it is SIGKILLed (losing the usage figures), and a second later bwrap too.
_STOP_GRACE_S = 0.5
_KILL_ESCALATION_S = 1.0
_STOP_SIGNAL = signal.SIGUSR1  # must match _sandbox_init._STOP_SIGNAL
_SETPRIV = shutil.which("setpriv") or "/usr/bin/setpriv"  # util-linux
_SEALS = fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE

OutputSink = Callable[[OutputChunk], None]
"""Called with each piece of output (within the cap) as it is read."""


@cache
def _init_script() -> bytes:
    return Path(__file__).with_name("_sandbox_init.py").read_bytes()


def _sealed_memfd(name: str, data: bytes) -> int:
    """An in-memory file holding ``data``, sealed so no process can change it, at offset 0."""
    fd = os.memfd_create(name, os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, _SEALS)
        os.lseek(fd, 0, os.SEEK_SET)
    except BaseException:
        os.close(fd)
        raise
    return fd


def build_bundle(request: ExecutionRequest, limits: EffectiveLimits) -> bytes:
    """What the sandbox init reads: a limits line, ``name size`` lines, a blank line, contents.

    The code comes first, as ``main.py``; names were validated (no spaces, ASCII).
    """
    files = [(CODE_FILE_NAME, request.code.encode("utf-8")), *sorted(request.files.items())]
    head = [
        f"{limits.cpu_time_whole_s} {limits.memory_bytes} {limits.file_size_bytes} "
        f"{limits.processes} {limits.open_files}",
        *(f"{name} {len(content)}" for name, content in files),
    ]
    return "\n".join(head).encode("ascii") + b"\n\n" + b"".join(content for _, content in files)


def _read_available(fd: int, *, once: bool = False) -> tuple[bytes, bool]:
    """What is readable from a non-blocking fd now (one read if ``once``), and whether EOF was reached."""
    parts: list[bytes] = []
    while not once or not parts:
        try:
            part = os.read(fd, _READ_CHUNK_BYTES)
        except BlockingIOError:
            return b"".join(parts), False
        except OSError:
            return b"".join(parts), True
        if not part:
            return b"".join(parts), True
        parts.append(part)
    return b"".join(parts), False


def _parent_pid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
    return int(stat[stat.rindex(")") + 2 :].split()[1])


class SandboxRun:
    """One execution in flight. Create with ``start``; then ``await wait()``; always ``close()``."""

    def __init__(self, limits: EffectiveLimits, on_output: OutputSink | None) -> None:
        """Use ``start`` instead: it spawns the process this object watches."""
        self._loop = asyncio.get_running_loop()
        self._limits = limits
        self._on_output = on_output
        self._exited: asyncio.Future[None] = self._loop.create_future()
        self._kill_reason: KillReason | None = None
        self._kill_sent = False
        self._popen: subprocess.Popen[bytes] | None = None
        self._pidfd: int | None = None
        self._init_pidfd: int | None = None  # bwrap mode only; insecure mode uses _pidfd
        self._insecure = False
        self._insecure_dir: Path | None = None
        self._out: dict[OutputStream, list[bytes]] = {OutputStream.STDOUT: [], OutputStream.STDERR: []}
        self._truncated = {OutputStream.STDOUT: False, OutputStream.STDERR: False}
        self._output_used = 0
        self._readers: dict[int, OutputStream | None] = {}
        self._eof: set[int] = set()
        self._info = bytearray()
        self._info_fd: int | None = None
        self._status_fd: int | None = None
        self._started = 0.0
        self._wall_ms = 0
        self._timers: list[asyncio.TimerHandle] = []
        self._reaped: tuple[int, Any] | None = None

    @classmethod
    def start(
        cls,
        isolation: Isolation,
        request: ExecutionRequest,
        limits: EffectiveLimits,
        *,
        work_dir_bytes: int,
        scratch_dir_bytes: int,
        on_output: OutputSink | None = None,
    ) -> SandboxRun:
        """Spawn the sandbox for ``request`` under ``limits``; must run on the event loop."""
        run = cls(limits, on_output)
        try:
            run._spawn(isolation, request, work_dir_bytes, scratch_dir_bytes)
        except BaseException:
            run.close()
            raise
        return run

    def _spawn(self, isolation: Isolation, request: ExecutionRequest, work_dir_bytes: int, scratch_bytes: int) -> None:
        child_side: list[int] = []  # our copies of what the child inherits; closed after the fork
        try:
            init_fd = _sealed_memfd("sandbox-init", _init_script())
            child_side.append(init_fd)
            bundle_fd = _sealed_memfd("sandbox-bundle", build_bundle(request, self._limits))
            child_side.append(bundle_fd)
            stdin_fd = _sealed_memfd("sandbox-stdin", request.stdin)
            child_side.append(stdin_fd)
            status_r, status_w = os.pipe()
            self._status_fd = status_r
            child_side.append(status_w)
            out_r, out_w = os.pipe()
            self._readers[out_r] = OutputStream.STDOUT
            child_side.append(out_w)
            err_r, err_w = os.pipe()
            self._readers[err_r] = OutputStream.STDERR
            child_side.append(err_w)

            if isolation.mode is IsolationMode.BUBBLEWRAP:
                info_r, info_w = os.pipe()
                self._info_fd = info_r
                self._readers[info_r] = None
                child_side.append(info_w)
                etc: dict[str, int] = {}
                for name, data in etc_files().items():
                    etc[name] = _sealed_memfd(f"sandbox-{name}", data)
                    child_side.append(etc[name])
                fds = SandboxFds(init_fd, bundle_fd, status_w, info_w, etc["passwd"], etc["group"], etc["hosts"])
                argv = bwrap_argv(isolation, fds, work_dir_bytes=work_dir_bytes, scratch_dir_bytes=scratch_bytes)
                env: dict[str, str] = {}
                cwd = "/"
            else:
                self._insecure = True
                self._insecure_dir = Path(tempfile.mkdtemp(prefix="ragmesh-sandbox-"))
                if isolation.host_uid is not None and isolation.host_gid is not None:
                    os.chown(self._insecure_dir, isolation.host_uid, isolation.host_gid)
                argv = init_argv(isolation, init_fd, bundle_fd, status_w)
                env = insecure_env(self._insecure_dir)
                cwd = str(self._insecure_dir)

            if isolation.host_uid is not None:
                # Drop to the unprivileged uid with setpriv rather than Popen(user=...):
                # Popen must then fork() instead of vfork(), and fork() runs the
                # pthread_atfork handlers of gRPC's core in the child, which crashed
                # it (SIGSEGV) while other threads were inside gRPC. vfork runs none.
                argv = [
                    _SETPRIV,
                    f"--reuid={isolation.host_uid}",
                    f"--regid={isolation.host_gid}",
                    "--clear-groups",
                    "--",
                    *argv,
                ]
            self._started = time.monotonic()
            self._popen = subprocess.Popen(
                argv,
                stdin=stdin_fd,
                stdout=out_w,
                stderr=err_w,
                pass_fds=tuple(fd for fd in child_side if fd not in (stdin_fd, out_w, err_w)),
                close_fds=True,
                env=env,
                cwd=cwd,
                start_new_session=True,
            )
        finally:
            for fd in child_side:
                os.close(fd)

        self._pidfd = os.pidfd_open(self._popen.pid)
        self._loop.add_reader(self._pidfd, self._on_exit)
        for fd in (*self._readers, status_r):
            os.set_blocking(fd, False)
        for fd in self._readers:
            self._loop.add_reader(fd, self._on_readable, fd)
        self._timers.append(self._loop.call_later(self._limits.wall_timeout_ms / 1000, self.kill, KillReason.TIMEOUT))

    # --- loop callbacks -------------------------------------------------------------------

    def _on_exit(self) -> None:
        if self._pidfd is not None:
            self._loop.remove_reader(self._pidfd)
        self._wall_ms = int((time.monotonic() - self._started) * 1000)
        for timer in self._timers:
            timer.cancel()
        if not self._exited.done():
            self._exited.set_result(None)

    def _on_readable(self, fd: int, drain: bool = False) -> None:
        # One read per callback, so a fast writer cannot hold the event loop.
        data, eof = _read_available(fd, once=not drain)
        self._consume(fd, data)
        if eof:
            self._loop.remove_reader(fd)
            self._eof.add(fd)
            if fd == self._info_fd and self._init_pidfd is None:
                self._on_info_complete()

    def _consume(self, fd: int, data: bytes) -> None:
        if not data:
            return
        stream = self._readers[fd]
        if stream is None:
            self._info += data
            if self._init_pidfd is None and self._info.rstrip().endswith(b"}"):
                self._on_info_complete()
            return
        room = max(self._limits.output_bytes - self._output_used, 0)
        keep = data[:room]
        if keep:
            self._out[stream].append(keep)
            self._output_used += len(keep)
            if self._on_output is not None:
                self._on_output(OutputChunk(stream, keep))
        if len(data) > len(keep):
            self._truncated[stream] = True
            self.kill(KillReason.OUTPUT_LIMIT)

    def _on_info_complete(self) -> None:
        """bwrap said which host pid the sandbox's init has: take a pidfd on it to kill it by."""
        try:
            child_pid = int(json.loads(bytes(self._info))["child-pid"])
        except (ValueError, KeyError, TypeError):
            return
        try:
            pidfd = os.pidfd_open(child_pid)
        except OSError:
            return  # already gone
        # The pidfd pins one process; check it is bwrap's child and not a reused pid.
        if self._popen is None or _parent_pid(child_pid) != self._popen.pid:
            os.close(pidfd)
            return
        self._init_pidfd = pidfd
        if self._kill_sent:
            # bwrap's group was killed before the pid was known; make sure of the init.
            self._signal_init(signal.SIGKILL)

    # --- control --------------------------------------------------------------------------

    def kill(self, reason: KillReason) -> None:
        """Kill the whole run; the first reason given is the one reported.

        A reason recorded after the process ended still counts (output over the cap
        that was read only after exit is still OUTPUT_LIMIT); no signal is sent then.
        """
        if self._kill_reason is None:
            self._kill_reason = reason
        if self._kill_sent or self._exited.done() or self._popen is None:
            return
        self._kill_sent = True
        if self._signal_init(_STOP_SIGNAL):
            self._timers.append(self._loop.call_later(_STOP_GRACE_S, self._hard_kill))
            self._timers.append(self._loop.call_later(_STOP_GRACE_S + _KILL_ESCALATION_S, self._kill_group))
        else:
            self._kill_group()

    def _init_fd(self) -> int | None:
        return self._pidfd if self._insecure else self._init_pidfd

    def _signal_init(self, signo: int) -> bool:
        """Send ``signo`` to the sandbox's init; False when its pid is not known (yet)."""
        fd = self._init_fd()
        if fd is None:
            return False
        with contextlib.suppress(ProcessLookupError):
            signal.pidfd_send_signal(fd, signo)
        return True

    def _hard_kill(self) -> None:
        if not self._signal_init(signal.SIGKILL) or self._insecure:
            self._kill_group()

    def _kill_group(self) -> None:
        # bwrap (or, in insecure mode, the init) leads its own process group.
        if self._popen is not None and self._reaped is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._popen.pid, signal.SIGKILL)

    def _reap(self, *, block: bool) -> bool:
        if self._reaped is not None:
            return True
        assert self._popen is not None
        pid, status, usage = os.wait4(self._popen.pid, 0 if block else os.WNOHANG)
        if pid == 0:
            return False
        self._reaped = (status, usage)
        # Tell Popen, so it never tries to reap the pid again.
        self._popen.returncode = os.waitstatus_to_exitcode(status)
        return True

    async def wait(self) -> RawOutcome:
        """Wait until the run ends (by itself or killed) and return what was observed."""
        await self._exited
        if not self._reap(block=False):
            self._reap(block=True)
        # bwrap exits only after the init, and the init's exit takes down every process of
        # the namespace: no writer is left, so this reads to EOF.
        for fd in list(self._readers):
            if fd not in self._eof:
                self._on_readable(fd, drain=True)
        report = None
        if self._status_fd is not None:
            text, _ = _read_available(self._status_fd)
            report = InitReport.parse(text)
        assert self._reaped is not None
        status, usage = self._reaped
        return RawOutcome(
            kill_reason=self._kill_reason,
            report=report,
            wait_status=status,
            wall_ms=self._wall_ms,
            rusage_cpu_ms=int((usage.ru_utime + usage.ru_stime) * 1000),
            stdout=b"".join(self._out[OutputStream.STDOUT]),
            stderr=b"".join(self._out[OutputStream.STDERR]),
            stdout_truncated=self._truncated[OutputStream.STDOUT],
            stderr_truncated=self._truncated[OutputStream.STDERR],
        )

    def close(self) -> None:
        """Release everything; if the run is still going (caller cancelled), kill and reap it first.

        Synchronous on purpose: it runs in ``finally`` blocks of cancelled tasks, where an
        ``await`` could be interrupted again and leave a process behind.
        """
        if self._popen is not None and self._reaped is None:
            # No grace here: the caller is gone, usage figures no longer matter.
            if self._kill_reason is None:
                self._kill_reason = KillReason.CANCELLED
            self._kill_sent = True
            self._hard_kill()
            deadline = time.monotonic() + _KILL_ESCALATION_S
            while not self._reap(block=False) and time.monotonic() < deadline:
                time.sleep(0.002)
            if self._reaped is None:
                self._kill_group()
                self._reap(block=True)
        for timer in self._timers:
            timer.cancel()
        loop_open = not self._loop.is_closed()
        if self._pidfd is not None:
            if loop_open:
                self._loop.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None
        for fd in self._readers:
            if loop_open and fd not in self._eof:
                self._loop.remove_reader(fd)
            os.close(fd)
        self._readers.clear()
        for extra in (self._init_pidfd, self._status_fd):
            if extra is not None:
                os.close(extra)
        self._init_pidfd = None
        self._status_fd = None
        if self._insecure_dir is not None:
            shutil.rmtree(self._insecure_dir, ignore_errors=True)
            self._insecure_dir = None
