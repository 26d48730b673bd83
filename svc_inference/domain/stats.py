"""Live counters of one LLM backend, updated from its generation thread and read from anywhere."""

from __future__ import annotations

import threading

from svc_inference.domain.model import FinishReason, GenerationStats


class GenerationCounters:
    """Started, completed, cancelled and failed generations, tokens generated, and what runs or waits now.

    Tokens are counted as they are produced, so a reader sees generation stop
    the moment a cancelled request frees its slot.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._started = 0
        self._completed = 0
        self._cancelled = 0
        self._failed = 0
        self._tokens = 0
        self._active = 0
        self._waiting = 0

    def waiting(self, delta: int) -> None:
        """A request started (+1) or stopped (-1) waiting for a model slot."""
        with self._lock:
            self._waiting += delta

    def start(self) -> None:
        """A generation got its slot and begins."""
        with self._lock:
            self._started += 1
            self._active += 1

    def token(self, n: int = 1) -> None:
        """``n`` completion tokens were produced."""
        with self._lock:
            self._tokens += n

    def finish(self, reason: FinishReason) -> None:
        """A started generation ended for ``reason``."""
        with self._lock:
            self._active -= 1
            if reason is FinishReason.CANCELLED:
                self._cancelled += 1
            else:
                self._completed += 1

    def fail(self) -> None:
        """A started generation ended with an error."""
        with self._lock:
            self._active -= 1
            self._failed += 1

    def snapshot(self) -> GenerationStats:
        """The counters as they are now."""
        with self._lock:
            return GenerationStats(
                started=self._started,
                completed=self._completed,
                cancelled=self._cancelled,
                failed=self._failed,
                tokens_generated=self._tokens,
                active=self._active,
                waiting=self._waiting,
            )
