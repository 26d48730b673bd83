"""``ragmesh token issue``: mint a token from the local stack's signing key.

For people (``--subject ann --roles reader``) and programs (``--subject ci-bot
--roles editor``) of one tenant. The token goes to stdout alone, so
``export RAGMESH_TOKEN=$(ragmesh token issue ...)`` works; the claims go to
stderr.
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

from mesh.auth import ROLES
from mesh.auth.tokens import TENANT_RE

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_MAX_TTL_S = 90 * 86400


def parse_ttl(text: str) -> int:
    """``900``, ``15m``, ``12h`` or ``30d`` as seconds (at most 90 days)."""
    match = re.fullmatch(r"(\d+)([smhd]?)", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 900, 15m, 12h or 30d")
    seconds = int(match.group(1)) * _UNITS[match.group(2) or "s"]
    if not 1 <= seconds <= _MAX_TTL_S:
        raise argparse.ArgumentTypeError("the lifetime must be between 1 second and 90 days")
    return seconds


def parse_roles(text: str) -> tuple[str, ...]:
    roles = tuple(r for r in (part.strip() for part in text.split(",")) if r)
    unknown = [r for r in roles if r not in ROLES]
    if not roles or unknown:
        raise argparse.ArgumentTypeError(f"roles are a comma-separated subset of {', '.join(ROLES)}")
    return roles


def parse_tenant(text: str) -> str:
    if not TENANT_RE.match(text):
        raise argparse.ArgumentTypeError(
            "a tenant is 1-63 characters of a-z, 0-9, '_' or '-', starting with a letter or digit"
        )
    return text


def _issue(args: argparse.Namespace) -> int:
    from mesh.stack import StackConfig, StackLayout, identity

    config = StackConfig.from_env()
    layout = StackLayout(config.home)
    if not layout.signing_key_file.is_file():
        print(
            f"error: no signing key at {layout.signing_key_file}: start the stack first (ragmesh up)", file=sys.stderr
        )
        return 2
    token = identity.issue_token(
        config, layout, tenant=args.tenant, subject=args.subject, roles=args.roles, ttl_s=args.ttl
    )
    print(token)
    print(
        f"tenant={args.tenant} subject={args.subject} roles={','.join(args.roles)} expires in {args.ttl}s",
        file=sys.stderr,
    )
    return 0


def register(subparsers: Any) -> None:
    """Add ``token issue`` to the ``ragmesh`` parser."""
    token = subparsers.add_parser("token", help="mint tokens from the local stack's signing key")
    sub = token.add_subparsers(dest="token_command", metavar="ACTION")
    sub.required = True
    issue = sub.add_parser("issue", help="print a signed token for a tenant, subject and roles")
    issue.add_argument("--tenant", required=True, type=parse_tenant, help="the tenant whose data the token may touch")
    issue.add_argument("--subject", required=True, help="who holds it: a person or a program (the sub claim)")
    issue.add_argument(
        "--roles", type=parse_roles, default=("reader",), help="comma-separated: reader, editor, admin (default reader)"
    )
    issue.add_argument("--ttl", type=parse_ttl, default=3600, help="lifetime: 900, 15m, 12h, 30d (default 1h)")
    issue.set_defaults(func=_issue)
