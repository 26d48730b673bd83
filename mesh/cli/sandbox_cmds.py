"""``ragmesh sandbox exec``: run a Python file in the sandbox through the mesh (a client of the SDK)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import ragmesh_client
from mesh.cli import common

sandbox = ragmesh_client.sandbox

#: Seconds the call may take beyond the run's own wall limit (start-up, output transfer).
_DEADLINE_SLACK_S = 30.0


def _stop_reason(result: sandbox.ExecutionResult) -> str:
    return sandbox.StopReason(result.stop_reason).name


def _as_json(result: sandbox.ExecutionResult) -> dict[str, Any]:
    return {
        "exit_code": result.exit_code,
        "stdout": result.stdout,
        "stderr": result.stderr,
        "stop_reason": _stop_reason(result),
        "wall_ms": result.wall_ms,
        "cpu_ms": result.cpu_ms,
        "peak_memory_bytes": result.peak_memory_bytes,
        "stdout_truncated": result.stdout_truncated,
        "stderr_truncated": result.stderr_truncated,
        "signal": result.signal,
        "detail": result.detail,
    }


def _inputs(args: argparse.Namespace) -> tuple[str, dict[str, bytes]]:
    """The code to run and the input files, read before the call starts."""
    code = sys.stdin.read() if args.code_file == "-" else Path(args.code_file).read_text()
    return code, {Path(p).name: Path(p).read_bytes() for p in args.file}


async def _exec(args: argparse.Namespace, code: str, files: dict[str, bytes]) -> int:
    limits = sandbox.ExecutionLimits(
        wall_timeout_ms=int(args.timeout_s * 1000) if args.timeout_s else 0,
        memory_bytes=args.memory_mb * 1024 * 1024 if args.memory_mb else 0,
    )
    result: sandbox.ExecutionResult | None = None
    async with common.client(args) as sdk:
        try:
            async for event in sdk.sandbox.stream(
                code,
                files=files,
                limits=limits,
                timeout_s=args.timeout_s + _DEADLINE_SLACK_S if args.timeout_s else None,
            ):
                if event.output is not None:
                    if not args.json:
                        out = sys.stdout if event.output.stream == sandbox.OutputStream.STDOUT else sys.stderr
                        out.write(event.output.data.decode("utf-8", errors="replace"))
                        out.flush()
                elif event.result is not None:
                    result = event.result
        except ragmesh_client.RagmeshError as err:
            return common.report_error(err, as_json=args.json)
    if result is None:
        print("error: the stream ended without a result", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(_as_json(result)))
    else:
        reason = _stop_reason(result).lower()
        print(
            f"[{reason}: exit {result.exit_code}, {result.wall_ms} ms wall, {result.cpu_ms} ms cpu, "
            f"{result.peak_memory_bytes / 1e6:.1f} MB peak{', ' + result.detail if result.detail else ''}]",
            file=sys.stderr,
        )
    return 0 if result.stop_reason == sandbox.StopReason.COMPLETED and result.exit_code == 0 else 1


def register(sub: Any) -> None:
    parser = sub.add_parser("sandbox", help="run code in the isolated sandbox")
    actions = parser.add_subparsers(dest="sandbox_command", metavar="ACTION")
    actions.required = True
    run = actions.add_parser("exec", help="run a Python file (output streamed; --json prints the result)")
    run.add_argument("--code-file", required=True, help="Python file to run ('-' for stdin)")
    run.add_argument("--file", action="append", default=[], help="input file placed in the work dir (repeatable)")
    run.add_argument("--timeout-s", type=float, default=0, help="wall-clock limit (default: the service's)")
    run.add_argument("--memory-mb", type=int, default=0, help="memory limit (default: the service's)")
    run.add_argument("--json", action="store_true", help="print one JSON object with the result")
    common.add_connection_args(run)
    run.set_defaults(func=lambda args: asyncio.run(_exec(args, *_inputs(args))))
