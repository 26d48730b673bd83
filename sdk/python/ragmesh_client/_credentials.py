"""The caller's token: a fixed string, or a hook the SDK asks before every call."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeAlias

TokenSource: TypeAlias = str | Callable[[], str]
"""A bearer token, or a callable returning the current one (called before every attempt)."""

AUTHORIZATION = "authorization"


class Credential:
    """Produces the ``authorization`` metadata of each attempt."""

    def __init__(self, token: TokenSource | None) -> None:
        self._token = token

    @property
    def refreshable(self) -> bool:
        """Whether a new token can be asked for (the token is a hook, not a fixed string)."""
        return callable(self._token)

    def token(self) -> str:
        """The token to send now ("" when the client has none)."""
        if self._token is None:
            return ""
        return self._token() if callable(self._token) else self._token

    def metadata(self, token: str) -> list[tuple[str, str]]:
        return [(AUTHORIZATION, f"Bearer {token}")] if token else []
