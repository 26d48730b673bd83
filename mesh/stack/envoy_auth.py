"""The edge's identity filters: drop identity headers a client sent, then verify its JWT.

``header_mutation`` removes ``x-ragmesh-tenant``, ``x-ragmesh-subject`` and
``x-ragmesh-roles`` from every request, so only what ``jwt_authn`` writes from a
verified token reaches the services (and the per-tenant rate limit, which keys
on the tenant header). ``jwt_authn`` checks the bearer token's RS256 signature
against the stack's JWKS, its issuer, audience and expiry (with the configured
clock skew), keeps the token on the request (the services verify it again and
act as its holder), and answers a bad or missing token with UNAUTHENTICATED
(HTTP 401, which Envoy maps to grpc-status 16 for gRPC and grpc-web alike).

Health checks stay open: load balancers and probes carry no tokens. Reflection
needs a verified token: the schema is public, but an anonymous caller has no
use for it, and grpcurl and ghz send the same ``authorization`` header as any
other client.

The JWKS comes from the environment variable ``RAGMESH_EDGE_JWKS`` (the stack
sets it from its key when it starts Envoy), so the rendered config holds no
key and stays the same for every stack home.
"""

from __future__ import annotations

from typing import Any

from mesh.stack.config import StackConfig

JWKS_ENV = "RAGMESH_EDGE_JWKS"
PROVIDER = "ragmesh"
IDENTITY_HEADERS = ("x-ragmesh-tenant", "x-ragmesh-subject", "x-ragmesh-roles")
#: Prefixes served without a token.
OPEN_PREFIXES = ("/grpc.health.v1.Health/",)


def _typed(type_name: str, **fields: Any) -> dict[str, Any]:
    return {"@type": f"type.googleapis.com/{type_name}", **fields}


def strip_identity_filter() -> dict[str, Any]:
    """Removes every identity header the client sent, before jwt_authn writes its own."""
    return {
        "name": "envoy.filters.http.header_mutation",
        "typed_config": _typed(
            "envoy.extensions.filters.http.header_mutation.v3.HeaderMutation",
            mutations={"request_mutations": [{"remove": header} for header in IDENTITY_HEADERS]},
        ),
    }


def jwt_filter(config: StackConfig) -> dict[str, Any]:
    """jwt_authn with one provider (the stack's key) required on every route but health."""
    provider = {
        "issuer": config.auth_issuer,
        "audiences": [config.auth_audience],
        "local_jwks": {"environment_variable": JWKS_ENV},
        # The services verify the same token again and pass it on when they call each other.
        "forward": True,
        "clock_skew_seconds": config.auth_clock_skew_s,
        "claim_to_headers": [
            {"header_name": "x-ragmesh-tenant", "claim_name": "tenant"},
            {"header_name": "x-ragmesh-subject", "claim_name": "sub"},
        ],
    }
    rules: list[dict[str, Any]] = [{"match": {"prefix": prefix}} for prefix in OPEN_PREFIXES]
    rules.append({"match": {"prefix": "/"}, "requires": {"provider_name": PROVIDER}})
    return {
        "name": "envoy.filters.http.jwt_authn",
        "typed_config": _typed(
            "envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
            providers={PROVIDER: provider},
            rules=rules,
        ),
    }


def unauthenticated_reply_mapper() -> dict[str, Any]:
    """401s from jwt_authn as gRPC UNAUTHENTICATED with a message that says what to do."""
    return {
        "filter": {
            "status_code_filter": {
                "comparison": {
                    "op": "EQ",
                    "value": {"default_value": 401, "runtime_key": "edge_unauthenticated_status"},
                }
            }
        },
        "status_code": 200,
        "headers_to_add": [
            {
                "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
                "header": {"key": "content-type", "value": "application/grpc"},
            },
            {"append_action": "OVERWRITE_IF_EXISTS_OR_ADD", "header": {"key": "grpc-status", "value": "16"}},
            {
                "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
                "header": {
                    "key": "grpc-message",
                    "value": "%LOCAL_REPLY_BODY%: send 'authorization: Bearer <token>' with a valid token "
                    "(ragmesh token issue mints one)",
                },
            },
        ],
        "body": {"inline_string": ""},
    }
