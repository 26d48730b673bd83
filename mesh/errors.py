"""Domain errors shared by every service.

Handlers and domain code raise these; one server interceptor maps them to gRPC
status codes with ``google.rpc.Status`` details (``ErrorInfo`` and, for bad
input, ``BadRequest`` field violations). Nothing here imports grpc, so domain
packages stay free of transport code.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


class Code(enum.Enum):
    """The gRPC status codes a domain error may carry (names match grpc.StatusCode)."""

    CANCELLED = "CANCELLED"
    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
    NOT_FOUND = "NOT_FOUND"
    ALREADY_EXISTS = "ALREADY_EXISTS"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    RESOURCE_EXHAUSTED = "RESOURCE_EXHAUSTED"
    FAILED_PRECONDITION = "FAILED_PRECONDITION"
    ABORTED = "ABORTED"
    UNIMPLEMENTED = "UNIMPLEMENTED"
    INTERNAL = "INTERNAL"
    UNAVAILABLE = "UNAVAILABLE"
    UNAUTHENTICATED = "UNAUTHENTICATED"


@dataclass(frozen=True)
class FieldViolation:
    """One broken rule on one request field, reported as a BadRequest detail."""

    field: str
    description: str


@dataclass
class MeshError(Exception):
    """Base of every domain error.

    ``reason`` is an UPPER_SNAKE identifier stable enough for clients to branch
    on; ``message`` is for people; ``metadata`` goes into ``ErrorInfo.metadata``.
    """

    message: str
    reason: str = "UNSPECIFIED"
    metadata: Mapping[str, str] = field(default_factory=dict)
    violations: Sequence[FieldViolation] = ()
    code: Code = Code.INTERNAL

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


class InvalidArgument(MeshError):
    """The request is malformed or breaks a documented limit (not retryable)."""

    def __init__(
        self,
        message: str,
        reason: str = "INVALID_ARGUMENT",
        metadata: Mapping[str, str] | None = None,
        violations: Sequence[FieldViolation] = (),
    ) -> None:
        super().__init__(message, reason, dict(metadata or {}), tuple(violations), Code.INVALID_ARGUMENT)


class NotFound(MeshError):
    """The named resource does not exist (for this tenant)."""

    def __init__(self, message: str, reason: str = "NOT_FOUND", metadata: Mapping[str, str] | None = None) -> None:
        super().__init__(message, reason, dict(metadata or {}), (), Code.NOT_FOUND)


class AlreadyExists(MeshError):
    """The resource the caller tried to create exists already."""

    def __init__(self, message: str, reason: str = "ALREADY_EXISTS", metadata: Mapping[str, str] | None = None) -> None:
        super().__init__(message, reason, dict(metadata or {}), (), Code.ALREADY_EXISTS)


class ResourceExhausted(MeshError):
    """A quota, queue or concurrency limit was hit; the caller may back off and retry later."""

    def __init__(
        self, message: str, reason: str = "RESOURCE_EXHAUSTED", metadata: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message, reason, dict(metadata or {}), (), Code.RESOURCE_EXHAUSTED)


class FailedPrecondition(MeshError):
    """The system is not in a state the operation needs (for example a job already finished)."""

    def __init__(
        self, message: str, reason: str = "FAILED_PRECONDITION", metadata: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message, reason, dict(metadata or {}), (), Code.FAILED_PRECONDITION)


class Unavailable(MeshError):
    """A transient fault in a dependency; the only error clients should retry."""

    def __init__(self, message: str, reason: str = "UNAVAILABLE", metadata: Mapping[str, str] | None = None) -> None:
        super().__init__(message, reason, dict(metadata or {}), (), Code.UNAVAILABLE)


class DeadlineExceeded(MeshError):
    """The caller's deadline passed before the work finished."""

    def __init__(
        self, message: str, reason: str = "DEADLINE_EXCEEDED", metadata: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message, reason, dict(metadata or {}), (), Code.DEADLINE_EXCEEDED)


class PermissionDenied(MeshError):
    """The caller is known but may not do this."""

    def __init__(
        self, message: str, reason: str = "PERMISSION_DENIED", metadata: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message, reason, dict(metadata or {}), (), Code.PERMISSION_DENIED)


class Unauthenticated(MeshError):
    """The caller's identity is missing or invalid."""

    def __init__(
        self, message: str, reason: str = "UNAUTHENTICATED", metadata: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message, reason, dict(metadata or {}), (), Code.UNAUTHENTICATED)


class Cancelled(MeshError):
    """The operation was cancelled, usually by the caller."""

    def __init__(self, message: str, reason: str = "CANCELLED", metadata: Mapping[str, str] | None = None) -> None:
        super().__init__(message, reason, dict(metadata or {}), (), Code.CANCELLED)
