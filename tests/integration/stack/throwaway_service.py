"""A minimal service process for the supervisor's service-part test (the real services are tested elsewhere).

It takes svc_agent's place only to check how the supervisor starts, probes and stops
a service part, without loading models or stores. It serves the standard health
service (SERVING) on RAGMESH_AGENT_HOST:RAGMESH_AGENT_PORT, the env contract of
mesh.stack.service_env, writes the environment it got to the file named by
argv[1], and stops gracefully on SIGTERM.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc


def main() -> None:
    with open(sys.argv[1], "w") as out:
        json.dump({k: v for k, v in os.environ.items() if k.startswith(("RAGMESH_", "RAY_"))}, out)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    server.add_insecure_port(f"{os.environ['RAGMESH_AGENT_HOST']}:{os.environ['RAGMESH_AGENT_PORT']}")
    stopped = threading.Event()

    def on_term(_signum: int, _frame: object) -> None:
        servicer.enter_graceful_shutdown()
        stopped.set()

    signal.signal(signal.SIGTERM, on_term)
    server.start()
    print("throwaway service: SERVING", flush=True)
    stopped.wait()
    server.stop(grace=1).wait()
    print("throwaway service: stopped", flush=True)


if __name__ == "__main__":
    main()
