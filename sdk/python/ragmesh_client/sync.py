"""The synchronous client: the generated betterproto2 sync stubs over a grpcio channel.

It behaves as ``AsyncClient`` does (deadlines and UNAVAILABLE-only retries from
the bundled service config, the token hook, typed exceptions). The generated
sync stubs take no per-call options, so the channel's interceptor adds each
attempt's metadata and deadline, handed to it in a context variable.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple, TypeVar

import grpc

from ragmesh_client import _requests, events
from ragmesh_client._credentials import Credential, TokenSource
from ragmesh_client._proto.ragmesh.agent import v1 as agent
from ragmesh_client._proto.ragmesh.common import v1 as common
from ragmesh_client._proto.ragmesh.ingest import v1 as ingest_v1
from ragmesh_client._proto.ragmesh.retrieval import v1 as retrieval
from ragmesh_client._proto.ragmesh.sandbox import v1 as sandbox
from ragmesh_client._retry import Attempts
from ragmesh_client.aio import DEFAULT_EDGE
from ragmesh_client.errors import DETAILS_KEY, DeadlineExceeded, RagmeshError, decode_details, error_for
from ragmesh_client.policy import for_method

T = TypeVar("T")
_MAX_MESSAGE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class _Options:
    metadata: list[tuple[str, str]]
    timeout_s: float


_call_options: contextvars.ContextVar[_Options | None] = contextvars.ContextVar("ragmesh_call_options", default=None)


class _Details(NamedTuple):
    method: str
    timeout: float | None
    metadata: list[tuple[str, str | bytes]] | None
    credentials: grpc.CallCredentials | None
    wait_for_ready: bool | None
    compression: grpc.Compression | None


def _with_options(details: Any) -> _Details:
    options = _call_options.get()
    if options is None:
        return _Details(*details)
    metadata = list(details.metadata or ()) + list(options.metadata)
    return _Details(
        details.method, options.timeout_s, metadata, details.credentials, details.wait_for_ready, details.compression
    )


class _Interceptor(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):  # type: ignore[type-arg]
    """Puts the current attempt's token and deadline on the call."""

    def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return continuation(_with_options(client_call_details), request)

    def intercept_unary_stream(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return continuation(_with_options(client_call_details), request)


def translate(exc: BaseException) -> RagmeshError | None:
    """The typed error for what grpcio raised, or None when it is not a call failure."""
    if isinstance(exc, RagmeshError):
        return exc
    if not isinstance(exc, grpc.RpcError) or not isinstance(exc, grpc.Call):
        return None
    data: bytes | None = None
    for key, value in exc.trailing_metadata() or ():
        if key == DETAILS_KEY and isinstance(value, bytes):
            data = value
    code = exc.code()
    return error_for(code.value[0], exc.details() or code.name, decode_details(data))


class Client:
    """A synchronous ragmesh client for the Envoy edge (or one service's address); see ``AsyncClient``."""

    def __init__(
        self,
        edge: str = DEFAULT_EDGE,
        token: TokenSource | None = None,
        *,
        timeout_s: float | None = None,
        max_attempts: int | None = None,
        secure: bool = False,
    ) -> None:
        options = [
            # The SDK retries by itself, over both transports alike.
            ("grpc.enable_retries", 0),
            ("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
        ]
        raw = grpc.secure_channel(edge, grpc.ssl_channel_credentials(), options) if secure else None
        self._raw = raw if raw is not None else grpc.insecure_channel(edge, options)
        self._channel = grpc.intercept_channel(self._raw, _Interceptor())
        self._credential = Credential(token)
        self._timeout_s = timeout_s
        self._max_attempts = max_attempts
        self.agent = agent.AgentServiceSyncStub(self._channel)
        self.retrieval = retrieval.RetrievalServiceSyncStub(self._channel)
        self.ingest_service = ingest_v1.IngestServiceSyncStub(self._channel)
        self.sandbox_service = sandbox.SandboxServiceSyncStub(self._channel)
        self.sessions = Sessions(self)
        self.documents = Documents(self)
        self.sandbox = Sandbox(self)

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._raw.close()

    # -- the calls ----------------------------------------------------------

    def ask(
        self,
        question: str,
        *,
        session_id: str = "",
        top_k: int = 0,
        bypass_cache: bool = False,
        hyde: bool = False,
        timeout_s: float | None = None,
    ) -> Iterator[events.ChatEvent]:
        """Asks the agent; yields its steps, tokens, tool calls and results, citations, then ``events.Final``."""
        request = _requests.chat(question, session_id=session_id, top_k=top_k, bypass_cache=bypass_cache, hyde=hyde)
        for message in self._stream(_requests.STREAM_CHAT, lambda: self.agent.stream_chat(request), timeout_s):
            event = events.from_message(message)
            if event is not None:
                yield event

    def search(
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
        return self._unary(_requests.SEARCH, lambda: self.retrieval.search(request), timeout_s)

    def get_chunk(self, chunk_id: str, *, timeout_s: float | None = None) -> common.Chunk:
        """One chunk of the tenant's index by id (a citation's ``chunk_id``), with its full text."""
        request = retrieval.GetChunkRequest(chunk_id=chunk_id)
        response = self._unary(_requests.GET_CHUNK, lambda: self.retrieval.get_chunk(request), timeout_s)
        assert response.chunk is not None
        return response.chunk

    def create_ingest_job(
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
        created = self._unary(
            _requests.CREATE_INGEST_JOB, lambda: self.ingest_service.create_ingest_job(request), timeout_s
        )
        assert created.job is not None
        return created.job

    def ingest(
        self,
        sources: Iterable[str | Path],
        *,
        chunk_size_tokens: int = 0,
        chunk_overlap_tokens: int = 0,
        skip_graph: bool = False,
        sync: bool = False,
        timeout_s: float | None = None,
    ) -> Iterator[ingest_v1.StreamIngestJobResponse]:
        """Starts an ingest job and yields its progress events until it ends (the last is FINISHED)."""
        job = self.create_ingest_job(
            sources,
            chunk_size_tokens=chunk_size_tokens,
            chunk_overlap_tokens=chunk_overlap_tokens,
            skip_graph=skip_graph,
            sync=sync,
        )
        yield from self.follow_job(job.job_id, timeout_s=timeout_s)

    def follow_job(self, job_id: str, *, timeout_s: float | None = None) -> Iterator[ingest_v1.StreamIngestJobResponse]:
        """Yields an ingest job's progress events until it ends (a finished job: one FINISHED snapshot)."""
        request = ingest_v1.StreamIngestJobRequest(job_id=job_id)
        yield from self._stream(
            _requests.STREAM_INGEST_JOB, lambda: self.ingest_service.stream_ingest_job(request), timeout_s
        )

    def cancel_job(self, job_id: str, *, timeout_s: float | None = None) -> ingest_v1.IngestJob:
        """Asks the service to stop an ingest job; returns the job as it stands (its state says when it stopped)."""
        request = ingest_v1.CancelIngestJobRequest(job_id=job_id)
        response = self._unary(
            _requests.CANCEL_INGEST_JOB, lambda: self.ingest_service.cancel_ingest_job(request), timeout_s
        )
        assert response.job is not None
        return response.job

    def feedback(
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
        return self._unary(
            _requests.SUBMIT_FEEDBACK, lambda: self.agent.submit_feedback(request), timeout_s
        ).feedback_id

    # -- the machinery ------------------------------------------------------

    def _attempts(self, route: str, timeout_s: float | None) -> tuple[Attempts, float]:
        policy = for_method(
            route,
            timeout_s=timeout_s if timeout_s is not None else self._timeout_s,
            max_attempts=self._max_attempts,
        )
        return Attempts(policy, self._credential.refreshable), time.monotonic() + policy.timeout_s

    def _options(self, token: str, deadline: float) -> _Options:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise DeadlineExceeded("the call's deadline passed")
        return _Options(self._credential.metadata(token), remaining)

    def _unary(self, route: str, call: Callable[[], T], timeout_s: float | None) -> T:
        attempts, deadline = self._attempts(route, timeout_s)
        while True:
            token = self._credential.token()
            reset = _call_options.set(self._options(token, deadline))
            try:
                return call()
            except Exception as exc:
                error = translate(exc)
                if error is None:
                    raise
                cause: BaseException = exc
            finally:
                _call_options.reset(reset)
            self._wait_or_raise(attempts, error, cause, token, received=False, deadline=deadline)

    def _stream(self, route: str, call: Callable[[], Iterator[T]], timeout_s: float | None) -> Iterator[T]:
        attempts, deadline = self._attempts(route, timeout_s)
        while True:
            token = self._credential.token()
            received = False
            try:
                messages = call()
                # The generated stub starts the call on the first next(): the options must be set then.
                reset = _call_options.set(self._options(token, deadline))
                try:
                    first = next(messages, None)
                finally:
                    _call_options.reset(reset)
                if first is None:
                    return
                received = True
                yield first
                yield from messages
                return
            except Exception as exc:
                error = translate(exc)
                if error is None:
                    raise
                cause: BaseException = exc
            self._wait_or_raise(attempts, error, cause, token, received=received, deadline=deadline)

    def _wait_or_raise(
        self,
        attempts: Attempts,
        error: RagmeshError,
        cause: BaseException,
        token: str,
        *,
        received: bool,
        deadline: float,
    ) -> None:
        new_token = self._credential.token() if attempts.refreshable else token
        delay = attempts.next_delay_s(error, sent_token=token, new_token=new_token, received=received)
        if delay is None or delay >= deadline - time.monotonic():
            raise error from (None if error is cause else cause)
        time.sleep(delay)


class Sessions:
    """``client.sessions``: the caller's chat sessions."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def list(
        self, *, page_size: int = 0, page_token: str = "", timeout_s: float | None = None
    ) -> agent.ListSessionsResponse:
        """One page of the caller's sessions, newest first (``next_page_token`` for the next)."""
        request = agent.ListSessionsRequest(page_size=page_size, page_token=page_token)
        c = self._client
        return c._unary(_requests.LIST_SESSIONS, lambda: c.agent.list_sessions(request), timeout_s)

    def get(self, session_id: str, *, timeout_s: float | None = None) -> agent.Session:
        """One session with its messages."""
        request = agent.GetSessionRequest(session_id=session_id)
        c = self._client
        response = c._unary(_requests.GET_SESSION, lambda: c.agent.get_session(request), timeout_s)
        assert response.session is not None
        return response.session

    def delete(self, session_id: str, *, timeout_s: float | None = None) -> None:
        """Deletes a session and its messages."""
        request = agent.DeleteSessionRequest(session_id=session_id)
        c = self._client
        c._unary(_requests.DELETE_SESSION, lambda: c.agent.delete_session(request), timeout_s)


class Sandbox:
    """``client.sandbox``: isolated code execution."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def run(
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
        response = c._unary(_requests.EXECUTE, lambda: c.sandbox_service.execute(request), timeout_s)
        assert response.result is not None
        return response.result

    def stream(
        self,
        code: str,
        *,
        stdin: bytes = b"",
        files: Mapping[str, bytes] | None = None,
        limits: sandbox.ExecutionLimits | None = None,
        timeout_s: float | None = None,
    ) -> Iterator[sandbox.StreamExecuteResponse]:
        """Runs Python ``code`` in the sandbox; yields its output as it is written, then the result."""
        request = _requests.stream_execute(code, stdin=stdin, files=files, limits=limits)
        c = self._client
        yield from c._stream(_requests.STREAM_EXECUTE, lambda: c.sandbox_service.stream_execute(request), timeout_s)


class Documents:
    """``client.documents``: what the tenant has ingested."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def list(
        self, *, page_size: int = 0, page_token: str = "", source_prefix: str = "", timeout_s: float | None = None
    ) -> ingest_v1.ListDocumentsResponse:
        """One page of the tenant's documents, ordered by source URI."""
        request = ingest_v1.ListDocumentsRequest(
            page_size=page_size, page_token=page_token, source_prefix=source_prefix
        )
        c = self._client
        return c._unary(_requests.LIST_DOCUMENTS, lambda: c.ingest_service.list_documents(request), timeout_s)

    def delete(self, doc_id: str, *, timeout_s: float | None = None) -> ingest_v1.DeleteDocumentResponse:
        """Removes a document with its chunks, points and graph nodes."""
        request = ingest_v1.DeleteDocumentRequest(doc_id=doc_id)
        c = self._client
        return c._unary(_requests.DELETE_DOCUMENT, lambda: c.ingest_service.delete_document(request), timeout_s)
