"""How a caller marks a model call as bulk work that may wait: the ``x-ragmesh-priority`` request header.

Priority is about the call, not its content (like its deadline), so it travels
as metadata. The default is interactive: a caller can only lower its own
priority, never jump ahead of people waiting. Ingest's pipeline sends
``batch`` on its Embed and StreamGenerate calls; InferenceService then runs
them only while no interactive call waits.
"""

from __future__ import annotations

from collections.abc import Iterable

from mesh.errors import FieldViolation, InvalidArgument

PRIORITY_HEADER = "x-ragmesh-priority"
"""Request metadata key; its value is one of PRIORITIES."""
INTERACTIVE = "interactive"
"""A person waits on the answer (the default)."""
BATCH = "batch"
"""Bulk work (ingest): runs when no interactive call waits, and backs off when refused."""
PRIORITIES = (INTERACTIVE, BATCH)

BATCH_METADATA = ((PRIORITY_HEADER, BATCH),)
"""Metadata that marks a call as batch work."""


def priority_of(metadata: Iterable[tuple[str, str | bytes]] | None) -> str:
    """The priority a call's metadata asks for (interactive when none); INVALID_ARGUMENT for an unknown value."""
    for key, value in metadata or ():
        if key != PRIORITY_HEADER:
            continue
        text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
        text = text.strip().lower()
        if text not in PRIORITIES:
            raise InvalidArgument(
                f"metadata {PRIORITY_HEADER} is {text!r}; expected one of {list(PRIORITIES)}",
                reason="INVALID_PRIORITY",
                metadata={"header": PRIORITY_HEADER},
                violations=[FieldViolation(PRIORITY_HEADER, f"one of {list(PRIORITIES)}")],
            )
        return text
    return INTERACTIVE
