"""``ragmesh sandbox exec``: run a Python file in the sandbox through the mesh."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import grpc

from mesh.cli import common
from ragmesh.sandbox.v1 import sandbox_service_pb2 as pb
from ragmesh.sandbox.v1 import sandbox_service_pb2_grpc as pb_grpc

_SERVICE = "ragmesh.sandbox.v1.SandboxService"


def _request(args: argparse.Namespace) -> pb.StreamExecuteRequest:
    code = sys.stdin.read() if args.code_file == "-" else Path(args.code_file).read_text()
    files = [pb.InputFile(name=Path(p).name, content=Path(p).read_bytes()) for p in args.file]
    return pb.StreamExecuteRequest(
        code=code,
        files=files,
        limits=pb.ExecutionLimits(
            wall_timeout_ms=int(args.timeout_s * 1000) if args.timeout_s else 0,
            memory_bytes=args.memory_mb * 1024 * 1024 if args.memory_mb else 0,
        ),
    )


def _as_json(result: pb.ExecutionResult) -> dict[str, Any]:
    return {
        "exit_code": result.exit_code,
        "stdout": result.stdout,
        "stderr": result.stderr,
        "stop_reason": pb.StopReason.Name(result.stop_reason).removeprefix("STOP_REASON_"),
        "wall_ms": result.wall_ms,
        "cpu_ms": result.cpu_ms,
        "peak_memory_bytes": result.peak_memory_bytes,
        "stdout_truncated": result.stdout_truncated,
        "stderr_truncated": result.stderr_truncated,
        "signal": result.signal,
        "detail": result.detail,
    }


async def _exec(args: argparse.Namespace) -> int:
    request = _request(args)
    async with common.channel(args, (_SERVICE,)) as channel:
        stub = pb_grpc.SandboxServiceStub(channel)
        result: pb.ExecutionResult | None = None
        try:
            async for event in stub.StreamExecute(request, metadata=common.metadata(args)):
                if event.WhichOneof("event") == "output":
                    if not args.json:
                        out = sys.stdout if event.output.stream == pb.OUTPUT_STREAM_STDOUT else sys.stderr
                        out.write(event.output.data.decode("utf-8", errors="replace"))
                        out.flush()
                else:
                    result = event.result
        except grpc.aio.AioRpcError as err:
            return common.report_rpc_error(err, as_json=args.json)
    if result is None:
        print("error: the stream ended without a result", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(_as_json(result)))
    else:
        reason = pb.StopReason.Name(result.stop_reason).removeprefix("STOP_REASON_").lower()
        print(
            f"[{reason}: exit {result.exit_code}, {result.wall_ms} ms wall, {result.cpu_ms} ms cpu, "
            f"{result.peak_memory_bytes / 1e6:.1f} MB peak{', ' + result.detail if result.detail else ''}]",
            file=sys.stderr,
        )
    return 0 if result.stop_reason == pb.STOP_REASON_COMPLETED and result.exit_code == 0 else 1


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
    run.set_defaults(func=lambda args: asyncio.run(_exec(args)))
