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

import base64
from typing import Any

from mesh.errors import Unauthenticated
from mesh.stack.config import StackConfig
from mesh.status import to_status_proto

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


FAILURE_METADATA_KEY = "jwt_failure"
"""Key of jwt_authn's failed status in its dynamic metadata namespace."""
JWT_NAMESPACE = "envoy.filters.http.jwt_authn"

#: The reason (the services' own ErrorInfo reasons, mesh/auth) for each way jwt_authn refuses
#: a token, matched on the start of its status message; the first match wins.
REFUSAL_REASONS: tuple[tuple[str, str, str], ...] = (
    ("Jwt is missing", "TOKEN_MISSING", "no bearer token was sent"),
    ("Jwt is expired", "TOKEN_EXPIRED", "the token has expired; get a new one"),
    ("Jwt not yet valid", "TOKEN_NOT_YET_VALID", "the token is not valid yet (nbf/iat in the future)"),
    ("Jwt verification fails", "TOKEN_BAD_SIGNATURE", "the token's signature does not verify"),
    ("Jwt issuer is not configured", "TOKEN_WRONG_ISSUER", "the token's issuer is not this mesh's"),
    ("Audiences in Jwt are not allowed", "TOKEN_WRONG_AUDIENCE", "the token is for another audience"),
    ("Jwks doesn't have key", "TOKEN_UNKNOWN_KEY", "the token names a signing key this mesh does not have"),
    ("Jwt", "TOKEN_MALFORMED", "the bearer token is not a well-formed JWT"),
)
#: Reason of a refusal no entry above names.
FALLBACK_REASON = ("TOKEN_INVALID", "the token was refused")


def status_details_bin(reason: str, message: str) -> str:
    """``grpc-status-details-bin`` (base64 google.rpc.Status with ErrorInfo) for an edge refusal."""
    status = to_status_proto(Unauthenticated(message, reason=reason, metadata={"refused_by": "edge"}))
    return base64.b64encode(status.SerializeToString()).decode("ascii")


JWT_CACHE_SIZE = 1000
"""Verified tokens Envoy keeps per worker thread."""


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
        # A client sends the same token on every call until it expires: keep the verified ones
        # (each worker thread its own cache), so repeat calls skip the RSA check. Expiry is still
        # checked on every call.
        "jwt_cache_config": {"jwt_cache_size": JWT_CACHE_SIZE},
        # Why a token was refused ({code, message}), for the reply mappers' reason details.
        "failed_status_in_metadata": FAILURE_METADATA_KEY,
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


def _status_is(code: int, runtime_key: str) -> dict[str, Any]:
    return {
        "status_code_filter": {"comparison": {"op": "EQ", "value": {"default_value": code, "runtime_key": runtime_key}}}
    }


_HINT = ": send 'authorization: Bearer <token>' with a valid token (ragmesh token issue mints one)"


def unauthenticated_reply_mappers() -> list[dict[str, Any]]:
    """jwt_authn's refusals as gRPC UNAUTHENTICATED, the reason followed by what to do.

    jwt_authn answers 401, and 403 for a token of another audience; a token that is
    not for this mesh proves no identity at all, so both become UNAUTHENTICATED
    (nothing else at the edge replies 403). A gRPC caller gets Envoy's own gRPC reply
    for a 401 (grpc-status 16, the reply body as grpc-message). A grpc-web caller's
    local reply is plain HTTP, which browsers' clients would read as a transport
    error, so it becomes a trailers-only reply (HTTP 200, grpc-status 16) whose
    message is the refusal's detail (for example ``jwt_authn_access_denied{Jwt_is_expired}``).

    Either way the reply carries ``grpc-status-details-bin``: a google.rpc.Status whose
    ErrorInfo reason is the one a service gives for the same fault (``TOKEN_EXPIRED``,
    ``TOKEN_MISSING``, ...; REFUSAL_REASONS), picked from jwt_authn's failed status in
    its dynamic metadata, so SDK callers read ``err.reason`` whoever refused the call.
    """
    refused = {
        "or_filter": {
            "filters": [
                _status_is(401, "edge_unauthenticated_status"),
                _status_is(403, "edge_jwt_forbidden_status"),
            ]
        }
    }
    grpc_web = {"header_filter": {"header": {"name": "x-grpc-web", "present_match": True}}}

    def header(key: str, value: str) -> dict[str, Any]:
        return {"append_action": "OVERWRITE_IF_EXISTS_OR_ADD", "header": {"key": key, "value": value}}

    def failure_starts_with(prefix: str) -> dict[str, Any]:
        return {
            "metadata_filter": {
                "matcher": {
                    "filter": JWT_NAMESPACE,
                    "path": [{"key": FAILURE_METADATA_KEY}, {"key": "message"}],
                    "value": {"string_match": {"prefix": prefix}},
                },
                "match_if_key_not_found": False,
            }
        }

    def mappers(condition: list[dict[str, Any]], reason: str, message: str) -> list[dict[str, Any]]:
        details = header("grpc-status-details-bin", status_details_bin(reason, message))
        return [
            {
                "filter": {"and_filter": {"filters": [grpc_web, refused, *condition]}},
                "status_code": 200,
                "headers_to_add": [
                    header("content-type", "application/grpc"),
                    header("grpc-status", "16"),
                    header("grpc-message", "%RESPONSE_CODE_DETAILS%" + _HINT),
                    details,
                ],
                "body": {"inline_string": ""},
            },
            {
                "filter": {"and_filter": {"filters": [refused, *condition]}} if condition else refused,
                "status_code": 401,
                "headers_to_add": [details],
                "body_format_override": {"text_format_source": {"inline_string": "%LOCAL_REPLY_BODY%" + _HINT}},
            },
        ]

    out: list[dict[str, Any]] = []
    for prefix, reason, message in REFUSAL_REASONS:
        out += mappers([failure_starts_with(prefix)], reason, message)
    return out + mappers([], *FALLBACK_REASON)
