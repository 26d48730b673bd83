"""The last corpus version seen per tenant, for answers while the graph store is down.

The durable counter lives in the graph store (bumped in the same transaction as
the graph writes); this process-local memory only lets a degraded search still
report the version it last knew instead of none.
"""

from __future__ import annotations


class KnownVersions:
    """Highest corpus version seen per tenant in this process."""

    def __init__(self) -> None:
        self._versions: dict[str, int] = {}

    def remember(self, tenant: str, version: int) -> None:
        """Records ``version`` unless a higher one is already known."""
        if version > self._versions.get(tenant, 0):
            self._versions[tenant] = version

    def last_known(self, tenant: str) -> int:
        """The highest version seen, or 0 (unknown: callers must not cache on it)."""
        return self._versions.get(tenant, 0)
