"""The answer loop: an explicit, typed async state machine.

States and the transitions allowed between them are data (``TRANSITIONS``);
each state has one handler, an async generator that yields the events of its
work and names the next state. The machine refuses a transition the table
does not allow, so this is the whole flow:

    LOAD -> REWRITE -> PLAN -> RETRIEVE -> CACHE_LOOKUP -> CORRECT -> RESPOND -> FINISH
                         |                     |              +-----> STITCH ----^
                         |                     |              +-----> DECLINE ---^
                         |                     +-> REPLAY (a cache hit) ---------^
                         +-> TOOL | DIRECT ----------------------------------------^

RESPOND has the model write the answer from the sources; STITCH (answer mode
``stitch``, for models that cannot be trusted to) quotes the sources' own
sentences that answer the question, and goes to DECLINE when none does.

The caches are consulted after the first search because the search response
carries the corpus version they are keyed by (GetIndexStats counts the whole
index, too much work per request); a hit skips the generation, which is most
of the cost. The question's embedding for the semantic cache is computed while
the search runs. A client that goes away cancels the handler at its current
await; every downstream stream is closed on the way out, which cancels the
generation.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import json
import logging
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence

from mesh.errors import MeshError, Unavailable
from svc_agent.domain import citations as cite
from svc_agent.domain import planner, prompts, rewrite
from svc_agent.domain.calculator import CalculatorError, evaluate, format_number
from svc_agent.domain.events import (
    AgentEvent,
    CitationsEvent,
    Envelope,
    FinalEvent,
    StepEvent,
    TokenEvent,
    ToolCallEvent,
    ToolResultEvent,
)
from svc_agent.domain.evidence import Evidence, Level, assess, mentions, merge_sources, same_specifics
from svc_agent.domain.model import (
    Action,
    CachedAnswer,
    CacheHit,
    ChatRequest,
    Citation,
    Latency,
    Plan,
    Source,
    Step,
    StepStatus,
    Turn,
    Usage,
)
from svc_agent.domain.ports import (
    AnswerCache,
    CacheScope,
    ChatMemory,
    CodeRunner,
    CompletedTurn,
    Embedder,
    GenerationRequest,
    Generator,
    Retriever,
    SearchOutcome,
    SemanticCache,
    SemanticHit,
)
from svc_agent.domain.settings import AgentSettings, AnswerMode, PlannerMode
from svc_agent.domain.stitch import deltas, stitch
from svc_agent.domain.text import (
    clean_source_text,
    content_terms,
    keyword_query,
    normalize_question,
    sentences,
    shorten,
    words,
)

log = logging.getLogger(__name__)


class State(enum.Enum):
    """A state of the answer loop."""

    LOAD = "load"
    REWRITE = "rewrite"
    PLAN = "plan"
    RETRIEVE = "retrieve"
    CACHE_LOOKUP = "cache_lookup"
    CORRECT = "correct"
    TOOL = "tool"
    DIRECT = "direct"
    RESPOND = "respond"
    STITCH = "stitch"
    DECLINE = "decline"
    REPLAY = "replay"
    FINISH = "finish"
    DONE = "done"


TRANSITIONS: dict[State, frozenset[State]] = {
    State.LOAD: frozenset({State.REWRITE}),
    State.REWRITE: frozenset({State.PLAN}),
    State.PLAN: frozenset({State.RETRIEVE, State.TOOL, State.DIRECT}),
    State.RETRIEVE: frozenset({State.CACHE_LOOKUP, State.CORRECT}),
    State.CACHE_LOOKUP: frozenset({State.REPLAY, State.CORRECT}),
    State.CORRECT: frozenset({State.RESPOND, State.STITCH, State.DECLINE}),
    State.TOOL: frozenset({State.FINISH}),
    State.DIRECT: frozenset({State.FINISH}),
    State.RESPOND: frozenset({State.FINISH}),
    State.STITCH: frozenset({State.FINISH, State.DECLINE}),
    State.DECLINE: frozenset({State.FINISH}),
    State.REPLAY: frozenset({State.FINISH}),
    State.FINISH: frozenset({State.DONE}),
    State.DONE: frozenset(),
}


class InvalidTransition(MeshError):
    """A handler named a next state the transition table does not allow (a bug)."""


@dataclasses.dataclass(frozen=True)
class Dependencies:
    """Everything the loop talks to."""

    generator: Generator
    embedder: Embedder
    retriever: Retriever
    code_runner: CodeRunner
    memory: ChatMemory
    answer_cache: AnswerCache | None = None
    semantic_cache: SemanticCache | None = None
    clock: Callable[[], float] = time.perf_counter
    new_id: Callable[[], str] = lambda: uuid.uuid4().hex


@dataclasses.dataclass(frozen=True)
class _Retrieval:
    """One search as the loop ran it."""

    query: str
    outcome: SearchOutcome
    duration_ms: float
    hyde_passage: str = ""


@dataclasses.dataclass
class _Run:
    """The mutable state of one answer."""

    request: ChatRequest
    session_id: str
    new_session: bool
    user_message_id: str
    message_id: str
    started: float
    state: State = State.LOAD
    history: list[Turn] = dataclasses.field(default_factory=list)
    query: str = ""
    plan: Plan | None = None
    top_k: int = 0
    sources: tuple[Source, ...] = ()
    evidence: Evidence | None = None
    degraded: bool = False
    history_lost: bool = False
    """The session's history could not be read (memory degraded): the answer is not cached."""
    search_corpus_version: int | None = None
    answer_parts: list[str] = dataclasses.field(default_factory=list)
    citations: tuple[Citation, ...] = ()
    usage: Usage = dataclasses.field(default_factory=Usage)
    planning_ms: float = 0.0
    retrieval_ms: float = 0.0
    tools_ms: float = 0.0
    first_token_at: float | None = None
    cache_hit: CacheHit = CacheHit.NONE
    cached: CachedAnswer | None = None
    answered_from_documents: bool = False
    scope: CacheScope | None = None
    normalized: str = ""
    query_vector: list[float] | None = None
    decline_reason: str = ""
    """Why the answer declines, when a later step than the evidence check decided it."""
    tried: set[str] = dataclasses.field(default_factory=set)
    """Normalised queries already searched."""
    pool: list[Source] = dataclasses.field(default_factory=list)
    """Every chunk any search returned (the sources shown to the model are the best of them)."""
    known_terms: set[str] = dataclasses.field(default_factory=set)
    """Specific terms of the question a term lookup found in the corpus."""
    embedding: asyncio.Task[list[list[float]]] | None = None
    """The question's embedding for the semantic cache, computed while the first search runs."""

    @property
    def answer(self) -> str:
        return "".join(self.answer_parts).strip()


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 3)


class Agent:
    """Answers chat messages: ``run`` streams the events of one answer."""

    def __init__(self, deps: Dependencies, settings: AgentSettings) -> None:
        self._deps = deps
        self._settings = settings
        self._handlers = {
            State.LOAD: self._load,
            State.REWRITE: self._rewrite,
            State.PLAN: self._plan,
            State.RETRIEVE: self._retrieve,
            State.CACHE_LOOKUP: self._cache_lookup,
            State.CORRECT: self._correct,
            State.TOOL: self._tool,
            State.DIRECT: self._direct,
            State.RESPOND: self._respond,
            State.STITCH: self._stitch,
            State.DECLINE: self._decline,
            State.REPLAY: self._replay,
            State.FINISH: self._finish,
        }

    async def run(self, request: ChatRequest) -> AsyncIterator[Envelope]:
        """Streams the events of answering ``request``, each in an envelope with ids and a sequence number."""
        new_session = not request.session_id
        run = _Run(
            request=request,
            session_id=request.session_id or self._deps.new_id(),
            new_session=new_session,
            user_message_id=self._deps.new_id(),
            message_id=self._deps.new_id(),
            started=self._deps.clock(),
        )
        sequence = 0
        try:
            while run.state is not State.DONE:
                current = run.state
                # aclosing: when the client goes away mid-handler, the handler (and the model stream it
                # holds) is closed now, not whenever the garbage collector gets to it.
                async with contextlib.aclosing(self._handlers[current](run)) as handler:
                    async for event in handler:
                        if isinstance(event, TokenEvent) and run.first_token_at is None:
                            run.first_token_at = self._deps.clock()
                        sequence += 1
                        yield Envelope(run.session_id, run.message_id, sequence, event)
                if run.state is current:
                    raise InvalidTransition(f"state {current.value} named no next state", reason="INVALID_TRANSITION")
        finally:
            if run.embedding is not None and not run.embedding.done():
                run.embedding.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await run.embedding

    def _goto(self, run: _Run, state: State) -> None:
        if state not in TRANSITIONS[run.state]:
            raise InvalidTransition(
                f"no transition from {run.state.value} to {state.value}", reason="INVALID_TRANSITION"
            )
        run.state = state

    # -- LOAD: the session's history; errors here (an unknown session) come before any event is sent.

    async def _load(self, run: _Run) -> AsyncGenerator[AgentEvent, None]:
        requested = run.request.options.top_k or self._settings.default_top_k
        run.top_k = max(1, min(requested, self._settings.max_prompt_sources))
        self._goto(run, State.REWRITE)
        if run.new_session:
            return
        try:
            run.history = await self._deps.memory.history(
                run.request.tenant, run.request.subject, run.session_id, self._settings.history_messages
            )
        except Unavailable as exc:
            # The history only adds context: without the store the question is answered as it stands.
            run.history_lost = True
            yield StepEvent(
                Step.MEMORY,
                StepStatus.FAILED,
                f"memory degraded: the session's history could not be read ({exc.message}); "
                "answering the question as it stands",
            )

    # -- REWRITE: a standalone question from the history.

    async def _rewrite(self, run: _Run) -> AsyncGenerator[AgentEvent, None]:
        started = self._deps.clock()
        yield StepEvent(Step.REWRITE, StepStatus.STARTED)
        question = run.request.message.strip()
        resolution = rewrite.resolve(question, run.history)
        run.query = resolution.query
        if not run.history:
            detail = "no history: the question stands alone"
        elif not resolution.changed:
            detail = "nothing to resolve from the history"
        else:
            detail = f"deterministic: {resolution.query!r} ({resolution.reason})"
            if self._settings.rewrite_with_model:
                prompt = rewrite.rewrite_prompt(question, run.history)
                try:
                    candidate = await self._complete(
                        run,
                        GenerationRequest(
                            prompt=prompt,
                            max_tokens=self._settings.rewrite_max_tokens,
                            repeat_penalty=self._settings.repeat_penalty,
                            stop=("\n",),
                        ),
                    )
                except MeshError as exc:
                    detail += f"; model: failed ({exc.message})"
                else:
                    problem = rewrite.check_model_rewrite(candidate, question, resolution)
                    if problem is None:
                        run.query = " ".join(candidate.split())
                        detail += f"; model: {run.query!r} (used)"
                    else:
                        detail += f"; model: {shorten(candidate, 120)!r} (not used: {problem})"
        duration = self._deps.clock() - started
        run.planning_ms += _ms(duration)
        yield StepEvent(Step.REWRITE, StepStatus.FINISHED, detail, _ms(duration))
        self._goto(run, State.PLAN)

    # -- PLAN: rules first, the model when they are unsure (or always, in model mode).

    async def _plan(self, run: _Run) -> AsyncGenerator[AgentEvent, None]:
        started = self._deps.clock()
        yield StepEvent(Step.PLAN, StepStatus.STARTED)
        ruled = planner.rule_plan(run.query)
        plan = ruled.plan
        mode = self._settings.planner_mode
        ask_model = mode is PlannerMode.MODEL or (mode is PlannerMode.AUTO and not ruled.certain)
        if ask_model:
            try:
                raw = await self._complete(
                    run,
                    # No repeat penalty: JSON repeats its quotes and braces by design, and the grammar
                    # already keeps the output on track.
                    GenerationRequest(
                        prompt=planner.plan_prompt(run.query),
                        max_tokens=self._settings.planner_max_tokens,
                        json_schema=planner.PLAN_SCHEMA,
                    ),
                )
            except MeshError as exc:
                plan = dataclasses.replace(plan, decided_by=f"rules (model failed: {exc.message})")
            else:
                checked = planner.check_model_plan(raw, run.query)
                if isinstance(checked, Plan):
                    plan = checked
                else:
                    plan = dataclasses.replace(plan, decided_by=f"rules (model output unusable: {checked})")
        run.plan = plan
        duration = self._deps.clock() - started
        run.planning_ms += _ms(duration)
        detail = f"{plan.action.value} by {plan.decided_by}: {plan.reason}"
        yield StepEvent(Step.PLAN, StepStatus.FINISHED, detail, _ms(duration))
        if plan.action is Action.RETRIEVE:
            self._goto(run, State.RETRIEVE)
        elif plan.action is Action.ANSWER:
            self._goto(run, State.DIRECT)
        else:
            self._goto(run, State.TOOL)

    # -- RETRIEVE: the first search. Its response carries the corpus version the caches are keyed by.

    def _uses_cache(self, run: _Run) -> bool:
        return not run.request.options.bypass_cache and (
            self._deps.answer_cache is not None or self._deps.semantic_cache is not None
        )

    async def _search(self, run: _Run, query: str, *, hyde: bool) -> _Retrieval:
        started = self._deps.clock()
        passage = ""
        search_text = query
        if hyde:
            passage = await self._hyde_passage(run, query)
            if passage:
                search_text = shorten(f"{query} {passage}", 2000)
        outcome = await self._deps.retriever.search(search_text, run.top_k)
        return _Retrieval(search_text, outcome, _ms(self._deps.clock() - started), passage)

    async def _embed_question(self, run: _Run) -> list[list[float]]:
        limit = await self._deps.embedder.max_input_chars()
        return await self._deps.embedder.embed([run.query[:limit]], query=True)

    async def _hyde_passage(self, run: _Run, query: str) -> str:
        passage = await self._complete(
            run,
            GenerationRequest(
                prompt=prompts.hyde_prompt(query),
                max_tokens=self._settings.hyde_max_tokens,
                repeat_penalty=self._settings.repeat_penalty,
                stop=("\n\n", "\nQuestion:"),
            ),
        )
        return " ".join(passage.split())

    async def _retrieve(self, run: _Run) -> AsyncGenerator[AgentEvent, None]:
        use_cache = self._uses_cache(run)
        if use_cache and self._deps.semantic_cache is not None:
            # The semantic cache needs the question's embedding: computed while the search runs.
            run.embedding = asyncio.create_task(self._embed_question(run))
        yield StepEvent(Step.RETRIEVE, StepStatus.STARTED, f"searching for {shorten(run.query, 200)!r}")
        try:
            first = await self._search(run, run.query, hyde=run.request.options.hyde)
        except MeshError as exc:
            yield StepEvent(Step.RETRIEVE, StepStatus.FAILED, f"search failed: {exc.message}")
            raise
        run.tried.add(normalize_question(first.query))
        run.retrieval_ms += first.duration_ms
        self._take(run, first.outcome, first.outcome.sources)
        evidence = self._assess(run)
        level = evidence.level(self._settings.thresholds)
        detail = f"{len(run.sources)} sources; {evidence.describe()}: {level.value}"
        if first.hyde_passage:
            detail = f"HyDE passage {shorten(first.hyde_passage, 120)!r}; " + detail
        if first.outcome.degraded_legs:
            detail += f"; degraded legs: {', '.join(first.outcome.degraded_legs)}"
        yield StepEvent(Step.RETRIEVE, StepStatus.FINISHED, detail, first.duration_ms)
        self._goto(run, State.CACHE_LOOKUP if use_cache else State.CORRECT)

    # -- CACHE_LOOKUP: exact (Redis) first, semantic (vector collection) when that misses.

    async def _cache_lookup(self, run: _Run) -> AsyncGenerator[AgentEvent, None]:
        started = self._deps.clock()
        yield StepEvent(Step.CACHE_LOOKUP, StepStatus.STARTED)
        version = run.search_corpus_version or 0
        status = StepStatus.FINISHED
        if version == 0 or run.degraded:
            # Version 0 means retrieval could not tell which corpus it searched: no answer is valid for it.
            detail = "skipped: the corpus version is unknown or the search was degraded"
        else:
            run.scope = CacheScope(run.request.tenant, version, self._variant(run))
            run.normalized = normalize_question(run.query)
            try:
                detail = await self._consult_caches(run, run.scope)
            except MeshError as exc:
                # The caches only save time: when they fail, answer without them.
                status, detail = StepStatus.FAILED, f"cache unavailable, answering without it: {exc.message}"
                run.scope = None
        yield StepEvent(Step.CACHE_LOOKUP, status, detail, _ms(self._deps.clock() - started))
        self._goto(run, State.REPLAY if run.cached is not None else State.CORRECT)

    async def _consult_caches(self, run: _Run, scope: CacheScope) -> str:
        version = scope.corpus_version
        if self._deps.answer_cache is not None:
            hit = await self._deps.answer_cache.get(scope, run.normalized)
            if hit is not None:
                run.cache_hit, run.cached = CacheHit.EXACT, hit
                return f"exact hit (corpus version {version})"
        if self._deps.semantic_cache is not None and run.embedding is not None:
            run.query_vector = (await run.embedding)[0]
            semantic: SemanticHit | None = await self._deps.semantic_cache.lookup(
                scope, run.query_vector, self._settings.semantic_cache_min_similarity
            )
            if semantic is not None:
                candidate = f"{shorten(semantic.question, 80)!r} (similarity {semantic.similarity:.3f})"
                if not same_specifics(run.query, semantic.question):
                    # "... a Deployment keep?" and "... a StatefulSet keep?" embed alike and differ in the answer.
                    return f"miss (corpus version {version}); semantic candidate {candidate} names other things"
                run.cache_hit, run.cached = CacheHit.SEMANTIC, semantic.answer
                return f"semantic hit: {candidate}, corpus version {version}"
        return f"miss (corpus version {version})"

    def _variant(self, run: _Run) -> str:
        # The answer mode is part of it: a stitched answer and a generated one differ for the same question.
        mode = "" if self._settings.answer_mode is AnswerMode.GENERATE else f"-{self._settings.answer_mode.value}"
        return f"k{run.top_k}{'-hyde' if run.request.options.hyde else ''}{mode}"

    # -- CORRECT: corrective searches while the evidence is weak, then answer or decline.

    async def _correct(self, run: _Run) -> AsyncGenerator[AgentEvent, None]:
        evidence = self._assess(run)
        level = evidence.level(self._settings.thresholds)
        attempt = 0
        while level is not Level.STRONG and attempt < self._settings.corrective_max_attempts:
            attempt += 1
            corrective = await self._corrective_query(run, attempt)
            if corrective is None:
                break
            run.tried.add(normalize_question(corrective))
            label = f"corrective search {attempt}/{self._settings.corrective_max_attempts}"
            yield StepEvent(Step.RETRIEVE, StepStatus.STARTED, f"{label}: {level.value} evidence; {corrective!r}")
            started = self._deps.clock()
            try:
                outcome = await self._deps.retriever.search(corrective, run.top_k)
            except MeshError as exc:
                duration = _ms(self._deps.clock() - started)
                run.retrieval_ms += duration
                yield StepEvent(Step.RETRIEVE, StepStatus.FAILED, f"{label} failed: {exc.message}", duration)
                break
            duration = _ms(self._deps.clock() - started)
            run.retrieval_ms += duration
            self._take(run, outcome, merge_sources(run.sources, outcome.sources, run.top_k))
            evidence = self._assess(run)
            level = evidence.level(self._settings.thresholds)
            detail = f"{label}: {evidence.describe()}: {level.value}"
            yield StepEvent(Step.RETRIEVE, StepStatus.FINISHED, detail, duration)
        if evidence.missing_terms and self._settings.max_term_lookups > 0:
            async with contextlib.aclosing(self._look_up_terms(run, evidence.missing_terms)) as lookups:
                async for event in lookups:
                    yield event
            evidence = self._assess(run)
            level = evidence.level(self._settings.thresholds)
        if level is Level.INSUFFICIENT:
            self._goto(run, State.DECLINE)
        else:
            self._goto(run, State.STITCH if self._settings.answer_mode is AnswerMode.STITCH else State.RESPOND)

    def _assess(self, run: _Run) -> Evidence:
        run.evidence = assess(run.query, run.sources, pool=run.pool, known=run.known_terms)
        return run.evidence

    async def _look_up_terms(self, run: _Run, terms: Sequence[str]) -> AsyncGenerator[AgentEvent, None]:
        """Asks the corpus about terms no retrieved chunk mentions: absent ones mean the question is not about it."""
        probes = list(terms[: self._settings.max_term_lookups])
        yield StepEvent(Step.RETRIEVE, StepStatus.STARTED, f"looking up terms the sources lack: {', '.join(probes)}")
        started = self._deps.clock()
        outcomes = await asyncio.gather(
            *(self._deps.retriever.search(term, 5, lexical=True) for term in probes), return_exceptions=True
        )
        found: list[str] = []
        absent: list[str] = []
        unknown: list[str] = []
        for term, outcome in zip(probes, outcomes, strict=True):
            if isinstance(outcome, SearchOutcome):
                hit = any(mentions(f"{s.title}\n{s.text}".lower(), term) for s in outcome.sources)
                (found if hit else absent).append(term)
            elif isinstance(outcome, MeshError):
                unknown.append(term)
            else:
                raise outcome
        # A lookup that failed is no evidence of absence: the term gets the benefit of the doubt.
        run.known_terms.update(found + unknown)
        duration = _ms(self._deps.clock() - started)
        run.retrieval_ms += duration
        detail = f"in the corpus: {', '.join(found) or 'none'}; absent: {', '.join(absent) or 'none'}"
        if unknown:
            detail += f"; lookup failed for: {', '.join(unknown)}"
        yield StepEvent(Step.RETRIEVE, StepStatus.FINISHED, detail, duration)

    def _take(self, run: _Run, outcome: SearchOutcome, sources: Sequence[Source]) -> None:
        run.sources = tuple(sources)
        run.pool.extend(outcome.sources)
        run.degraded = run.degraded or bool(outcome.degraded_legs)
        if run.search_corpus_version is None:
            run.search_corpus_version = outcome.corpus_version
        elif run.search_corpus_version != outcome.corpus_version:
            # An ingest landed between two searches: the answer mixes versions, so it is not cached.
            run.degraded = True

    async def _corrective_query(self, run: _Run, attempt: int) -> str | None:
        """The next query to try: the question's key terms, then the question with a model-written passage (HyDE)."""
        if attempt == 1:
            keywords = keyword_query(run.query)
            if keywords and normalize_question(keywords) not in run.tried:
                return keywords
        if run.request.options.hyde:
            return None
        try:
            passage = await self._hyde_passage(run, run.query)
        except MeshError:
            return None
        candidate = shorten(f"{run.query} {passage}", 2000)
        if passage and normalize_question(candidate) not in run.tried:
            return candidate
        return None

    # -- RESPOND: the cited answer from the sources.

    async def _respond(self, run: _Run) -> AsyncGenerator[AgentEvent, None]:
        started = self._deps.clock()
        yield StepEvent(Step.RESPOND, StepStatus.STARTED, f"answering from {len(run.sources)} sources")
        request = GenerationRequest(
            prompt=prompts.answer_prompt(run.query, run.sources, self._settings.source_chars),
            max_tokens=self._settings.answer_max_tokens,
            temperature=self._settings.temperature,
            repeat_penalty=self._settings.repeat_penalty,
            stop=prompts.RESPONDER_STOPS,
        )
        markers = cite.MarkerFilter(range(1, len(run.sources) + 1))
        async with contextlib.aclosing(self._stream_answer(run, request, markers)) as stream:
            async for text in stream:
                yield TokenEvent(text)
        detail = ""
        problem = prompts.answer_problem(run.answer, run.query)
        if problem is not None:
            # What was streamed answers nothing: add the best matching source sentence, cited, so the reply
            # still carries the documents' answer. Markers the unusable text had do not count.
            fallback, marker = self._extractive_answer(run)
            text = f"\n\nFrom the documents: {fallback}" if run.answer else fallback
            run.answer_parts.append(text)
            markers.used[:] = [marker]
            detail = f"the model's answer was unusable ({problem}); added the best matching source sentence. "
            yield TokenEvent(text)
        # The model's markers are kept, and every sentence is attributed as well: a small model cites
        # rarely and often names a neighbour of the source it drew on, so the sources that support the
        # answer best are cited whether or not it marked them.
        cited = list(markers.used)
        if markers.used:
            detail += f"cited by the model: {markers.used}" if problem is None else f"cited its source: {markers.used}"
        else:
            detail += "no markers"
        try:
            attribution = await cite.attribute(
                run.answer,
                run.query,
                run.sources,
                self._deps.embedder,
                min_similarity=self._settings.attribution_min_similarity,
                standing_weight=self._settings.attribution_standing_weight,
                standing_decay=self._settings.attribution_standing_decay,
                short_claim_words=self._settings.attribution_short_claim_words,
                source_chars=self._settings.attribution_source_chars,
                tie_band=self._settings.attribution_tie_band,
                lexical_weight=self._settings.attribution_lexical_weight,
                min_own_similarity=self._settings.attribution_min_own_similarity,
            )
        except MeshError as exc:
            detail += f"; attribution failed: {exc.message}"
        else:
            added = [m for m in attribution.markers if m not in cited]
            cited += added
            detail += (
                f"; attributed {attribution.sentences} sentences to sources {list(attribution.markers)}"
                f" (best similarity {attribution.best_similarity:.2f}), adding {added}"
            )
        if cited:
            run.citations = cite.make_citations(cited, run.sources, run.answer)
        if markers.dropped:
            detail += f"; dropped unknown markers {sorted(set(markers.dropped))}"
        run.answered_from_documents = True
        if run.citations:
            yield CitationsEvent(run.citations)
        yield StepEvent(Step.RESPOND, StepStatus.FINISHED, detail, _ms(self._deps.clock() - started))
        self._goto(run, State.FINISH)

    async def _stream_answer(
        self, run: _Run, request: GenerationRequest, markers: cite.MarkerFilter
    ) -> AsyncGenerator[str, None]:
        leading = True
        async with contextlib.aclosing(self._deps.generator.generate(request)) as stream:
            async for chunk in stream:
                if chunk.usage is not None:
                    run.usage = run.usage + chunk.usage
                text = markers.feed(chunk.text)
                if leading:
                    text = text.lstrip()
                    leading = not text
                if text:
                    run.answer_parts.append(text)
                    yield text
        tail = markers.finish()
        tail = (tail.lstrip() if leading else tail).rstrip()
        if tail:
            run.answer_parts.append(tail)
            yield tail

    def _extractive_answer(self, run: _Run) -> tuple[str, int]:
        terms = set(content_terms(run.query))
        best_sentence, best_marker, best_hits = "", 1, -1
        for number, source in enumerate(run.sources, start=1):
            for sentence in sentences(clean_source_text(source.text)):
                hits = sum(t in terms for t in content_terms(sentence))
                if hits > best_hits and len(words(sentence)) >= 4:
                    best_sentence, best_marker, best_hits = sentence, number, hits
        if not best_sentence:
            best_sentence = clean_source_text(run.sources[0].text)
        return f"{shorten(best_sentence, 400)} [{best_marker}]", best_marker

    # -- STITCH: the sources' own sentences that answer the question, each cited; no generation.

    async def _stitch(self, run: _Run) -> AsyncGenerator[AgentEvent, None]:
        started = self._deps.clock()
        params = self._settings.stitch
        note = ""
        try:
            stitched = await stitch(run.query, run.sources, self._deps.embedder, params)
        except MeshError as exc:
            # Without the embedder the question's terms still find the sentences that hold them.
            note = f"; embedder failed ({exc.message}), chosen by word overlap"
            stitched = await stitch(run.query, run.sources, None, params)
        if stitched.declined:
            run.decline_reason = (
                f"no sentence of the {len(run.sources)} sources answers the question "
                f"(best similarity {stitched.best_similarity:.3f} < {params.min_similarity:.3f}, "
                f"{stitched.candidates} sentences){note}"
            )
            self._goto(run, State.DECLINE)
            return
        yield StepEvent(
            Step.RESPOND,
            StepStatus.STARTED,
            f"quoting the sources: {stitched.candidates} sentences of {len(run.sources)}",
        )
        for text in deltas(stitched.answer(), self._settings.replay_words_per_delta):
            run.answer_parts.append(text)
            yield TokenEvent(text)
        run.citations = cite.make_citations(stitched.markers, run.sources, run.answer)
        run.answered_from_documents = True
        yield CitationsEvent(run.citations)
        scores = ", ".join(f"[{s.candidate.marker}] {s.similarity:.2f}" for s in stitched.chosen)
        detail = (
            f"quoted {len(stitched.chosen)} sentences (similarity {scores}; "
            f"best similarity {stitched.best_similarity:.3f}){note}"
        )
        yield StepEvent(Step.RESPOND, StepStatus.FINISHED, detail, _ms(self._deps.clock() - started))
        self._goto(run, State.FINISH)

    # -- DECLINE: the documents do not hold the answer.

    async def _decline(self, run: _Run) -> AsyncGenerator[AgentEvent, None]:
        started = self._deps.clock()
        evidence = run.decline_reason or (run.evidence.describe() if run.evidence else "no sources")
        yield StepEvent(Step.RESPOND, StepStatus.STARTED, f"declining: {evidence}")
        run.answer_parts = [prompts.DECLINE_ANSWER]
        yield TokenEvent(prompts.DECLINE_ANSWER)
        run.answered_from_documents = False
        yield StepEvent(
            Step.RESPOND, StepStatus.FINISHED, "the documents do not hold the answer", _ms(self._deps.clock() - started)
        )
        self._goto(run, State.FINISH)

    # -- REPLAY: a cached answer, streamed like a fresh one.

    async def _replay(self, run: _Run) -> AsyncGenerator[AgentEvent, None]:
        assert run.cached is not None
        started = self._deps.clock()
        yield StepEvent(Step.RESPOND, StepStatus.STARTED, f"replaying the {run.cache_hit.value} cache's answer")
        size = max(1, self._settings.replay_words_per_delta)
        pieces = run.cached.answer.split(" ")
        for index in range(0, len(pieces), size):
            text = " ".join(pieces[index : index + size])
            text = text if index == 0 else " " + text
            run.answer_parts.append(text)
            yield TokenEvent(text)
        run.citations = run.cached.citations
        run.answered_from_documents = run.cached.answered_from_documents
        if run.citations:
            yield CitationsEvent(run.citations)
        yield StepEvent(
            Step.RESPOND, StepStatus.FINISHED, f"{run.cache_hit.value} cache hit", _ms(self._deps.clock() - started)
        )
        self._goto(run, State.FINISH)

    # -- TOOL: calculator, sandboxed Python, graph exploration.

    async def _tool(self, run: _Run) -> AsyncGenerator[AgentEvent, None]:
        assert run.plan is not None
        plan = run.plan
        call_id = self._deps.new_id()[:12]
        tool = plan.action.value
        started = self._deps.clock()
        yield StepEvent(Step.TOOL, StepStatus.STARTED, f"{tool}: {shorten(plan.tool_input, 200)}")
        arguments = {
            Action.CALCULATOR: {"expression": plan.tool_input},
            Action.PYTHON: {"code": plan.tool_input},
            Action.GRAPH: {"entity": plan.tool_input, "depth": self._settings.graph_depth},
        }[plan.action]
        yield ToolCallEvent(call_id, tool, json.dumps(arguments))
        output, answer, is_error = await self._run_tool(plan)
        duration = self._deps.clock() - started
        run.tools_ms += _ms(duration)
        yield ToolResultEvent(call_id, tool, output, is_error)
        yield StepEvent(
            Step.TOOL,
            StepStatus.FAILED if is_error else StepStatus.FINISHED,
            shorten(output, 200),
            _ms(duration),
        )
        respond_started = self._deps.clock()
        yield StepEvent(Step.RESPOND, StepStatus.STARTED, f"reporting the {tool} result")
        run.answer_parts = [answer]
        yield TokenEvent(answer)
        yield StepEvent(Step.RESPOND, StepStatus.FINISHED, "", _ms(self._deps.clock() - respond_started))
        self._goto(run, State.FINISH)

    async def _run_tool(self, plan: Plan) -> tuple[str, str, bool]:
        """(tool output, answer text, whether the tool failed)."""
        limit = self._settings.tool_output_chars
        if plan.action is Action.CALCULATOR:
            try:
                value = format_number(evaluate(plan.tool_input))
            except CalculatorError as exc:
                return str(exc), f"I could not compute {plan.tool_input}: {exc}.", True
            return value, f"{plan.tool_input} = {value}", False
        if plan.action is Action.PYTHON:
            try:
                result = await self._deps.code_runner.run_python(plan.tool_input)
            except MeshError as exc:
                return exc.message, f"The sandbox could not run the code: {exc.message}", True
            stdout = result.stdout[:limit].rstrip()
            if result.ok:
                shown = stdout or "(no output)"
                return shown, f"The code ran and printed:\n```\n{shown}\n```", False
            why = result.detail or result.stop_reason
            err = (result.stderr[-limit:] or stdout).rstrip()
            answer = f"The code did not complete ({why}, exit code {result.exit_code}):\n```\n{err}\n```"
            return err or why, answer, True
        try:
            neighbourhood = await self._deps.retriever.explore_graph(
                plan.tool_input, self._settings.graph_depth, self._settings.graph_max_nodes
            )
        except MeshError as exc:
            return exc.message, f"The knowledge graph could not be explored: {exc.message}", True
        names = {node.node_id: node for node in neighbourhood.nodes}
        start = neighbourhood.nodes[0].node_id if neighbourhood.nodes else ""
        lines: list[str] = []
        for edge in neighbourhood.edges:
            other = edge.target_id if edge.source_id == start else edge.source_id if edge.target_id == start else ""
            node = names.get(other)
            if node is not None:
                kind = node.label or node.kind
                lines.append(f"{node.name} ({kind}; {edge.type})")
        lines = list(dict.fromkeys(lines))
        output = "\n".join(lines)[:limit] or "no neighbours"
        return output, prompts.graph_answer(plan.tool_input, lines, neighbourhood.truncated), False

    # -- DIRECT: no retrieval (small talk, or the model's choice for a message without content).

    async def _direct(self, run: _Run) -> AsyncGenerator[AgentEvent, None]:
        started = self._deps.clock()
        yield StepEvent(Step.RESPOND, StepStatus.STARTED, "answering directly")
        if planner.is_small_talk(run.query):
            run.answer_parts = [prompts.SMALL_TALK_ANSWER]
            yield TokenEvent(prompts.SMALL_TALK_ANSWER)
        else:
            request = GenerationRequest(
                prompt=f"A helpful assistant replies briefly.\nUser: {run.query}\nAssistant:",
                max_tokens=self._settings.answer_max_tokens,
                temperature=self._settings.temperature,
                repeat_penalty=self._settings.repeat_penalty,
                stop=("\nUser:", "\n\n"),
            )
            async with contextlib.aclosing(self._stream_answer(run, request, cite.MarkerFilter(()))) as stream:
                async for text in stream:
                    yield TokenEvent(text)
            if not any(c.isalnum() for c in run.answer):
                run.answer_parts = [prompts.SMALL_TALK_ANSWER]
                yield TokenEvent(prompts.SMALL_TALK_ANSWER)
        yield StepEvent(Step.RESPOND, StepStatus.FINISHED, "", _ms(self._deps.clock() - started))
        self._goto(run, State.FINISH)

    # -- FINISH: the turn is saved, the answer cached, the final event sent.

    async def _finish(self, run: _Run) -> AsyncGenerator[AgentEvent, None]:
        try:
            await self._record_turn(run)
        except Unavailable as exc:
            # The answer is whole and the caller has it: a store that is down loses the turn, not the answer.
            yield StepEvent(
                Step.MEMORY,
                StepStatus.FAILED,
                f"memory degraded: the turn was not saved to the session ({exc.message})",
            )
        await self._store_in_caches(run)
        now = self._deps.clock()
        ttft = _ms(run.first_token_at - run.started) if run.first_token_at is not None else 0.0
        yield FinalEvent(
            answer=run.answer,
            citations=run.citations,
            usage=run.usage,
            latency=Latency(
                planning_ms=run.planning_ms,
                retrieval_ms=run.retrieval_ms,
                tools_ms=run.tools_ms,
                time_to_first_token_ms=ttft,
                total_ms=_ms(now - run.started),
            ),
            cache_hit=run.cache_hit,
            answered_from_documents=run.answered_from_documents,
            rewritten_query=run.query,
        )
        self._goto(run, State.DONE)

    async def _record_turn(self, run: _Run) -> None:
        await self._deps.memory.record_turn(
            CompletedTurn(
                tenant=run.request.tenant,
                subject=run.request.subject,
                session_id=run.session_id,
                new_session=run.new_session,
                user_message_id=run.user_message_id,
                question=run.request.message,
                rewritten_query=run.query,
                answer_message_id=run.message_id,
                answer=run.answer,
                citations=run.citations,
                answered_from_documents=run.answered_from_documents,
                cache_hit=run.cache_hit.value,
            )
        )

    async def _store_in_caches(self, run: _Run) -> None:
        cacheable = (
            run.scope is not None
            and run.cache_hit is CacheHit.NONE
            and run.answered_from_documents
            and bool(run.citations)
            and not run.degraded
            and not run.history_lost
            and run.search_corpus_version == run.scope.corpus_version
        )
        if not cacheable or run.scope is None:
            return
        entry = CachedAnswer(run.answer, run.citations, run.query, run.answered_from_documents)
        try:
            if self._deps.answer_cache is not None:
                await self._deps.answer_cache.put(run.scope, run.normalized, entry)
            if self._deps.semantic_cache is not None:
                vector = run.query_vector or (await self._embed_question(run))[0]
                await self._deps.semantic_cache.store(run.scope, run.query, vector, entry)
        except MeshError as exc:
            # A cache that cannot be written only costs a future miss.
            log.warning("could not cache the answer: %s", exc.message)

    # -- helpers

    async def _complete(self, run: _Run, request: GenerationRequest) -> str:
        """The whole text of one generation; its usage is added to the run's."""
        parts: list[str] = []
        async with contextlib.aclosing(self._deps.generator.generate(request)) as stream:
            async for chunk in stream:
                parts.append(chunk.text)
                if chunk.usage is not None:
                    run.usage = run.usage + chunk.usage
        return "".join(parts).strip()
