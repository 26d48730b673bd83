"""Prompts for the responder and HyDE, and the fixed texts the agent says itself.

The local LLM is a small base model, so prompts are completions with one
worked example rather than chat instructions; stop sequences end the answer
where such a model would start inventing the next source or question.
"""

from __future__ import annotations

from collections.abc import Sequence

from svc_agent.domain.model import Source
from svc_agent.domain.text import clean_source_text, content_terms, shorten, term_overlap

DECLINE_ANSWER = (
    "I could not find the answer in the documents, so I will not guess. "
    "Try rephrasing the question or naming the component it is about."
)
SMALL_TALK_ANSWER = (
    "Hello! I answer questions about the documents in this workspace and cite the passages I use. "
    "I can also do arithmetic, run a Python snippet you give me, and list what an entity is related to."
)

RESPONDER_STOPS = ("\nQuestion:", "\nSources:", "\n\n", "\n[")

_EXAMPLE_QUESTION = "What is the smallest deployable unit in Kubernetes?"
_EXAMPLE_ANSWER = "The smallest deployable unit of computing in Kubernetes is the Pod [1]."
_EXAMPLE = f"""Sources:
[1] Pods
A Pod is the smallest deployable unit of computing that you can create and manage in Kubernetes.
[2] Namespaces
Namespaces provide a mechanism for isolating groups of resources within a single cluster.

Question: {_EXAMPLE_QUESTION}
Answer: {_EXAMPLE_ANSWER}
"""


def source_block(sources: Sequence[Source], max_chars: int) -> str:
    """The numbered sources as the model reads them: ``[n] title`` then the cleaned text, cut to ``max_chars``."""
    parts = []
    for number, source in enumerate(sources, start=1):
        heading = source.title or source.source_uri.rsplit("/", 1)[-1] or source.doc_id
        if source.section and source.section not in heading:
            heading = f"{heading} > {source.section}"
        parts.append(f"[{number}] {shorten(heading, 160)}\n{shorten(clean_source_text(source.text), max_chars)}")
    return "\n".join(parts)


def answer_prompt(question: str, sources: Sequence[Source], max_chars: int) -> str:
    """The responder prompt: the worked example, the numbered sources, the question."""
    return (
        "Answer the question from the numbered sources only, and cite the sources you use like [1].\n\n"
        f"{_EXAMPLE}\n"
        f"Sources:\n{source_block(sources, max_chars)}\n\n"
        f"Question: {' '.join(question.split())}\n"
        "Answer:"
    )


def answer_problem(answer: str, question: str) -> str | None:
    """Why a generated answer is unusable, or None.

    A small base model, when the sources puzzle it, writes nothing, repeats
    the question, or copies the prompt's worked example; none of those
    answers anything.
    """
    if not any(c.isalnum() for c in answer):
        return "it is empty"
    if term_overlap(answer, question) >= 0.8 and len(content_terms(answer)) <= len(content_terms(question)) + 2:
        return "it repeats the question"
    if term_overlap(answer, _EXAMPLE_ANSWER) >= 0.8 and term_overlap(question, _EXAMPLE_QUESTION) < 0.5:
        return "it copies the prompt's example"
    return None


def hyde_prompt(question: str) -> str:
    """A prompt for a short passage that would answer ``question`` (HyDE searches with it)."""
    return (
        "Write a short passage from technical documentation that answers the question.\n\n"
        f"Question: {' '.join(question.split())}\n"
        "Passage:"
    )


def graph_answer(entity: str, lines: Sequence[str], truncated: bool) -> str:
    """The answer for a graph exploration."""
    if not lines:
        return f"The knowledge graph has nothing related to {entity!r}."
    more = " (more exist; showing the first ones)" if truncated else ""
    return f"In the knowledge graph, {entity} is related to{more}:\n" + "\n".join(f"- {line}" for line in lines)
