import datetime

from buf.validate import validate_pb2 as _validate_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from ragmesh.common.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SearchFilter(_message.Message):
    __slots__ = ("source_prefix", "document_types", "ingested_after", "doc_ids")
    SOURCE_PREFIX_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_TYPES_FIELD_NUMBER: _ClassVar[int]
    INGESTED_AFTER_FIELD_NUMBER: _ClassVar[int]
    DOC_IDS_FIELD_NUMBER: _ClassVar[int]
    source_prefix: str
    document_types: _containers.RepeatedScalarFieldContainer[str]
    ingested_after: _timestamp_pb2.Timestamp
    doc_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, source_prefix: _Optional[str] = ..., document_types: _Optional[_Iterable[str]] = ..., ingested_after: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., doc_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class SearchRequest(_message.Message):
    __slots__ = ("query", "top_k", "legs", "filter", "skip_rerank")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    LEGS_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    SKIP_RERANK_FIELD_NUMBER: _ClassVar[int]
    query: str
    top_k: int
    legs: _containers.RepeatedScalarFieldContainer[_common_pb2.RetrievalLeg]
    filter: SearchFilter
    skip_rerank: bool
    def __init__(self, query: _Optional[str] = ..., top_k: _Optional[int] = ..., legs: _Optional[_Iterable[_Union[_common_pb2.RetrievalLeg, str]]] = ..., filter: _Optional[_Union[SearchFilter, _Mapping]] = ..., skip_rerank: _Optional[bool] = ...) -> None: ...

class LegScore(_message.Message):
    __slots__ = ("leg", "rank", "score")
    LEG_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    leg: _common_pb2.RetrievalLeg
    rank: int
    score: float
    def __init__(self, leg: _Optional[_Union[_common_pb2.RetrievalLeg, str]] = ..., rank: _Optional[int] = ..., score: _Optional[float] = ...) -> None: ...

class SearchHit(_message.Message):
    __slots__ = ("chunk", "fused_score", "rerank_score", "leg_scores")
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    FUSED_SCORE_FIELD_NUMBER: _ClassVar[int]
    RERANK_SCORE_FIELD_NUMBER: _ClassVar[int]
    LEG_SCORES_FIELD_NUMBER: _ClassVar[int]
    chunk: _common_pb2.Chunk
    fused_score: float
    rerank_score: float
    leg_scores: _containers.RepeatedCompositeFieldContainer[LegScore]
    def __init__(self, chunk: _Optional[_Union[_common_pb2.Chunk, _Mapping]] = ..., fused_score: _Optional[float] = ..., rerank_score: _Optional[float] = ..., leg_scores: _Optional[_Iterable[_Union[LegScore, _Mapping]]] = ...) -> None: ...

class SearchTimings(_message.Message):
    __slots__ = ("embed_ms", "vector_ms", "graph_ms", "rerank_ms", "total_ms")
    EMBED_MS_FIELD_NUMBER: _ClassVar[int]
    VECTOR_MS_FIELD_NUMBER: _ClassVar[int]
    GRAPH_MS_FIELD_NUMBER: _ClassVar[int]
    RERANK_MS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_MS_FIELD_NUMBER: _ClassVar[int]
    embed_ms: float
    vector_ms: float
    graph_ms: float
    rerank_ms: float
    total_ms: float
    def __init__(self, embed_ms: _Optional[float] = ..., vector_ms: _Optional[float] = ..., graph_ms: _Optional[float] = ..., rerank_ms: _Optional[float] = ..., total_ms: _Optional[float] = ...) -> None: ...

class SearchResponse(_message.Message):
    __slots__ = ("hits", "degraded_legs", "timings", "corpus_version")
    HITS_FIELD_NUMBER: _ClassVar[int]
    DEGRADED_LEGS_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    CORPUS_VERSION_FIELD_NUMBER: _ClassVar[int]
    hits: _containers.RepeatedCompositeFieldContainer[SearchHit]
    degraded_legs: _containers.RepeatedScalarFieldContainer[_common_pb2.RetrievalLeg]
    timings: SearchTimings
    corpus_version: int
    def __init__(self, hits: _Optional[_Iterable[_Union[SearchHit, _Mapping]]] = ..., degraded_legs: _Optional[_Iterable[_Union[_common_pb2.RetrievalLeg, str]]] = ..., timings: _Optional[_Union[SearchTimings, _Mapping]] = ..., corpus_version: _Optional[int] = ...) -> None: ...

class GetChunkRequest(_message.Message):
    __slots__ = ("chunk_id",)
    CHUNK_ID_FIELD_NUMBER: _ClassVar[int]
    chunk_id: str
    def __init__(self, chunk_id: _Optional[str] = ...) -> None: ...

class GetChunkResponse(_message.Message):
    __slots__ = ("chunk",)
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    chunk: _common_pb2.Chunk
    def __init__(self, chunk: _Optional[_Union[_common_pb2.Chunk, _Mapping]] = ...) -> None: ...

class ExploreGraphRequest(_message.Message):
    __slots__ = ("entity", "depth", "max_nodes")
    ENTITY_FIELD_NUMBER: _ClassVar[int]
    DEPTH_FIELD_NUMBER: _ClassVar[int]
    MAX_NODES_FIELD_NUMBER: _ClassVar[int]
    entity: str
    depth: int
    max_nodes: int
    def __init__(self, entity: _Optional[str] = ..., depth: _Optional[int] = ..., max_nodes: _Optional[int] = ...) -> None: ...

class GraphNode(_message.Message):
    __slots__ = ("node_id", "kind", "label", "name", "source_uri")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SOURCE_URI_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    kind: str
    label: str
    name: str
    source_uri: str
    def __init__(self, node_id: _Optional[str] = ..., kind: _Optional[str] = ..., label: _Optional[str] = ..., name: _Optional[str] = ..., source_uri: _Optional[str] = ...) -> None: ...

class GraphEdge(_message.Message):
    __slots__ = ("source_id", "target_id", "type")
    SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    TARGET_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    source_id: str
    target_id: str
    type: str
    def __init__(self, source_id: _Optional[str] = ..., target_id: _Optional[str] = ..., type: _Optional[str] = ...) -> None: ...

class ExploreGraphResponse(_message.Message):
    __slots__ = ("nodes", "edges", "truncated")
    NODES_FIELD_NUMBER: _ClassVar[int]
    EDGES_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    nodes: _containers.RepeatedCompositeFieldContainer[GraphNode]
    edges: _containers.RepeatedCompositeFieldContainer[GraphEdge]
    truncated: bool
    def __init__(self, nodes: _Optional[_Iterable[_Union[GraphNode, _Mapping]]] = ..., edges: _Optional[_Iterable[_Union[GraphEdge, _Mapping]]] = ..., truncated: _Optional[bool] = ...) -> None: ...
