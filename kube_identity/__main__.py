"""``python -m kube_identity {jwks,service,issue}``: see the package docstring."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mesh.auth import ROLES, SigningKey, TokenIssuer
from mesh.auth.keys import public_jwk
from mesh.settings import MeshSettings

JWKS_FILE = "jwks.json"
TOKEN_FILE = "service.token"


def _write(path: Path, text: str, mode: int) -> None:
    """Atomically, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def jwks_from(key_file: Path) -> dict[str, list[dict[str, str]]]:
    """The JWKS of a PEM key file, private (PKCS#1 or PKCS#8) or public."""
    data = key_file.read_bytes()
    if b"PRIVATE KEY" in data:
        return SigningKey.load(key_file).jwks()
    public = serialization.load_pem_public_key(data)
    if not isinstance(public, rsa.RSAPublicKey):
        raise ValueError(f"{key_file} does not hold an RSA public key")
    return {"keys": [public_jwk(public)]}


def write_jwks(key_file: Path, out_dir: Path) -> Path:
    path = out_dir / JWKS_FILE
    _write(path, json.dumps(jwks_from(key_file), indent=2) + "\n", 0o644)
    return path


def service_token(key_file: Path, service: str, ttl_s: float, settings: MeshSettings) -> str:
    key = SigningKey.load(key_file)
    issuer = TokenIssuer(key.private_key, key.kid, settings.auth_issuer)
    return issuer.issue(
        tenant="*", subject=service, roles=("service",), audience=settings.auth_internal_audience, ttl_s=ttl_s
    )


def run_service(args: argparse.Namespace, settings: MeshSettings, stop: threading.Event) -> int:
    """Writes the JWKS and the token, then re-mints every refresh_s (re-reading the key: a rotated key is picked up)."""
    if not 0 < args.refresh_s < args.ttl_s:
        raise SystemExit("--refresh-s must be positive and shorter than --ttl-s, so a token never expires in use")
    while True:
        write_jwks(args.key, args.out)
        _write(args.out / TOKEN_FILE, service_token(args.key, args.service, args.ttl_s, settings), 0o600)
        if args.once or stop.wait(args.refresh_s):
            return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kube_identity", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    jwks = commands.add_parser("jwks", help="write jwks.json for a key (private or public PEM)")
    jwks.add_argument("--key", type=Path, required=True)
    jwks.add_argument("--out", type=Path, required=True, help="folder to write jwks.json into")
    service = commands.add_parser("service", help="write jwks.json and a service token, and keep the token fresh")
    service.add_argument("--key", type=Path, required=True, help="the signing key (private PEM)")
    service.add_argument("--out", type=Path, required=True, help="folder to write jwks.json and service.token into")
    service.add_argument("--service", required=True, help="the service the token names (svc_agent, ...)")
    service.add_argument("--ttl-s", type=float, default=24 * 3600.0, help="token lifetime (default one day)")
    service.add_argument("--refresh-s", type=float, default=3600.0, help="re-mint this often (default hourly)")
    service.add_argument("--once", action="store_true", help="write once and exit")
    issue = commands.add_parser("issue", help="print a token for a person or program")
    issue.add_argument("--key", type=Path, required=True, help="the signing key (private PEM)")
    issue.add_argument("--tenant", required=True)
    issue.add_argument("--subject", required=True)
    issue.add_argument("--roles", default="reader", help=f"comma-separated, of {', '.join(sorted(ROLES))}")
    issue.add_argument("--ttl-s", type=float, default=3600.0)
    args = parser.parse_args(argv)
    settings = MeshSettings.from_env()
    try:
        if args.command == "jwks":
            write_jwks(args.key, args.out)
            return 0
        if args.command == "service":
            stop = threading.Event()
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
            return run_service(args, settings, stop)
        roles = [r.strip() for r in args.roles.split(",") if r.strip()]
        unknown = sorted(set(roles) - set(ROLES))
        if unknown:
            raise ValueError(f"unknown roles {unknown}; roles are {sorted(ROLES)}")
        key = SigningKey.load(args.key)
        token = TokenIssuer(key.private_key, key.kid, settings.auth_issuer).issue(
            tenant=args.tenant, subject=args.subject, roles=roles, audience=settings.auth_audience, ttl_s=args.ttl_s
        )
        print(token)
        return 0
    except (OSError, ValueError) as exc:
        print(f"kube_identity: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
