"""What each role may call.

Roles nest: ``admin`` may do what ``editor`` may, and ``editor`` what
``reader`` may. Reading (search, chunks, the graph, chat and one's own
sessions, ingest job status, the document list, the sandbox the agent also
uses) needs ``reader``; ingesting and deleting documents needs ``editor``.
InferenceService and IndexService are internal: only the mesh's own services
(a service token) may call them, whatever roles a person's token carries, and
the edge does not route them. A method missing from the table is refused, so a
new RPC is closed until someone decides who may call it (a contract test
checks that every RPC has an entry).
"""

from __future__ import annotations

from mesh.errors import PermissionDenied

ROLES: tuple[str, ...] = ("reader", "editor", "admin")
_RANK = {role: rank for rank, role in enumerate(ROLES, start=1)}

SERVICE_ROLE = "service"
"""The role of a mesh service's own token."""

INTERNAL_SERVICES: frozenset[str] = frozenset(
    {"ragmesh.inference.v1.InferenceService", "ragmesh.retrieval.v1.IndexService"}
)

INTERNAL = "internal"

_REQUIRED: dict[str, str] = {
    "ragmesh.retrieval.v1.RetrievalService/Search": "reader",
    "ragmesh.retrieval.v1.RetrievalService/GetChunk": "reader",
    "ragmesh.retrieval.v1.RetrievalService/ExploreGraph": "reader",
    "ragmesh.agent.v1.AgentService/StreamChat": "reader",
    "ragmesh.agent.v1.AgentService/GetSession": "reader",
    "ragmesh.agent.v1.AgentService/ListSessions": "reader",
    "ragmesh.agent.v1.AgentService/DeleteSession": "reader",
    "ragmesh.agent.v1.AgentService/SubmitFeedback": "reader",
    "ragmesh.ingest.v1.IngestService/CreateIngestJob": "editor",
    "ragmesh.ingest.v1.IngestService/UploadDocuments": "editor",
    "ragmesh.ingest.v1.IngestService/CancelIngestJob": "editor",
    "ragmesh.ingest.v1.IngestService/DeleteDocument": "editor",
    "ragmesh.ingest.v1.IngestService/StreamIngestJob": "reader",
    "ragmesh.ingest.v1.IngestService/GetIngestJob": "reader",
    "ragmesh.ingest.v1.IngestService/ListDocuments": "reader",
    "ragmesh.sandbox.v1.SandboxService/Execute": "reader",
    "ragmesh.sandbox.v1.SandboxService/StreamExecute": "reader",
}


def _key(method: str) -> str:
    return method.lstrip("/")


def is_internal_method(method: str) -> bool:
    """Whether ``/pkg.Service/Method`` belongs to an internal-only service."""
    return _key(method).split("/", 1)[0] in INTERNAL_SERVICES


def required_role(method: str) -> str | None:
    """``reader``/``editor``/``admin``, ``internal`` for internal-only methods, None when unknown."""
    if is_internal_method(method):
        return INTERNAL
    return _REQUIRED.get(_key(method))


def has_role(roles: frozenset[str], needed: str) -> bool:
    """Whether ``roles`` include ``needed`` or a role above it."""
    rank = _RANK.get(needed)
    return rank is not None and any(_RANK.get(role, 0) >= rank for role in roles)


def authorize(method: str, roles: frozenset[str], *, service: bool) -> None:
    """Raises ``PermissionDenied`` unless the caller may call ``method``."""
    needed = required_role(method)
    if service:
        return
    if needed is None:
        raise PermissionDenied(
            f"{_key(method)} is not open to callers", reason="METHOD_NOT_ALLOWED", metadata={"method": _key(method)}
        )
    if needed == INTERNAL:
        raise PermissionDenied(
            f"{_key(method)} is internal to the mesh; only its services may call it",
            reason="INTERNAL_ONLY",
            metadata={"method": _key(method)},
        )
    if not has_role(roles, needed):
        held = ", ".join(sorted(roles)) or "none"
        raise PermissionDenied(
            f"{_key(method)} needs the {needed!r} role; the token has {held}",
            reason="ROLE_REQUIRED",
            metadata={"method": _key(method), "role": needed},
        )
