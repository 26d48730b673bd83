"""Per-request context carried in contextvars: caller identity, request id, deadline.

The server interceptor fills it for every RPC; domain code reads it through the
functions here, and the channel factory's client interceptor passes identity,
request id and the remaining deadline on to every downstream call. How the
identity got into the request (a verified JWT: ``mesh.auth``) is the
interceptor's business alone.
"""

from __future__ import annotations

import contextlib
import re
import time
import uuid
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import overload

from mesh.errors import DeadlineExceeded, Unauthenticated

TENANT_HEADER = "x-ragmesh-tenant"
SUBJECT_HEADER = "x-ragmesh-subject"
ROLES_HEADER = "x-ragmesh-roles"
IDENTITY_HEADERS = (TENANT_HEADER, SUBJECT_HEADER, ROLES_HEADER)
REQUEST_ID_HEADER = "x-request-id"

_TENANT_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


@dataclass(frozen=True)
class Identity:
    """Who is calling: the tenant whose data the call may touch, the subject (user or service) and roles.

    ``token`` is the caller's own verified token, passed on to the services this
    call reaches so they act as the caller; ``service`` names the mesh service
    when one called with its service token on the tenant's behalf.
    """

    tenant: str
    subject: str = ""
    roles: frozenset[str] = frozenset()
    token: str = field(default="", repr=False)
    service: str = ""


@dataclass(frozen=True)
class RequestContext:
    """What the mesh knows about the RPC being served."""

    method: str
    request_id: str
    identity: Identity | None
    deadline_monotonic: float | None


_current: ContextVar[RequestContext | None] = ContextVar("ragmesh_request_context", default=None)


def parse_identity(metadata: dict[str, str]) -> Identity | None:
    """Reads an unverified identity from the headers; None when absent.

    Only for servers started without verification (``start_server(verify=False)``,
    the benchmark's baseline); every served service verifies tokens instead.
    """
    tenant = metadata.get(TENANT_HEADER)
    if tenant is None:
        return None
    if not _TENANT_RE.match(tenant):
        raise Unauthenticated(
            "tenant must be 1-63 characters of a-z, 0-9, '_' or '-', starting with a letter or digit",
            reason="INVALID_IDENTITY",
            metadata={"header": TENANT_HEADER},
        )
    roles = frozenset(r for r in metadata.get(ROLES_HEADER, "").split(",") if r)
    return Identity(tenant=tenant, subject=metadata.get(SUBJECT_HEADER, ""), roles=roles)


@contextlib.contextmanager
def bind(ctx: RequestContext) -> Iterator[RequestContext]:
    """Makes ``ctx`` the current request context for the duration of the block."""
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)


def new_request_id() -> str:
    return uuid.uuid4().hex


def current() -> RequestContext | None:
    """The context of the RPC being served, if any."""
    return _current.get()


def identity() -> Identity:
    """The caller's identity; raises UNAUTHENTICATED when the request carried none."""
    ctx = _current.get()
    if ctx is None or ctx.identity is None:
        raise Unauthenticated(
            "the request carries no caller identity: send 'authorization: Bearer <token>'", reason="TOKEN_MISSING"
        )
    return ctx.identity


def tenant() -> str:
    """Shorthand for ``identity().tenant``."""
    return identity().tenant


def remaining_s() -> float | None:
    """Seconds left before the current RPC's deadline; None when it has none."""
    ctx = _current.get()
    if ctx is None or ctx.deadline_monotonic is None:
        return None
    return max(0.0, ctx.deadline_monotonic - time.monotonic())


@overload
def call_timeout_s(ceiling_s: float) -> float: ...


@overload
def call_timeout_s(ceiling_s: None) -> float | None: ...


def call_timeout_s(ceiling_s: float | None) -> float | None:
    """Seconds a call made while serving this request may take: what is left of its deadline, at most ``ceiling_s``.

    The one place a downstream timeout is derived from the deadline: stores (Postgres,
    Neo4j, Qdrant, Redis) get it as ``timeout=``, and the channel factory applies it to
    every gRPC call. ``ceiling_s`` None means no limit of the caller's own; with no
    request being served (background work) the ceiling is all there is. Raises
    DEADLINE_EXCEEDED when no time is left, so no call starts that could only be wasted.
    """
    remaining = remaining_s()
    if remaining is None:
        return ceiling_s
    if remaining <= 0.0:
        raise DeadlineExceeded("the request's deadline passed before the call", reason="DEADLINE_PASSED")
    return remaining if ceiling_s is None else min(ceiling_s, remaining)


def request_id() -> str | None:
    ctx = _current.get()
    return None if ctx is None else ctx.request_id
