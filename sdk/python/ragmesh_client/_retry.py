"""When an attempt that failed is tried again: the one decision both clients share."""

from __future__ import annotations

from dataclasses import dataclass

from ragmesh_client.errors import RagmeshError, Unauthenticated
from ragmesh_client.policy import MethodPolicy


@dataclass
class Attempts:
    """The state of one logical call across its attempts."""

    policy: MethodPolicy
    refreshable: bool
    attempt: int = 1
    refreshed: bool = False

    def next_delay_s(self, error: RagmeshError, *, sent_token: str, new_token: str, received: bool) -> float | None:
        """Seconds to wait before trying again, or None to raise ``error``.

        Only UNAVAILABLE is retried (up to the policy's attempts), and a stream only
        before its first message, so no caller ever sees an event twice. An
        UNAUTHENTICATED answer is tried once more when the token hook now gives a
        different token (it expired between minting and use).
        """
        if received:
            return None
        if isinstance(error, Unauthenticated):
            if self.refreshable and not self.refreshed and new_token and new_token != sent_token:
                self.refreshed = True
                return 0.0
            return None
        retry = self.policy.retry
        if error.code in retry.retryable and self.attempt < retry.max_attempts:
            self.attempt += 1
            return retry.backoff_s(self.attempt - 1)
        return None
