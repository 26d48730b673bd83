"""The asynchronous client: the generated betterproto2 stubs over a grpclib channel.

Each call takes its deadline and retry policy from the bundled service config
(``timeout_s=`` overrides the deadline), carries ``authorization: Bearer`` from
the token or token hook, retries UNAVAILABLE only (a stream only before its
first message), and raises the typed exceptions of ``ragmesh_client.errors``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import grpclib.client
import grpclib.exceptions
from grpclib.const import Status
from grpclib.encoding.base import StatusDetailsCodecBase
from grpclib.metadata import Deadline

from ragmesh_client import _requests, events
from ragmesh_client._credentials import Credential, TokenSource
from ragmesh_client._proto.ragmesh.agent import v1 as agent
from ragmesh_client._proto.ragmesh.common import v1 as common
from ragmesh_client._proto.ragmesh.ingest import v1 as ingest_v1
from ragmesh_client._proto.ragmesh.retrieval import v1 as retrieval
from ragmesh_client._proto.ragmesh.sandbox import v1 as sandbox
from ragmesh_client._retry import Attempts
from ragmesh_client.errors import (
    DeadlineExceeded,
    ErrorDetails,
    RagmeshError,
    Unavailable,
    decode_details,
    error_for,
)
from ragmesh_client.policy import for_method

T = TypeVar("T")
DEFAULT_EDGE = "localhost:8080"


class _DetailsCodec(StatusDetailsCodecBase):
    """Hands grpclib's errors the decoded ``google.rpc.Status`` details."""

    def encode(self, status: Status, message: str | None, details: Any) -> bytes:
        raise NotImplementedError("the SDK never sends status details")

    def decode(self, status: Status, message: str | None, data: bytes) -> ErrorDetails:
        return decode_details(data)


def _split(edge: str) -> tuple[str, int]:
    host, sep, port = edge.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"edge must be host:port, not {edge!r}")
    return host.strip("[]") or "localhost", int(port)


def translate(exc: BaseException) -> RagmeshError | None:
    """The typed error for what grpclib raised, or None when it is not a call failure."""
    if isinstance(exc, RagmeshError):
        return exc
    if isinstance(exc, grpclib.exceptions.GRPCError):
        details = exc.details if isinstance(exc.details, ErrorDetails) else None
        return error_for(exc.status.value, exc.message or exc.status.name, details)
    # asyncio.TimeoutError is an OSError too: the deadline check comes first.
    if isinstance(exc, asyncio.TimeoutError):
        return DeadlineExceeded("the call's deadline passed")
    if isinstance(exc, grpclib.exceptions.StreamTerminatedError | grpclib.exceptions.ProtocolError | OSError):
        return Unavailable(f"connection failed: {exc}")
    return None


class AsyncClient:
    """An asynchronous ragmesh client for the Envoy edge (or one service's address).

    ``token`` is a bearer token or a callable returning one, asked before every
    attempt (a refresh hook); ``timeout_s`` and ``max_attempts`` override every
    method's deadline and retry attempts from the service config.
    """

    def __init__(
        self,
        edge: str = DEFAULT_EDGE,
        token: TokenSource | None = None,
        *,
        timeout_s: float | None = None,
        max_attempts: int | None = None,
        secure: bool = False,
    ) -> None:
        host, port = _split(edge)
        self._channel = grpclib.client.Channel(host, port, ssl=secure or None, status_details_codec=_DetailsCodec())
        self._credential = Credential(token)
        self._timeout_s = timeout_s
        self._max_attempts = max_attempts
        self.agent = agent.AgentServiceStub(self._channel)
        self.retrieval = retrieval.RetrievalServiceStub(self._channel)
        self.ingest_service = ingest_v1.IngestServiceStub(self._channel)
        self.sandbox_service = sandbox.SandboxServiceStub(self._channel)
        self.sessions = AsyncSessions(self)
        self.documents = AsyncDocuments(self)
        self.sandbox = AsyncSandbox(self)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    # -- the calls ----------------------------------------------------------

    async def ask(
        self,
        question: str,
        *,
        session_id: str = "",
        top_k: int = 0,
        bypass_cache: bool = False,
        hyde: bool = False,
        timeout_s: float | None = None,
    ) -> AsyncIterator[events.ChatEvent]:
        """Asks the agent; yields its steps, tokens, tool calls and results, citations, then ``events.Final``."""
        request = _requests.chat(question, session_id=session_id, top_k=top_k, bypass_cache=bypass_cache, hyde=hyde)
        async for message in self._stream(
            _requests.STREAM_CHAT, lambda **kw: self.agent.stream_chat(request, **kw), timeout_s
        ):
            event = events.from_message(message)
            if event is not None:
                yield event

    async def search(
        self,
        query: str,
        *,
        top_k: int = 0,
        legs: Iterable[_requests.Leg] = (),
        skip_rerank: bool = False,
        filter: retrieval.SearchFilter | None = None,
        timeout_s: float | None = None,
    ) -> retrieval.SearchResponse:
        """Hybrid search (all legs unless ``legs`` names some), fused and reranked."""
        request = _requests.search(query, top_k=top_k, legs=legs, skip_rerank=skip_rerank, filter=filter)
        return await self._unary(_requests.SEARCH, lambda **kw: self.retrieval.search(request, **kw), timeout_s)

    async def get_chunk(self, chunk_id: str, *, timeout_s: float | None = None) -> common.Chunk:
        """One chunk of the tenant's index by id (a citation's ``chunk_id``), with its full text."""
        request = retrieval.GetChunkRequest(chunk_id=chunk_id)
        response = await self._unary(
            _requests.GET_CHUNK, lambda **kw: self.retrieval.get_chunk(request, **kw), timeout_s
        )
        assert response.chunk is not None
        return response.chunk

    async def create_ingest_job(
        self,
        sources: Iterable[str | Path],
        *,
        chunk_size_tokens: int = 0,
        chunk_overlap_tokens: int = 0,
        skip_graph: bool = False,
        sync: bool = False,
        timeout_s: float | None = None,
    ) -> ingest_v1.IngestJob:
        """Starts an ingest job and returns it at once (``follow_job`` follows it, ``cancel_job`` stops it)."""
        request = _requests.create_ingest_job(
            sources,
            chunk_size_tokens=chunk_size_tokens,
            chunk_overlap_tokens=chunk_overlap_tokens,
            skip_graph=skip_graph,
            sync=sync,
        )
        created = await self._unary(
            _requests.CREATE_INGEST_JOB, lambda **kw: self.ingest_service.create_ingest_job(request, **kw), timeout_s
        )
        assert created.job is not None
        return created.job

    async def ingest(
        self,
        sources: Iterable[str | Path],
        *,
        chunk_size_tokens: int = 0,
        chunk_overlap_tokens: int = 0,
        skip_graph: bool = False,
        sync: bool = False,
        timeout_s: float | None = None,
    ) -> AsyncIterator[ingest_v1.StreamIngestJobResponse]:
        """Starts an ingest job and yields its progress events until it ends (the last is FINISHED)."""
        job = await self.create_ingest_job(
            sources,
            chunk_size_tokens=chunk_size_tokens,
            chunk_overlap_tokens=chunk_overlap_tokens,
            skip_graph=skip_graph,
            sync=sync,
        )
        async for event in self.follow_job(job.job_id, timeout_s=timeout_s):
            yield event

    async def follow_job(
        self, job_id: str, *, timeout_s: float | None = None
    ) -> AsyncIterator[ingest_v1.StreamIngestJobResponse]:
        """Yields an ingest job's progress events until it ends (a finished job: one FINISHED snapshot)."""
        request = ingest_v1.StreamIngestJobRequest(job_id=job_id)
        async for event in self._stream(
            _requests.STREAM_INGEST_JOB, lambda **kw: self.ingest_service.stream_ingest_job(request, **kw), timeout_s
        ):
            yield event

    async def cancel_job(self, job_id: str, *, timeout_s: float | None = None) -> ingest_v1.IngestJob:
        """Asks the service to stop an ingest job; returns the job as it stands (its state says when it stopped)."""
        request = ingest_v1.CancelIngestJobRequest(job_id=job_id)
        response = await self._unary(
            _requests.CANCEL_INGEST_JOB, lambda **kw: self.ingest_service.cancel_ingest_job(request, **kw), timeout_s
        )
        assert response.job is not None
        return response.job

    async def feedback(
        self,
        session_id: str,
        message_id: str,
        rating: _requests.Rating,
        comment: str = "",
        *,
        timeout_s: float | None = None,
    ) -> str:
        """Records a thumbs up or down on one answer; returns the feedback id."""
        request = _requests.feedback(session_id, message_id, rating, comment)
        response = await self._unary(
            _requests.SUBMIT_FEEDBACK, lambda **kw: self.agent.submit_feedback(request, **kw), timeout_s
        )
        return response.feedback_id

    # -- the machinery ------------------------------------------------------

    def _attempts(self, route: str, timeout_s: float | None) -> tuple[Attempts, Deadline]:
        policy = for_method(
            route,
            timeout_s=timeout_s if timeout_s is not None else self._timeout_s,
            max_attempts=self._max_attempts,
        )
        # One deadline for the whole call, retries included.
        return Attempts(policy, self._credential.refreshable), Deadline.from_timeout(policy.timeout_s)

    async def _unary(self, route: str, call: Callable[..., Awaitable[T]], timeout_s: float | None) -> T:
        attempts, deadline = self._attempts(route, timeout_s)
        while True:
            token = self._credential.token()
            try:
                return await call(metadata=self._credential.metadata(token), deadline=deadline)
            except Exception as exc:
                error = translate(exc)
                if error is None:
                    raise
                exc_cause: BaseException = exc
            await self._wait_or_raise(attempts, error, exc_cause, token, received=False, deadline=deadline)

    async def _stream(
        self, route: str, call: Callable[..., AsyncIterator[T]], timeout_s: float | None
    ) -> AsyncIterator[T]:
        attempts, deadline = self._attempts(route, timeout_s)
        while True:
            token = self._credential.token()
            received = False
            try:
                async for message in call(metadata=self._credential.metadata(token), deadline=deadline):
                    received = True
                    yield message
                return
            except Exception as exc:
                error = translate(exc)
                if error is None:
                    raise
                exc_cause: BaseException = exc
            await self._wait_or_raise(attempts, error, exc_cause, token, received=received, deadline=deadline)

    async def _wait_or_raise(
        self,
        attempts: Attempts,
        error: RagmeshError,
        cause: BaseException,
        token: str,
        *,
        received: bool,
        deadline: Deadline,
    ) -> None:
        new_token = self._credential.token() if attempts.refreshable else token
        delay = attempts.next_delay_s(error, sent_token=token, new_token=new_token, received=received)
        if delay is None or delay >= deadline.time_remaining():
            raise error from (None if error is cause else cause)
        await asyncio.sleep(delay)


class AsyncSessions:
    """``client.sessions``: the caller's chat sessions."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def list(
        self, *, page_size: int = 0, page_token: str = "", timeout_s: float | None = None
    ) -> agent.ListSessionsResponse:
        """One page of the caller's sessions, newest first (``next_page_token`` for the next)."""
        request = agent.ListSessionsRequest(page_size=page_size, page_token=page_token)
        c = self._client
        return await c._unary(_requests.LIST_SESSIONS, lambda **kw: c.agent.list_sessions(request, **kw), timeout_s)

    async def get(self, session_id: str, *, timeout_s: float | None = None) -> agent.Session:
        """One session with its messages."""
        request = agent.GetSessionRequest(session_id=session_id)
        c = self._client
        response = await c._unary(_requests.GET_SESSION, lambda **kw: c.agent.get_session(request, **kw), timeout_s)
        assert response.session is not None
        return response.session

    async def delete(self, session_id: str, *, timeout_s: float | None = None) -> None:
        """Deletes a session and its messages."""
        request = agent.DeleteSessionRequest(session_id=session_id)
        c = self._client
        await c._unary(_requests.DELETE_SESSION, lambda **kw: c.agent.delete_session(request, **kw), timeout_s)


class AsyncSandbox:
    """``client.sandbox``: isolated code execution."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def run(
        self,
        code: str,
        *,
        stdin: bytes = b"",
        files: Mapping[str, bytes] | None = None,
        limits: sandbox.ExecutionLimits | None = None,
        timeout_s: float | None = None,
    ) -> sandbox.ExecutionResult:
        """Runs Python ``code`` in the sandbox; returns its output, exit status and why it stopped."""
        request = _requests.execute(code, stdin=stdin, files=files, limits=limits)
        c = self._client
        response = await c._unary(_requests.EXECUTE, lambda **kw: c.sandbox_service.execute(request, **kw), timeout_s)
        assert response.result is not None
        return response.result

    async def stream(
        self,
        code: str,
        *,
        stdin: bytes = b"",
        files: Mapping[str, bytes] | None = None,
        limits: sandbox.ExecutionLimits | None = None,
        timeout_s: float | None = None,
    ) -> AsyncIterator[sandbox.StreamExecuteResponse]:
        """Runs Python ``code`` in the sandbox; yields its output as it is written, then the result."""
        request = _requests.stream_execute(code, stdin=stdin, files=files, limits=limits)
        c = self._client
        async for event in c._stream(
            _requests.STREAM_EXECUTE, lambda **kw: c.sandbox_service.stream_execute(request, **kw), timeout_s
        ):
            yield event


class AsyncDocuments:
    """``client.documents``: what the tenant has ingested."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def list(
        self, *, page_size: int = 0, page_token: str = "", source_prefix: str = "", timeout_s: float | None = None
    ) -> ingest_v1.ListDocumentsResponse:
        """One page of the tenant's documents, ordered by source URI."""
        request = ingest_v1.ListDocumentsRequest(
            page_size=page_size, page_token=page_token, source_prefix=source_prefix
        )
        c = self._client
        return await c._unary(
            _requests.LIST_DOCUMENTS, lambda **kw: c.ingest_service.list_documents(request, **kw), timeout_s
        )

    async def delete(self, doc_id: str, *, timeout_s: float | None = None) -> ingest_v1.DeleteDocumentResponse:
        """Removes a document with its chunks, points and graph nodes."""
        request = ingest_v1.DeleteDocumentRequest(doc_id=doc_id)
        c = self._client
        return await c._unary(
            _requests.DELETE_DOCUMENT, lambda **kw: c.ingest_service.delete_document(request, **kw), timeout_s
        )
