"""Per-method deadlines and retry policy, read from the services' own service configs.

``make proto`` gathers the ``service_config.json`` that sits beside each
service's protos into ``service_config.json`` in this package, so the SDK
uses the same deadlines and retry policy (UNAVAILABLE only) as the mesh's own
channels. grpclib has no service-config support, so the SDK applies it itself,
over both transports alike.
"""

from __future__ import annotations

import functools
import json
import random
from dataclasses import dataclass, replace
from importlib import resources
from typing import Any

from ragmesh_client.errors import Code

_DEFAULT_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class RetryPolicy:
    """How one method is retried: at most ``max_attempts`` calls, exponential backoff with jitter."""

    max_attempts: int = 1
    initial_backoff_s: float = 0.1
    max_backoff_s: float = 1.0
    backoff_multiplier: float = 2.0
    retryable: frozenset[Code] = frozenset({Code.UNAVAILABLE})

    def backoff_s(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1-based): uniform in [0, the capped exponential]."""
        ceiling = min(self.initial_backoff_s * self.backoff_multiplier ** (retry - 1), self.max_backoff_s)
        return random.uniform(0.0, ceiling)


@dataclass(frozen=True)
class MethodPolicy:
    """A method's default deadline and retry policy."""

    timeout_s: float = _DEFAULT_TIMEOUT_S
    retry: RetryPolicy = RetryPolicy()


def _seconds(text: str) -> float:
    return float(text.removesuffix("s"))


def _method_policy(config: dict[str, Any]) -> MethodPolicy:
    timeout_s = _seconds(config["timeout"]) if "timeout" in config else _DEFAULT_TIMEOUT_S
    raw = config.get("retryPolicy")
    if raw is None:
        return MethodPolicy(timeout_s=timeout_s)
    codes = frozenset(Code[name] for name in raw.get("retryableStatusCodes", ()))
    # The mesh retries UNAVAILABLE only; a config that named other codes would not be honoured here.
    retry = RetryPolicy(
        max_attempts=int(raw.get("maxAttempts", 1)),
        initial_backoff_s=_seconds(raw.get("initialBackoff", "0.1s")),
        max_backoff_s=_seconds(raw.get("maxBackoff", "1s")),
        backoff_multiplier=float(raw.get("backoffMultiplier", 2)),
        retryable=codes & {Code.UNAVAILABLE},
    )
    return MethodPolicy(timeout_s=timeout_s, retry=retry)


def parse_service_config(document: dict[str, Any]) -> dict[str, MethodPolicy]:
    """``{"/pkg.Service/Method": policy}`` (and ``"/pkg.Service/"`` for a whole service) from a service config."""
    out: dict[str, MethodPolicy] = {}
    for config in document.get("methodConfig", ()):
        policy = _method_policy(config)
        for name in config.get("name", ()):
            out[f"/{name['service']}/{name.get('method', '')}"] = policy
    return out


@functools.cache
def bundled() -> dict[str, MethodPolicy]:
    """The policies of every ragmesh service, from the service configs bundled with the SDK."""
    text = resources.files("ragmesh_client").joinpath("service_config.json").read_text(encoding="utf-8")
    out: dict[str, MethodPolicy] = {}
    for document in json.loads(text):
        out.update(parse_service_config(document))
    return out


def for_method(route: str, *, timeout_s: float | None = None, max_attempts: int | None = None) -> MethodPolicy:
    """The policy of ``route`` (``/pkg.Service/Method``), with the caller's overrides applied."""
    policies = bundled()
    service = route.rsplit("/", 1)[0] + "/"
    policy = policies.get(route) or policies.get(service) or MethodPolicy()
    if timeout_s is not None:
        policy = replace(policy, timeout_s=timeout_s)
    if max_attempts is not None:
        policy = replace(policy, retry=replace(policy.retry, max_attempts=max(1, max_attempts)))
    return policy
