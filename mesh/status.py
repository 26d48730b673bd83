"""Maps domain errors to gRPC status with google.rpc.Status details."""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from mesh.errors import Code, MeshError

ERROR_DOMAIN = "ragmesh.dev"
DETAILS_KEY = "grpc-status-details-bin"


def grpc_code(code: Code) -> grpc.StatusCode:
    return grpc.StatusCode[code.value]


def to_status_proto(error: MeshError) -> status_pb2.Status:
    """The google.rpc.Status for ``error``: ErrorInfo always, BadRequest when fields broke rules."""
    code = grpc_code(error.code)
    status = status_pb2.Status(code=getattr(code_pb2, code.name), message=error.message)
    info = error_details_pb2.ErrorInfo(reason=error.reason, domain=ERROR_DOMAIN, metadata=dict(error.metadata))
    detail = any_pb2.Any()
    # deterministic: the metadata map in one order every run, so a status rendered into a config
    # (the edge's answers-at-capacity refusal in kustomize/base/envoy/envoy.yaml) is stable bytes.
    detail.Pack(info, deterministic=True)
    status.details.append(detail)
    if error.violations:
        bad = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
                for v in error.violations
            ]
        )
        detail = any_pb2.Any()
        detail.Pack(bad)
        status.details.append(detail)
    return status


def trailing_metadata(error: MeshError) -> tuple[tuple[str, bytes], ...]:
    return ((DETAILS_KEY, to_status_proto(error).SerializeToString()),)


def status_from_metadata(metadata: object) -> status_pb2.Status | None:
    """Decodes google.rpc.Status from an RpcError's trailing metadata, if present."""
    if not metadata:
        return None
    for key, value in metadata:  # type: ignore[attr-defined]
        if key == DETAILS_KEY and isinstance(value, bytes):
            return status_pb2.Status.FromString(value)
    return None


def error_info(status: status_pb2.Status) -> error_details_pb2.ErrorInfo | None:
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info
    return None


def bad_request(status: status_pb2.Status) -> error_details_pb2.BadRequest | None:
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            return bad
    return None
