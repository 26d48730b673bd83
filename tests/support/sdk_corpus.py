"""The SDK e2e tests' own small corpus: two documents, ingested for their tenant through the SDK."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import ragmesh_client

TENANT = "e2e-sdk"
DOCS = {
    "quillfeather-rollouts.md": (
        "# Quillfeather rollouts\n\n"
        "A Quillfeather rollout replaces the running replicas of a service in waves of three. "
        "Each wave waits for the new replicas to report ready for forty seconds before the next wave starts. "
        "If a wave fails its readiness check, the Quillfeather controller rolls the whole service back to the "
        "previous revision and records the failed revision in the audit log.\n"
    ),
    "quillfeather-quotas.md": (
        "# Quillfeather quotas\n\n"
        "Every Quillfeather namespace has a quota of twelve replicas and sixty-four gibibytes of memory. "
        "A rollout that would exceed the quota is refused before its first wave. "
        "Operators raise a quota by filing a quota request with the platform team.\n"
    ),
}


def token() -> str:
    """A fresh token for TENANT from the running stack's key (RAGMESH_HOME): the SDK's token hook."""
    from mesh.cli.common import dev_token

    return dev_token(TENANT, subject="e2e-sdk")


@dataclass(frozen=True)
class Corpus:
    """Where the corpus's files are, and the progress events of the job that ingested them."""

    folder: Path
    events: list[ragmesh_client.ingest.StreamIngestJobResponse]


async def ingest(edge_addr: str, folder: Path) -> Corpus:
    """Writes the documents under ``folder`` and ingests them for TENANT (graph skipped), following the job."""
    for name, text in DOCS.items():
        (folder / name).write_text(text, encoding="utf-8")
    async with ragmesh_client.AsyncClient(edge_addr, token) as client:
        events = [event async for event in client.ingest([folder], skip_graph=True, timeout_s=600)]
    return Corpus(folder, events)
