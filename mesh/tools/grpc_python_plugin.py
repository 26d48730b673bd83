"""A protoc plugin adapter for grpc Python stubs.

buf runs plugins as executables that read a ``CodeGeneratorRequest`` on stdin.
grpcio-tools ships the grpc Python generator only inside its bundled protoc, so
this adapter writes the request's file descriptors to a descriptor set, runs
that protoc with ``--grpc_python_out`` over the files to generate, and returns
the produced files in a ``CodeGeneratorResponse``.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from google.protobuf import descriptor_pb2
from google.protobuf.compiler import plugin_pb2
from grpc_tools import protoc


def generate(request: plugin_pb2.CodeGeneratorRequest) -> plugin_pb2.CodeGeneratorResponse:
    response = plugin_pb2.CodeGeneratorResponse()
    response.supported_features = plugin_pb2.CodeGeneratorResponse.FEATURE_PROTO3_OPTIONAL
    with tempfile.TemporaryDirectory() as tmp:
        descriptor_set = descriptor_pb2.FileDescriptorSet(file=request.proto_file)
        set_path = Path(tmp) / "request.binpb"
        set_path.write_bytes(descriptor_set.SerializeToString())
        out = Path(tmp) / "out"
        out.mkdir()
        args = ["protoc", f"--descriptor_set_in={set_path}", f"--grpc_python_out={out}"]
        if request.parameter:
            args[-1] = f"--grpc_python_out={request.parameter}:{out}"
        rc = protoc.main([*args, *request.file_to_generate])
        if rc != 0:
            response.error = f"grpc_tools.protoc exited with {rc}"
            return response
        for path in sorted(out.rglob("*.py")):
            response.file.add(name=str(path.relative_to(out)), content=path.read_text())
    return response


def main() -> None:
    request = plugin_pb2.CodeGeneratorRequest.FromString(sys.stdin.buffer.read())
    sys.stdout.buffer.write(generate(request).SerializeToString())


if __name__ == "__main__":
    main()
