"""The one channel factory for calls between services.

Channels get the service config that sits beside the service's protos
(per-method deadlines, retries of UNAVAILABLE only), keepalive, and one
interceptor per call type that passes the current request's caller identity
(its credential too: see ``_merge_metadata``), request id and trace context on
(a CLIENT span per call, ``mesh.telemetry``) and caps each call's timeout at the time the current request has left, so
deadlines and traces propagate without each call site remembering to.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc

from mesh import auth, context, telemetry

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
    remaining = context.remaining_s()
    if remaining is None:
        return timeout
    if remaining <= 0:
        # The request being served is already out of time: fail fast instead of
        # sending a call whose answer nobody can use.
        raise grpc.aio.AioRpcError(
            code=grpc.StatusCode.DEADLINE_EXCEEDED,
            initial_metadata=grpc.aio.Metadata(),
            trailing_metadata=grpc.aio.Metadata(),
            details="the caller's deadline has passed",
            debug_error_string="ragmesh: upstream deadline exceeded before the call",
        )
    return remaining if timeout is None else min(timeout, remaining)


def _details(details: grpc.aio.ClientCallDetails, span: telemetry.ClientSpan | None) -> grpc.aio.ClientCallDetails:
    method = details.method.decode() if isinstance(details.method, bytes) else str(details.method)
    metadata = _merge_metadata(details.metadata, method)
    if span is not None:
        span.inject(metadata)
    return grpc.aio.ClientCallDetails(
        method=details.method,
        timeout=_capped_timeout(details.timeout),
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
    interceptors: list[Any] = [
        _PropagateUnaryUnary(tracing),
        _PropagateUnaryStream(tracing),
        _PropagateStreamUnary(tracing),
        _PropagateStreamStream(tracing),
    ]
    return grpc.aio.insecure_channel(target, options=options, interceptors=interceptors)
