"""The sandbox's behaviour as a service, with the real bubblewrap: results, streaming,
parallel runs, fair-use limits, bad input, cancellation and the insecure fallback."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import tempfile
import time

import pytest

from mesh.errors import FailedPrecondition, InvalidArgument, ResourceExhausted
from svc_sandbox.domain import (
    SANDBOX_QUEUE_FULL,
    TENANT_CONCURRENCY_LIMIT,
    ExecutionRequest,
    ExecutionResult,
    IsolationMode,
    OutputChunk,
    OutputStream,
    ResourceLimits,
    Sandbox,
    StopReason,
)
from svc_sandbox.domain.settings import SandboxSettings
from tests.support.sandbox import MIB, make_sandbox, processes_with, run, wait_until_gone

pytestmark = pytest.mark.integration


async def test_stdin_input_files_and_exit_code(sandbox: Sandbox) -> None:
    code = """
import sys
data = sys.stdin.read()
print(data.upper(), open("table.csv").read().strip(), open("/work/notes.txt").read())
print("to stderr", file=sys.stderr)
sys.exit(3)
"""
    result = await run(sandbox, code, stdin=b"hello", files={"table.csv": b"a,b\n1,2\n", "notes.txt": b"n"})
    assert result.stop_reason is StopReason.COMPLETED, result
    assert result.exit_code == 3
    assert result.signal == 0
    assert result.stdout == b"HELLO a,b\n1,2 n\n"
    assert result.stderr == b"to stderr\n"
    assert result.wall_ms > 0
    assert result.peak_memory_bytes > 1 * MIB


async def test_exit_137_is_not_mistaken_for_a_signal(sandbox: Sandbox) -> None:
    result = await run(sandbox, "import sys\nsys.exit(137)")
    assert (result.stop_reason, result.exit_code, result.signal) == (StopReason.COMPLETED, 137, 0)


async def test_a_signal_the_code_sends_itself_is_killed(sandbox: Sandbox) -> None:
    result = await run(sandbox, "import os, signal\nos.kill(os.getpid(), signal.SIGTERM)")
    assert (result.stop_reason, result.exit_code, result.signal) == (StopReason.KILLED, -1, signal.SIGTERM)
    assert result.signal_name == "SIGTERM"


async def test_uncaught_exception_shows_only_the_callers_frames(sandbox: Sandbox) -> None:
    result = await run(sandbox, "def f():\n    raise ValueError('boom')\nf()")
    assert result.stop_reason is StopReason.COMPLETED
    assert result.exit_code == 1
    assert result.stderr.startswith(b'Traceback (most recent call last):\n  File "/work/main.py", line 3')
    assert result.stderr.endswith(b"ValueError: boom\n")


async def test_multiprocessing_and_threads_work(sandbox: Sandbox) -> None:
    code = """
import multiprocessing, threading
def square(x):
    return x * x
if __name__ == "__main__":
    with multiprocessing.Pool(2) as pool:
        print(pool.map(square, range(5)))
    t = threading.Thread(target=print, args=("thread",))
    t.start()
    t.join()
"""
    result = await run(sandbox, code)
    assert result.stop_reason is StopReason.COMPLETED, result
    assert result.stdout == b"[0, 1, 4, 9, 16]\nthread\n", result.stderr


async def test_forked_workers_sharing_memory_stay_within_the_limit(sandbox: Sandbox) -> None:
    # 60 MiB shared copy-on-write by 4 workers is 60 MiB, not 300 MiB.
    code = """
import multiprocessing
data = bytearray(60 * 1024 * 1024)
for i in range(0, len(data), 4096):
    data[i] = 1
def work(x):
    import time
    time.sleep(0.3)
    return data[x * 4096]
if __name__ == "__main__":
    with multiprocessing.Pool(4) as pool:
        print(sum(pool.map(work, range(8))))
"""
    result = await run(sandbox, code, memory_bytes=160 * MIB, wall_timeout_ms=8_000)
    assert result.stop_reason is StopReason.COMPLETED, result
    assert result.stdout == b"8\n", result.stderr
    assert 60 * MIB < result.peak_memory_bytes < 160 * MIB


async def test_threads_start_under_a_tight_memory_limit(sandbox: Sandbox) -> None:
    # Without MALLOC_ARENA_MAX=1 each thread's malloc arena reserves 64 MiB of address space.
    code = """
import threading
data = bytearray(60 * 1024 * 1024)
def work():
    [bytes(1000) for _ in range(20000)]
for _ in range(5):
    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
print("ok")
"""
    result = await run(sandbox, code, memory_bytes=160 * MIB)
    assert result.stop_reason is StopReason.COMPLETED, result
    assert result.stdout == b"ok\n", result.stderr


async def test_eight_parallel_executions_do_not_interfere(sandbox: Sandbox) -> None:
    code = """
import os, sys, time
token = open("token.txt").read()
with open("out.txt", "w") as f:
    f.write(token)
time.sleep(0.3)
print(token, open("out.txt").read(), sorted(os.listdir(".")), os.getpid())
print(token, file=sys.stderr)
"""
    tokens = [f"token-{i}" for i in range(8)]
    started = time.monotonic()
    results = await asyncio.gather(
        *(run(sandbox, code, tenant=f"tenant-{i % 3}", files={"token.txt": t.encode()}) for i, t in enumerate(tokens))
    )
    elapsed = time.monotonic() - started
    for token, result in zip(tokens, results, strict=True):
        assert result.stop_reason is StopReason.COMPLETED, result
        assert result.stdout == f"{token} {token} ['main.py', 'out.txt', 'token.txt'] 2\n".encode()
        assert result.stderr == f"{token}\n".encode()
    assert elapsed < 8 * 0.3 + 5  # they overlapped rather than queueing one by one


async def test_stream_yields_output_as_it_is_produced(sandbox: Sandbox) -> None:
    code = "import sys, time\nprint('first')\nprint('oops', file=sys.stderr)\ntime.sleep(0.5)\nprint('second')"
    events: list[tuple[float, OutputChunk | ExecutionResult]] = []
    started = time.monotonic()
    async for event in sandbox.stream_execute(ExecutionRequest(code=code), tenant="tenant-a"):
        events.append((time.monotonic() - started, event))
    chunks = [e for _, e in events if isinstance(e, OutputChunk)]
    result = events[-1][1]
    assert isinstance(result, ExecutionResult)
    assert all(isinstance(e, OutputChunk) for _, e in events[:-1])
    assert b"".join(c.data for c in chunks if c.stream is OutputStream.STDOUT) == b"first\nsecond\n"
    assert b"".join(c.data for c in chunks if c.stream is OutputStream.STDERR) == b"oops\n"
    first_at = next(t for t, e in events if isinstance(e, OutputChunk) and e.data.startswith(b"first"))
    assert events[-1][0] - first_at >= 0.4  # "first" arrived well before the end
    assert result.stop_reason is StopReason.COMPLETED
    assert result.stdout == b"first\nsecond\n"


async def test_closing_the_stream_early_kills_the_execution(sandbox: Sandbox, marker: bytes) -> None:
    code = f"import time\nprint('{marker.decode()}', flush=True)\ntime.sleep(600)"
    stream = sandbox.stream_execute(ExecutionRequest(code=code), tenant="tenant-a")
    first = await stream.__anext__()
    assert isinstance(first, OutputChunk)
    await stream.aclose()  # type: ignore[attr-defined]
    assert sandbox.admission_stats().running == 0
    assert not wait_until_gone(lambda: processes_with(marker))


async def test_cancelling_execute_kills_the_execution(sandbox: Sandbox, marker: bytes) -> None:
    code = f"import subprocess, time\nsubprocess.Popen(['sleep', '600', '{marker.decode()}'])\ntime.sleep(600)"
    task = asyncio.create_task(run(sandbox, code, wall_timeout_ms=10_000))
    await asyncio.sleep(0.5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sandbox.admission_stats().running == 0
    assert not wait_until_gone(lambda: processes_with(marker))


async def test_tenant_and_global_limits_give_resource_exhausted(config: SandboxSettings) -> None:
    sandbox = make_sandbox(config, max_concurrent_executions=2, max_queued_executions=1, max_executions_per_tenant=2)
    slow = "import time\ntime.sleep(1)"
    a1 = asyncio.create_task(run(sandbox, slow, tenant="a"))
    a2 = asyncio.create_task(run(sandbox, slow, tenant="a"))
    await asyncio.sleep(0.1)
    with pytest.raises(ResourceExhausted) as tenant_error:
        await run(sandbox, slow, tenant="a")
    assert tenant_error.value.reason == TENANT_CONCURRENCY_LIMIT
    b1 = asyncio.create_task(run(sandbox, slow, tenant="b"))  # queued: 2 running + 1 waiting
    await asyncio.sleep(0.1)
    assert sandbox.admission_stats().queued == 1
    with pytest.raises(ResourceExhausted) as queue_error:
        await run(sandbox, slow, tenant="c")
    assert queue_error.value.reason == SANDBOX_QUEUE_FULL
    results = await asyncio.gather(a1, a2, b1)
    assert [r.stop_reason for r in results] == [StopReason.COMPLETED] * 3


async def test_bad_input_gives_invalid_argument(sandbox: Sandbox, config: SandboxSettings) -> None:
    request = ExecutionRequest(
        code="x" * (config.max_code_bytes + 1),
        files={"../escape": b"", "a/b": b"", "big.bin": b"0" * (config.max_input_file_bytes + 1)},
        limits=ResourceLimits(memory_bytes=config.max_memory_bytes + 1, wall_timeout_ms=config.max_wall_timeout_ms + 1),
    )
    with pytest.raises(InvalidArgument) as error:
        await sandbox.execute(request, tenant="tenant-a")
    fields = {v.field for v in error.value.violations}
    assert fields == {
        "code",
        "files['../escape'].name",
        "files['a/b'].name",
        "files['big.bin'].content",
        "limits.memory_bytes",
        "limits.wall_timeout_ms",
    }
    assert sandbox.admission_stats().running == 0


async def test_missing_bwrap_refuses_to_start(config: SandboxSettings) -> None:
    missing = SandboxSettings(**{**config.__dict__, "bwrap_path": "/nonexistent/bwrap"})
    with pytest.raises(FailedPrecondition) as error:
        await Sandbox.start(missing)
    assert "bubblewrap" in str(error.value)
    assert error.value.metadata["package"] == "bubblewrap"


async def test_insecure_mode_runs_with_rlimits_only(config: SandboxSettings, caplog: pytest.LogCaptureFixture) -> None:
    insecure = SandboxSettings(
        **{**config.__dict__, "bwrap_path": "/nonexistent/bwrap", "allow_insecure_no_isolation": True}
    )
    with caplog.at_level(logging.WARNING):
        sandbox = await Sandbox.start(insecure)
    assert sandbox.isolation.mode is IsolationMode.INSECURE_RLIMITS_ONLY
    assert "ISOLATION IS OFF" in caplog.text
    before = set(os.listdir(tempfile.gettempdir()))
    code = "import os, resource\nprint(resource.getrlimit(resource.RLIMIT_AS)[0], sorted(os.environ))"
    result = await run(sandbox, code, memory_bytes=128 * MIB)
    assert result.stop_reason is StopReason.COMPLETED, result
    assert result.stdout == f"{128 * MIB} ['HOME', 'LANG', 'MALLOC_ARENA_MAX', 'PATH']\n".encode()
    spin = await run(sandbox, "while True:\n    pass", wall_timeout_ms=800)
    assert spin.stop_reason is StopReason.TIMEOUT
    assert not {d for d in set(os.listdir(tempfile.gettempdir())) - before if d.startswith("ragmesh-sandbox-")}
