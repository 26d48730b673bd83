"""The one channel factory for calls between services, in an asyncio and a blocking form.

Channels get the service config that sits beside the service's protos
(per-method deadlines, retries of UNAVAILABLE only), keepalive, and interceptors
that pass the current request's caller identity (its credential too: see
``_merge_metadata``), request id and trace context on (a CLIENT span per call,
``mesh.telemetry``) and cap each call's timeout at the time the current request
has left (``mesh.context.call_timeout_s``), so deadlines and traces propagate
without each call site remembering to. ``open_channel`` is for services (grpc.aio);
``open_blocking_channel`` for code without an event loop (ingest's Ray Data
workers), with the same options and the same propagation. What a failed call
means to the caller is ``mesh.downstream``'s.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc

from mesh import auth, context, telemetry
from mesh.errors import DeadlineExceeded

_PROTO_ROOT = Path(__file__).resolve().parent.parent / "proto"
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


@functools.cache
def service_config(full_service_name: str) -> str | None:
    """The service config JSON for ``ragmesh.<domain>.v1.XService``, or None."""
    parts = full_service_name.split(".")
    if len(parts) < 4:
        return None
    path = _PROTO_ROOT.joinpath(*parts[:-1], "service_config.json")
    if not path.is_file():
        return None
    return json.dumps(json.loads(path.read_text()))


def _merge_metadata(metadata: Any, method: str) -> list[tuple[str, str | bytes]]:
    """What a downstream call carries: who it is for, and the credential that proves it.

    A call made while serving a person's request carries that person's own token,
    so the next service acts as them (agent -> retrieval searches as the user).
    Internal-only services, and calls with no person's token at hand (background
    work), carry this service's own token and name the tenant acted for in the
    identity headers, which only a service token makes the callee trust.
    Metadata the caller set itself (an explicit authorization) is left alone.
    """
    merged: list[tuple[str, str | bytes]] = list(metadata or ())
    keys = {k for k, _ in merged}
    ctx = context.current()
    identity = None if ctx is None else ctx.identity
    if auth.AUTHORIZATION not in keys:
        user_token = "" if identity is None or auth.is_internal_method(method) else identity.token
        token = user_token or auth.service_token()
        if token:
            merged.append((auth.AUTHORIZATION, f"Bearer {token}"))
    if identity is not None and context.TENANT_HEADER not in keys:
        merged.append((context.TENANT_HEADER, identity.tenant))
        if identity.subject:
            merged.append((context.SUBJECT_HEADER, identity.subject))
        if identity.roles:
            merged.append((context.ROLES_HEADER, ",".join(sorted(identity.roles))))
    if ctx is not None and context.REQUEST_ID_HEADER not in keys:
        merged.append((context.REQUEST_ID_HEADER, ctx.request_id))
    return merged


def _capped_timeout(timeout: float | None) -> float | None:
    try:
        return context.call_timeout_s(timeout)
    except DeadlineExceeded:
        # The request being served is already out of time: fail fast, as the call itself
        # would have, instead of sending a call whose answer nobody can use.
        raise grpc.aio.AioRpcError(
            code=grpc.StatusCode.DEADLINE_EXCEEDED,
            initial_metadata=grpc.aio.Metadata(),
            trailing_metadata=grpc.aio.Metadata(),
            details="the caller's deadline has passed",
            debug_error_string="ragmesh: upstream deadline exceeded before the call",
        ) from None


def _outgoing(
    method: str | bytes, metadata: Any, timeout: float | None, span: telemetry.ClientSpan | None
) -> tuple[list[tuple[str, str | bytes]], float | None]:
    """The metadata and timeout a call goes out with (both call forms)."""
    name = method.decode() if isinstance(method, bytes) else str(method)
    merged = _merge_metadata(metadata, name)
    if span is not None:
        span.inject(merged)
    return merged, _capped_timeout(timeout)


def _details(details: grpc.aio.ClientCallDetails, span: telemetry.ClientSpan | None) -> grpc.aio.ClientCallDetails:
    metadata, timeout = _outgoing(details.method, details.metadata, details.timeout, span)
    return grpc.aio.ClientCallDetails(
        method=details.method,
        timeout=timeout,
        metadata=grpc.aio.Metadata(*metadata),
        credentials=details.credentials,
        wait_for_ready=details.wait_for_ready,
    )


class _Propagate:
    """What every call type's interceptor shares: the details to send, and the call's span."""

    def __init__(self, tracing: bool) -> None:
        self._tracing = tracing

    def _start(self, details: Any) -> tuple[grpc.aio.ClientCallDetails, telemetry.ClientSpan | None]:
        span = telemetry.ClientSpan(details.method) if self._tracing else None
        try:
            return _details(details, span), span
        except BaseException as exc:
            if span is not None:
                code = exc.code() if isinstance(exc, grpc.aio.AioRpcError) else grpc.StatusCode.UNKNOWN
                span.end(code, str(exc))
            raise

    @staticmethod
    async def _unary_response(call: Any, span: telemetry.ClientSpan | None) -> Any:
        """``call`` once its status is known (its span ended with it): a unary answer is complete by then."""
        if span is None:
            return call
        code: grpc.StatusCode | None = None
        try:
            code = await call.code()
            return call
        finally:
            await _end_span(span, call, code)

    @staticmethod
    def _streaming_response(call: Any, span: telemetry.ClientSpan | None) -> Any:
        """``call`` as it is; its span ends when the stream does."""
        if span is not None:
            call.add_done_callback(lambda done: _keep(asyncio.ensure_future(_end_when_done(done, span))))
        return call


# The loop holds only weak references to tasks: these are kept until they finish.
_ending: set[asyncio.Future[None]] = set()


def _keep(task: asyncio.Future[None]) -> None:
    _ending.add(task)
    task.add_done_callback(_ending.discard)


async def _end_when_done(call: Any, span: telemetry.ClientSpan) -> None:
    await _end_span(span, call, None if call.cancelled() else await call.code())


async def _end_span(span: telemetry.ClientSpan, call: Any, code: grpc.StatusCode | None) -> None:
    """Ends ``span`` with the call's status (None: cancelled by the caller) and, on failure, its details."""
    span.end(code, "" if code in (None, grpc.StatusCode.OK) else await call.details())


# grpc.aio files each interceptor under the first call type it implements (an if/elif chain
# in Channel.__init__), so one class implementing all four would only see unary-unary calls.
class _PropagateUnaryUnary(_Propagate, grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[type-arg]
    """Identity, request id, trace and deadline propagation on unary-unary calls."""

    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        sent, span = self._start(details)
        return await self._unary_response(await continuation(sent, request), span)


class _PropagateUnaryStream(_Propagate, grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[type-arg]
    """Identity, request id, trace and deadline propagation on server-streaming calls."""

    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        sent, span = self._start(details)
        return self._streaming_response(await continuation(sent, request), span)


class _PropagateStreamUnary(_Propagate, grpc.aio.StreamUnaryClientInterceptor):  # type: ignore[type-arg]
    """Identity, request id, trace and deadline propagation on client-streaming calls."""

    async def intercept_stream_unary(self, continuation: Any, details: Any, request_iterator: Any) -> Any:
        sent, span = self._start(details)
        return await self._unary_response(await continuation(sent, request_iterator), span)


class _PropagateStreamStream(_Propagate, grpc.aio.StreamStreamClientInterceptor):  # type: ignore[type-arg]
    """Identity, request id, trace and deadline propagation on bidirectional calls."""

    async def intercept_stream_stream(self, continuation: Any, details: Any, request_iterator: Any) -> Any:
        sent, span = self._start(details)
        return self._streaming_response(await continuation(sent, request_iterator), span)


def _options(services: Sequence[str], extra_options: Sequence[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """Channel options: keepalive, message sizes, retries, and the first named service's config."""
    options: list[tuple[str, Any]] = [
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.enable_retries", 1),
    ]
    for name in services:
        config = service_config(name)
        if config is not None:
            options.append(("grpc.service_config", config))
            break
    options.extend(extra_options)
    return options


def open_channel(
    target: str,
    services: Sequence[str] = (),
    *,
    extra_options: Sequence[tuple[str, Any]] = (),
    tracing: bool = True,
) -> grpc.aio.Channel:
    """An insecure aio channel to ``target`` with the mesh's options and interceptors.

    ``services`` names the full gRPC service names the channel will call; the
    first one with a service config beside its protos supplies it.
    """
    interceptors: list[Any] = [
        _PropagateUnaryUnary(tracing),
        _PropagateUnaryStream(tracing),
        _PropagateStreamUnary(tracing),
        _PropagateStreamStream(tracing),
    ]
    return grpc.aio.insecure_channel(target, options=_options(services, extra_options), interceptors=interceptors)


class _BlockingCallDetails(
    collections.namedtuple(
        "_BlockingCallDetails", ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression")
    ),
    grpc.ClientCallDetails,
):
    """The details a blocking call goes out with (grpc's ClientCallDetails has no constructor)."""


class _PropagateBlocking(
    grpc.UnaryUnaryClientInterceptor,  # type: ignore[type-arg]
    grpc.UnaryStreamClientInterceptor,  # type: ignore[type-arg]
    grpc.StreamUnaryClientInterceptor,  # type: ignore[type-arg]
    grpc.StreamStreamClientInterceptor,  # type: ignore[type-arg]
):
    """Identity, request id, trace and deadline propagation on every call type of a blocking channel."""

    def __init__(self, tracing: bool) -> None:
        self._tracing = tracing

    def _intercept(self, continuation: Any, details: Any, request: Any) -> Any:
        span = telemetry.ClientSpan(details.method) if self._tracing else None
        try:
            metadata, timeout = _outgoing(details.method, details.metadata, details.timeout, span)
        except BaseException as exc:
            if span is not None:
                code = exc.code() if isinstance(exc, grpc.aio.AioRpcError) else grpc.StatusCode.UNKNOWN
                span.end(code, str(exc))
            raise
        sent = _BlockingCallDetails(
            details.method, timeout, metadata, details.credentials, details.wait_for_ready, details.compression
        )
        call = continuation(sent, request)
        if span is not None:
            # Runs when the call ends (at once for a unary call, which has ended by now).
            call.add_done_callback(lambda done: span.end(done.code(), done.details() or ""))
        return call

    def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return self._intercept(continuation, client_call_details, request)

    def intercept_unary_stream(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return self._intercept(continuation, client_call_details, request)

    def intercept_stream_unary(self, continuation: Any, client_call_details: Any, request_iterator: Any) -> Any:
        return self._intercept(continuation, client_call_details, request_iterator)

    def intercept_stream_stream(self, continuation: Any, client_call_details: Any, request_iterator: Any) -> Any:
        return self._intercept(continuation, client_call_details, request_iterator)


def open_blocking_channel(
    target: str,
    services: Sequence[str] = (),
    *,
    extra_options: Sequence[tuple[str, Any]] = (),
    tracing: bool = True,
) -> grpc.Channel:
    """The blocking form of ``open_channel``: the same options, service config and propagation.

    For code that has no event loop to run grpc.aio on (ingest's Ray Data workers).
    Work done outside any request (a worker has no request context) sends what the
    caller put in the call's metadata, else this process's service token.
    """
    channel = grpc.insecure_channel(target, options=_options(services, extra_options))
    return grpc.intercept_channel(channel, _PropagateBlocking(tracing))
