"""Deterministic identities: the content hash of a chunk and its point id.

The point id is a UUID5 of (tenant, doc_id, chunk_index, chunk_hash), so the
same content of the same document always lands on the same point: re-ingesting
it writes nothing new, and a changed chunk gets a new id (the old one is then
removed as stale when the document's new version is complete).
"""

from __future__ import annotations

import hashlib
import uuid

from mesh import entities
from svc_retrieval.domain.model import ChunkInput, DocumentMeta

# Fixed namespace of ragmesh chunk ids; changing it would re-key every index.
CHUNK_NAMESPACE = uuid.UUID("6f1d3c2e-9a4b-5e07-8c61-2b7f0d9e4a15")

# Separates fields inside hashed material; it cannot occur in the ids or text we accept
# without changing meaning, because lengths are hashed along with the values.
_SEP = b"\x1f"


def chunk_hash(document: DocumentMeta, chunk: ChunkInput) -> str:
    """SHA-256 (hex) over what a chunk shows a reader: its text, section, title, source and type.

    Vectors are left out on purpose: re-embedding the same text can differ in the
    last bits, and that must not count as new content.
    """
    digest = hashlib.sha256()
    for part in (chunk.text, chunk.section, document.title, document.source_uri, document.document_type):
        data = part.encode("utf-8")
        digest.update(str(len(data)).encode("ascii"))
        digest.update(_SEP)
        digest.update(data)
    return digest.hexdigest()


def point_id(tenant: str, doc_id: str, chunk_index: int, hash_hex: str) -> str:
    """The chunk's point id: UUID5 of tenant, document, position and content hash."""
    name = _SEP.join(
        [tenant.encode("utf-8"), doc_id.encode("utf-8"), str(chunk_index).encode("ascii"), hash_hex.encode("ascii")]
    )
    return str(uuid.uuid5(CHUNK_NAMESPACE, name.decode("utf-8")))


def normalize_entity(name: str) -> str:
    """The key that makes "Kube-Proxy " and "kube-proxy", or "PodDisruptionBudgets" and "pod disruption
    budget", one entity: the extractor's own normalizer (``mesh.entities.normalize``), whichever
    extractor found the name, so the graph leg's question keys meet what ingest wrote."""
    return entities.normalize(name)
