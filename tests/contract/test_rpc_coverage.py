"""Every RPC in the contracts has a real implementation in its service.

A servicer method that is not overridden falls back to the generated base
class, which answers UNIMPLEMENTED. RPCs still pending are listed in PENDING
with the issue that implements them; the list must shrink to empty.
"""

from __future__ import annotations

import importlib
import inspect

import pytest
from google.protobuf import descriptor_pool

from ragmesh.agent.v1 import agent_service_pb2  # noqa: F401 - registers descriptors
from ragmesh.inference.v1 import inference_service_pb2  # noqa: F401
from ragmesh.ingest.v1 import ingest_service_pb2  # noqa: F401
from ragmesh.retrieval.v1 import index_service_pb2, retrieval_service_pb2  # noqa: F401
from ragmesh.sandbox.v1 import sandbox_service_pb2  # noqa: F401

SERVICE_FILES = (
    "ragmesh/inference/v1/inference_service.proto",
    "ragmesh/retrieval/v1/retrieval_service.proto",
    "ragmesh/retrieval/v1/index_service.proto",
    "ragmesh/ingest/v1/ingest_service.proto",
    "ragmesh/sandbox/v1/sandbox_service.proto",
    "ragmesh/agent/v1/agent_service.proto",
)

# RPC full name -> the issue that will implement it.
PENDING: dict[str, int] = {}


def _rpcs() -> list[tuple[str, str, str]]:
    pool = descriptor_pool.Default()
    out = []
    for file_name in SERVICE_FILES:
        file_desc = pool.FindFileByName(file_name)
        for service in file_desc.services_by_name.values():
            for method in service.methods:
                out.append((service.full_name, service.name, method.name))
    return out


def _servicer_class(service_full_name: str, service_name: str) -> tuple[type, type]:
    domain = service_full_name.split(".")[1]
    servicer_module = importlib.import_module(f"svc_{domain}.servicer")
    cls = getattr(servicer_module, f"{service_name}Servicer")
    proto_module = inspect.getmodule(cls.__mro__[1])
    base = getattr(proto_module, f"{service_name}Servicer")
    return cls, base


def test_every_service_has_a_servicer() -> None:
    for full_name, name, _ in _rpcs():
        cls, base = _servicer_class(full_name, name)
        assert issubclass(cls, base), f"{cls} must subclass the generated {base}"


@pytest.mark.parametrize(("service", "name", "method"), _rpcs(), ids=lambda v: str(v))
def test_rpc_is_implemented_or_pending(service: str, name: str, method: str) -> None:
    rpc = f"{service}/{method}"
    cls, base = _servicer_class(service, name)
    implemented = getattr(cls, method) is not getattr(base, method)
    if rpc in PENDING:
        assert not implemented, f"{rpc} is implemented: remove it from PENDING"
    else:
        assert implemented, f"{rpc} has no implementation in {cls.__module__}.{cls.__name__}"
        assert inspect.iscoroutinefunction(getattr(cls, method)) or inspect.isasyncgenfunction(getattr(cls, method)), (
            f"{rpc} must be async (grpc.aio)"
        )


def test_pending_names_real_rpcs() -> None:
    real = {f"{s}/{m}" for s, _, m in _rpcs()}
    assert set(PENDING) <= real, f"PENDING lists unknown RPCs: {set(PENDING) - real}"
