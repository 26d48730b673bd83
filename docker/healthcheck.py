"""Container health check: asks the service's own gRPC health endpoint whether it is SERVING.

Images have no grpc_health_probe; this uses the grpcio-health-checking package the services
already depend on. Exit 0 when the server ("" service) answers SERVING, 1 otherwise.

    python /app/docker/healthcheck.py            # port from RAGMESH_HEALTH_PORT
"""

from __future__ import annotations

import os
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def main() -> int:
    port = os.environ.get("RAGMESH_HEALTH_PORT", "")
    if not port.isdigit():
        print("RAGMESH_HEALTH_PORT must be the service's gRPC port", file=sys.stderr)
        return 1
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=3)
        except grpc.RpcError as exc:
            print(f"health check failed: {exc.code().name}", file=sys.stderr)
            return 1
    return 0 if reply.status == health_pb2.HealthCheckResponse.SERVING else 1


if __name__ == "__main__":
    sys.exit(main())
