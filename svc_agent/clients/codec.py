"""JSON forms of citations and cached answers, as the stores keep them."""

from __future__ import annotations

import json
from typing import Any

from svc_agent.domain.model import CachedAnswer, Citation

# Bumped when the stored form changes, so old entries read as misses instead of failing.
CACHE_FORMAT = 1


def citation_to_dict(citation: Citation) -> dict[str, Any]:
    """A citation as a JSON object."""
    return {
        "marker": citation.marker,
        "chunk_id": citation.chunk_id,
        "doc_id": citation.doc_id,
        "source_uri": citation.source_uri,
        "title": citation.title,
        "snippet": citation.snippet,
        "score": citation.score,
    }


def citation_from_dict(data: dict[str, Any]) -> Citation:
    """A citation from its JSON object."""
    return Citation(
        marker=int(data["marker"]),
        chunk_id=str(data["chunk_id"]),
        doc_id=str(data.get("doc_id", "")),
        source_uri=str(data.get("source_uri", "")),
        title=str(data.get("title", "")),
        snippet=str(data.get("snippet", "")),
        score=float(data.get("score", 0.0)),
    )


def citations_to_json(citations: tuple[Citation, ...]) -> str:
    """Citations as a JSON array."""
    return json.dumps([citation_to_dict(c) for c in citations])


def citations_from_json(text: str | None) -> tuple[Citation, ...]:
    """Citations from a JSON array."""
    if not text:
        return ()
    return tuple(citation_from_dict(item) for item in json.loads(text))


def cached_answer_to_json(answer: CachedAnswer) -> str:
    """A cached answer as a JSON object."""
    return json.dumps(
        {
            "format": CACHE_FORMAT,
            "answer": answer.answer,
            "citations": [citation_to_dict(c) for c in answer.citations],
            "rewritten_query": answer.rewritten_query,
            "answered_from_documents": answer.answered_from_documents,
        }
    )


def cached_answer_from_json(text: str | bytes) -> CachedAnswer | None:
    """A cached answer from its JSON object; None when it is of another format or unreadable."""
    try:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("format") != CACHE_FORMAT:
            return None
        return CachedAnswer(
            answer=str(data["answer"]),
            citations=tuple(citation_from_dict(c) for c in data["citations"]),
            rewritten_query=str(data.get("rewritten_query", "")),
            answered_from_documents=bool(data.get("answered_from_documents", True)),
        )
    except (ValueError, KeyError, TypeError):
        return None
