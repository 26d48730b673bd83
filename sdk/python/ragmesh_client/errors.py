"""Typed exceptions for failed calls, carrying the server's ``google.rpc.Status`` details.

Every ragmesh service answers a failure with a gRPC status code and a
``google.rpc.Status`` in the ``grpc-status-details-bin`` trailer: an ``ErrorInfo``
(an UPPER_SNAKE ``reason``, the ``domain`` and string ``metadata``) and, for bad
input, a ``BadRequest`` listing each field that broke a rule. The SDK raises one
exception class per status code so callers can ``except NotFound`` without
comparing codes, and exposes those details as plain attributes.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from google.rpc import error_details_pb2, status_pb2

DETAILS_KEY = "grpc-status-details-bin"


class Code(enum.IntEnum):
    """gRPC status codes (the numbers are the wire values)."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


@dataclass(frozen=True)
class FieldViolation:
    """One request field that broke a rule (from ``google.rpc.BadRequest``)."""

    field: str
    description: str


@dataclass(frozen=True)
class ErrorDetails:
    """What the server said about a failure beyond its code and message."""

    reason: str = ""
    domain: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    field_violations: tuple[FieldViolation, ...] = ()
    status: status_pb2.Status | None = None
    """The decoded ``google.rpc.Status`` itself, for details the SDK does not lift out."""


def decode_details(data: bytes | None) -> ErrorDetails:
    """``ErrorDetails`` from a serialized ``google.rpc.Status`` (empty details when absent or unreadable)."""
    if not data:
        return ErrorDetails()
    status = status_pb2.Status()
    try:
        status.ParseFromString(data)
    except Exception:  # noqa: BLE001 - a garbled trailer must not hide the error it came with
        return ErrorDetails()
    reason, domain, metadata = "", "", dict[str, str]()
    violations: list[FieldViolation] = []
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason, domain, metadata = info.reason, info.domain, dict(info.metadata)
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            violations.extend(FieldViolation(v.field, v.description) for v in bad.field_violations)
    return ErrorDetails(
        reason=reason,
        domain=domain,
        metadata=metadata,
        field_violations=tuple(violations),
        status=status,
    )


class RagmeshError(Exception):
    """A call that failed; the subclass names its gRPC status code."""

    code: Code = Code.UNKNOWN

    def __init__(self, message: str, details: ErrorDetails | None = None, *, code: Code | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details if details is not None else ErrorDetails()
        if code is not None:
            self.code = code

    @property
    def reason(self) -> str:
        """The ``ErrorInfo`` reason (UPPER_SNAKE), or "" when the server sent none."""
        return self.details.reason

    @property
    def field_violations(self) -> tuple[FieldViolation, ...]:
        """The fields that broke a rule (``BadRequest``), for INVALID_ARGUMENT."""
        return self.details.field_violations

    def __str__(self) -> str:
        text = f"{self.code.name}: {self.message}"
        if self.reason:
            text += f" ({self.reason})"
        for violation in self.field_violations:
            text += f"\n  {violation.field}: {violation.description}"
        return text


class Cancelled(RagmeshError):
    code = Code.CANCELLED


class Unknown(RagmeshError):
    code = Code.UNKNOWN


class InvalidArgument(RagmeshError):
    code = Code.INVALID_ARGUMENT


class DeadlineExceeded(RagmeshError):
    code = Code.DEADLINE_EXCEEDED


class NotFound(RagmeshError):
    code = Code.NOT_FOUND


class AlreadyExists(RagmeshError):
    code = Code.ALREADY_EXISTS


class PermissionDenied(RagmeshError):
    code = Code.PERMISSION_DENIED


class ResourceExhausted(RagmeshError):
    code = Code.RESOURCE_EXHAUSTED


class FailedPrecondition(RagmeshError):
    code = Code.FAILED_PRECONDITION


class Aborted(RagmeshError):
    code = Code.ABORTED


class OutOfRange(RagmeshError):
    code = Code.OUT_OF_RANGE


class Unimplemented(RagmeshError):
    code = Code.UNIMPLEMENTED


class Internal(RagmeshError):
    code = Code.INTERNAL


class Unavailable(RagmeshError):
    """A transient fault: the only code the SDK retries."""

    code = Code.UNAVAILABLE


class DataLoss(RagmeshError):
    code = Code.DATA_LOSS


class Unauthenticated(RagmeshError):
    code = Code.UNAUTHENTICATED


_BY_CODE: dict[Code, type[RagmeshError]] = {
    cls.code: cls
    for cls in (
        Cancelled,
        Unknown,
        InvalidArgument,
        DeadlineExceeded,
        NotFound,
        AlreadyExists,
        PermissionDenied,
        ResourceExhausted,
        FailedPrecondition,
        Aborted,
        OutOfRange,
        Unimplemented,
        Internal,
        Unavailable,
        DataLoss,
        Unauthenticated,
    )
}


def error_for(code: int, message: str, details: ErrorDetails | None = None) -> RagmeshError:
    """The typed exception for a status ``code`` (an unknown number becomes ``Unknown`` keeping it)."""
    try:
        known = Code(code)
    except ValueError:
        return Unknown(f"status {code}: {message}", details)
    return _BY_CODE.get(known, Unknown)(message, details, code=known)
