"""Minting and verifying the mesh's JWTs (RS256).

A token names the tenant whose data it may touch (claim ``tenant``), the
subject (``sub``: a person, a program or a mesh service) and its roles
(``roles``), for one audience, until ``exp``. Verification checks the
signature against the JWKS by key id, the issuer, the audience and the expiry
with a small clock skew; each failure has its own reason, so a person reading
the error knows what to fix. Verified tokens are cached until they expire:
a service sees the same token on every call of a conversation.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

from mesh.errors import Unauthenticated

ALGORITHM = "RS256"
TENANT_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_SUBJECT_MAX = 256


@dataclass(frozen=True)
class Claims:
    """What a verified token says about its holder."""

    tenant: str
    subject: str
    roles: frozenset[str]
    audience: str
    expires_at: float

    def __repr__(self) -> str:
        roles = ",".join(sorted(self.roles))
        return f"Claims(tenant={self.tenant!r}, subject={self.subject!r}, roles={roles!r}, audience={self.audience!r})"


class TokenIssuer:
    """Signs tokens with one private key (the local stack's, or a test's)."""

    def __init__(self, private_key: RSAPrivateKey, kid: str, issuer: str) -> None:
        self._key = private_key
        self._kid = kid
        self.issuer = issuer

    def issue(
        self,
        *,
        tenant: str,
        subject: str,
        roles: Sequence[str],
        audience: str,
        ttl_s: float,
        now: float | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> str:
        """A signed token; ``extra`` claims override the standard ones (tests build bad tokens with it)."""
        if not TENANT_RE.match(tenant) and tenant != "*":
            raise ValueError("tenant must be 1-63 characters of a-z, 0-9, '_' or '-', starting with a letter or digit")
        issued = int(time.time() if now is None else now)
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": audience,
            "sub": subject,
            "tenant": tenant,
            "roles": list(roles),
            "iat": issued,
            "nbf": issued,
            "exp": issued + max(1, int(ttl_s)),
            "jti": uuid.uuid4().hex,
        }
        claims.update(extra or {})
        return jwt.encode(claims, self._key, algorithm=ALGORITHM, headers={"kid": self._kid})


class TokenVerifier:
    """Checks tokens against a JWKS (kid -> public key); thread-safe, with a cache of verified tokens."""

    def __init__(
        self,
        keys: Mapping[str, RSAPublicKey],
        *,
        issuer: str,
        audiences: Iterable[str],
        leeway_s: float = 30.0,
        cache_size: int = 4096,
    ) -> None:
        self._keys = dict(keys)
        self._issuer = issuer
        self._audiences = tuple(audiences)
        self._leeway_s = leeway_s
        self._cache: OrderedDict[str, Claims] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def verify(self, token: str) -> Claims:
        """The token's claims; raises ``Unauthenticated`` with a reason a person can act on."""
        with self._lock:
            cached = self._cache.get(token)
            if cached is not None:
                if time.time() <= cached.expires_at + self._leeway_s:
                    self._cache.move_to_end(token)
                    return cached
                del self._cache[token]
        claims = self._verify_uncached(token)
        with self._lock:
            self._cache[token] = claims
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return claims

    def _verify_uncached(self, token: str) -> Claims:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError:
            raise Unauthenticated(
                "the bearer token is not a JWT (expected three base64url parts)", reason="TOKEN_MALFORMED"
            ) from None
        if header.get("alg") != ALGORITHM:
            raise Unauthenticated(
                f"the token is signed with {header.get('alg')!r}; this mesh accepts {ALGORITHM} only",
                reason="TOKEN_ALGORITHM_NOT_ALLOWED",
            )
        key = self._keys.get(str(header.get("kid", "")))
        if key is None:
            raise Unauthenticated(
                "the token was signed by a key this mesh does not know (unknown kid); get a new token",
                reason="TOKEN_UNKNOWN_KEY",
            )
        try:
            payload: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=list(self._audiences),
                issuer=self._issuer,
                leeway=self._leeway_s,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("the token has expired; get a new one", reason="TOKEN_EXPIRED") from None
        except jwt.ImmatureSignatureError:
            raise Unauthenticated(
                "the token is not valid yet (nbf/iat in the future)", reason="TOKEN_NOT_YET_VALID"
            ) from None
        except jwt.InvalidIssuerError:
            raise Unauthenticated(f"the token's issuer is not {self._issuer!r}", reason="TOKEN_WRONG_ISSUER") from None
        except jwt.InvalidAudienceError:
            raise Unauthenticated(
                f"the token is not meant for this mesh (audience must be one of {', '.join(self._audiences)})",
                reason="TOKEN_WRONG_AUDIENCE",
            ) from None
        except jwt.InvalidSignatureError:
            raise Unauthenticated("the token's signature does not verify", reason="TOKEN_BAD_SIGNATURE") from None
        except jwt.MissingRequiredClaimError as exc:
            raise Unauthenticated(f"the token lacks the {exc.claim!r} claim", reason="TOKEN_CLAIMS_INVALID") from None
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"the token is not valid: {exc}", reason="TOKEN_MALFORMED") from None
        return _claims(payload)


def _claims(payload: Mapping[str, Any]) -> Claims:
    tenant = payload.get("tenant")
    subject = payload.get("sub")
    roles = payload.get("roles", [])
    audience = payload.get("aud")
    if isinstance(audience, list):
        audience = audience[0] if audience else ""
    if not isinstance(tenant, str) or not (TENANT_RE.match(tenant) or tenant == "*"):
        raise Unauthenticated(
            "the token's tenant claim is missing or not a valid tenant name", reason="TOKEN_CLAIMS_INVALID"
        )
    if not isinstance(subject, str) or not subject or len(subject) > _SUBJECT_MAX:
        raise Unauthenticated("the token's sub claim must be a non-empty string", reason="TOKEN_CLAIMS_INVALID")
    if isinstance(roles, str):
        roles = [r for r in re.split(r"[\s,]+", roles) if r]
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise Unauthenticated("the token's roles claim must be a list of strings", reason="TOKEN_CLAIMS_INVALID")
    return Claims(
        tenant=tenant,
        subject=subject,
        roles=frozenset(roles),
        audience=str(audience),
        expires_at=float(payload["exp"]),
    )
