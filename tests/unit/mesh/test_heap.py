"""mesh.heap: the start-up heap leaves the collector's walks, and every collection's pause is counted."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from mesh import heap


def _pause_total() -> float:
    return sum(
        sample.value
        for metric in heap.GC_PAUSE_SECONDS.collect()
        for sample in metric.samples
        if sample.name.endswith("_total")
    )


@pytest.fixture
def thawed() -> Iterator[None]:
    # Other tests in this process must see CPython's ordinary collector again.
    yield
    gc.unfreeze()


def test_freezing_moves_every_live_object_out_of_the_collected_generations(thawed: None) -> None:
    kept = [[] for _ in range(1000)]
    frozen = heap.freeze_startup_heap()
    assert frozen >= len(kept)
    assert heap.GC_FROZEN_OBJECTS._value.get() == frozen
    # The collector's generations (what a collection walks) no longer hold them: they are in the permanent one.
    walked = {id(o) for o in gc.get_objects()}
    assert not any(id(k) in walked for k in kept)


def test_a_frozen_heap_still_frees_by_reference_count(thawed: None) -> None:
    class Marker:
        pass

    alive = Marker()
    heap.freeze_startup_heap()
    probe = weakref.ref(alive)
    del alive
    assert probe() is None


def test_every_collection_is_timed_once_watched() -> None:
    heap.watch_pauses()
    heap.watch_pauses()
    assert gc.callbacks.count(heap._on_collection) == 1
    before = _pause_total()
    gc.collect()
    assert _pause_total() > before
