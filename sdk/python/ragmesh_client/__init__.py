"""ragmesh_client: the typed Python SDK for ragmesh.

``AsyncClient`` (grpclib) and ``Client`` (grpcio) call the mesh through its Envoy
edge with the betterproto2 dataclasses generated from the contracts:
``ask()`` yields typed events (``ragmesh_client.events``), ``search()``,
``ingest()`` follows the job's progress, ``sessions``, ``feedback()`` and
``sandbox.run()``. Failures raise the typed exceptions of
``ragmesh_client.errors`` with the server's ``google.rpc.Status`` details.
The generated messages are re-exported per domain: ``ragmesh_client.agent``,
``.retrieval``, ``.ingest``, ``.sandbox``, ``.common``.
"""

from ragmesh_client import errors, events
from ragmesh_client._credentials import TokenSource
from ragmesh_client._proto.ragmesh.agent import v1 as agent
from ragmesh_client._proto.ragmesh.common import v1 as common
from ragmesh_client._proto.ragmesh.ingest import v1 as ingest
from ragmesh_client._proto.ragmesh.retrieval import v1 as retrieval
from ragmesh_client._proto.ragmesh.sandbox import v1 as sandbox
from ragmesh_client.aio import AsyncClient
from ragmesh_client.errors import (
    DeadlineExceeded,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    RagmeshError,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)
from ragmesh_client.sync import Client

__version__ = "0.1.0"

__all__ = [
    "AsyncClient",
    "Client",
    "DeadlineExceeded",
    "FieldViolation",
    "InvalidArgument",
    "NotFound",
    "PermissionDenied",
    "RagmeshError",
    "ResourceExhausted",
    "TokenSource",
    "Unauthenticated",
    "Unavailable",
    "agent",
    "common",
    "errors",
    "events",
    "ingest",
    "retrieval",
    "sandbox",
]
