from __future__ import annotations

import pytest

from mesh.errors import InvalidArgument
from mesh.priority import BATCH, BATCH_METADATA, INTERACTIVE, PRIORITY_HEADER, priority_of


def test_a_call_without_the_header_is_interactive() -> None:
    assert priority_of(None) == INTERACTIVE
    assert priority_of([("x-ragmesh-tenant", "t")]) == INTERACTIVE


def test_batch_is_read_from_text_or_bytes_values() -> None:
    assert priority_of(BATCH_METADATA) == BATCH
    assert priority_of([(PRIORITY_HEADER, b" Batch ")]) == BATCH


def test_an_unknown_priority_is_invalid_argument() -> None:
    with pytest.raises(InvalidArgument) as info:
        priority_of([(PRIORITY_HEADER, "urgent")])
    assert info.value.reason == "INVALID_PRIORITY"
    assert info.value.violations[0].field == PRIORITY_HEADER
