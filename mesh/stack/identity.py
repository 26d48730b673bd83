"""The stack's identity material: its signing key, the JWKS, and a token for each service.

``ragmesh up`` creates the key on first start under ``secrets/`` (0600) and
mints each service's token when it prepares the service; ``ragmesh token``
mints tokens for people and programs from the same key. Nothing here is
committed: a new stack home gets a new key.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from mesh.auth import SigningKey, TokenIssuer, ensure_signing_key
from mesh.stack.config import StackConfig
from mesh.stack.layout import StackLayout


def signing_key(layout: StackLayout) -> SigningKey:
    """The stack's key, created (with its JWKS) when absent."""
    return ensure_signing_key(layout.signing_key_file, layout.jwks_file)


def issuer(config: StackConfig, layout: StackLayout) -> TokenIssuer:
    key = signing_key(layout)
    return TokenIssuer(key.private_key, key.kid, config.auth_issuer)


def issue_token(
    config: StackConfig,
    layout: StackLayout,
    *,
    tenant: str,
    subject: str,
    roles: Sequence[str],
    ttl_s: float,
) -> str:
    """A token for a person or program, accepted at the edge."""
    return issuer(config, layout).issue(
        tenant=tenant, subject=subject, roles=roles, audience=config.auth_audience, ttl_s=ttl_s
    )


def mint_service_token(config: StackConfig, layout: StackLayout, service: str) -> None:
    """Writes ``service``'s own token (internal audience, role ``service``) to its 0600 file."""
    token = issuer(config, layout).issue(
        tenant="*",
        subject=service,
        roles=("service",),
        audience=config.auth_internal_audience,
        ttl_s=config.auth_service_token_ttl_s,
    )
    path = layout.service_token_file(service)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token)
    os.replace(tmp, path)
