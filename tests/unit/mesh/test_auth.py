"""mesh.auth: tokens verified for real (RS256 keys made here), each failure with its own reason; roles; delegation."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from mesh import context
from mesh.auth import (
    Authenticator,
    AuthSettings,
    SigningKey,
    TokenIssuer,
    TokenVerifier,
    authorize,
    ensure_signing_key,
    load_jwks,
    required_role,
    service_token,
    set_service_token_file,
    write_jwks,
)
from mesh.errors import PermissionDenied, Unauthenticated

KEY = SigningKey.generate()
OTHER_KEY = SigningKey.generate()
ISSUER = TokenIssuer(KEY.private_key, KEY.kid, "ragmesh-local")


@pytest.fixture
def verifier(tmp_path: Path) -> TokenVerifier:
    write_jwks(tmp_path / "jwks.json", KEY)
    return TokenVerifier(load_jwks(tmp_path / "jwks.json"), issuer="ragmesh-local", audiences=("ragmesh",), leeway_s=30)


def _token(**extra: object) -> str:
    return ISSUER.issue(tenant="acme", subject="ann", roles=("reader",), audience="ragmesh", ttl_s=600, extra=extra)


def _reason(verifier: TokenVerifier, token: str) -> str:
    with pytest.raises(Unauthenticated) as info:
        verifier.verify(token)
    return info.value.reason


def test_a_good_token_gives_its_claims(verifier: TokenVerifier) -> None:
    claims = verifier.verify(_token())
    assert (claims.tenant, claims.subject, claims.roles, claims.audience) == ("acme", "ann", {"reader"}, "ragmesh")


# Tokens are minted when the test runs, not when it is collected: the whole suite runs the
# unit tests last, long after collection, when a 10-minute token minted then has expired.
@pytest.mark.parametrize(
    ("mint", "reason"),
    [
        (lambda: "not-a-jwt", "TOKEN_MALFORMED"),
        (lambda: "a.b.c", "TOKEN_MALFORMED"),
        (lambda: _token(exp=int(time.time()) - 3600), "TOKEN_EXPIRED"),
        (lambda: _token(iss="someone-else"), "TOKEN_WRONG_ISSUER"),
        (lambda: _token(aud="another-app"), "TOKEN_WRONG_AUDIENCE"),
        (lambda: _token(nbf=int(time.time()) + 3600), "TOKEN_NOT_YET_VALID"),
        (lambda: _token(tenant="../Evil"), "TOKEN_CLAIMS_INVALID"),
        (lambda: _token(sub=""), "TOKEN_CLAIMS_INVALID"),
        (
            lambda: TokenIssuer(OTHER_KEY.private_key, KEY.kid, "ragmesh-local").issue(
                tenant="acme", subject="ann", roles=(), audience="ragmesh", ttl_s=60
            ),
            "TOKEN_BAD_SIGNATURE",
        ),
        (
            lambda: TokenIssuer(OTHER_KEY.private_key, OTHER_KEY.kid, "ragmesh-local").issue(
                tenant="acme", subject="ann", roles=(), audience="ragmesh", ttl_s=60
            ),
            "TOKEN_UNKNOWN_KEY",
        ),
    ],
    ids=["garbage", "three-parts", "expired", "issuer", "audience", "not-yet", "tenant", "subject", "signature", "kid"],
)
def test_each_bad_token_has_its_reason(verifier: TokenVerifier, mint: Callable[[], str], reason: str) -> None:
    assert _reason(verifier, mint()) == reason


def test_unsigned_and_hmac_tokens_are_refused(verifier: TokenVerifier) -> None:
    import jwt

    claims = {"iss": "ragmesh-local", "aud": "ragmesh", "sub": "x", "tenant": "acme", "exp": int(time.time()) + 60}
    unsigned = jwt.encode(claims, None, algorithm="none", headers={"kid": KEY.kid})
    assert _reason(verifier, unsigned) == "TOKEN_ALGORITHM_NOT_ALLOWED"
    hmac = jwt.encode(claims, "x" * 32, algorithm="HS256", headers={"kid": KEY.kid})
    assert _reason(verifier, hmac) == "TOKEN_ALGORITHM_NOT_ALLOWED"


def test_expiry_within_the_clock_skew_is_accepted(verifier: TokenVerifier) -> None:
    assert verifier.verify(_token(exp=int(time.time()) - 10)).tenant == "acme"


def test_a_cached_token_still_expires(verifier: TokenVerifier) -> None:
    token = _token(exp=int(time.time()) + 1)
    verifier.verify(token)
    short = TokenVerifier(load_jwks_from_key(), issuer="ragmesh-local", audiences=("ragmesh",), leeway_s=0)
    short.verify(token)
    time.sleep(1.2)
    with pytest.raises(Unauthenticated):
        short.verify(token)


def load_jwks_from_key() -> dict[str, object]:
    return {KEY.kid: KEY.private_key.public_key()}  # type: ignore[dict-item]


def test_the_signing_key_file_is_private_and_stable(tmp_path: Path) -> None:
    key_file, jwks = tmp_path / "secrets" / "signing.pem", tmp_path / "secrets" / "jwks.json"
    first = ensure_signing_key(key_file, jwks)
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "secrets").stat().st_mode & 0o777 == 0o700
    assert ensure_signing_key(key_file, jwks).kid == first.kid
    assert list(load_jwks(jwks)) == [first.kid]


def test_roles_nest_and_unknown_methods_are_closed() -> None:
    search = "/ragmesh.retrieval.v1.RetrievalService/Search"
    ingest = "/ragmesh.ingest.v1.IngestService/CreateIngestJob"
    authorize(search, frozenset({"reader"}), service=False)
    authorize(ingest, frozenset({"admin"}), service=False)
    with pytest.raises(PermissionDenied) as info:
        authorize(ingest, frozenset({"reader"}), service=False)
    assert info.value.reason == "ROLE_REQUIRED"
    with pytest.raises(PermissionDenied) as info:
        authorize("/ragmesh.retrieval.v1.IndexService/UpsertChunks", frozenset({"admin"}), service=False)
    assert info.value.reason == "INTERNAL_ONLY"
    with pytest.raises(PermissionDenied):
        authorize("/ragmesh.x.v1.NewService/Thing", frozenset({"admin"}), service=False)
    assert required_role("/ragmesh.inference.v1.InferenceService/Embed") == "internal"


def _authenticator(tmp_path: Path) -> Authenticator:
    write_jwks(tmp_path / "jwks.json", KEY)
    return Authenticator(AuthSettings(jwks_file=tmp_path / "jwks.json"))


def test_a_person_acts_as_their_token_whatever_the_headers_say(tmp_path: Path) -> None:
    authn = _authenticator(tmp_path)
    md = {"authorization": f"Bearer {_token()}"}
    who = authn.authenticate("/ragmesh.retrieval.v1.RetrievalService/Search", md)
    assert who is not None and (who.tenant, who.subject, who.service) == ("acme", "ann", "")
    with pytest.raises(PermissionDenied):
        authn.authenticate("/ragmesh.retrieval.v1.RetrievalService/Search", {**md, context.TENANT_HEADER: "other"})
    with pytest.raises(PermissionDenied):
        authn.authenticate("/ragmesh.inference.v1.InferenceService/Embed", md)


def test_a_service_token_acts_for_the_tenant_it_names(tmp_path: Path) -> None:
    authn = _authenticator(tmp_path)
    svc = ISSUER.issue(tenant="*", subject="svc_ingest", roles=("service",), audience="ragmesh-internal", ttl_s=60)
    md = {"authorization": f"Bearer {svc}", context.TENANT_HEADER: "acme", context.SUBJECT_HEADER: "ann"}
    who = authn.authenticate("/ragmesh.inference.v1.InferenceService/Embed", md)
    assert who is not None and (who.tenant, who.subject, who.service) == ("acme", "ann", "svc_ingest")
    roleless = ISSUER.issue(tenant="*", subject="x", roles=("admin",), audience="ragmesh-internal", ttl_s=60)
    with pytest.raises(Unauthenticated):
        authn.authenticate("/ragmesh.inference.v1.InferenceService/Embed", {"authorization": f"Bearer {roleless}"})


def test_missing_and_malformed_authorization(tmp_path: Path) -> None:
    authn = _authenticator(tmp_path)
    for md, reason in (({}, "TOKEN_MISSING"), ({"authorization": "Basic abc"}, "TOKEN_MALFORMED")):
        with pytest.raises(Unauthenticated) as info:
            authn.authenticate("/ragmesh.retrieval.v1.RetrievalService/Search", md)
        assert info.value.reason == reason


def test_the_service_token_file_is_reread_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "svc.jwt"
    path.write_text("one\n")
    set_service_token_file(path)
    try:
        assert service_token() == "one"
        path.write_text("two")
        import os

        os.utime(path, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
        assert service_token() == "two"
    finally:
        set_service_token_file(None)
