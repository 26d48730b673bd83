"""The answer loop over fakes: events, citations, declining, tools, rewriting, caches, cancellation."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Sequence

import pytest

from mesh.errors import NotFound, Unavailable
from svc_agent.domain import prompts
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
from svc_agent.domain.evidence import Thresholds
from svc_agent.domain.loop import TRANSITIONS, Agent, State
from svc_agent.domain.model import CacheHit, ChatOptions, ChatRequest, Step, StepStatus
from svc_agent.domain.ports import CodeResult, GenerationRequest
from svc_agent.domain.settings import AgentSettings, AnswerMode, PlannerMode
from tests.unit.svc_agent.fakes import Rig, graph_of, rig, source

CORPUS = [
    source(
        "gc",
        "The kubelet performs garbage collection on unused images every five minutes and on unused containers "
        "every minute. Image garbage collection starts when disk usage exceeds the HighThresholdPercent.",
        "Garbage Collection",
    ),
    source(
        "svc",
        "A Service exposes an application running on a set of Pods as a network service. Environment variables "
        "for a Service are only injected when the Service exists before the Pod starts.",
        "Services",
    ),
    source(
        "mem",
        "If a container requests more memory than any node has, the Pod stays Pending and kubectl describe shows "
        "a FailedScheduling event with insufficient memory.",
        "Assign Memory Resources",
    ),
    source(
        "pdb",
        "A PodDisruptionBudget limits the number of Pods of a replicated application that are down at the same "
        "time from voluntary disruptions. You create a PodDisruptionBudget with kubectl apply and a YAML manifest.",
        "Disruptions",
    ),
]
# These tests drive the model-writes-it responder; test_stitch.py covers the stitch mode.
SETTINGS = AgentSettings(
    answer_mode=AnswerMode.GENERATE,
    thresholds=Thresholds(min_relevance=0.2, strong_relevance=0.35, min_coverage=0.5),
    attribution_min_similarity=0.3,
    semantic_cache_min_similarity=0.9,
)
ANSWER_PROMPT = "Answer the question from the numbered sources"
GC_QUESTION = "How often does the kubelet garbage collect unused images?"


def answering(*answer: str, plan: str = '{"action": "retrieve", "input": ""}', rewrite: str = "") -> object:
    """A script: the planner's JSON, the rewrite, a HyDE passage, and ``answer`` as the answer's deltas."""

    def script(request: GenerationRequest) -> Sequence[str]:
        if request.json_schema:
            return [plan]
        if request.prompt.endswith("Standalone question:"):
            return [rewrite]
        if request.prompt.endswith("Passage:"):
            return ["Unused images are garbage collected by the kubelet."]
        return list(answer)

    return script


GC_ANSWER = ("The kubelet ", "collects unused images ", "every five ", "minutes [1].")


async def run(agent: Agent, message: str, session_id: str = "", **options: object) -> list[Envelope]:
    request = ChatRequest(tenant="acme", message=message, session_id=session_id, options=ChatOptions(**options))  # type: ignore[arg-type]
    return [envelope async for envelope in agent.run(request)]


def events(envelopes: Sequence[Envelope]) -> list[AgentEvent]:
    return [e.event for e in envelopes]


def final(envelopes: Sequence[Envelope]) -> FinalEvent:
    last = envelopes[-1].event
    assert isinstance(last, FinalEvent)
    return last


def steps(envelopes: Sequence[Envelope]) -> list[tuple[Step, StepStatus]]:
    return [(e.step, e.status) for e in events(envelopes) if isinstance(e, StepEvent)]


def step_details(envelopes: Sequence[Envelope], step: Step) -> list[str]:
    return [e.detail for e in events(envelopes) if isinstance(e, StepEvent) and e.step is step]


def tokens(envelopes: Sequence[Envelope]) -> list[str]:
    return [e.text for e in events(envelopes) if isinstance(e, TokenEvent)]


def make(script: object = None, settings: AgentSettings = SETTINGS, **kwargs: object) -> Rig:
    return rig(CORPUS, script or answering(*GC_ANSWER), settings, **kwargs)  # type: ignore[arg-type]


async def test_answer_streams_steps_tokens_citations_and_a_full_final_event() -> None:
    r = make()
    out = await run(r.agent, GC_QUESTION)

    assert [e.sequence for e in out] == list(range(1, len(out) + 1))
    assert len({(e.session_id, e.message_id) for e in out}) == 1
    assert len(tokens(out)) >= 3
    assert steps(out) == [
        (Step.REWRITE, StepStatus.STARTED),
        (Step.REWRITE, StepStatus.FINISHED),
        (Step.PLAN, StepStatus.STARTED),
        (Step.PLAN, StepStatus.FINISHED),
        (Step.RETRIEVE, StepStatus.STARTED),
        (Step.RETRIEVE, StepStatus.FINISHED),
        (Step.CACHE_LOOKUP, StepStatus.STARTED),
        (Step.CACHE_LOOKUP, StepStatus.FINISHED),
        (Step.RESPOND, StepStatus.STARTED),
        (Step.RESPOND, StepStatus.FINISHED),
    ]
    done = final(out)
    assert done.answer == "The kubelet collects unused images every five minutes [1]."
    assert "".join(tokens(out)) == done.answer
    assert [c.chunk_id for c in done.citations] == ["gc"]
    assert done.citations[0].snippet and done.citations[0].source_uri == "file:///docs/gc.md"
    cited = [e for e in events(out) if isinstance(e, CitationsEvent)]
    assert len(cited) == 1 and cited[0].citations == done.citations
    assert done.answered_from_documents and done.cache_hit is CacheHit.NONE
    assert done.rewritten_query == GC_QUESTION
    latency = done.latency
    assert latency.retrieval_ms > 0 and latency.time_to_first_token_ms > 0
    assert latency.total_ms >= latency.time_to_first_token_ms
    assert done.usage.prompt_tokens > 0 and done.usage.completion_tokens > 0
    # The turn was saved: the question and the answer with its citations.
    (turn,) = r.memory.turns
    assert turn.question == GC_QUESTION and turn.answer == done.answer and turn.citations == done.citations


async def test_unknown_markers_are_dropped_and_only_given_sources_are_cited() -> None:
    r = make(answering("Images go ", "[1][7] away ", "[3, 9]."))
    out = await run(r.agent, GC_QUESTION)
    done = final(out)
    assert done.answer == "Images go [1] away [3]."
    numbered = r.retriever.corpus
    assert {c.marker for c in done.citations} == {1, 3}
    assert "[7]" not in "".join(tokens(out)) and "9" not in "".join(tokens(out))
    assert "dropped unknown markers [7, 9]" in step_details(out, Step.RESPOND)[-1]
    assert {c.chunk_id for c in done.citations} <= {s.chunk_id for s in numbered}


async def test_a_marker_split_across_deltas_is_kept_whole() -> None:
    r = make(answering("Every five minutes [", "1", "]", " for images."))
    out = await run(r.agent, GC_QUESTION)
    assert final(out).answer == "Every five minutes [1] for images."
    assert [c.marker for c in final(out).citations] == [1]
    assert not any(t.endswith("[") for t in tokens(out))


async def test_without_markers_each_sentence_is_attributed_to_its_closest_source_only() -> None:
    r = make(
        answering(
            "The kubelet performs garbage collection on unused images every five minutes. ",
            "Image garbage collection starts when disk usage exceeds the HighThresholdPercent.",
        )
    )
    out = await run(r.agent, GC_QUESTION)
    done = final(out)
    assert [c.chunk_id for c in done.citations] == ["gc"]
    assert "attributed 2 sentences" in step_details(out, Step.RESPOND)[-1]


async def test_an_answer_that_matches_no_source_cites_nothing() -> None:
    r = make(answering("Bananas grow in warm tropical places, far from any cold northern coast."))
    done = final(await run(r.agent, GC_QUESTION))
    assert done.citations == ()


async def test_an_out_of_corpus_question_is_declined_without_generating() -> None:
    r = make()
    out = await run(r.agent, "What is the capital city of France?")
    done = final(out)
    assert done.answer == prompts.DECLINE_ANSWER
    assert not done.answered_from_documents and done.citations == ()
    assert not any(isinstance(e, CitationsEvent) for e in events(out))
    assert r.generator.prompts_containing(ANSWER_PROMPT) == []
    # The corrective loop is bounded: the first search plus at most N more.
    assert len(r.retriever.queries) <= 1 + SETTINGS.corrective_max_attempts
    assert "declining" in step_details(out, Step.RESPOND)[0]


async def test_a_question_naming_terms_no_source_mentions_is_declined() -> None:
    r = make()
    done = final(await run(r.agent, "How does the kubelet garbage collect images in cert-manager ClusterIssuer?"))
    assert not done.answered_from_documents


async def test_weak_evidence_triggers_corrective_searches_at_most_n_times() -> None:
    settings = dataclasses.replace(
        SETTINGS, thresholds=Thresholds(min_relevance=0.1, strong_relevance=0.99, min_coverage=0.0)
    )
    r = make(settings=settings)
    out = await run(r.agent, GC_QUESTION)
    assert len(r.retriever.queries) == 1 + settings.corrective_max_attempts
    corrective = [d for d in step_details(out, Step.RETRIEVE) if d.startswith("corrective search")]
    assert len(corrective) == 2 * settings.corrective_max_attempts
    # The first corrective query is the question's key terms; the second adds a model-written passage.
    assert r.retriever.queries[1] == "often kubelet garbage collect unused images"
    assert "garbage collected by the kubelet" in r.retriever.queries[2]
    assert final(out).answered_from_documents


async def test_calculator_questions_use_the_tool_and_never_search() -> None:
    r = make()
    out = await run(r.agent, "What is 17 * 23 + 4?")
    call = next(e for e in events(out) if isinstance(e, ToolCallEvent))
    result = next(e for e in events(out) if isinstance(e, ToolResultEvent))
    assert call.tool == "calculator" and json.loads(call.arguments_json) == {"expression": "17 * 23 + 4"}
    assert result.call_id == call.call_id and result.output == "395" and not result.is_error
    assert final(out).answer == "17 * 23 + 4 = 395"
    assert r.retriever.queries == [] and r.generator.requests == []
    assert final(out).latency.tools_ms > 0


async def test_calculator_errors_are_reported_not_raised() -> None:
    r = make()
    out = await run(r.agent, "What is 10 / 0?")
    result = next(e for e in events(out) if isinstance(e, ToolResultEvent))
    assert result.is_error and "division by zero" in final(out).answer
    assert (Step.TOOL, StepStatus.FAILED) in steps(out)


async def test_code_in_the_message_runs_in_the_sandbox() -> None:
    r = make()
    r.code_runner.results["print(sum(range(10)))"] = CodeResult("45\n", "", 0, "completed")
    out = await run(r.agent, "Please run this:\n```python\nprint(sum(range(10)))\n```")
    assert r.code_runner.programs == ["print(sum(range(10)))"]
    result = next(e for e in events(out) if isinstance(e, ToolResultEvent))
    assert result.tool == "python" and result.output == "45"
    assert "45" in final(out).answer


async def test_failing_code_is_reported_with_its_error() -> None:
    r = make()
    out = await run(r.agent, "run `print(x)`")
    result = next(e for e in events(out) if isinstance(e, ToolResultEvent))
    assert result.is_error and "NameError" in result.output and "exit code 1" in final(out).answer


async def test_graph_questions_explore_the_graph() -> None:
    r = make(graph={"kube-proxy": graph_of("kube-proxy", [("Service", "RELATES:IMPLEMENTS"), ("iptables", "USES")])})
    out = await run(r.agent, "What is kube-proxy related to?")
    result = next(e for e in events(out) if isinstance(e, ToolResultEvent))
    assert result.tool == "graph" and "Service (Concept; RELATES:IMPLEMENTS)" in result.output
    assert "iptables" in final(out).answer and r.retriever.queries == []


async def test_a_follow_up_with_a_pronoun_is_rewritten_from_the_history() -> None:
    r = make(answering(*GC_ANSWER, rewrite="How do I create a PodDisruptionBudget?"))
    first = await run(r.agent, "What is a PodDisruptionBudget?")
    session = first[0].session_id
    searched = len(r.retriever.queries)
    second = await run(r.agent, "How do I create one?", session_id=session)
    assert second[0].session_id == session
    done = final(second)
    assert done.rewritten_query == "How do I create a PodDisruptionBudget?"
    detail = step_details(second, Step.REWRITE)[-1]
    assert "deterministic: 'How do I create PodDisruptionBudget?'" in detail and "(used)" in detail
    assert r.retriever.queries[searched] == "How do I create a PodDisruptionBudget?"


async def test_an_unusable_model_rewrite_leaves_the_deterministic_one() -> None:
    r = make(answering(*GC_ANSWER, rewrite="Pods are nice."))
    first = await run(r.agent, "What is a PodDisruptionBudget?")
    second = await run(r.agent, "How do I create it?", session_id=first[0].session_id)
    assert final(second).rewritten_query == "How do I create PodDisruptionBudget?"
    assert "not used: does not name the topic" in step_details(second, Step.REWRITE)[-1]


async def test_continuing_an_unknown_session_fails_before_any_event() -> None:
    r = make()
    stream = r.agent.run(ChatRequest(tenant="acme", message=GC_QUESTION, session_id="nope"))
    with pytest.raises(NotFound):
        await anext(stream)


async def test_with_the_memory_store_down_the_answer_comes_and_says_the_turn_was_not_saved() -> None:
    r = make()
    r.memory.down = True
    out = await run(r.agent, GC_QUESTION)
    done = final(out)
    assert done.answered_from_documents and done.citations
    assert steps(out)[-1] == (Step.MEMORY, StepStatus.FAILED)
    [detail] = step_details(out, Step.MEMORY)
    assert detail.startswith("memory degraded: the turn was not saved") and "connection refused" in detail
    assert r.memory.turns == [] and r.memory.sessions == {}
    # A whole answer is still cached: it came from the documents, not from the lost history.
    assert len(r.answer_cache.entries) == 1


async def test_a_follow_up_with_the_memory_store_down_answers_as_it_stands_and_is_not_cached() -> None:
    r = make()
    session = (await run(r.agent, "What is a PodDisruptionBudget?", bypass_cache=True))[0].session_id
    r.memory.down = True
    out = await run(r.agent, GC_QUESTION, session_id=session)
    assert out[0].session_id == session
    assert steps(out)[0] == (Step.MEMORY, StepStatus.FAILED)
    read, saved = step_details(out, Step.MEMORY)
    assert read.startswith("memory degraded: the session's history could not be read")
    assert saved.startswith("memory degraded: the turn was not saved")
    assert final(out).answered_from_documents and final(out).rewritten_query == GC_QUESTION
    assert len(r.memory.sessions[("acme", session)]) == 2
    assert r.answer_cache.entries == {} and r.semantic_cache.entries == []


async def test_asking_again_hits_the_exact_cache_and_a_new_corpus_version_misses() -> None:
    r = make()
    first = final(await run(r.agent, GC_QUESTION))
    answers_generated = len(r.generator.prompts_containing(ANSWER_PROMPT))

    again = await run(r.agent, "  how often does the KUBELET garbage collect unused images ")
    hit = final(again)
    assert hit.cache_hit is CacheHit.EXACT
    assert hit.answer == first.answer and hit.citations == first.citations
    assert len(tokens(again)) > 1 and any(isinstance(e, CitationsEvent) for e in events(again))
    assert any("exact hit" in d for d in step_details(again, Step.CACHE_LOOKUP))
    assert len(r.generator.prompts_containing(ANSWER_PROMPT)) == answers_generated

    r.retriever.corpus_version = 2  # an ingest changed the corpus
    after_ingest = final(await run(r.agent, GC_QUESTION))
    assert after_ingest.cache_hit is CacheHit.NONE
    assert len(r.generator.prompts_containing(ANSWER_PROMPT)) == answers_generated + 1


async def test_a_paraphrase_hits_the_semantic_cache() -> None:
    r = make()
    await run(r.agent, GC_QUESTION)
    out = await run(r.agent, "how often does the kubelet garbage-collect unused images, please?")
    assert final(out).cache_hit is CacheHit.SEMANTIC
    assert any("semantic hit" in d for d in step_details(out, Step.CACHE_LOOKUP))


async def test_bypass_cache_neither_reads_nor_writes_the_caches() -> None:
    r = make()
    await run(r.agent, GC_QUESTION, bypass_cache=True)
    await run(r.agent, GC_QUESTION, bypass_cache=True)
    assert r.answer_cache.gets == 0 and r.answer_cache.entries == {} and r.semantic_cache.entries == []


async def test_a_failing_cache_is_reported_and_the_answer_still_comes() -> None:
    r = make()
    r.answer_cache.fail = True
    out = await run(r.agent, GC_QUESTION)
    assert (Step.CACHE_LOOKUP, StepStatus.FAILED) in steps(out)
    assert final(out).answered_from_documents and final(out).citations


async def test_declined_and_degraded_answers_are_not_cached() -> None:
    r = make()
    await run(r.agent, "What is the capital city of France?")
    r.retriever.degraded = ("graph",)
    await run(r.agent, GC_QUESTION)
    assert r.answer_cache.entries == {} and r.semantic_cache.entries == []


async def test_a_client_that_goes_away_stops_the_generation_and_saves_nothing() -> None:
    r = make(answering(*(f"word{i} " for i in range(200))), delay_s=0.005)
    stream = r.agent.run(ChatRequest(tenant="acme", message=GC_QUESTION))
    async for envelope in stream:
        if isinstance(envelope.event, TokenEvent):
            break
    await stream.aclose()
    assert r.generator.closed_early == 1 and r.generator.active == 0
    assert r.memory.turns == []


async def test_cancelling_the_serving_task_cancels_the_generation() -> None:
    r = make(answering(*(f"word{i} " for i in range(200))), delay_s=0.005)
    first_token = asyncio.Event()

    async def consume() -> None:
        async for envelope in r.agent.run(ChatRequest(tenant="acme", message=GC_QUESTION)):
            if isinstance(envelope.event, TokenEvent):
                first_token.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first_token.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert r.generator.closed_early == 1 and r.generator.active == 0 and r.memory.turns == []


async def test_a_failed_search_is_a_failed_step_then_unavailable() -> None:
    r = make()
    r.retriever.fail = Unavailable("retrieval down")
    seen: list[Envelope] = []
    with pytest.raises(Unavailable):
        async for envelope in r.agent.run(ChatRequest(tenant="acme", message=GC_QUESTION)):
            seen.append(envelope)
    assert steps(seen)[-1] == (Step.RETRIEVE, StepStatus.FAILED)
    assert r.memory.turns == []


async def test_model_mode_falls_back_to_the_rules_when_the_plan_is_unusable() -> None:
    settings = dataclasses.replace(SETTINGS, planner_mode=PlannerMode.MODEL)
    r = make(answering(*GC_ANSWER, plan='{"action": "calculator", "input": "2 + 2"}'), settings=settings)
    out = await run(r.agent, GC_QUESTION)
    assert "retrieve by rules (model output unusable" in step_details(out, Step.PLAN)[-1]
    assert r.retriever.queries and final(out).answered_from_documents


async def test_model_mode_uses_a_usable_model_plan() -> None:
    settings = dataclasses.replace(SETTINGS, planner_mode=PlannerMode.MODEL)
    r = make(answering(plan='{"action": "calculator", "input": "6 * 7"}'), settings=settings)
    out = await run(r.agent, "I have 6 boxes of 7 apples, how many apples?")
    assert final(out).answer == "6 * 7 = 42"
    assert "calculator by model" in step_details(out, Step.PLAN)[-1]


async def test_auto_mode_asks_the_model_only_when_the_rules_are_unsure() -> None:
    r = make()
    await run(r.agent, GC_QUESTION)
    assert not any(req.json_schema for req in r.generator.requests)
    await run(r.agent, "kubelet image garbage collection")
    assert sum(1 for req in r.generator.requests if req.json_schema) == 1


async def test_an_empty_model_answer_falls_back_to_the_best_source_sentence() -> None:
    r = make(answering("  ", "\n"))
    out = await run(r.agent, GC_QUESTION)
    done = final(out)
    assert "every five minutes" in done.answer and done.answer.endswith("[1]")
    assert [c.chunk_id for c in done.citations] == ["gc"]
    assert "unusable (it is empty)" in step_details(out, Step.RESPOND)[-1]


async def test_an_answer_that_repeats_the_question_gets_the_documents_answer_added() -> None:
    r = make(answering("How often does the kubelet ", "garbage collect unused images?"))
    out = await run(r.agent, GC_QUESTION)
    done = final(out)
    assert done.answer.startswith("How often does the kubelet garbage collect unused images?\n\nFrom the documents: ")
    assert "every five minutes" in done.answer and [c.chunk_id for c in done.citations] == ["gc"]
    assert "unusable (it repeats the question)" in step_details(out, Step.RESPOND)[-1]


async def test_a_copy_of_the_prompts_example_is_not_an_answer_and_its_marker_does_not_count() -> None:
    r = make(answering("The smallest deployable unit of computing in Kubernetes is the Pod [1]."))
    out = await run(r.agent, "How do I create a PodDisruptionBudget?")
    done = final(out)
    assert "From the documents: " in done.answer and "kubectl apply" in done.answer
    assert [c.chunk_id for c in done.citations] == ["pdb"]
    assert "copies the prompt's example" in step_details(out, Step.RESPOND)[-1]


async def test_small_talk_is_answered_without_searching() -> None:
    r = make()
    done = final(await run(r.agent, "hello"))
    assert done.answer == prompts.SMALL_TALK_ANSWER and r.retriever.queries == []


async def test_hyde_searches_with_a_model_written_passage() -> None:
    r = make()
    out = await run(r.agent, GC_QUESTION, hyde=True)
    assert "garbage collected by the kubelet" in r.retriever.queries[0]
    assert "HyDE passage" in step_details(out, Step.RETRIEVE)[-1]


async def test_top_k_limits_the_sources_in_the_prompt() -> None:
    r = make()
    await run(r.agent, GC_QUESTION, top_k=2)
    (answer_request,) = r.generator.prompts_containing(ANSWER_PROMPT)
    assert "\n[2] " in answer_request.prompt and "\n[3] " not in answer_request.prompt


def test_every_state_has_a_handler_and_every_transition_a_target() -> None:
    agent = make().agent
    handled = set(agent._handlers)
    assert handled == set(State) - {State.DONE}
    for state, targets in TRANSITIONS.items():
        assert targets <= set(State), state
    reachable = {State.LOAD}
    frontier = [State.LOAD]
    while frontier:
        for nxt in TRANSITIONS[frontier.pop()]:
            if nxt not in reachable:
                reachable.add(nxt)
                frontier.append(nxt)
    assert reachable == set(State)


async def test_a_term_the_sources_lack_but_the_corpus_has_does_not_decline() -> None:
    settings = dataclasses.replace(SETTINGS, corrective_max_attempts=0)
    r = make(settings=settings)
    question = "How often does the kubelet garbage collect unused images near a PodDisruptionBudget?"
    out = await run(r.agent, question, top_k=1)
    assert r.retriever.lookups == ["poddisruptionbudget"]
    assert "in the corpus: poddisruptionbudget; absent: none" in step_details(out, Step.RETRIEVE)[-1]
    assert final(out).answered_from_documents


async def test_terms_the_corpus_never_mentions_are_looked_up_and_decline() -> None:
    r = make()
    out = await run(r.agent, "How does the kubelet garbage collect images in cert-manager ClusterIssuer?")
    assert sorted(r.retriever.lookups) == ["cert-manager", "clusterissuer"]
    assert "absent: cert-manager, clusterissuer" in " ".join(step_details(out, Step.RETRIEVE))
    assert not final(out).answered_from_documents


async def test_a_failed_term_lookup_gives_the_term_the_benefit_of_the_doubt() -> None:
    settings = dataclasses.replace(SETTINGS, corrective_max_attempts=0)
    r = make(settings=settings)
    original = r.retriever.search

    async def flaky(query: str, top_k: int, *, lexical: bool = False) -> object:
        if lexical:
            raise Unavailable("sparse leg down")
        return await original(query, top_k)

    r.retriever.search = flaky  # type: ignore[method-assign]
    out = await run(r.agent, "How does the kubelet garbage collect images in cert-manager ClusterIssuer?")
    assert "lookup failed for: cert-manager, clusterissuer" in step_details(out, Step.RETRIEVE)[-1]
    assert final(out).answered_from_documents


async def test_a_similar_question_about_another_thing_does_not_hit_the_semantic_cache() -> None:
    settings = dataclasses.replace(SETTINGS, semantic_cache_min_similarity=0.5)
    r = make(settings=settings)
    await run(r.agent, "How do I create a PodDisruptionBudget with kubectl?")
    out = await run(r.agent, "How do I create a NetworkPolicy with kubectl?")
    assert final(out).cache_hit is CacheHit.NONE
    assert any("names other things" in d for d in step_details(out, Step.CACHE_LOOKUP))
