"""What every client command shares: where to connect and as whom.

A command presents a token: ``--token`` or ``RAGMESH_TOKEN`` (from
``ragmesh token issue`` or your identity provider). With neither, it mints a
short-lived dev token for ``--tenant`` from the local stack's key, which only
someone who can read the stack's secrets folder can do, so the README's
commands keep working on a developer's own stack.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import re
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import ragmesh_client
from mesh.settings import MeshSettings

T = TypeVar("T")

MAX_LIMIT_WAITS = 5
"""Most times a client command waits out the edge's rate-limit hint before it reports the refusal."""

DEV_TOKEN_TTL_S = 15 * 60
DEV_TOKEN_ROLES = ("reader", "editor")


def add_connection_args(parser: argparse.ArgumentParser) -> None:
    """Adds --addr (default: the Envoy edge), --token and --tenant (default: "default")."""
    parser.add_argument("--addr", default=None, help="host:port to call (default: the Envoy edge, RAGMESH_EDGE_ADDR)")
    parser.add_argument(
        "--token",
        default=os.environ.get("RAGMESH_TOKEN") or None,
        help="bearer token to call with (default: RAGMESH_TOKEN; without one, a 15-minute dev token for --tenant "
        "is minted from the local stack's key)",
    )
    parser.add_argument(
        "--tenant", default="default", help="tenant of the dev token minted when no --token is given (default: default)"
    )


def client(args: argparse.Namespace) -> ragmesh_client.AsyncClient:
    """The SDK's client for --addr or the edge, calling with this command's token (minted on first use)."""
    target = args.addr or MeshSettings.from_env().edge_addr
    return ragmesh_client.AsyncClient(target, lambda: token(args))


class NoCredential(RuntimeError):
    """No --token, no RAGMESH_TOKEN, and no local stack key to mint a dev token with."""


def dev_token(tenant: str, *, subject: str | None = None, roles: tuple[str, ...] = DEV_TOKEN_ROLES) -> str:
    """A short-lived token for ``tenant`` from the local stack's key (the one ``ragmesh up`` made)."""
    from mesh.stack import StackConfig, StackLayout, identity

    config = StackConfig.from_env()
    layout = StackLayout(config.home)
    if not layout.signing_key_file.is_file():
        raise NoCredential(
            f"no token given and no local stack key at {layout.signing_key_file}: "
            "pass --token (or set RAGMESH_TOKEN), or start the stack with ragmesh up"
        )
    return identity.issue_token(
        config, layout, tenant=tenant, subject=subject or getpass.getuser(), roles=roles, ttl_s=DEV_TOKEN_TTL_S
    )


def token(args: argparse.Namespace) -> str:
    """The token this command calls with: --token / RAGMESH_TOKEN, else a dev token for --tenant.

    A minted dev token is minted again a minute before it expires, so a long run (``eval answers``
    over the dev set on a slow machine) does not fail UNAUTHENTICATED halfway.
    """
    if args.token:
        given: str = args.token
        return given
    cached = getattr(args, "_token_cache", None)
    now = time.monotonic()
    if cached is None or now >= cached[1]:
        cached = (dev_token(args.tenant), now + DEV_TOKEN_TTL_S - 60)
        args._token_cache = cached
    value: str = cached[0]
    return value


def report_error(err: ragmesh_client.RagmeshError, *, as_json: bool = False) -> int:
    """Prints a failed call the way people and scripts can use it (code, message, reason, field violations);
    returns the exit code."""
    violations = [(v.field, v.description) for v in err.field_violations]
    return _report(err.code.name, err.message, err.reason, violations, as_json=as_json)


def _report(code: str, message: str, reason: str, violations: list[tuple[str, str]], *, as_json: bool) -> int:
    if as_json:
        import json

        listed: list[dict[str, Any]] = [{"field": f, "description": d} for f, d in violations]
        print(json.dumps({"error": {"code": code, "message": message, "reason": reason, "violations": listed}}))
    else:
        print(f"error: {code}: {message}" + (f" ({reason})" if reason else ""), file=sys.stderr)
        for field, description in violations:
            print(f"  {field}: {description}", file=sys.stderr)
        if code == "UNAVAILABLE":
            print("  is the mesh up? try: ragmesh status", file=sys.stderr)
    return 3 if code == "INVALID_ARGUMENT" else 1


async def within_limits(call: Callable[[], Awaitable[T]], *, max_waits: int = MAX_LIMIT_WAITS) -> T:
    """``call()``, again after the edge's hint while the tenant is over its rate limit.

    A long evaluation runs past its tenant's per-second limit as any busy client
    would; like a well-behaved one it waits the ``retry in N s`` the refusal
    names (``x-ratelimit-reset``) instead of failing the whole run.
    """
    for wait in range(max_waits + 1):
        try:
            return await call()
        except ragmesh_client.ResourceExhausted as err:
            hint = re.search(r"retry in (\d+) s", err.message)
            if hint is None or wait == max_waits:
                raise
            await asyncio.sleep(int(hint.group(1)) + 0.1)
    raise AssertionError("unreachable")
