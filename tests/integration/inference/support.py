"""Helpers for the inference integration tests: streams with arrival times, error details, prompts."""

from __future__ import annotations

import dataclasses
import time

import grpc

from mesh import status
from ragmesh.inference.v1 import inference_service_pb2 as pb
from ragmesh.inference.v1 import inference_service_pb2_grpc as pb_grpc

# A prompt a base model keeps continuing for as long as it is allowed to.
ENDLESS_PROMPT = "Numbers: 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,"


@dataclasses.dataclass
class Received:
    """A finished stream: each message with the time.perf_counter() it arrived at."""

    started_at: float
    messages: list[tuple[float, pb.StreamGenerateResponse]]

    @property
    def deltas(self) -> list[tuple[float, str]]:
        return [(t, m.delta) for t, m in self.messages if m.delta]

    @property
    def text(self) -> str:
        return "".join(m.delta for _, m in self.messages)

    @property
    def summary(self) -> pb.GenerationSummary:
        last = self.messages[-1][1]
        assert last.HasField("summary"), "the last message must carry the summary"
        return last.summary


async def generate(
    stub: pb_grpc.InferenceServiceStub, request: pb.StreamGenerateRequest, timeout_s: float = 120.0
) -> Received:
    """Runs a whole StreamGenerate call, timing each message."""
    started = time.perf_counter()
    messages: list[tuple[float, pb.StreamGenerateResponse]] = []
    async for message in stub.StreamGenerate(request, timeout=timeout_s):
        messages.append((time.perf_counter(), message))
    return Received(started, messages)


def reason(error: grpc.aio.AioRpcError) -> str:
    """The ErrorInfo reason of a failed call."""
    details = status.status_from_metadata(error.trailing_metadata())
    assert details is not None, f"no google.rpc.Status on {error.code()}: {error.details()}"
    info = status.error_info(details)
    assert info is not None
    return info.reason


def violation_fields(error: grpc.aio.AioRpcError) -> list[str]:
    """The fields BadRequest names on a failed call."""
    details = status.status_from_metadata(error.trailing_metadata())
    assert details is not None
    bad = status.bad_request(details)
    return [] if bad is None else [v.field for v in bad.field_violations]
