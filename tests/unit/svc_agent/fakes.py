"""In-memory fakes of what the answer loop talks to (unit tests only)."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hashlib
import math
import re
from collections.abc import AsyncGenerator, Callable, Sequence

from mesh.errors import InvalidArgument, NotFound, PermissionDenied, Unavailable
from svc_agent.domain.loop import Agent, Dependencies
from svc_agent.domain.model import CachedAnswer, Role, Source, Turn, Usage
from svc_agent.domain.ports import (
    CacheScope,
    CodeResult,
    CompletedTurn,
    GenerationChunk,
    GenerationRequest,
    GraphEdge,
    GraphNode,
    Neighbourhood,
    SearchOutcome,
    SemanticHit,
    SessionInfo,
    SessionPage,
    StoredMessage,
)
from svc_agent.domain.settings import AgentSettings

DIM = 256


def _tokens(text: str) -> list[str]:
    return [t.rstrip("s") for t in re.findall(r"[a-z0-9]+", text.lower()) if len(t) > 2]


def bag_of_words(text: str) -> list[float]:
    """A unit vector of hashed word counts: texts sharing words are close, as with a real embedder."""
    vector = [0.0] * DIM
    for token in _tokens(text):
        vector[int(hashlib.md5(token.encode()).hexdigest(), 16) % DIM] += 1.0
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return [x / norm for x in vector]


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


Script = Callable[[GenerationRequest], Sequence[str]]


class FakeGenerator:
    """Streams scripted deltas; records requests, and whether a stream was closed before its end."""

    def __init__(self, script: Script, delay_s: float = 0.0) -> None:
        self.script = script
        self.delay_s = delay_s
        self.requests: list[GenerationRequest] = []
        self.closed_early = 0
        self.active = 0

    async def generate(self, request: GenerationRequest) -> AsyncGenerator[GenerationChunk, None]:
        self.requests.append(request)
        deltas = list(self.script(request))
        finished = False
        self.active += 1
        try:
            for delta in deltas:
                if self.delay_s:
                    await asyncio.sleep(self.delay_s)
                yield GenerationChunk(text=delta)
            yield GenerationChunk(text="", usage=Usage(len(request.prompt) // 4, len(deltas)), backend_ttft_ms=1.0)
            finished = True
        finally:
            self.active -= 1
            if not finished:
                self.closed_early += 1

    def prompts_containing(self, text: str) -> list[GenerationRequest]:
        return [r for r in self.requests if text in r.prompt]


class FakeEmbedder:
    """Bag-of-words embeddings; refuses texts longer than ``max_chars``, as a real embedder refuses long ones."""

    def __init__(self, max_chars: int = 10_000) -> None:
        self.calls: list[tuple[tuple[str, ...], bool]] = []
        self.fail = False
        self.max_chars = max_chars

    async def embed(self, texts: Sequence[str], *, query: bool) -> list[list[float]]:
        self.calls.append((tuple(texts), query))
        if self.fail:
            raise Unavailable("embedder down")
        if any(len(t) > self.max_chars for t in texts):
            raise InvalidArgument("a text is longer than the embedder takes")
        return [bag_of_words(t) for t in texts]

    async def max_input_chars(self) -> int:
        return self.max_chars


def source(chunk_id: str, text: str, title: str = "", doc_id: str = "") -> Source:
    return Source(
        chunk_id=chunk_id,
        doc_id=doc_id or f"doc-{chunk_id}",
        source_uri=f"file:///docs/{chunk_id}.md",
        title=title or chunk_id,
        text=text,
    )


class FakeRetriever:
    """Ranks a fixed corpus by bag-of-words cosine; relevance is that cosine, as the dense leg would report."""

    def __init__(self, corpus: Sequence[Source], graph: dict[str, Neighbourhood] | None = None) -> None:
        self.corpus = list(corpus)
        self.graph = graph or {}
        self.corpus_version = 1
        self.queries: list[str] = []
        self.lookups: list[str] = []
        self.fail: Exception | None = None
        self.degraded: tuple[str, ...] = ()

    async def search(self, query: str, top_k: int, *, lexical: bool = False) -> SearchOutcome:
        if self.fail is not None:
            raise self.fail
        if lexical:
            self.lookups.append(query)
            found = [s for s in self.corpus if query.lower() in s.text.lower()]
            return SearchOutcome(tuple(found[:top_k]), self.corpus_version)
        self.queries.append(query)
        q = bag_of_words(query)
        scored = sorted(
            (
                dataclasses.replace(s, relevance=cosine(q, bag_of_words(s.text)), score=cosine(q, bag_of_words(s.text)))
                for s in self.corpus
            ),
            key=lambda s: s.relevance or 0.0,
            reverse=True,
        )
        return SearchOutcome(tuple(scored[:top_k]), self.corpus_version, self.degraded)

    async def explore_graph(self, entity: str, depth: int, max_nodes: int) -> Neighbourhood:
        return self.graph.get(entity.lower(), Neighbourhood((), ()))


class FakeCodeRunner:
    """Answers each program with a prepared result (the sandbox's own tests cover real execution)."""

    def __init__(self, results: dict[str, CodeResult] | None = None) -> None:
        self.results = results or {}
        self.programs: list[str] = []

    async def run_python(self, code: str) -> CodeResult:
        self.programs.append(code)
        return self.results.get(code, CodeResult("", "NameError: name 'x' is not defined", 1, "completed"))


class FakeMemory:
    """Sessions in a dict, each owned by one (tenant, subject)."""

    def __init__(self) -> None:
        self.sessions: dict[tuple[str, str], list[StoredMessage]] = {}
        self.titles: dict[tuple[str, str], str] = {}
        self.owners: dict[tuple[str, str], str] = {}
        self.turns: list[CompletedTurn] = []
        self.feedback: dict[tuple[str, str, str], tuple[str, str, str]] = {}
        self.down = False
        """When set, reading history and saving turns fail as a store that is down does (UNAVAILABLE)."""

    def _owned(self, tenant: str, subject: str, session_id: str) -> list[StoredMessage]:
        messages = self.sessions.get((tenant, session_id))
        if messages is None:
            raise NotFound(f"session {session_id} not found", reason="SESSION_NOT_FOUND")
        if self.owners[(tenant, session_id)] != subject:
            raise PermissionDenied("another user's session", reason="SESSION_NOT_OWNED")
        return messages

    async def history(self, tenant: str, subject: str, session_id: str, max_turns: int) -> list[Turn]:
        if self.down:
            raise Unavailable("chat memory unavailable: connection refused", reason="POSTGRES_UNAVAILABLE")
        messages = self._owned(tenant, subject, session_id)
        return [Turn(m.role, m.content, m.rewritten_query) for m in messages[-max_turns:]]

    async def record_turn(self, turn: CompletedTurn) -> None:
        if self.down:
            raise Unavailable("chat memory unavailable: connection refused", reason="POSTGRES_UNAVAILABLE")
        key = (turn.tenant, turn.session_id)
        if turn.new_session:
            self.sessions[key] = []
            self.titles[key] = turn.question
            self.owners[key] = turn.subject
        self._owned(turn.tenant, turn.subject, turn.session_id)
        now = dt.datetime.now(dt.UTC)
        self.sessions[key] += [
            StoredMessage(turn.user_message_id, Role.USER, turn.question, (), now, turn.rewritten_query),
            StoredMessage(turn.answer_message_id, Role.ASSISTANT, turn.answer, turn.citations, now),
        ]
        self.turns.append(turn)

    async def get_session(self, tenant: str, subject: str, session_id: str) -> SessionInfo:
        messages = self._owned(tenant, subject, session_id)
        now = dt.datetime.now(dt.UTC)
        rated = tuple(
            dataclasses.replace(m, rating=given[1], rating_comment=given[2])
            if (given := self.feedback.get((tenant, m.message_id, subject)))
            else m
            for m in messages
        )
        return SessionInfo(session_id, self.titles[(tenant, session_id)], now, now, len(messages), rated)

    async def list_sessions(self, tenant: str, subject: str, page_size: int, page_token: str) -> SessionPage:
        if page_token:
            raise InvalidArgument("bad token")
        now = dt.datetime.now(dt.UTC)
        found = [
            SessionInfo(s, self.titles[(t, s)], now, now, len(m))
            for (t, s), m in self.sessions.items()
            if t == tenant and self.owners[(t, s)] == subject
        ]
        return SessionPage(tuple(found), "")

    async def delete_session(self, tenant: str, subject: str, session_id: str) -> None:
        self._owned(tenant, subject, session_id)
        del self.sessions[(tenant, session_id)]

    async def submit_feedback(
        self, tenant: str, session_id: str, message_id: str, subject: str, rating: str, comment: str
    ) -> str:
        key = (tenant, message_id, subject)
        feedback_id = self.feedback.get(key, (f"fb-{len(self.feedback) + 1}", "", ""))[0]
        self.feedback[key] = (feedback_id, rating, comment)
        return feedback_id


class FakeAnswerCache:
    """The exact cache as a dict."""

    def __init__(self) -> None:
        self.entries: dict[tuple[CacheScope, str], CachedAnswer] = {}
        self.gets = 0
        self.fail = False

    async def get(self, scope: CacheScope, normalized_question: str) -> CachedAnswer | None:
        self.gets += 1
        if self.fail:
            raise Unavailable("redis down")
        return self.entries.get((scope, normalized_question))

    async def put(self, scope: CacheScope, normalized_question: str, answer: CachedAnswer) -> None:
        self.entries[(scope, normalized_question)] = answer


class FakeSemanticCache:
    """The semantic cache as a list scanned by cosine."""

    def __init__(self) -> None:
        self.entries: list[tuple[CacheScope, str, list[float], CachedAnswer]] = []

    async def lookup(self, scope: CacheScope, vector: Sequence[float], min_similarity: float) -> SemanticHit | None:
        best: SemanticHit | None = None
        for entry_scope, question, entry_vector, answer in self.entries:
            score = cosine(vector, entry_vector)
            if entry_scope == scope and score >= min_similarity and (best is None or score > best.similarity):
                best = SemanticHit(answer, score, question)
        return best

    async def store(self, scope: CacheScope, question: str, vector: Sequence[float], answer: CachedAnswer) -> None:
        self.entries = [e for e in self.entries if e[0].tenant != scope.tenant or e[0] == scope]
        self.entries.append((scope, question, list(vector), answer))


def graph_of(entity: str, neighbours: Sequence[tuple[str, str]]) -> Neighbourhood:
    start = GraphNode("n0", "Entity", "Component", entity)
    nodes = [start] + [GraphNode(f"n{i}", "Entity", "Concept", name) for i, (name, _) in enumerate(neighbours, 1)]
    edges = [GraphEdge("n0", f"n{i}", kind) for i, (_, kind) in enumerate(neighbours, 1)]
    return Neighbourhood(tuple(nodes), tuple(edges))


@dataclasses.dataclass
class Rig:
    """An agent over fakes, with the fakes at hand."""

    agent: Agent
    generator: FakeGenerator
    embedder: FakeEmbedder
    retriever: FakeRetriever
    code_runner: FakeCodeRunner
    memory: FakeMemory
    answer_cache: FakeAnswerCache
    semantic_cache: FakeSemanticCache


def rig(
    corpus: Sequence[Source],
    script: Script,
    settings: AgentSettings | None = None,
    *,
    graph: dict[str, Neighbourhood] | None = None,
    caches: bool = True,
    delay_s: float = 0.0,
) -> Rig:
    generator = FakeGenerator(script, delay_s)
    embedder = FakeEmbedder()
    retriever = FakeRetriever(corpus, graph)
    code_runner = FakeCodeRunner()
    memory = FakeMemory()
    answer_cache = FakeAnswerCache()
    semantic_cache = FakeSemanticCache()
    counter = iter(range(1, 1_000_000))
    deps = Dependencies(
        generator=generator,
        embedder=embedder,
        retriever=retriever,
        code_runner=code_runner,
        memory=memory,
        answer_cache=answer_cache if caches else None,
        semantic_cache=semantic_cache if caches else None,
        new_id=lambda: f"id{next(counter):06d}",
    )
    return Rig(
        Agent(deps, settings or AgentSettings()),
        generator,
        embedder,
        retriever,
        code_runner,
        memory,
        answer_cache,
        semantic_cache,
    )
