import datetime

from buf.validate import validate_pb2 as _validate_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class JobState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATE_UNSPECIFIED: _ClassVar[JobState]
    JOB_STATE_QUEUED: _ClassVar[JobState]
    JOB_STATE_RUNNING: _ClassVar[JobState]
    JOB_STATE_SUCCEEDED: _ClassVar[JobState]
    JOB_STATE_PARTIAL_SUCCESS: _ClassVar[JobState]
    JOB_STATE_FAILED: _ClassVar[JobState]
    JOB_STATE_CANCELLED: _ClassVar[JobState]

class IngestEventType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INGEST_EVENT_TYPE_UNSPECIFIED: _ClassVar[IngestEventType]
    INGEST_EVENT_TYPE_PROGRESS: _ClassVar[IngestEventType]
    INGEST_EVENT_TYPE_FILE_FAILED: _ClassVar[IngestEventType]
    INGEST_EVENT_TYPE_FINISHED: _ClassVar[IngestEventType]

class DocumentStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DOCUMENT_STATUS_UNSPECIFIED: _ClassVar[DocumentStatus]
    DOCUMENT_STATUS_INDEXED: _ClassVar[DocumentStatus]
    DOCUMENT_STATUS_PENDING: _ClassVar[DocumentStatus]
    DOCUMENT_STATUS_FAILED: _ClassVar[DocumentStatus]
JOB_STATE_UNSPECIFIED: JobState
JOB_STATE_QUEUED: JobState
JOB_STATE_RUNNING: JobState
JOB_STATE_SUCCEEDED: JobState
JOB_STATE_PARTIAL_SUCCESS: JobState
JOB_STATE_FAILED: JobState
JOB_STATE_CANCELLED: JobState
INGEST_EVENT_TYPE_UNSPECIFIED: IngestEventType
INGEST_EVENT_TYPE_PROGRESS: IngestEventType
INGEST_EVENT_TYPE_FILE_FAILED: IngestEventType
INGEST_EVENT_TYPE_FINISHED: IngestEventType
DOCUMENT_STATUS_UNSPECIFIED: DocumentStatus
DOCUMENT_STATUS_INDEXED: DocumentStatus
DOCUMENT_STATUS_PENDING: DocumentStatus
DOCUMENT_STATUS_FAILED: DocumentStatus

class IngestOptions(_message.Message):
    __slots__ = ("chunk_size_tokens", "chunk_overlap_tokens", "skip_graph", "sync")
    CHUNK_SIZE_TOKENS_FIELD_NUMBER: _ClassVar[int]
    CHUNK_OVERLAP_TOKENS_FIELD_NUMBER: _ClassVar[int]
    SKIP_GRAPH_FIELD_NUMBER: _ClassVar[int]
    SYNC_FIELD_NUMBER: _ClassVar[int]
    chunk_size_tokens: int
    chunk_overlap_tokens: int
    skip_graph: bool
    sync: bool
    def __init__(self, chunk_size_tokens: _Optional[int] = ..., chunk_overlap_tokens: _Optional[int] = ..., skip_graph: _Optional[bool] = ..., sync: _Optional[bool] = ...) -> None: ...

class CreateIngestJobRequest(_message.Message):
    __slots__ = ("sources", "options")
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    sources: _containers.RepeatedScalarFieldContainer[str]
    options: IngestOptions
    def __init__(self, sources: _Optional[_Iterable[str]] = ..., options: _Optional[_Union[IngestOptions, _Mapping]] = ...) -> None: ...

class CreateIngestJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: IngestJob
    def __init__(self, job: _Optional[_Union[IngestJob, _Mapping]] = ...) -> None: ...

class FormatCount(_message.Message):
    __slots__ = ("format", "files", "failed")
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    format: str
    files: int
    failed: int
    def __init__(self, format: _Optional[str] = ..., files: _Optional[int] = ..., failed: _Optional[int] = ...) -> None: ...

class JobCounts(_message.Message):
    __slots__ = ("files_discovered", "files_processed", "documents_ingested", "documents_unchanged", "documents_failed", "documents_deleted", "chunks_embedded", "points_written", "nodes_written", "formats", "placement")
    FILES_DISCOVERED_FIELD_NUMBER: _ClassVar[int]
    FILES_PROCESSED_FIELD_NUMBER: _ClassVar[int]
    DOCUMENTS_INGESTED_FIELD_NUMBER: _ClassVar[int]
    DOCUMENTS_UNCHANGED_FIELD_NUMBER: _ClassVar[int]
    DOCUMENTS_FAILED_FIELD_NUMBER: _ClassVar[int]
    DOCUMENTS_DELETED_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_EMBEDDED_FIELD_NUMBER: _ClassVar[int]
    POINTS_WRITTEN_FIELD_NUMBER: _ClassVar[int]
    NODES_WRITTEN_FIELD_NUMBER: _ClassVar[int]
    FORMATS_FIELD_NUMBER: _ClassVar[int]
    PLACEMENT_FIELD_NUMBER: _ClassVar[int]
    files_discovered: int
    files_processed: int
    documents_ingested: int
    documents_unchanged: int
    documents_failed: int
    documents_deleted: int
    chunks_embedded: int
    points_written: int
    nodes_written: int
    formats: _containers.RepeatedCompositeFieldContainer[FormatCount]
    placement: _containers.RepeatedCompositeFieldContainer[NodeWork]
    def __init__(self, files_discovered: _Optional[int] = ..., files_processed: _Optional[int] = ..., documents_ingested: _Optional[int] = ..., documents_unchanged: _Optional[int] = ..., documents_failed: _Optional[int] = ..., documents_deleted: _Optional[int] = ..., chunks_embedded: _Optional[int] = ..., points_written: _Optional[int] = ..., nodes_written: _Optional[int] = ..., formats: _Optional[_Iterable[_Union[FormatCount, _Mapping]]] = ..., placement: _Optional[_Iterable[_Union[NodeWork, _Mapping]]] = ...) -> None: ...

class NodeWork(_message.Message):
    __slots__ = ("stage", "node_id", "node_name", "node_group", "items")
    STAGE_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    NODE_NAME_FIELD_NUMBER: _ClassVar[int]
    NODE_GROUP_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    stage: str
    node_id: str
    node_name: str
    node_group: str
    items: int
    def __init__(self, stage: _Optional[str] = ..., node_id: _Optional[str] = ..., node_name: _Optional[str] = ..., node_group: _Optional[str] = ..., items: _Optional[int] = ...) -> None: ...

class FileError(_message.Message):
    __slots__ = ("path", "reason", "code")
    PATH_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    path: str
    reason: str
    code: str
    def __init__(self, path: _Optional[str] = ..., reason: _Optional[str] = ..., code: _Optional[str] = ...) -> None: ...

class IngestJob(_message.Message):
    __slots__ = ("job_id", "state", "sources", "options", "counts", "errors", "create_time", "start_time", "end_time", "failure")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    state: JobState
    sources: _containers.RepeatedScalarFieldContainer[str]
    options: IngestOptions
    counts: JobCounts
    errors: _containers.RepeatedCompositeFieldContainer[FileError]
    create_time: _timestamp_pb2.Timestamp
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    failure: str
    def __init__(self, job_id: _Optional[str] = ..., state: _Optional[_Union[JobState, str]] = ..., sources: _Optional[_Iterable[str]] = ..., options: _Optional[_Union[IngestOptions, _Mapping]] = ..., counts: _Optional[_Union[JobCounts, _Mapping]] = ..., errors: _Optional[_Iterable[_Union[FileError, _Mapping]]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., failure: _Optional[str] = ...) -> None: ...

class StreamIngestJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class StreamIngestJobResponse(_message.Message):
    __slots__ = ("type", "job", "error", "files_per_second", "chunks_per_second", "eta_seconds")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    FILES_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    ETA_SECONDS_FIELD_NUMBER: _ClassVar[int]
    type: IngestEventType
    job: IngestJob
    error: FileError
    files_per_second: float
    chunks_per_second: float
    eta_seconds: float
    def __init__(self, type: _Optional[_Union[IngestEventType, str]] = ..., job: _Optional[_Union[IngestJob, _Mapping]] = ..., error: _Optional[_Union[FileError, _Mapping]] = ..., files_per_second: _Optional[float] = ..., chunks_per_second: _Optional[float] = ..., eta_seconds: _Optional[float] = ...) -> None: ...

class GetIngestJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class GetIngestJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: IngestJob
    def __init__(self, job: _Optional[_Union[IngestJob, _Mapping]] = ...) -> None: ...

class CancelIngestJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class CancelIngestJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: IngestJob
    def __init__(self, job: _Optional[_Union[IngestJob, _Mapping]] = ...) -> None: ...

class DocumentInfo(_message.Message):
    __slots__ = ("doc_id", "source_uri", "title", "document_type", "content_hash", "doc_version", "chunk_count", "status", "update_time")
    DOC_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_URI_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_HASH_FIELD_NUMBER: _ClassVar[int]
    DOC_VERSION_FIELD_NUMBER: _ClassVar[int]
    CHUNK_COUNT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    doc_id: str
    source_uri: str
    title: str
    document_type: str
    content_hash: str
    doc_version: int
    chunk_count: int
    status: DocumentStatus
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, doc_id: _Optional[str] = ..., source_uri: _Optional[str] = ..., title: _Optional[str] = ..., document_type: _Optional[str] = ..., content_hash: _Optional[str] = ..., doc_version: _Optional[int] = ..., chunk_count: _Optional[int] = ..., status: _Optional[_Union[DocumentStatus, str]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListDocumentsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "source_prefix")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    SOURCE_PREFIX_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    source_prefix: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., source_prefix: _Optional[str] = ...) -> None: ...

class ListDocumentsResponse(_message.Message):
    __slots__ = ("documents", "next_page_token")
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    documents: _containers.RepeatedCompositeFieldContainer[DocumentInfo]
    next_page_token: str
    def __init__(self, documents: _Optional[_Iterable[_Union[DocumentInfo, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteDocumentRequest(_message.Message):
    __slots__ = ("doc_id",)
    DOC_ID_FIELD_NUMBER: _ClassVar[int]
    doc_id: str
    def __init__(self, doc_id: _Optional[str] = ...) -> None: ...

class DeleteDocumentResponse(_message.Message):
    __slots__ = ("points_deleted", "nodes_deleted")
    POINTS_DELETED_FIELD_NUMBER: _ClassVar[int]
    NODES_DELETED_FIELD_NUMBER: _ClassVar[int]
    points_deleted: int
    nodes_deleted: int
    def __init__(self, points_deleted: _Optional[int] = ..., nodes_deleted: _Optional[int] = ...) -> None: ...

class UploadDocumentsRequest(_message.Message):
    __slots__ = ("filename", "data", "options")
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    filename: str
    data: bytes
    options: IngestOptions
    def __init__(self, filename: _Optional[str] = ..., data: _Optional[bytes] = ..., options: _Optional[_Union[IngestOptions, _Mapping]] = ...) -> None: ...

class UploadDocumentsResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: IngestJob
    def __init__(self, job: _Optional[_Union[IngestJob, _Mapping]] = ...) -> None: ...
