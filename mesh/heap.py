"""The cyclic garbage collector in a long-running service: start-up objects frozen, pauses measured.

A service starts by importing its libraries and loading what it serves from
(vocabularies, word frequencies, protobuf descriptors, clients): some 180,000
objects in svc_retrieval, none of which will ever be garbage. CPython's oldest
generation holds them all, so each full collection walks every one of them (about
0.1 s on these machines, more under load) only to find the few cycles that
requests left behind. ``freeze_startup_heap`` collects once and then moves
everything alive into the permanent generation (``gc.freeze``): later collections
walk only what was allocated since. Nothing is leaked by this; frozen objects are
still freed by reference counting, only cycles among them are never broken.

``watch_pauses`` times every collection into ``ragmesh_gc_pause_seconds`` (by
generation), so what the collector costs a service is visible on its metrics.
"""

from __future__ import annotations

import gc
import logging
import time
from typing import Any

from prometheus_client import Counter, Gauge

log = logging.getLogger(__name__)

GC_PAUSE_SECONDS = Counter(
    "ragmesh_gc_pause_seconds",
    "Time the cyclic garbage collector held the interpreter, by generation collected.",
    ("generation",),
)
GC_FROZEN_OBJECTS = Gauge(
    "ragmesh_gc_frozen_objects",
    "Objects moved to the collector's permanent generation at start-up (never walked by later collections).",
)

_started: list[float] = []
_watching = False


def _on_collection(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _started.append(time.perf_counter())
    elif _started:
        GC_PAUSE_SECONDS.labels(str(info.get("generation", ""))).inc(time.perf_counter() - _started.pop())


def watch_pauses() -> None:
    """Times every collection from now on into ``ragmesh_gc_pause_seconds`` (idempotent)."""
    global _watching
    if not _watching:
        gc.callbacks.append(_on_collection)
        _watching = True


def freeze_startup_heap() -> int:
    """Collects once, then moves every object alive into the permanent generation; returns how many moved."""
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    GC_FROZEN_OBJECTS.set(frozen)
    log.info("start-up heap frozen", extra={"fields": {"objects": frozen}})
    return frozen
