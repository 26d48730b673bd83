"""Tokens for the benchmarks, minted from the running stack's key (RAGMESH_HOME).

Benchmarks call as a person of their tenant through the edge and directly, and
as a mesh service where they call internal services (InferenceService) the way
svc_retrieval and svc_agent do. Tokens last as long as a long benchmark.
"""

from __future__ import annotations

from collections.abc import Sequence

from mesh import auth, context
from mesh.stack import StackConfig, StackLayout, identity

BENCH_TTL_S = 6 * 3600


def _stack() -> tuple[StackConfig, StackLayout]:
    config = StackConfig.from_env()
    layout = StackLayout(config.home)
    if not layout.signing_key_file.is_file():
        raise SystemExit(f"bench: no stack key at {layout.signing_key_file}: start the stack first (ragmesh up)")
    return config, layout


def person(tenant: str, roles: Sequence[str] = ("reader", "editor")) -> tuple[tuple[str, str], ...]:
    """Call metadata of a person of ``tenant``."""
    config, layout = _stack()
    token = identity.issue_token(config, layout, tenant=tenant, subject="bench", roles=roles, ttl_s=BENCH_TTL_S)
    return ((auth.AUTHORIZATION, f"Bearer {token}"),)


def service(tenant: str) -> tuple[tuple[str, str], ...]:
    """Call metadata of a mesh service acting for ``tenant`` (what internal services accept)."""
    config, layout = _stack()
    token = identity.issuer(config, layout).issue(
        tenant="*", subject="bench", roles=("service",), audience=config.auth_internal_audience, ttl_s=BENCH_TTL_S
    )
    return ((auth.AUTHORIZATION, f"Bearer {token}"), (context.TENANT_HEADER, tenant))


def use_service_identity() -> None:
    """Gives this process svc_retrieval's service token, for in-process clients of internal services."""
    _, layout = _stack()
    auth.set_service_token_file(layout.service_token_file("svc_retrieval"))
