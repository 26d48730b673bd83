"""One policy for what a failed downstream call means to the caller (mesh.downstream)."""

from __future__ import annotations

import grpc
import pytest

from mesh.downstream import downstream_error
from mesh.errors import Code, MeshError


def failed_call(code: grpc.StatusCode, details: str = "it went wrong") -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details=details)


@pytest.mark.parametrize(
    ("downstream", "caller", "reason"),
    [
        (grpc.StatusCode.UNAVAILABLE, Code.UNAVAILABLE, "DOWNSTREAM_UNAVAILABLE"),
        (grpc.StatusCode.DEADLINE_EXCEEDED, Code.DEADLINE_EXCEEDED, "DOWNSTREAM_DEADLINE_EXCEEDED"),
        (grpc.StatusCode.CANCELLED, Code.CANCELLED, "DOWNSTREAM_CANCELLED"),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, Code.RESOURCE_EXHAUSTED, "DOWNSTREAM_RESOURCE_EXHAUSTED"),
        (grpc.StatusCode.NOT_FOUND, Code.NOT_FOUND, "DOWNSTREAM_NOT_FOUND"),
        (grpc.StatusCode.UNAUTHENTICATED, Code.UNAUTHENTICATED, "DOWNSTREAM_UNAUTHENTICATED"),
        (grpc.StatusCode.PERMISSION_DENIED, Code.PERMISSION_DENIED, "DOWNSTREAM_PERMISSION_DENIED"),
        (grpc.StatusCode.INVALID_ARGUMENT, Code.FAILED_PRECONDITION, "DOWNSTREAM_REJECTED"),
        (grpc.StatusCode.OUT_OF_RANGE, Code.FAILED_PRECONDITION, "DOWNSTREAM_REJECTED"),
        (grpc.StatusCode.FAILED_PRECONDITION, Code.FAILED_PRECONDITION, "DOWNSTREAM_REJECTED"),
        (grpc.StatusCode.ALREADY_EXISTS, Code.FAILED_PRECONDITION, "DOWNSTREAM_REJECTED"),
        (grpc.StatusCode.ABORTED, Code.FAILED_PRECONDITION, "DOWNSTREAM_REJECTED"),
        (grpc.StatusCode.UNIMPLEMENTED, Code.FAILED_PRECONDITION, "DOWNSTREAM_REJECTED"),
        (grpc.StatusCode.INTERNAL, Code.INTERNAL, "DOWNSTREAM_INTERNAL"),
        (grpc.StatusCode.UNKNOWN, Code.INTERNAL, "DOWNSTREAM_INTERNAL"),
        (grpc.StatusCode.DATA_LOSS, Code.INTERNAL, "DOWNSTREAM_INTERNAL"),
    ],
)
def test_every_downstream_code_has_one_meaning_for_the_caller(
    downstream: grpc.StatusCode, caller: Code, reason: str
) -> None:
    error = downstream_error(failed_call(downstream), "embedding the query")
    assert isinstance(error, MeshError)
    assert (error.code, error.reason) == (caller, reason)
    assert error.metadata == {"downstream_code": downstream.name}
    assert error.message == f"embedding the query failed: {downstream.name}: it went wrong"


def test_a_downstream_refusal_never_blames_the_caller_with_invalid_argument() -> None:
    for code in grpc.StatusCode:
        if code is grpc.StatusCode.OK:
            continue
        assert downstream_error(failed_call(code), "x").code is not Code.INVALID_ARGUMENT, code


def test_blocking_call_errors_and_non_grpc_errors_are_mapped_alike() -> None:
    class BlockingFailure(grpc.RpcError):
        def code(self) -> grpc.StatusCode:
            return grpc.StatusCode.UNAVAILABLE

        def details(self) -> str:
            return ""

    assert downstream_error(BlockingFailure(), "x").code is Code.UNAVAILABLE
    assert downstream_error(BlockingFailure(), "x").message == "x failed: UNAVAILABLE: UNAVAILABLE"
    odd = downstream_error(ValueError("not a call at all"), "x")
    assert (odd.code, odd.reason) == (Code.INTERNAL, "DOWNSTREAM_INTERNAL")
