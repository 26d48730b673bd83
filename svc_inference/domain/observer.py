"""What the model runtime reports about its work, as a port: the domain names the events, a hosting records them.

``ModelRuntime`` calls an ``InferenceObserver`` when a request starts and ends
on a model, is refused before reaching one, ends a generation, and when a
backend reports a batch size or a generation's token counts and timings. The
service records these as Prometheus metrics (``svc_inference.metrics``); the
domain itself imports no metrics library. ``NullObserver`` records nothing.
"""

from __future__ import annotations

from typing import Protocol

from svc_inference.domain.model import GenerationSummary, Priority


class InferenceObserver(Protocol):
    """Receives the runtime's events."""

    def request_started(self, model: str, priority: Priority) -> None:
        """A request is waiting for or running on ``model``."""

    def request_ended(self, model: str, priority: Priority) -> None:
        """That request left the model (answered, refused or failed)."""

    def rejected(self, model: str, reason: str) -> None:
        """A request was refused before reaching ``model`` (for example QUEUE_FULL)."""

    def generation_ended(self, model: str, outcome: str) -> None:
        """A generation ended: stop, length, cancelled or error."""

    def batch(self, model: str, size: int) -> None:
        """The backend computed a request in a batch of ``size`` items."""

    def generation_summary(self, summary: GenerationSummary) -> None:
        """A backend's token counts and timings of one generation."""


class NullObserver:
    """An observer that records nothing."""

    def request_started(self, model: str, priority: Priority) -> None:
        return None

    def request_ended(self, model: str, priority: Priority) -> None:
        return None

    def rejected(self, model: str, reason: str) -> None:
        return None

    def generation_ended(self, model: str, outcome: str) -> None:
        return None

    def batch(self, model: str, size: int) -> None:
        return None

    def generation_summary(self, summary: GenerationSummary) -> None:
        return None
