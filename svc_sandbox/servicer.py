"""gRPC servicers of svc_sandbox: isolated execution of untrusted Python."""

from __future__ import annotations

from ragmesh.sandbox.v1 import sandbox_service_pb2_grpc


class SandboxServiceServicer(sandbox_service_pb2_grpc.SandboxServiceServicer):
    """``ragmesh.sandbox.v1.SandboxService``: one thin method per RPC (proto -> domain -> proto)."""
