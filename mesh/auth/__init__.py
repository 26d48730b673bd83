"""Who is calling, proven: tokens, the keys that sign them, and what each role may do.

Callers present a JWT (``authorization: Bearer ...``). The edge (Envoy
``jwt_authn``) verifies it first; every service verifies it again
(``Authenticator``), so a caller that reaches a service port directly gains
nothing by skipping the edge. People and programs get tokens with the audience
``ragmesh`` and a tenant, subject and roles; the mesh's own services hold a
service token (audience ``ragmesh-internal``, role ``service``) and use it for
internal-only RPCs and for background work, naming the tenant they act for.
"""

from mesh.auth.authenticator import AUTHORIZATION, Authenticator, AuthSettings, bearer_token
from mesh.auth.credentials import service_token, set_service_token_file
from mesh.auth.keys import SigningKey, ensure_signing_key, load_jwks, write_jwks
from mesh.auth.policy import INTERNAL_SERVICES, ROLES, authorize, is_internal_method, required_role
from mesh.auth.tokens import Claims, TokenIssuer, TokenVerifier

__all__ = [
    "AUTHORIZATION",
    "INTERNAL_SERVICES",
    "ROLES",
    "AuthSettings",
    "Authenticator",
    "Claims",
    "SigningKey",
    "TokenIssuer",
    "TokenVerifier",
    "authorize",
    "bearer_token",
    "ensure_signing_key",
    "is_internal_method",
    "load_jwks",
    "required_role",
    "service_token",
    "set_service_token_file",
    "write_jwks",
]
