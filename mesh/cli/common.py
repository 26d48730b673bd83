"""What every client command shares: where to connect and as whom."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import grpc

from mesh import context, status
from mesh.channels import open_channel
from mesh.settings import MeshSettings


def add_connection_args(parser: argparse.ArgumentParser) -> None:
    """Adds --addr (default: the Envoy edge) and --tenant (default: "default")."""
    parser.add_argument("--addr", default=None, help="host:port to call (default: the Envoy edge, RAGMESH_EDGE_ADDR)")
    parser.add_argument("--tenant", default="default", help="tenant to act as (default: default)")


def channel(args: argparse.Namespace, services: tuple[str, ...] = ()) -> grpc.aio.Channel:
    """An aio channel to --addr or the edge, with the mesh's service config."""
    target = args.addr or MeshSettings.from_env().edge_addr
    return open_channel(target, services, tracing=False)


def metadata(args: argparse.Namespace) -> tuple[tuple[str, str], ...]:
    """Request metadata carrying the caller identity."""
    return ((context.TENANT_HEADER, args.tenant),)


def report_rpc_error(err: grpc.aio.AioRpcError, *, as_json: bool = False) -> int:
    """Prints a failed call the way people and scripts can use it; returns the exit code."""
    code = err.code()
    decoded = status.status_from_metadata(err.trailing_metadata())
    reason = ""
    violations: list[dict[str, Any]] = []
    if decoded is not None:
        info = status.error_info(decoded)
        reason = info.reason if info else ""
        bad = status.bad_request(decoded)
        if bad is not None:
            violations = [{"field": v.field, "description": v.description} for v in bad.field_violations]
    if as_json:
        import json

        print(
            json.dumps(
                {"error": {"code": code.name, "message": err.details(), "reason": reason, "violations": violations}}
            )
        )
    else:
        print(f"error: {code.name}: {err.details()}" + (f" ({reason})" if reason else ""), file=sys.stderr)
        for v in violations:
            print(f"  {v['field']}: {v['description']}", file=sys.stderr)
        if code == grpc.StatusCode.UNAVAILABLE:
            print("  is the mesh up? try: ragmesh status", file=sys.stderr)
    return 3 if code == grpc.StatusCode.INVALID_ARGUMENT else 1
