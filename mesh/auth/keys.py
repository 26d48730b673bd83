"""The signing key and the JWKS that verifies it.

The local stack keeps one RSA key under its secrets folder (0600, created by
``ragmesh up`` on first start, never committed) and publishes the public half
as a JWKS file that Envoy and the services read. The key id is the key's
RFC 7638 thumbprint, so a new key never collides with an old one's id.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey


def _b64(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _b64_int(text: str) -> int:
    return int.from_bytes(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), "big")


def public_jwk(key: RSAPublicKey) -> dict[str, str]:
    """The JWK of ``key`` with its thumbprint as kid."""
    numbers = key.public_numbers()
    members = {"e": _b64(numbers.e), "kty": "RSA", "n": _b64(numbers.n)}
    thumbprint = hashlib.sha256(json.dumps(members, separators=(",", ":"), sort_keys=True).encode()).digest()
    kid = base64.urlsafe_b64encode(thumbprint).rstrip(b"=").decode()
    return {**members, "kid": kid, "alg": "RS256", "use": "sig"}


@dataclass(frozen=True)
class SigningKey:
    """A private key and its key id."""

    private_key: RSAPrivateKey
    kid: str

    @classmethod
    def generate(cls) -> SigningKey:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return cls(key, public_jwk(key.public_key())["kid"])

    @classmethod
    def load(cls, path: Path) -> SigningKey:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"{path} does not hold an RSA private key")
        return cls(key, public_jwk(key.public_key())["kid"])

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        return {"keys": [public_jwk(self.private_key.public_key())]}

    def pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def write_jwks(path: Path, key: SigningKey) -> None:
    """Writes the public JWKS of ``key`` (0644: it holds no secret)."""
    text = json.dumps(key.jwks(), indent=2) + "\n"
    if path.is_file() and path.read_text() == text:
        return
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.chmod(0o644)
    os.replace(tmp, path)


def ensure_signing_key(key_file: Path, jwks_file: Path) -> SigningKey:
    """The key in ``key_file`` (created 0600 when absent) with its JWKS written to ``jwks_file``."""
    if key_file.is_file():
        key = SigningKey.load(key_file)
        key_file.chmod(0o600)
    else:
        key = SigningKey.generate()
        _write_private(key_file, key.pem())
    write_jwks(jwks_file, key)
    return key


def load_jwks(path: Path) -> dict[str, RSAPublicKey]:
    """kid -> public key from a JWKS file; raises ValueError on a file that holds no usable key."""
    try:
        document = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read the JWKS {path}: {exc}") from exc
    keys: dict[str, RSAPublicKey] = {}
    for jwk in document.get("keys", []):
        if jwk.get("kty") != "RSA" or "kid" not in jwk:
            continue
        numbers = rsa.RSAPublicNumbers(_b64_int(jwk["e"]), _b64_int(jwk["n"]))
        keys[str(jwk["kid"])] = numbers.public_key()
    if not keys:
        raise ValueError(f"the JWKS {path} holds no RSA key with a kid")
    return keys
