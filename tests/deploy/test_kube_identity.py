"""kube_identity turns the cluster's signing key into the JWKS and tokens the services verify."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from kube_identity.__main__ import JWKS_FILE, TOKEN_FILE, jwks_from, main, run_service
from mesh.auth import TokenVerifier, load_jwks
from mesh.settings import MeshSettings

ENV = {"RAGMESH_AUTH_ISSUER": "ragmesh"}


@pytest.fixture
def key_files(tmp_path: Path) -> tuple[Path, Path]:
    """A private key as terraform's tls_private_key writes it (PKCS#1 PEM) and its public half."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = tmp_path / "signing-key.pem"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        )
    )
    public = tmp_path / "public-key.pem"
    public.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return private, public


def _verifier(jwks: Path, audience: str) -> TokenVerifier:
    return TokenVerifier(load_jwks(jwks), issuer="ragmesh", audiences=[audience])


def test_public_and_private_keys_give_the_same_jwks(key_files: tuple[Path, Path]) -> None:
    private, public = key_files
    assert jwks_from(private) == jwks_from(public)
    assert jwks_from(public)["keys"][0]["alg"] == "RS256"


def test_service_token_is_accepted_by_the_services_verifier(
    key_files: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    out = tmp_path / "identity"
    args = ["service", "--key", str(key_files[0]), "--out", str(out), "--service", "svc_agent", "--once"]
    assert main(args) == 0
    token = (out / TOKEN_FILE).read_text()
    assert (out / TOKEN_FILE).stat().st_mode & 0o777 == 0o600
    internal = MeshSettings.from_env().auth_internal_audience
    claims = _verifier(out / JWKS_FILE, internal).verify(token)
    assert (claims.subject, claims.tenant, claims.roles) == ("svc_agent", "*", frozenset({"service"}))
    # A service token is never accepted where people's tokens are (the edge's audience).
    with pytest.raises(Exception, match=r"(?i)audience"):
        _verifier(out / JWKS_FILE, MeshSettings.from_env().auth_audience).verify(token)


def test_the_sidecar_re_mints_before_expiry_and_stops_on_request(key_files: tuple[Path, Path], tmp_path: Path) -> None:
    import argparse

    out = tmp_path / "identity"
    args = argparse.Namespace(key=key_files[0], out=out, service="svc_retrieval", ttl_s=60.0, refresh_s=0.2, once=False)
    stop = threading.Event()
    worker = threading.Thread(target=run_service, args=(args, MeshSettings.from_env(ENV), stop))
    worker.start()
    try:
        deadline = time.monotonic() + 10
        while not (out / TOKEN_FILE).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        first = (out / TOKEN_FILE).read_text()
        while (out / TOKEN_FILE).read_text() == first and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (out / TOKEN_FILE).read_text() != first
    finally:
        stop.set()
        worker.join(timeout=10)
    assert not worker.is_alive()


def test_refresh_must_come_before_expiry(key_files: tuple[Path, Path], tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="shorter than --ttl-s"):
        main(
            [
                "service",
                "--key",
                str(key_files[0]),
                "--out",
                str(tmp_path),
                "--service",
                "x",
                "--ttl-s",
                "60",
                "--refresh-s",
                "60",
            ]
        )


def test_issue_prints_a_token_for_people(key_files: tuple[Path, Path], tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "kube_identity",
            "issue",
            "--key",
            str(key_files[0]),
            "--tenant",
            "acme",
            "--subject",
            "ops",
            "--roles",
            "reader,editor",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **ENV},
    )
    assert done.returncode == 0, done.stderr
    assert main(["jwks", "--key", str(key_files[1]), "--out", str(tmp_path)]) == 0
    claims = _verifier(tmp_path / JWKS_FILE, MeshSettings.from_env().auth_audience).verify(done.stdout.strip())
    assert (claims.tenant, claims.subject, claims.roles) == ("acme", "ops", frozenset({"reader", "editor"}))


def test_issue_refuses_unknown_roles(key_files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["issue", "--key", str(key_files[0]), "--tenant", "acme", "--subject", "ops", "--roles", "root"]) == 1
    assert "unknown roles" in capsys.readouterr().err
