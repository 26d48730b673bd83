import datetime

from buf.validate import validate_pb2 as _validate_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from ragmesh.common.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Step(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STEP_UNSPECIFIED: _ClassVar[Step]
    STEP_CACHE_LOOKUP: _ClassVar[Step]
    STEP_PLAN: _ClassVar[Step]
    STEP_REWRITE: _ClassVar[Step]
    STEP_RETRIEVE: _ClassVar[Step]
    STEP_TOOL: _ClassVar[Step]
    STEP_RESPOND: _ClassVar[Step]
    STEP_MEMORY: _ClassVar[Step]

class StepStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STEP_STATUS_UNSPECIFIED: _ClassVar[StepStatus]
    STEP_STATUS_STARTED: _ClassVar[StepStatus]
    STEP_STATUS_FINISHED: _ClassVar[StepStatus]
    STEP_STATUS_FAILED: _ClassVar[StepStatus]

class CacheHit(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CACHE_HIT_UNSPECIFIED: _ClassVar[CacheHit]
    CACHE_HIT_NONE: _ClassVar[CacheHit]
    CACHE_HIT_EXACT: _ClassVar[CacheHit]
    CACHE_HIT_SEMANTIC: _ClassVar[CacheHit]

class Rating(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RATING_UNSPECIFIED: _ClassVar[Rating]
    RATING_UP: _ClassVar[Rating]
    RATING_DOWN: _ClassVar[Rating]
STEP_UNSPECIFIED: Step
STEP_CACHE_LOOKUP: Step
STEP_PLAN: Step
STEP_REWRITE: Step
STEP_RETRIEVE: Step
STEP_TOOL: Step
STEP_RESPOND: Step
STEP_MEMORY: Step
STEP_STATUS_UNSPECIFIED: StepStatus
STEP_STATUS_STARTED: StepStatus
STEP_STATUS_FINISHED: StepStatus
STEP_STATUS_FAILED: StepStatus
CACHE_HIT_UNSPECIFIED: CacheHit
CACHE_HIT_NONE: CacheHit
CACHE_HIT_EXACT: CacheHit
CACHE_HIT_SEMANTIC: CacheHit
RATING_UNSPECIFIED: Rating
RATING_UP: Rating
RATING_DOWN: Rating

class ChatOptions(_message.Message):
    __slots__ = ("bypass_cache", "hyde", "top_k")
    BYPASS_CACHE_FIELD_NUMBER: _ClassVar[int]
    HYDE_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    bypass_cache: bool
    hyde: bool
    top_k: int
    def __init__(self, bypass_cache: _Optional[bool] = ..., hyde: _Optional[bool] = ..., top_k: _Optional[int] = ...) -> None: ...

class StreamChatRequest(_message.Message):
    __slots__ = ("message", "session_id", "options")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    message: str
    session_id: str
    options: ChatOptions
    def __init__(self, message: _Optional[str] = ..., session_id: _Optional[str] = ..., options: _Optional[_Union[ChatOptions, _Mapping]] = ...) -> None: ...

class StepEvent(_message.Message):
    __slots__ = ("step", "status", "detail", "duration_ms")
    STEP_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    step: Step
    status: StepStatus
    detail: str
    duration_ms: float
    def __init__(self, step: _Optional[_Union[Step, str]] = ..., status: _Optional[_Union[StepStatus, str]] = ..., detail: _Optional[str] = ..., duration_ms: _Optional[float] = ...) -> None: ...

class TokenDelta(_message.Message):
    __slots__ = ("text",)
    TEXT_FIELD_NUMBER: _ClassVar[int]
    text: str
    def __init__(self, text: _Optional[str] = ...) -> None: ...

class ToolCall(_message.Message):
    __slots__ = ("call_id", "tool", "arguments_json")
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    TOOL_FIELD_NUMBER: _ClassVar[int]
    ARGUMENTS_JSON_FIELD_NUMBER: _ClassVar[int]
    call_id: str
    tool: str
    arguments_json: str
    def __init__(self, call_id: _Optional[str] = ..., tool: _Optional[str] = ..., arguments_json: _Optional[str] = ...) -> None: ...

class ToolResult(_message.Message):
    __slots__ = ("call_id", "tool", "output", "is_error")
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    TOOL_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    IS_ERROR_FIELD_NUMBER: _ClassVar[int]
    call_id: str
    tool: str
    output: str
    is_error: bool
    def __init__(self, call_id: _Optional[str] = ..., tool: _Optional[str] = ..., output: _Optional[str] = ..., is_error: _Optional[bool] = ...) -> None: ...

class Citation(_message.Message):
    __slots__ = ("marker", "chunk_id", "doc_id", "source_uri", "title", "snippet", "score")
    MARKER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_ID_FIELD_NUMBER: _ClassVar[int]
    DOC_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_URI_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    SNIPPET_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    marker: int
    chunk_id: str
    doc_id: str
    source_uri: str
    title: str
    snippet: str
    score: float
    def __init__(self, marker: _Optional[int] = ..., chunk_id: _Optional[str] = ..., doc_id: _Optional[str] = ..., source_uri: _Optional[str] = ..., title: _Optional[str] = ..., snippet: _Optional[str] = ..., score: _Optional[float] = ...) -> None: ...

class CitationsEvent(_message.Message):
    __slots__ = ("citations",)
    CITATIONS_FIELD_NUMBER: _ClassVar[int]
    citations: _containers.RepeatedCompositeFieldContainer[Citation]
    def __init__(self, citations: _Optional[_Iterable[_Union[Citation, _Mapping]]] = ...) -> None: ...

class LatencyBreakdown(_message.Message):
    __slots__ = ("planning_ms", "retrieval_ms", "tools_ms", "time_to_first_token_ms", "total_ms")
    PLANNING_MS_FIELD_NUMBER: _ClassVar[int]
    RETRIEVAL_MS_FIELD_NUMBER: _ClassVar[int]
    TOOLS_MS_FIELD_NUMBER: _ClassVar[int]
    TIME_TO_FIRST_TOKEN_MS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_MS_FIELD_NUMBER: _ClassVar[int]
    planning_ms: float
    retrieval_ms: float
    tools_ms: float
    time_to_first_token_ms: float
    total_ms: float
    def __init__(self, planning_ms: _Optional[float] = ..., retrieval_ms: _Optional[float] = ..., tools_ms: _Optional[float] = ..., time_to_first_token_ms: _Optional[float] = ..., total_ms: _Optional[float] = ...) -> None: ...

class FinalAnswer(_message.Message):
    __slots__ = ("answer", "citations", "usage", "latency", "cache_hit", "answered_from_documents", "rewritten_query", "trace_id")
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    CITATIONS_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    LATENCY_FIELD_NUMBER: _ClassVar[int]
    CACHE_HIT_FIELD_NUMBER: _ClassVar[int]
    ANSWERED_FROM_DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    REWRITTEN_QUERY_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    answer: str
    citations: _containers.RepeatedCompositeFieldContainer[Citation]
    usage: _common_pb2.Usage
    latency: LatencyBreakdown
    cache_hit: CacheHit
    answered_from_documents: bool
    rewritten_query: str
    trace_id: str
    def __init__(self, answer: _Optional[str] = ..., citations: _Optional[_Iterable[_Union[Citation, _Mapping]]] = ..., usage: _Optional[_Union[_common_pb2.Usage, _Mapping]] = ..., latency: _Optional[_Union[LatencyBreakdown, _Mapping]] = ..., cache_hit: _Optional[_Union[CacheHit, str]] = ..., answered_from_documents: _Optional[bool] = ..., rewritten_query: _Optional[str] = ..., trace_id: _Optional[str] = ...) -> None: ...

class StreamChatResponse(_message.Message):
    __slots__ = ("session_id", "message_id", "sequence", "step", "token", "tool_call", "tool_result", "citations", "final")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOOL_CALL_FIELD_NUMBER: _ClassVar[int]
    TOOL_RESULT_FIELD_NUMBER: _ClassVar[int]
    CITATIONS_FIELD_NUMBER: _ClassVar[int]
    FINAL_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    message_id: str
    sequence: int
    step: StepEvent
    token: TokenDelta
    tool_call: ToolCall
    tool_result: ToolResult
    citations: CitationsEvent
    final: FinalAnswer
    def __init__(self, session_id: _Optional[str] = ..., message_id: _Optional[str] = ..., sequence: _Optional[int] = ..., step: _Optional[_Union[StepEvent, _Mapping]] = ..., token: _Optional[_Union[TokenDelta, _Mapping]] = ..., tool_call: _Optional[_Union[ToolCall, _Mapping]] = ..., tool_result: _Optional[_Union[ToolResult, _Mapping]] = ..., citations: _Optional[_Union[CitationsEvent, _Mapping]] = ..., final: _Optional[_Union[FinalAnswer, _Mapping]] = ...) -> None: ...

class SessionMessage(_message.Message):
    __slots__ = ("message_id", "role", "content", "citations", "create_time", "rating", "rating_comment")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    CITATIONS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    RATING_FIELD_NUMBER: _ClassVar[int]
    RATING_COMMENT_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    role: str
    content: str
    citations: _containers.RepeatedCompositeFieldContainer[Citation]
    create_time: _timestamp_pb2.Timestamp
    rating: Rating
    rating_comment: str
    def __init__(self, message_id: _Optional[str] = ..., role: _Optional[str] = ..., content: _Optional[str] = ..., citations: _Optional[_Iterable[_Union[Citation, _Mapping]]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., rating: _Optional[_Union[Rating, str]] = ..., rating_comment: _Optional[str] = ...) -> None: ...

class Session(_message.Message):
    __slots__ = ("session_id", "title", "create_time", "update_time", "message_count", "messages")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_COUNT_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    title: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    message_count: int
    messages: _containers.RepeatedCompositeFieldContainer[SessionMessage]
    def __init__(self, session_id: _Optional[str] = ..., title: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., message_count: _Optional[int] = ..., messages: _Optional[_Iterable[_Union[SessionMessage, _Mapping]]] = ...) -> None: ...

class GetSessionRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ...) -> None: ...

class GetSessionResponse(_message.Message):
    __slots__ = ("session",)
    SESSION_FIELD_NUMBER: _ClassVar[int]
    session: Session
    def __init__(self, session: _Optional[_Union[Session, _Mapping]] = ...) -> None: ...

class ListSessionsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListSessionsResponse(_message.Message):
    __slots__ = ("sessions", "next_page_token")
    SESSIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    sessions: _containers.RepeatedCompositeFieldContainer[Session]
    next_page_token: str
    def __init__(self, sessions: _Optional[_Iterable[_Union[Session, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteSessionRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ...) -> None: ...

class DeleteSessionResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SubmitFeedbackRequest(_message.Message):
    __slots__ = ("session_id", "message_id", "rating", "comment")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    RATING_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    message_id: str
    rating: Rating
    comment: str
    def __init__(self, session_id: _Optional[str] = ..., message_id: _Optional[str] = ..., rating: _Optional[_Union[Rating, str]] = ..., comment: _Optional[str] = ...) -> None: ...

class SubmitFeedbackResponse(_message.Message):
    __slots__ = ("feedback_id",)
    FEEDBACK_ID_FIELD_NUMBER: _ClassVar[int]
    feedback_id: str
    def __init__(self, feedback_id: _Optional[str] = ...) -> None: ...
