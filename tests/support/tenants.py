"""Tenants for tests: each test (or run) gets a tenant of its own, so its stores start empty."""

from __future__ import annotations

import uuid


def new_tenant(label: str = "t") -> str:
    """A tenant no other test uses: ``<label>-<12 hex digits>`` (a valid tenant name for a label of up to 50)."""
    return f"{label}-{uuid.uuid4().hex[:12]}"
