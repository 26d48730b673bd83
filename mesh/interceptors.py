"""The mesh's server interceptor.

For every RPC of a ragmesh service it, in order: opens the RPC's trace span
(a child of the caller's span when the metadata carries one; see
``mesh.telemetry``); verifies the caller's token and checks the method's
policy (``mesh.auth``); binds the request context (the verified identity,
request id, deadline) into contextvars; counts and times the call in
Prometheus; refuses request bytes that do not decode as the method's request
message (INVALID_ARGUMENT, reason MALFORMED_REQUEST); validates each request
message against the protovalidate rules of its proto, so a bad request never
reaches the handler;
and maps domain errors (``mesh.errors``) to status codes with
``google.rpc.Status`` details. Anything else a handler raises is a bug: it is
logged with its traceback and reported as INTERNAL.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import Message

from mesh import context, status, telemetry
from mesh.auth import Authenticator
from mesh.errors import Code, InvalidArgument, MeshError
from mesh.metrics import RPC_IN_FLIGHT, RPC_LATENCY, RPC_TOTAL
from mesh.validation import validate

log = logging.getLogger(__name__)

# Infrastructure services the mesh serves as they are (no identity, no validation).
_PASSTHROUGH_PREFIXES = ("/grpc.health.", "/grpc.reflection.")


class _Call:
    """Bookkeeping for one RPC: context binding, its trace span, metrics, error mapping."""

    def __init__(
        self, method: str, servicer_context: grpc.aio.ServicerContext[Any, Any], authenticator: Authenticator | None
    ) -> None:
        self.method = method
        self.authenticator = authenticator
        self.service, self.name = telemetry.split_method(method)
        self.grpc_context = servicer_context
        self.code = "OK"
        self.message = ""
        self.error: BaseException | None = None
        self.started = time.perf_counter()
        self.metadata = {k: v for k, v in (servicer_context.invocation_metadata() or ()) if isinstance(v, str)}
        self.span: telemetry.ServerSpan | None = None

    def request_context(self) -> context.RequestContext:
        metadata = self.metadata
        remaining = self.grpc_context.time_remaining()
        deadline = None if remaining is None else time.monotonic() + remaining
        # The request id is the trace id (the RPC's span is open by now), so one id finds a request's
        # log lines in every service and its trace in the backend. A caller that sends its own id
        # without a trace context (no traceparent) keeps its id.
        caller_id = metadata.get(context.REQUEST_ID_HEADER, "")
        if caller_id and telemetry.TRACEPARENT not in metadata:
            request_id = caller_id
        else:
            request_id = telemetry.trace_id_hex() or caller_id or context.new_request_id()
        return context.RequestContext(
            method=self.method,
            request_id=request_id,
            identity=(
                context.parse_identity(metadata)
                if self.authenticator is None
                else self.authenticator.authenticate(self.method, metadata)
            ),
            deadline_monotonic=deadline,
        )

    def enter(self) -> None:
        RPC_IN_FLIGHT.labels(self.service, self.name).inc()
        self.span = telemetry.ServerSpan(self.method, self.metadata)

    def exit(self) -> None:
        if self.span is not None:
            self.span.end(grpc.StatusCode[self.code], self.message, self.error)
        RPC_IN_FLIGHT.labels(self.service, self.name).dec()
        elapsed = time.perf_counter() - self.started
        RPC_LATENCY.labels(self.service, self.name, self.code).observe(elapsed)
        RPC_TOTAL.labels(self.service, self.name, self.code).inc()

    async def fail(self, exc: BaseException) -> None:
        """Turns ``exc`` into the RPC's status; re-raises what grpc must see itself."""
        if isinstance(exc, asyncio.CancelledError):
            self.code = "CANCELLED"
            raise exc
        if isinstance(exc, MeshError):
            error = exc
            if error.code is Code.INTERNAL:
                log.error("internal error in %s: %s", self.method, error.message)
        elif isinstance(exc, NotImplementedError):
            # The generated base servicer raises this for RPCs not implemented yet.
            error = MeshError(
                f"{self.method} is not implemented yet", reason="NOT_IMPLEMENTED", code=Code.UNIMPLEMENTED
            )
        elif _is_abort(exc):
            code = self.grpc_context.code()
            self.code = code.name if isinstance(code, grpc.StatusCode) else "UNKNOWN"
            raise exc
        else:
            log.exception("unhandled exception in %s", self.method, exc_info=exc)
            self.error = exc
            error = MeshError("internal error; see the service log", reason="INTERNAL", code=Code.INTERNAL)
        self.code = error.code.value
        self.message = error.message
        await self.grpc_context.abort(
            status.grpc_code(error.code), error.message, trailing_metadata=status.trailing_metadata(error)
        )


def _is_abort(exc: BaseException) -> bool:
    # grpc.aio raises AbortError out of context.abort(); it must propagate untouched.
    return type(exc).__name__ == "AbortError" or isinstance(exc, grpc.RpcError)


@dataclasses.dataclass(frozen=True)
class _Undecodable:
    """Stands in for a request whose bytes did not decode as the method's request message."""

    message_type: str
    """Full name of the message the bytes should have been."""


def _decoding(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    """``deserializer`` made total: undecodable bytes become an ``_Undecodable``.

    grpc.aio runs the request deserializer before any interceptor wrapper, and an
    exception there comes back to the caller as UNKNOWN naming the exception class.
    Handing a marker on instead lets the wrapper answer after the token check, with
    the mesh's error mapping, as for any other bad request.
    """
    if deserializer is None:
        return None
    # Generated handlers pass the request class's FromString; its class names the message.
    owner = getattr(deserializer, "__self__", None)
    descriptor = getattr(owner, "DESCRIPTOR", None)
    message_type = str(getattr(descriptor, "full_name", "request"))
    decode = deserializer

    def total(raw: bytes) -> Any:
        try:
            return decode(raw)
        except Exception:  # noqa: BLE001 - whatever the decoder raises, the bytes were the caller's
            return _Undecodable(message_type)

    return total


def _checked(request: Any) -> None:
    """Refuses an undecodable request, then validates it against its proto's rules."""
    if isinstance(request, _Undecodable):
        raise InvalidArgument(
            f"the request body is not a valid {request.message_type} message in protobuf encoding",
            reason="MALFORMED_REQUEST",
            metadata={"message_type": request.message_type},
        )
    validate(request)


async def _validated(requests: AsyncIterator[Message]) -> AsyncIterator[Message]:
    async for request in requests:
        _checked(request)
        yield request


class MeshServerInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Identity, context, metrics, validation and error mapping for every ragmesh RPC.

    ``authenticator`` None serves unverified header identities: only the benchmark's
    baseline does that, to measure what verification costs.
    """

    def __init__(self, authenticator: Authenticator | None) -> None:
        self._auth = authenticator

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        handler = await continuation(handler_call_details)
        method: str = handler_call_details.method
        if handler is None or method.startswith(_PASSTHROUGH_PREFIXES):
            return handler
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                _wrap_unary_unary(method, handler.unary_unary, self._auth),
                request_deserializer=_decoding(handler.request_deserializer),
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                _wrap_unary_stream(method, handler.unary_stream, self._auth),
                request_deserializer=_decoding(handler.request_deserializer),
                response_serializer=handler.response_serializer,
            )
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(
                _wrap_stream_unary(method, handler.stream_unary, self._auth),
                request_deserializer=_decoding(handler.request_deserializer),
                response_serializer=handler.response_serializer,
            )
        return grpc.stream_stream_rpc_method_handler(
            _wrap_stream_stream(method, handler.stream_stream, self._auth),
            request_deserializer=_decoding(handler.request_deserializer),
            response_serializer=handler.response_serializer,
        )


def _wrap_unary_unary(method: str, inner: Any, auth: Authenticator | None) -> Any:
    async def handle(request: Message, ctx: grpc.aio.ServicerContext[Any, Any]) -> Any:
        call = _Call(method, ctx, auth)
        call.enter()
        try:
            with context.bind(call.request_context()):
                _checked(request)
                return await inner(request, ctx)
        except BaseException as exc:  # noqa: BLE001 - mapped or re-raised in fail()
            await call.fail(exc)
        finally:
            call.exit()

    return handle


def _wrap_unary_stream(method: str, inner: Any, auth: Authenticator | None) -> Any:
    async def handle(request: Message, ctx: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
        call = _Call(method, ctx, auth)
        call.enter()
        try:
            with context.bind(call.request_context()):
                _checked(request)
                async for response in inner(request, ctx):
                    yield response
        except BaseException as exc:  # noqa: BLE001
            await call.fail(exc)
        finally:
            call.exit()

    return handle


def _wrap_stream_unary(method: str, inner: Any, auth: Authenticator | None) -> Any:
    async def handle(requests: AsyncIterator[Message], ctx: grpc.aio.ServicerContext[Any, Any]) -> Any:
        call = _Call(method, ctx, auth)
        call.enter()
        try:
            with context.bind(call.request_context()):
                return await inner(_validated(requests), ctx)
        except BaseException as exc:  # noqa: BLE001
            await call.fail(exc)
        finally:
            call.exit()

    return handle


def _wrap_stream_stream(method: str, inner: Any, auth: Authenticator | None) -> Any:
    async def handle(requests: AsyncIterator[Message], ctx: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
        call = _Call(method, ctx, auth)
        call.enter()
        try:
            with context.bind(call.request_context()):
                async for response in inner(_validated(requests), ctx):
                    yield response
        except BaseException as exc:  # noqa: BLE001
            await call.fail(exc)
        finally:
            call.exit()

    return handle
