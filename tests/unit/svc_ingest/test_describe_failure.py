"""A failed pipeline's reason, as the job stores and returns it: the real error, without tracebacks or paths."""

from __future__ import annotations

import grpc

from mesh.errors import Unavailable
from svc_ingest.domain.failures import describe


class FakeRayTaskError(Exception):
    """Stands in for Ray's wrapper: a traceback in its message, the original error as ``cause``."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__('ray::MapWorker.submit()\nTraceback (most recent call last):\n  File "/srv/x.py", line 3\n')
        self.cause = cause


class FakeRpcError(grpc.RpcError):
    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.UNAUTHENTICATED

    def details(self) -> str:
        return "no bearer token was sent"


def test_the_error_under_rays_wrappers_is_described() -> None:
    assert describe(FakeRayTaskError(FakeRpcError())) == "UNAUTHENTICATED: no bearer token was sent"
    described = describe(FakeRayTaskError(Unavailable("svc_inference is down", reason="X")))
    assert described.startswith("Unavailable: svc_inference is down")


def test_a_traceback_in_a_message_is_cut_to_its_last_line() -> None:
    wrapped = RuntimeError('Traceback (most recent call last):\n  File "/srv/app/x.py", line 9\nValueError: bad row')
    described = describe(wrapped)
    assert described == "RuntimeError: ValueError: bad row"
    assert "/srv" not in described and "Traceback" not in described


class UserCodeException(Exception):
    """Named as Ray Data's wrapper of a stage's error (a fake: the driver gets it with no ``__cause__``)."""


def test_the_stage_error_ray_data_printed_is_described_not_its_wrapper() -> None:
    printed = (
        "ray::MapWorker(MapBatches(EmbedStage)).submit()\n"
        "grpc._channel._InactiveRpcError: <_InactiveRpcError of RPC that terminated with:\n"
        "\tstatus = StatusCode.DEADLINE_EXCEEDED\n"
        "The above exception was the direct cause of the following exception:\n"
        "mesh.errors.DeadlineExceeded: embedding document texts failed: DEADLINE_EXCEEDED: Deadline Exceeded\n"
        "The above exception was the direct cause of the following exception:\n"
        "ray.exceptions.UserCodeException: UDF failed to process a data block.\n"
    )
    wrapper = FakeRayTaskError(UserCodeException("UDF failed to process a data block."))
    wrapper.args = (printed,)
    assert (
        describe(wrapper) == "DeadlineExceeded: embedding document texts failed: DEADLINE_EXCEEDED: Deadline Exceeded"
    )
