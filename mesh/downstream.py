"""What a failed call to another service means to the caller: one policy for every client in the mesh.

A downstream status describes the call this service made, not the request it is
serving, so clients never pass it on as it came: every stub call that fails goes
through ``downstream_error`` and comes out as the domain error below, which the
server interceptor then maps to this service's own status (``mesh.errors``).

- UNAVAILABLE -> Unavailable: transient, the one code that is retried (by the
  service config and Envoy, nowhere else).
- DEADLINE_EXCEEDED -> DeadlineExceeded; CANCELLED -> Cancelled.
- RESOURCE_EXHAUSTED -> ResourceExhausted: a limit downstream; back off and try later.
  Batch work waits it out within a budget (``mesh.priority.Backpressure``), the only
  place anything tries a RESOURCE_EXHAUSTED call again.
- UNAUTHENTICATED, PERMISSION_DENIED -> the same: the caller's own token travelled
  with the call (``mesh.channels``), so the refusal is theirs.
- NOT_FOUND -> NotFound.
- INVALID_ARGUMENT, OUT_OF_RANGE, FAILED_PRECONDITION, ALREADY_EXISTS, ABORTED,
  UNIMPLEMENTED -> FailedPrecondition, reason ``DOWNSTREAM_REJECTED``: this service
  built the request from input it had already validated against its own contract,
  so a refusal downstream is a state of the mesh (a model's own limit, a version
  skew), not input the caller can fix. Never INVALID_ARGUMENT, which would blame them.
- INTERNAL, UNKNOWN, DATA_LOSS -> INTERNAL, reason ``DOWNSTREAM_INTERNAL``: a bug
  downstream stays a bug.

Reasons are ``DOWNSTREAM_<CODE>`` for the codes kept; ``ErrorInfo.metadata`` carries
``downstream_code``, and the message says what the call was for. What a domain does
with these (retrieval degrades a leg whose dependency is unavailable, late or
saturated; ingest's workers wait out RESOURCE_EXHAUSTED) is the domain's decision,
made on the domain errors, never on gRPC codes.
"""

from __future__ import annotations

import grpc

from mesh.errors import (
    Cancelled,
    DeadlineExceeded,
    FailedPrecondition,
    MeshError,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)
from mesh.errors import Code as ErrorCode

_REJECTED = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.UNIMPLEMENTED,
    }
)
_KEPT: dict[grpc.StatusCode, type[MeshError]] = {
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    grpc.StatusCode.CANCELLED: Cancelled,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
}


def status_of(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """The status code and details of a failed call (aio or blocking); UNKNOWN for anything else."""
    code_of = getattr(exc, "code", None)
    details_of = getattr(exc, "details", None)
    code = code_of() if callable(code_of) else None
    details = details_of() if callable(details_of) else None
    if not isinstance(code, grpc.StatusCode):
        return grpc.StatusCode.UNKNOWN, str(exc)
    return code, details or ""


def downstream_error(exc: BaseException, doing: str) -> MeshError:
    """The caller's domain error for a failed call to another service (the list above).

    ``doing`` says what the call was for ("embedding the query"). Raise it ``from exc``.
    """
    code, details = status_of(exc)
    message = f"{doing} failed: {code.name}: {details or code.name}"
    metadata = {"downstream_code": code.name}
    kept = _KEPT.get(code)
    if kept is not None:
        return kept(message, reason=f"DOWNSTREAM_{code.name}", metadata=metadata)
    if code in _REJECTED:
        return FailedPrecondition(message, reason="DOWNSTREAM_REJECTED", metadata=metadata)
    return MeshError(message, reason="DOWNSTREAM_INTERNAL", metadata=metadata, code=ErrorCode.INTERNAL)
