"""Helpers of the agent's integration tests: the sample pages indexed for them and how they are chunked."""

from __future__ import annotations

import re
from pathlib import Path

SAMPLE_DOCS = (
    "k8s/concepts/architecture/garbage-collection.md",
    "k8s/concepts/workloads/controllers/cron-jobs.md",
    "k8s/concepts/overview/working-with-objects/namespaces.md",
    "k8s/concepts/workloads/pods/pod-qos.md",
    "k8s/concepts/configuration/configmap.md",
)
SAMPLES = Path(__file__).resolve().parents[2] / "samples"
# Short enough for the embedder's 256-token limit even for YAML, as ingestion's token-sized chunks are.
MAX_CHUNK_CHARS = 400


def chunk_markdown(text: str) -> tuple[str, list[tuple[str, str]]]:
    """(title, [(section, text)]): front matter gives the title, headings the sections, paragraphs the cuts."""
    title = ""
    if text.startswith("---\n"):
        end = text.find("\n---\n", 4)
        for line in text[4:end].splitlines():
            if line.startswith("title:"):
                title = line.split(":", 1)[1].strip().strip("\"'")
        text = text[end + 5 :]
    # Runs of table rules ("-----") cost a token a character and say nothing.
    text = re.sub(r"([-=_*])\1{3,}", r"\1\1\1", text)
    chunks: list[tuple[str, str]] = []
    section = title
    current: list[str] = []

    def flush() -> None:
        body = "\n\n".join(current).strip()
        if body:
            chunks.append((section, body))
        current.clear()

    for block in text.split("\n\n"):
        stripped = block.strip()
        if stripped.startswith("#"):
            flush()
            section = stripped.lstrip("#").strip() or section
            continue
        while len(stripped) > MAX_CHUNK_CHARS:
            flush()
            cut = stripped[:MAX_CHUNK_CHARS].rsplit("\n", 1)[0] or stripped[:MAX_CHUNK_CHARS]
            current.append(cut)
            flush()
            stripped = stripped[len(cut) :].strip()
        if current and sum(len(b) for b in current) + len(stripped) > MAX_CHUNK_CHARS:
            flush()
        if stripped:
            current.append(stripped)
    flush()
    return title, chunks
