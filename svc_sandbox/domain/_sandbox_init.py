"""Init process of one execution; runs INSIDE the sandbox, as pid 1 of its pid namespace.

This file is not imported by the service: its source is handed to the sandbox's
``/usr/bin/python3 -I`` through a sealed memfd (``/proc/self/fd/N``), so it must stay
standalone (standard library only, nothing from ragmesh) and cheap to start.

    python3 -I /proc/self/fd/<this> <bundle_fd> <status_fd>

It reads the bundle (limits, code, input files), writes the files into the working
directory, then forks the process that runs the code. Being pid 1 and a separate
process from the code is what makes the result trustworthy and the cleanup complete:

* the kernel drops signals sent to a namespace's init from inside unless init installed
  a handler, and init makes itself non-dumpable, so the code can neither kill, stop nor
  ptrace it (nor read its /proc/1/{mem,fd,environ});
* it learns the code's exact exit code or signal and rusage from ``os.wait4``, which a
  shell-style ``128 + signal`` exit status cannot tell apart from ``sys.exit(137)``;
* when the code's main process ends, it SIGKILLs every other process of the namespace
  (background jobs, double-forked daemons), reaps them so their CPU time is counted,
  and only then reports: nothing outlives an execution;
* to end a run early (wall clock, output cap) the service sends it SIGUSR1 from outside
  the namespace; it then kills and reaps everything the same way, so even a stopped
  run reports its CPU time and peak memory. ``sigwaitinfo`` shows the sender, and the
  same signal from inside the sandbox is ignored. If the init does not finish within a
  grace period, the service SIGKILLs it and the kernel tears the namespace down;
* RLIMIT_AS bounds each process, not their sum, so a tree of processes could hold
  ``processes x memory`` bytes. As pid 1 the init sees exactly the sandbox's processes
  in /proc; every ``_MEMORY_POLL_S`` it sums their anonymous and shared-memory resident
  pages (see ``_tree_resident_bytes``) and ends the run when the sum exceeds the memory
  limit: a coarse, sampled bound, while the per-process RLIMIT_AS stays the exact one.
  The largest sum seen is the run's peak when it beats the largest process's ru_maxrss.

The report goes to ``status_fd`` as one line of integers (see ``_report``); the code's
process closes that fd before it runs anything of the caller's.
"""

import builtins
import ctypes
import os
import resource
import signal
import sys
import time

_PR_SET_DUMPABLE = 4
_PR_SET_CHILD_SUBREAPER = 36
_MEMORY_ERROR_MARK = b"M"
# Sent by the service (from outside the namespace) to end the run early: the init then
# kills and reaps everything itself, so CPU time and peak memory are still counted.
_STOP_SIGNAL = signal.SIGUSR1

# How often the init sums the sandbox's resident memory (pid-namespace mode only).
_MEMORY_POLL_S = 0.05

_Exit = tuple[int, resource.struct_rusage]


def _read_all(fd: int) -> bytes:
    parts: list[bytes] = []
    while True:
        part = os.read(fd, 1 << 20)
        if not part:
            return b"".join(parts)
        parts.append(part)


def _parse_bundle(data: bytes) -> tuple[list[int], list[tuple[str, bytes]]]:
    """Bundle: ``limits line``, one ``name length`` line per file, a blank line, contents."""
    head, _, body = data.partition(b"\n\n")
    lines = head.decode("ascii").split("\n")
    limits = [int(v) for v in lines[0].split()]
    files = []
    offset = 0
    for line in lines[1:]:
        name, size = line.rsplit(" ", 1)
        files.append((name, body[offset : offset + int(size)]))
        offset += int(size)
    return limits, files


def _write_file(name: str, content: bytes) -> None:
    # O_EXCL | O_NOFOLLOW: names were validated, this keeps it that way regardless.
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    try:
        view = memoryview(content)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def _run_code(path: str, limits: list[int], report_w: int, libc: ctypes.CDLL, mask: set[int]) -> None:
    """In the forked child: apply the limits and run the code as ``__main__``; never returns normally."""
    cpu_s, memory_bytes, file_size_bytes, processes, open_files = limits
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    libc.prctl(_PR_SET_DUMPABLE, 1, 0, 0, 0)
    # Hard CPU limit one second above the soft one: SIGXCPU first, SIGKILL if ignored.
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_bytes, file_size_bytes))
    resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))
    resource.setrlimit(resource.RLIMIT_NPROC, (processes, processes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    # Line buffering so streamed output arrives as it is printed, not at exit.
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]

    module = type(sys)("__main__")
    module.__file__ = path
    module.__dict__["__builtins__"] = builtins
    sys.modules["__main__"] = module
    sys.argv = [path]
    main_pid = os.getpid()

    def hide_init_frames(kind: type[BaseException], value: BaseException, tb: object) -> None:
        while tb is not None and tb.tb_frame.f_code.co_filename != path:  # type: ignore[attr-defined]
            tb = tb.tb_next  # type: ignore[attr-defined]
        # The default hook prints value.__traceback__, not its tb argument.
        sys.__excepthook__(kind, value.with_traceback(tb), tb)  # type: ignore[arg-type]

    sys.excepthook = hide_init_frames
    with open(path, "rb") as source_file:
        source = source_file.read()
    try:
        exec(compile(source, path, "exec"), module.__dict__)
    except MemoryError:
        # Only the main process speaks for the execution; forked children inherit the fd.
        if os.getpid() == main_pid:
            os.write(report_w, _MEMORY_ERROR_MARK)
        raise
    raise SystemExit(0)


def _children() -> list[int]:
    pids: list[int] = []
    for tid in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{tid}/children") as f:
            pids.extend(int(p) for p in f.read().split())
    return pids


def _reap(block: bool, main_pid: int, main: _Exit | None) -> tuple[_Exit | None, bool]:
    """Reap children (all that have exited, or all of them when ``block``).

    Returns the main process's exit if it was among them (else ``main``), and whether
    no child is left.
    """
    while True:
        try:
            pid, status, usage = os.wait4(-1, 0 if block else os.WNOHANG)
        except ChildProcessError:
            return main, True
        if pid == 0:
            return main, False
        if pid == main_pid:
            main = (status, usage)


def _kill_the_rest(main_pid: int, main: _Exit | None) -> _Exit | None:
    """SIGKILL every process of the execution (the main one too, if still alive), reap them all."""
    while True:
        if os.getpid() == 1:
            # kill(-1) from a namespace's init reaches every other process in it.
            try:  # noqa: SIM105 (the init imports as little as it can: no contextlib)
                os.kill(-1, signal.SIGKILL)
            except ProcessLookupError:
                pass
        else:
            # Insecure mode: orphans re-parent to us (child subreaper); kill what is left.
            for pid in _children():
                try:  # noqa: SIM105
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        main, _ = _reap(True, main_pid, main)
        if os.getpid() == 1 or not _children():
            return main


def _fields_kib(path: str, names: tuple[bytes, ...]) -> int | None:
    """Sum of the ``name: N kB`` lines of a /proc file; None if unreadable or a name is missing."""
    try:
        with open(path, "rb") as f:
            text = f.read()
    except OSError:
        return None
    total = 0
    found = 0
    for line in text.split(b"\n"):
        if line.startswith(names):
            total += int(line.split()[1])
            found += 1
    return total if found == len(names) else None


def _tree_resident_bytes(precise: bool) -> int:
    """Anonymous plus shared-memory resident bytes of every process but the init.

    File-backed pages (the interpreter, shared libraries) are left out: they are shared
    and reclaimable. The cheap figure (RssAnon from /proc/<pid>/status, readable without
    ptrace access, so a non-dumpable process cannot hide) counts copy-on-write pages
    shared after a fork once per process, which would make ``multiprocessing`` workers
    look like a memory bomb. So when it is over the limit, ``precise`` recounts with
    proportional shares (Pss_Anon from smaps_rollup), falling back to the cheap figure
    for a process whose smaps cannot be read.
    """
    total_kib = 0
    for name in os.listdir("/proc"):
        if not name.isdigit() or name == "1":
            continue
        kib = _fields_kib(f"/proc/{name}/smaps_rollup", (b"Pss_Anon:", b"Pss_Shmem:")) if precise else None
        if kib is None:
            kib = _fields_kib(f"/proc/{name}/status", (b"RssAnon:", b"RssShmem:"))
        total_kib += kib or 0  # None: the process exited meanwhile
    return total_kib * 1024


def _report(status_fd: int, main: _Exit, memory_error: bool, tree_peak: int, tree_over_limit: bool) -> None:
    status, main_usage = main
    every = resource.getrusage(resource.RUSAGE_CHILDREN)
    exit_code = os.waitstatus_to_exitcode(status)
    signo = -exit_code if exit_code < 0 else 0
    fields = (
        -1 if signo else exit_code,
        signo,
        int(memory_error),
        int((main_usage.ru_utime + main_usage.ru_stime) * 1000),
        int((every.ru_utime + every.ru_stime) * 1000),
        every.ru_maxrss * 1024,
        tree_peak,
        int(tree_over_limit),
    )
    os.write(status_fd, (" ".join(str(f) for f in fields) + "\n").encode("ascii"))


def main() -> None:
    """Set up the work directory, run the code in a child, clean up, report."""
    bundle_fd, status_fd = int(sys.argv[1]), int(sys.argv[2])
    # Default disposition: as pid 1 that makes SIGINT from inside the namespace a no-op.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)
    if os.getpid() != 1:
        libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)

    limits, files = _parse_bundle(_read_all(bundle_fd))
    for name, content in files:
        _write_file(name, content)
    # Whatever else was inherited (this script's memfd, the bundle) is of no use to the code.
    os.closerange(3, status_fd)
    os.closerange(status_fd + 1, 1 << 16)
    report_r, report_w = os.pipe()

    # SIGCHLD and the stop signal are taken with sigwaitinfo, which tells who sent them.
    # Blocked before the fork so no child exit can slip past.
    watched = {signal.SIGCHLD, _STOP_SIGNAL}
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, watched)
    code_path = os.path.join(os.getcwd(), files[0][0])
    main_pid = os.fork()
    if main_pid == 0:
        os.close(report_r)
        os.close(status_fd)
        del files
        _run_code(code_path, limits, report_w, libc, mask)
        return
    os.close(report_w)
    del files

    memory_limit = limits[1]
    watch_memory = os.getpid() == 1  # only a pid namespace makes /proc list just our processes
    tree_peak = 0
    tree_over_limit = False
    main: _Exit | None = None
    next_poll = time.monotonic() + _MEMORY_POLL_S
    while main is None:
        if watch_memory:
            info = signal.sigtimedwait(watched, max(0.0, next_poll - time.monotonic()))
            # Polled on a clock, not only when idle: a stream of child exits must not
            # keep the check from running.
            if time.monotonic() >= next_poll:
                next_poll = time.monotonic() + _MEMORY_POLL_S
                resident = _tree_resident_bytes(precise=False)
                if resident > memory_limit:
                    resident = _tree_resident_bytes(precise=True)
                tree_peak = max(tree_peak, resident)
                if resident > memory_limit:
                    tree_over_limit = True
                    break
            if info is None:
                continue
        else:
            info = signal.sigwaitinfo(watched)
        if info.si_signo == _STOP_SIGNAL:
            # Only the service may stop the run: a sender outside our pid namespace shows
            # as pid 0, which is also what getppid() is for a namespace's init. In
            # insecure mode the service is our parent. SI_USER (0) rules out kernel-sent
            # signals (F_SETSIG I/O signals), whose si_pid slot holds something else.
            if info.si_code == 0 and info.si_pid == os.getppid():
                break
            continue
        main, _ = _reap(False, main_pid, None)
    main = _kill_the_rest(main_pid, main)
    # Every writer of report_w is dead now, so this read cannot block.
    memory_error = os.read(report_r, 1) == _MEMORY_ERROR_MARK
    if main is not None:
        _report(status_fd, main, memory_error, tree_peak, tree_over_limit)
    os._exit(0)


if __name__ == "__main__":
    main()
