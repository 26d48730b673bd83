"""Escape attempts against the real bubblewrap sandbox, through the domain API.

Each case checks both sides: the attempt fails inside the sandbox (the code prints what
it saw, and the run ends with the expected stop reason), and the host is unchanged (no
connection accepted, file intact, no process left, disk untouched).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
from pathlib import Path

import pytest

from svc_sandbox.domain import Sandbox, StopReason
from svc_sandbox.domain.settings import SandboxSettings
from tests.support.sandbox import MIB, make_sandbox, processes_with, run, wait_until_gone

pytestmark = pytest.mark.integration

_THIS_FILE = Path(__file__).resolve()


def _exists_on_host(path: str) -> bool:
    return os.path.lexists(path)


def _lines(data: bytes) -> list[str]:
    return data.decode().splitlines()


# --- network ----------------------------------------------------------------------------


async def test_cannot_reach_a_service_on_host_loopback(sandbox: Sandbox) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        code = f"""
import socket
for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(2)
    try:
        s.connect((host, {port}))
        print("CONNECTED", host)
    except OSError as exc:
        print("failed", host, type(exc).__name__)
"""
        result = await run(sandbox, code)
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            listener.accept()  # nothing ever arrived
    assert result.stop_reason is StopReason.COMPLETED, result
    assert _lines(result.stdout) == [
        "failed 127.0.0.1 ConnectionRefusedError",
        "failed ::1 ConnectionRefusedError",
    ], result.stderr


async def test_cannot_reach_a_host_abstract_unix_socket(sandbox: Sandbox, marker: bytes) -> None:
    # Abstract sockets have no path to hide; only the network namespace separates them.
    address = b"\0" + marker
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(address)
        listener.listen(8)
        code = f"""
import socket
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    s.connect({address!r})
    print("CONNECTED")
except OSError as exc:
    print(type(exc).__name__)
"""
        result = await run(sandbox, code)
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            listener.accept()
    assert result.stop_reason is StopReason.COMPLETED, result
    assert result.stdout == b"ConnectionRefusedError\n", result.stderr


async def test_outside_addresses_are_unreachable_at_once(sandbox: Sandbox) -> None:
    code = """
import errno, socket, time
print(sorted(name for _, name in socket.if_nameindex()))
for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
    s = socket.socket(socket.AF_INET, kind)
    s.settimeout(5)
    start = time.monotonic()
    try:
        if kind == socket.SOCK_STREAM:
            s.connect(("1.1.1.1", 53))
        else:
            s.sendto(b"x", ("1.1.1.1", 53))
        print("SENT")
    except OSError as exc:
        print(errno.errorcode[exc.errno], time.monotonic() - start < 0.5)
"""
    result = await run(sandbox, code)
    assert result.stop_reason is StopReason.COMPLETED, result
    assert _lines(result.stdout) == ["['lo']", "ENETUNREACH True", "ENETUNREACH True"], result.stderr


async def test_dns_lookup_fails(sandbox: Sandbox) -> None:
    code = """
import os, socket
print(os.path.exists("/etc/resolv.conf"))
try:
    print("RESOLVED", socket.getaddrinfo("example.com", 443))
except socket.gaierror as exc:
    print("gaierror")
"""
    result = await run(sandbox, code)
    assert result.stop_reason is StopReason.COMPLETED, result
    assert _lines(result.stdout) == ["False", "gaierror"], result.stderr


# --- host files and secrets ---------------------------------------------------------------


async def test_etc_shadow_is_not_there(sandbox: Sandbox) -> None:
    code = """
import os
try:
    print(open("/etc/shadow").read())
except OSError as exc:
    print(type(exc).__name__)
print(sorted(os.listdir("/etc")))
"""
    result = await run(sandbox, code)
    assert result.stop_reason is StopReason.COMPLETED, result
    lines = _lines(result.stdout)
    assert lines[0] == "FileNotFoundError"
    assert set(eval(lines[1])) <= {"passwd", "group", "hosts", "ld.so.cache", "localtime", "alternatives"}


async def test_service_environment_is_invisible(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "s3cr3t-value-that-must-not-leak"
    monkeypatch.setenv("RAGMESH_TEST_SECRET_TOKEN", secret)
    code = """
import os
print(sorted(os.environ))
print(open("/proc/self/environ", "rb").read())
for pid in sorted(p for p in os.listdir("/proc") if p.isdigit()):
    for name in ("environ", "cmdline"):
        try:
            print(pid, name, open(f"/proc/{pid}/{name}", "rb").read())
        except OSError as exc:
            print(pid, name, type(exc).__name__)
"""
    result = await run(sandbox, code)
    assert result.stop_reason is StopReason.COMPLETED, result
    assert secret.encode() not in result.stdout + result.stderr
    assert b"RAGMESH" not in result.stdout
    assert set(eval(_lines(result.stdout)[0])) <= {"PATH", "HOME", "LANG", "MALLOC_ARENA_MAX", "PWD", "LC_CTYPE"}
    # The init (pid 1) is non-dumpable: its environment cannot be read at all.
    assert "1 environ PermissionError" in _lines(result.stdout)


async def test_project_and_home_directories_are_invisible(sandbox: Sandbox) -> None:
    paths = [
        str(_THIS_FILE),
        str(_THIS_FILE.parents[3]),
        "/root",
        "/home",
        "/var",
        "/opt",
        "/srv",
        "/mnt",
        "/run",
        "/sys",
    ]
    code = f"""
import os
for path in {paths!r}:
    print(path, os.path.exists(path))
print(sorted(os.listdir("/work")))
"""
    result = await run(sandbox, code)
    assert result.stop_reason is StopReason.COMPLETED, result
    lines = _lines(result.stdout)
    assert lines[:-1] == [f"{p} False" for p in paths]
    assert lines[-1] == "['main.py']"


async def test_host_processes_are_invisible(sandbox: Sandbox) -> None:
    host_pid = os.getpid()
    code = f"""
import os
pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
print(pids)
print(open("/proc/1/cmdline", "rb").read().split(b"\\0")[:2])
try:
    os.kill({host_pid}, 0)
    print("HOST PID VISIBLE")
except ProcessLookupError:
    print("no such process")
"""
    result = await run(sandbox, code)
    assert result.stop_reason is StopReason.COMPLETED, result
    lines = _lines(result.stdout)
    assert eval(lines[0]) == [1, 2]  # the sandbox's init and the code, nothing else
    assert lines[1] == "[b'/usr/bin/python3', b'-I']"
    assert lines[2] == "no such process"


async def test_writes_outside_the_work_dir_fail_and_host_files_stay(sandbox: Sandbox, tmp_path: Path) -> None:
    host_file = tmp_path / "precious.txt"
    host_file.write_text("original")
    targets = [str(host_file), "/usr/lib/evil", "/etc/passwd", "/evil", "/dev/evil", "/proc/sys/kernel/hostname"]
    code = f"""
for path in {targets!r}:
    try:
        with open(path, "w") as f:
            f.write("pwned")
        print(path, "WRITTEN")
    except OSError as exc:
        print(path, type(exc).__name__)
with open("/work/ok.txt", "w") as f:
    f.write("fine")
print("work dir writable")
"""
    result = await run(sandbox, code)
    assert result.stop_reason is StopReason.COMPLETED, result
    lines = _lines(result.stdout)
    assert all("WRITTEN" not in line for line in lines), lines
    assert lines[-1] == "work dir writable"
    assert host_file.read_text() == "original"
    assert not _exists_on_host("/evil")


# --- resource exhaustion -----------------------------------------------------------------


async def test_fork_bomb_is_contained(sandbox: Sandbox, config: SandboxSettings) -> None:
    code = """
import os, sys
forks = 0
while True:
    try:
        if os.fork() == 0:
            forks = -1  # children fork on, quietly
            continue
        if forks >= 0:
            forks += 1
    except OSError:
        if forks >= 0:
            print("fork failed after", forks, flush=True)
            forks = -1
"""
    result = await run(sandbox, code, wall_timeout_ms=2_000)
    assert result.stop_reason is StopReason.TIMEOUT, result
    forks = int(_lines(result.stdout)[0].split()[-1])
    assert forks < config.max_processes
    # The host still forks fine.
    host_process = await asyncio.create_subprocess_exec("true")
    assert await host_process.wait() == 0


@pytest.mark.parametrize(
    "code",
    [
        "x = bytearray(10 ** 10)",
        "hog = []\nwhile True:\n    hog.append(bytearray(8 * 1024 * 1024))",
        "s = 'x'\nwhile True:\n    s += s",
    ],
    ids=["one-huge-block", "many-blocks", "doubling-string"],
)
async def test_memory_bomb_hits_memory_limit(sandbox: Sandbox, code: str) -> None:
    result = await run(sandbox, code, memory_bytes=128 * MIB)
    assert result.stop_reason is StopReason.MEMORY_LIMIT, result
    assert result.peak_memory_bytes < 128 * MIB


async def test_memory_spread_over_processes_hits_memory_limit(sandbox: Sandbox) -> None:
    # Each child stays under RLIMIT_AS; together they hold far more than the limit.
    code = """
import os, time
for _ in range(8):
    if os.fork() == 0:
        hog = bytearray(64 * 1024 * 1024)
        for i in range(0, len(hog), 4096):
            hog[i] = 1
        time.sleep(30)
time.sleep(30)
"""
    result = await run(sandbox, code, memory_bytes=128 * MIB, wall_timeout_ms=8_000)
    assert result.stop_reason is StopReason.MEMORY_LIMIT, result
    assert result.peak_memory_bytes > 128 * MIB
    assert result.peak_memory_bytes < 8 * 64 * MIB


async def test_cpu_spin_hits_the_cpu_limit(sandbox: Sandbox) -> None:
    result = await run(sandbox, "while True:\n    pass", cpu_time_ms=1_000, wall_timeout_ms=8_000)
    assert result.stop_reason is StopReason.TIMEOUT, result
    assert result.signal == signal.SIGXCPU
    assert result.cpu_ms >= 800


async def test_sleeping_forever_hits_the_wall_clock_limit(sandbox: Sandbox) -> None:
    result = await run(sandbox, "import time\nprint('start', flush=True)\ntime.sleep(60)", wall_timeout_ms=1_000)
    assert result.stop_reason is StopReason.TIMEOUT, result
    assert result.signal == signal.SIGKILL
    assert result.stdout == b"start\n"
    assert 1_000 <= result.wall_ms < 3_000


@pytest.mark.parametrize("stream", ["stdout", "stderr"])
async def test_endless_output_hits_the_output_limit(sandbox: Sandbox, stream: str) -> None:
    code = f"import sys\nwhile True:\n    sys.{stream}.write('x' * 1000 + '\\n')"
    result = await run(sandbox, code, output_bytes=10_000)
    assert result.stop_reason is StopReason.OUTPUT_LIMIT, result
    captured = getattr(result, stream)
    assert len(result.stdout) + len(result.stderr) == 10_000
    assert set(captured) == {ord("x"), ord("\n")}
    assert getattr(result, f"{stream}_truncated")


async def test_filling_the_disk_stops_at_the_limits(sandbox: Sandbox, config: SandboxSettings) -> None:
    free_before = shutil.disk_usage("/").free
    code = """
import errno, os
chunk = b"x" * (1024 * 1024)
for n in range(64):
    try:
        with open(f"/work/fill{n}", "wb") as f:
            while True:
                f.write(chunk)
                f.flush()
    except OSError as exc:
        print(n, errno.errorcode[exc.errno], flush=True)
        if exc.errno == errno.ENOSPC:
            break
print("work fs bytes", os.statvfs("/work").f_blocks * os.statvfs("/work").f_frsize)
"""
    result = await run(sandbox, code, wall_timeout_ms=8_000)
    assert result.stop_reason is StopReason.COMPLETED, result
    lines = _lines(result.stdout)
    assert lines[0] == "0 EFBIG"  # one file: RLIMIT_FSIZE
    assert lines[-2].endswith("ENOSPC")  # many files: the tmpfs is full
    assert lines[-1] == f"work fs bytes {config.work_dir_bytes}"
    # The sandbox wrote to memory-backed tmpfs: the host disk did not fill.
    assert free_before - shutil.disk_usage("/").free < config.work_dir_bytes // 2


# --- processes that try to outlive the execution -------------------------------------------


async def test_subprocesses_do_not_outlive_the_timeout(sandbox: Sandbox, marker: bytes) -> None:
    code = f"""
import subprocess, time
subprocess.Popen(["/bin/sh", "-c", "sleep 600; echo {marker.decode()}"])
subprocess.Popen(["/usr/bin/python3", "-c", "import time; time.sleep(600)", "{marker.decode()}"])
print("spawned", flush=True)
time.sleep(600)
"""
    result = await run(sandbox, code, wall_timeout_ms=1_500)
    assert result.stop_reason is StopReason.TIMEOUT, result
    assert result.stdout == b"spawned\n"
    assert not wait_until_gone(lambda: processes_with(marker))


async def test_daemonised_background_process_does_not_survive(sandbox: Sandbox, marker: bytes) -> None:
    code = f"""
import os
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv("/usr/bin/python3", ["python3", "-c", "import time; time.sleep(600)", "{marker.decode()}"])
    os._exit(0)
os.wait()
print("main done")
"""
    result = await run(sandbox, code)
    assert result.stop_reason is StopReason.COMPLETED, result
    assert result.exit_code == 0
    assert result.stdout == b"main done\n"
    assert not wait_until_gone(lambda: processes_with(marker))


async def test_ptrace_or_signalling_the_parent_fails(sandbox: Sandbox) -> None:
    code = """
import ctypes, errno, os, signal, time
libc = ctypes.CDLL(None, use_errno=True)
parent = os.getppid()
print("parent", parent)
PTRACE_ATTACH, PTRACE_SEIZE = 16, 0x4206
for request in (PTRACE_ATTACH, PTRACE_SEIZE):
    rc = libc.ptrace(request, parent, None, None)
    print("ptrace", rc, errno.errorcode.get(ctypes.get_errno()))
for path in ("/proc/1/mem", "/proc/1/environ", "/proc/1/fd"):
    try:
        os.listdir(path) if path.endswith("fd") else open(path, "rb").read(1)
        print(path, "READ")
    except OSError as exc:
        print(path, type(exc).__name__)
for signo in (signal.SIGKILL, signal.SIGTERM, signal.SIGSTOP, signal.SIGUSR1, signal.SIGINT):
    os.kill(parent, signo)
time.sleep(0.3)
print("parent stopped or dead", open("/proc/1/stat").read().split()[2] in "TtZX")
print("still running")
"""
    result = await run(sandbox, code)
    assert result.stop_reason is StopReason.COMPLETED, result
    assert result.exit_code == 0
    assert _lines(result.stdout) == [
        "parent 1",
        "ptrace -1 EPERM",
        "ptrace -1 EPERM",
        "/proc/1/mem PermissionError",
        "/proc/1/environ PermissionError",
        "/proc/1/fd PermissionError",
        "parent stopped or dead False",
        "still running",
    ], result.stderr


async def test_no_nested_user_namespaces_or_privileges(sandbox: Sandbox) -> None:
    code = """
import ctypes, errno, os
libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWUSER, CLONE_NEWNET = 0x10000000, 0x40000000
for flag in (CLONE_NEWUSER, CLONE_NEWNET):
    rc = libc.unshare(flag)
    print("unshare", rc, errno.errorcode.get(ctypes.get_errno()))
print("uid", os.getuid(), os.geteuid())
status = dict(line.split(":\\t") for line in open("/proc/self/status").read().splitlines() if ":\\t" in line)
print("CapEff", status["CapEff"], "NoNewPrivs", status["NoNewPrivs"])
"""
    result = await run(sandbox, code)
    assert result.stop_reason is StopReason.COMPLETED, result
    lines = _lines(result.stdout)
    assert lines[0].startswith("unshare -1 ")
    assert lines[1].startswith("unshare -1 ")
    assert lines[2] == "uid 1000 1000"
    assert lines[3] == "CapEff 0000000000000000 NoNewPrivs 1"


async def test_fork_bomb_in_one_sandbox_does_not_starve_another(config: SandboxSettings) -> None:
    # Both run as the same host uid: RLIMIT_NPROC must be counted per sandbox.
    sandbox = make_sandbox(config, max_concurrent_executions=2)
    bomb = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"
    polite = """
import os
forked = 0
for _ in range(4):
    if os.fork() == 0:
        os._exit(0)
    forked += 1
for _ in range(forked):
    os.wait()
print("forked", forked)
"""
    bomb_task = asyncio.create_task(run(sandbox, bomb, wall_timeout_ms=2_500))
    await asyncio.sleep(0.8)  # let the bomb reach its process limit
    result = await run(sandbox, polite, tenant="tenant-b")
    bombed = await bomb_task
    assert bombed.stop_reason is StopReason.TIMEOUT, bombed
    assert result.stop_reason is StopReason.COMPLETED, result
    assert result.stdout == b"forked 4\n"
