"""Real tokens for tests that start services in-process.

The test process makes a signing key of its own (never the stack's), writes
its JWKS and a service token to a private temporary folder, and mints tokens
for any tenant, person and roles. Services started with ``test_auth()`` verify
them exactly as a deployed service verifies the stack's tokens.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc

from mesh import auth, context
from mesh.auth import AuthSettings, SigningKey, TokenIssuer, write_jwks

ISSUER = "ragmesh-local"
AUDIENCE = "ragmesh"
INTERNAL_AUDIENCE = "ragmesh-internal"
DEFAULT_ROLES: tuple[str, ...] = ("reader", "editor")


@functools.cache
def _material() -> tuple[SigningKey, Path]:
    folder = Path(tempfile.mkdtemp(prefix="ragmesh-test-auth-"))
    atexit.register(shutil.rmtree, folder, True)
    key = SigningKey.generate()
    write_jwks(folder / "jwks.json", key)
    return key, folder


def issuer() -> TokenIssuer:
    key, _ = _material()
    return TokenIssuer(key.private_key, key.kid, ISSUER)


def auth_settings() -> AuthSettings:
    """What in-process servers verify tokens with."""
    _, folder = _material()
    return AuthSettings(jwks_file=folder / "jwks.json", issuer=ISSUER, audience=AUDIENCE)


def token(tenant: str, subject: str = "tester", roles: Sequence[str] = DEFAULT_ROLES, ttl_s: float = 4 * 3600) -> str:
    """A person's token for ``tenant`` (valid 4 h: modules mint some at import, before a long suite runs)."""
    return issuer().issue(tenant=tenant, subject=subject, roles=roles, audience=AUDIENCE, ttl_s=ttl_s)


def bearer(tenant: str, subject: str = "tester", roles: Sequence[str] = DEFAULT_ROLES) -> tuple[tuple[str, str], ...]:
    """Call metadata carrying a person's token."""
    return ((auth.AUTHORIZATION, f"Bearer {token(tenant, subject, roles)}"),)


def service_token(service: str = "test-service") -> str:
    """A mesh service's own token (internal audience, role service)."""
    return issuer().issue(tenant="*", subject=service, roles=("service",), audience=INTERNAL_AUDIENCE, ttl_s=24 * 3600)


def as_service(tenant: str) -> tuple[tuple[str, str], ...]:
    """Call metadata of a mesh service acting for ``tenant`` (internal-only RPCs take this)."""
    return ((auth.AUTHORIZATION, f"Bearer {service_token()}"), (context.TENANT_HEADER, tenant))


@functools.cache
def _service_token_file() -> Path:
    _, folder = _material()
    path = folder / "service.jwt"
    path.write_text(service_token())
    path.chmod(0o600)
    return path


def use_service_token() -> Path:
    """Gives this process a service token, as ``ragmesh up`` gives each service one; returns its file.

    Points the process at the file on every call: a test that took the token away
    (``auth.set_service_token_file(None)``) does not leave later tests without one."""
    path = _service_token_file()
    auth.set_service_token_file(path)
    return path


class _ServiceCredential(
    grpc.aio.UnaryUnaryClientInterceptor,  # type: ignore[type-arg]
):
    """Adds the test process's service token to unary calls that carry no authorization."""

    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(_with_token(details), request)


class _ServiceCredentialStream(grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[type-arg]
    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(_with_token(details), request)


class _ServiceCredentialClientStream(grpc.aio.StreamUnaryClientInterceptor):  # type: ignore[type-arg]
    async def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        return await continuation(_with_token(details), requests)


def _with_token(details: Any) -> Any:
    metadata = list(details.metadata or ())
    if not any(k == auth.AUTHORIZATION for k, _ in metadata):
        metadata.append((auth.AUTHORIZATION, f"Bearer {service_token()}"))
    return grpc.aio.ClientCallDetails(
        method=details.method,
        timeout=details.timeout,
        metadata=grpc.aio.Metadata(*metadata),
        credentials=details.credentials,
        wait_for_ready=details.wait_for_ready,
    )


def service_channel(target: str, options: Sequence[tuple[str, Any]] = ()) -> grpc.aio.Channel:
    """A channel whose calls present a mesh service's token unless they carry their own (internal services)."""
    return grpc.aio.insecure_channel(
        target,
        options=list(options),
        interceptors=[_ServiceCredential(), _ServiceCredentialStream(), _ServiceCredentialClientStream()],
    )


def stack_bearer(
    tenant: str, subject: str = "e2e", roles: Sequence[str] = DEFAULT_ROLES
) -> tuple[tuple[str, str], ...]:
    """Call metadata with a fresh token from the running stack's own key (RAGMESH_HOME), for e2e tests."""
    from mesh.cli.common import dev_token

    return ((auth.AUTHORIZATION, f"Bearer {dev_token(tenant, subject=subject, roles=tuple(roles))}"),)
