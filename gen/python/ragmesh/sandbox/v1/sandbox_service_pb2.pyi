from buf.validate import validate_pb2 as _validate_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StopReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STOP_REASON_UNSPECIFIED: _ClassVar[StopReason]
    STOP_REASON_COMPLETED: _ClassVar[StopReason]
    STOP_REASON_TIMEOUT: _ClassVar[StopReason]
    STOP_REASON_MEMORY_LIMIT: _ClassVar[StopReason]
    STOP_REASON_OUTPUT_LIMIT: _ClassVar[StopReason]
    STOP_REASON_KILLED: _ClassVar[StopReason]
    STOP_REASON_ERROR: _ClassVar[StopReason]

class OutputStream(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OUTPUT_STREAM_UNSPECIFIED: _ClassVar[OutputStream]
    OUTPUT_STREAM_STDOUT: _ClassVar[OutputStream]
    OUTPUT_STREAM_STDERR: _ClassVar[OutputStream]
STOP_REASON_UNSPECIFIED: StopReason
STOP_REASON_COMPLETED: StopReason
STOP_REASON_TIMEOUT: StopReason
STOP_REASON_MEMORY_LIMIT: StopReason
STOP_REASON_OUTPUT_LIMIT: StopReason
STOP_REASON_KILLED: StopReason
STOP_REASON_ERROR: StopReason
OUTPUT_STREAM_UNSPECIFIED: OutputStream
OUTPUT_STREAM_STDOUT: OutputStream
OUTPUT_STREAM_STDERR: OutputStream

class InputFile(_message.Message):
    __slots__ = ("name", "content")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    name: str
    content: bytes
    def __init__(self, name: _Optional[str] = ..., content: _Optional[bytes] = ...) -> None: ...

class ExecutionLimits(_message.Message):
    __slots__ = ("wall_timeout_ms", "cpu_time_ms", "memory_bytes", "output_bytes")
    WALL_TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    CPU_TIME_MS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_BYTES_FIELD_NUMBER: _ClassVar[int]
    wall_timeout_ms: int
    cpu_time_ms: int
    memory_bytes: int
    output_bytes: int
    def __init__(self, wall_timeout_ms: _Optional[int] = ..., cpu_time_ms: _Optional[int] = ..., memory_bytes: _Optional[int] = ..., output_bytes: _Optional[int] = ...) -> None: ...

class ExecuteRequest(_message.Message):
    __slots__ = ("code", "stdin", "files", "limits")
    CODE_FIELD_NUMBER: _ClassVar[int]
    STDIN_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    code: str
    stdin: bytes
    files: _containers.RepeatedCompositeFieldContainer[InputFile]
    limits: ExecutionLimits
    def __init__(self, code: _Optional[str] = ..., stdin: _Optional[bytes] = ..., files: _Optional[_Iterable[_Union[InputFile, _Mapping]]] = ..., limits: _Optional[_Union[ExecutionLimits, _Mapping]] = ...) -> None: ...

class ExecutionResult(_message.Message):
    __slots__ = ("exit_code", "signal", "stdout", "stderr", "stdout_truncated", "stderr_truncated", "stop_reason", "wall_ms", "cpu_ms", "peak_memory_bytes", "detail")
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    SIGNAL_FIELD_NUMBER: _ClassVar[int]
    STDOUT_FIELD_NUMBER: _ClassVar[int]
    STDERR_FIELD_NUMBER: _ClassVar[int]
    STDOUT_TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    STDERR_TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    STOP_REASON_FIELD_NUMBER: _ClassVar[int]
    WALL_MS_FIELD_NUMBER: _ClassVar[int]
    CPU_MS_FIELD_NUMBER: _ClassVar[int]
    PEAK_MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    exit_code: int
    signal: int
    stdout: str
    stderr: str
    stdout_truncated: bool
    stderr_truncated: bool
    stop_reason: StopReason
    wall_ms: int
    cpu_ms: int
    peak_memory_bytes: int
    detail: str
    def __init__(self, exit_code: _Optional[int] = ..., signal: _Optional[int] = ..., stdout: _Optional[str] = ..., stderr: _Optional[str] = ..., stdout_truncated: _Optional[bool] = ..., stderr_truncated: _Optional[bool] = ..., stop_reason: _Optional[_Union[StopReason, str]] = ..., wall_ms: _Optional[int] = ..., cpu_ms: _Optional[int] = ..., peak_memory_bytes: _Optional[int] = ..., detail: _Optional[str] = ...) -> None: ...

class ExecuteResponse(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: ExecutionResult
    def __init__(self, result: _Optional[_Union[ExecutionResult, _Mapping]] = ...) -> None: ...

class StreamExecuteRequest(_message.Message):
    __slots__ = ("code", "stdin", "files", "limits")
    CODE_FIELD_NUMBER: _ClassVar[int]
    STDIN_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    code: str
    stdin: bytes
    files: _containers.RepeatedCompositeFieldContainer[InputFile]
    limits: ExecutionLimits
    def __init__(self, code: _Optional[str] = ..., stdin: _Optional[bytes] = ..., files: _Optional[_Iterable[_Union[InputFile, _Mapping]]] = ..., limits: _Optional[_Union[ExecutionLimits, _Mapping]] = ...) -> None: ...

class OutputChunk(_message.Message):
    __slots__ = ("stream", "data")
    STREAM_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    stream: OutputStream
    data: bytes
    def __init__(self, stream: _Optional[_Union[OutputStream, str]] = ..., data: _Optional[bytes] = ...) -> None: ...

class StreamExecuteResponse(_message.Message):
    __slots__ = ("output", "result")
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    output: OutputChunk
    result: ExecutionResult
    def __init__(self, output: _Optional[_Union[OutputChunk, _Mapping]] = ..., result: _Optional[_Union[ExecutionResult, _Mapping]] = ...) -> None: ...
