"""Downstream failures as domain errors, and store timeouts from the request's deadline."""

from __future__ import annotations

import grpc

from mesh import context
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


def downstream_error(exc: grpc.aio.AioRpcError, what: str) -> MeshError:
    """The domain error for a failed call to another service; ``what`` says what the call was for."""
    code = exc.code()
    message = f"{what}: {exc.details() or code.name}"
    metadata = {"downstream_code": code.name}
    if code is grpc.StatusCode.UNAVAILABLE:
        return Unavailable(message, reason="DOWNSTREAM_UNAVAILABLE", metadata=metadata)
    if code is grpc.StatusCode.DEADLINE_EXCEEDED:
        return DeadlineExceeded(message, reason="DOWNSTREAM_DEADLINE_EXCEEDED", metadata=metadata)
    if code is grpc.StatusCode.CANCELLED:
        return Cancelled(message, reason="DOWNSTREAM_CANCELLED", metadata=metadata)
    if code is grpc.StatusCode.RESOURCE_EXHAUSTED:
        return ResourceExhausted(message, reason="DOWNSTREAM_RESOURCE_EXHAUSTED", metadata=metadata)
    if code is grpc.StatusCode.NOT_FOUND:
        return NotFound(message, reason="DOWNSTREAM_NOT_FOUND", metadata=metadata)
    if code is grpc.StatusCode.UNAUTHENTICATED:
        return Unauthenticated(message, reason="DOWNSTREAM_UNAUTHENTICATED", metadata=metadata)
    if code is grpc.StatusCode.PERMISSION_DENIED:
        return PermissionDenied(message, reason="DOWNSTREAM_PERMISSION_DENIED", metadata=metadata)
    if code in (
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.UNIMPLEMENTED,
    ):
        # The agent built the request; a service refusing it is a state of the mesh, not the caller's input.
        return FailedPrecondition(message, reason="DOWNSTREAM_REJECTED", metadata=metadata)
    return MeshError(message, reason="DOWNSTREAM_INTERNAL", metadata=metadata, code=ErrorCode.INTERNAL)


def store_timeout_s(ceiling_s: float) -> float:
    """Seconds a store call may take: the request's remaining time, at most ``ceiling_s``.

    Raises DEADLINE_EXCEEDED when no time is left, so no call starts that could only be wasted.
    """
    remaining = context.remaining_s()
    if remaining is None:
        return ceiling_s
    if remaining <= 0.0:
        raise DeadlineExceeded("the request's deadline passed", reason="DEADLINE_PASSED")
    return min(ceiling_s, remaining)
