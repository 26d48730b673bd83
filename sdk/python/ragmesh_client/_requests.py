"""Requests built from the keyword arguments of the SDK's calls (shared by both clients)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from ragmesh_client._proto.ragmesh.agent import v1 as agent
from ragmesh_client._proto.ragmesh.common import v1 as common
from ragmesh_client._proto.ragmesh.ingest import v1 as ingest
from ragmesh_client._proto.ragmesh.retrieval import v1 as retrieval
from ragmesh_client._proto.ragmesh.sandbox import v1 as sandbox

STREAM_CHAT = "/ragmesh.agent.v1.AgentService/StreamChat"
GET_SESSION = "/ragmesh.agent.v1.AgentService/GetSession"
LIST_SESSIONS = "/ragmesh.agent.v1.AgentService/ListSessions"
DELETE_SESSION = "/ragmesh.agent.v1.AgentService/DeleteSession"
SUBMIT_FEEDBACK = "/ragmesh.agent.v1.AgentService/SubmitFeedback"
SEARCH = "/ragmesh.retrieval.v1.RetrievalService/Search"
GET_CHUNK = "/ragmesh.retrieval.v1.RetrievalService/GetChunk"
CREATE_INGEST_JOB = "/ragmesh.ingest.v1.IngestService/CreateIngestJob"
STREAM_INGEST_JOB = "/ragmesh.ingest.v1.IngestService/StreamIngestJob"
CANCEL_INGEST_JOB = "/ragmesh.ingest.v1.IngestService/CancelIngestJob"
LIST_DOCUMENTS = "/ragmesh.ingest.v1.IngestService/ListDocuments"
DELETE_DOCUMENT = "/ragmesh.ingest.v1.IngestService/DeleteDocument"
EXECUTE = "/ragmesh.sandbox.v1.SandboxService/Execute"
STREAM_EXECUTE = "/ragmesh.sandbox.v1.SandboxService/StreamExecute"

Rating = agent.Rating | str
"""``agent.Rating.UP`` / ``DOWN``, or "up" / "down"."""

Leg = common.RetrievalLeg | str
"""``common.RetrievalLeg.DENSE`` ..., or "dense" / "sparse" / "graph"."""


def chat(question: str, *, session_id: str, top_k: int, bypass_cache: bool, hyde: bool) -> agent.StreamChatRequest:
    return agent.StreamChatRequest(
        message=question,
        session_id=session_id,
        options=agent.ChatOptions(bypass_cache=bypass_cache, hyde=hyde, top_k=top_k),
    )


def _leg(leg: Leg) -> common.RetrievalLeg:
    return leg if isinstance(leg, common.RetrievalLeg) else common.RetrievalLeg[leg.upper()]


def search(
    query: str,
    *,
    top_k: int,
    legs: Iterable[Leg],
    skip_rerank: bool,
    filter: retrieval.SearchFilter | None,
) -> retrieval.SearchRequest:
    return retrieval.SearchRequest(
        query=query, top_k=top_k, legs=[_leg(leg) for leg in legs], filter=filter, skip_rerank=skip_rerank
    )


def _source(text: str) -> str:
    """Local paths become absolute: the service does not share the caller's working directory."""
    if "://" in text:
        return text
    return str(Path(text).expanduser().resolve())


def create_ingest_job(
    sources: Iterable[str | Path],
    *,
    chunk_size_tokens: int,
    chunk_overlap_tokens: int,
    skip_graph: bool,
    sync: bool,
) -> ingest.CreateIngestJobRequest:
    return ingest.CreateIngestJobRequest(
        sources=[_source(str(s)) for s in sources],
        options=ingest.IngestOptions(
            chunk_size_tokens=chunk_size_tokens,
            chunk_overlap_tokens=chunk_overlap_tokens,
            skip_graph=skip_graph,
            sync=sync,
        ),
    )


def feedback(session_id: str, message_id: str, rating: Rating, comment: str) -> agent.SubmitFeedbackRequest:
    value = rating if isinstance(rating, agent.Rating) else agent.Rating[rating.upper()]
    return agent.SubmitFeedbackRequest(session_id=session_id, message_id=message_id, rating=value, comment=comment)


def execute(
    code: str,
    *,
    stdin: bytes,
    files: Mapping[str, bytes] | None,
    limits: sandbox.ExecutionLimits | None,
) -> sandbox.ExecuteRequest:
    return sandbox.ExecuteRequest(
        code=code,
        stdin=stdin,
        files=[sandbox.InputFile(name=name, content=content) for name, content in (files or {}).items()],
        limits=limits,
    )


def stream_execute(
    code: str,
    *,
    stdin: bytes,
    files: Mapping[str, bytes] | None,
    limits: sandbox.ExecutionLimits | None,
) -> sandbox.StreamExecuteRequest:
    return sandbox.StreamExecuteRequest(
        code=code,
        stdin=stdin,
        files=[sandbox.InputFile(name=name, content=content) for name, content in (files or {}).items()],
        limits=limits,
    )
