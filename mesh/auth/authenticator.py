"""The server side of identity: from a request's metadata to a verified caller.

Every RPC but health and reflection must carry ``authorization: Bearer <JWT>``.

- A person's or program's token (audience ``ragmesh``): the identity is the
  token's tenant, subject and roles. An identity header that disagrees with the
  token (a forged ``x-ragmesh-tenant``) is refused; Envoy writes the same values
  from the token it verified, so a caller through the edge never trips this.
- A mesh service's token (audience ``ragmesh-internal``, role ``service``): the
  caller is one of the mesh's own services, acting for the tenant (and person)
  it names in the identity headers, as svc_ingest's workers do for a job.

Then the method's policy (``mesh.auth.policy``) decides.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

from mesh.auth.keys import load_jwks
from mesh.auth.policy import SERVICE_ROLE, authorize
from mesh.auth.tokens import TENANT_RE, TokenVerifier
from mesh.context import ROLES_HEADER, SUBJECT_HEADER, TENANT_HEADER, Identity
from mesh.errors import PermissionDenied, Unauthenticated

AUTHORIZATION = "authorization"
DEFAULT_ISSUER = "ragmesh-local"
DEFAULT_AUDIENCE = "ragmesh"
DEFAULT_INTERNAL_AUDIENCE = "ragmesh-internal"


@dataclasses.dataclass(frozen=True)
class AuthSettings:
    """Where the verification keys are and what tokens must say."""

    jwks_file: Path
    issuer: str = DEFAULT_ISSUER
    audience: str = DEFAULT_AUDIENCE
    internal_audience: str = DEFAULT_INTERNAL_AUDIENCE
    clock_skew_s: float = 30.0


def bearer_token(metadata: Mapping[str, str]) -> str:
    """The token of ``authorization: Bearer <token>``; raises ``Unauthenticated`` when absent or malformed."""
    value = metadata.get(AUTHORIZATION)
    if value is None:
        raise Unauthenticated(
            "this call needs a token: send 'authorization: Bearer <token>' (ragmesh token issue mints one)",
            reason="TOKEN_MISSING",
        )
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("the authorization header must be 'Bearer <token>'", reason="TOKEN_MALFORMED")
    return token.strip()


class Authenticator:
    """Verifies each call's token and applies the method's policy."""

    def __init__(self, settings: AuthSettings) -> None:
        self.settings = settings
        self._verifier = TokenVerifier(
            load_jwks(settings.jwks_file),
            issuer=settings.issuer,
            audiences=(settings.audience, settings.internal_audience),
            leeway_s=settings.clock_skew_s,
        )

    def authenticate(self, method: str, metadata: Mapping[str, str]) -> Identity | None:
        """The caller's identity for ``method``; raises UNAUTHENTICATED / PERMISSION_DENIED errors.

        None means a mesh service called without naming a tenant (fine for calls that need none).
        """
        token = bearer_token(metadata)
        claims = self._verifier.verify(token)
        if claims.audience == self.settings.internal_audience:
            if SERVICE_ROLE not in claims.roles:
                raise Unauthenticated(
                    "an internal-audience token must carry the service role", reason="TOKEN_CLAIMS_INVALID"
                )
            authorize(method, claims.roles, service=True)
            return _on_behalf_of(metadata, claims.subject)
        sent = metadata.get(TENANT_HEADER)
        if sent is not None and sent != claims.tenant:
            raise PermissionDenied(
                f"the {TENANT_HEADER} header names another tenant than the token", reason="IDENTITY_MISMATCH"
            )
        authorize(method, claims.roles, service=False)
        return Identity(tenant=claims.tenant, subject=claims.subject, roles=claims.roles, token=token, service="")


def _on_behalf_of(metadata: Mapping[str, str], service: str) -> Identity | None:
    tenant = metadata.get(TENANT_HEADER)
    if tenant is None:
        return None
    if not TENANT_RE.match(tenant):
        raise Unauthenticated(
            "tenant must be 1-63 characters of a-z, 0-9, '_' or '-', starting with a letter or digit",
            reason="INVALID_IDENTITY",
            metadata={"header": TENANT_HEADER},
        )
    roles = frozenset(r for r in metadata.get(ROLES_HEADER, "").split(",") if r)
    return Identity(tenant=tenant, subject=metadata.get(SUBJECT_HEADER, ""), roles=roles, token="", service=service)
