"""Quote-and-stitch answers over fakes: sentence choice, citations, declining, code spans, streaming."""

from __future__ import annotations

import dataclasses
import re

import pytest

from svc_agent.domain import prompts
from svc_agent.domain.events import CitationsEvent, Envelope, FinalEvent, StepEvent, TokenEvent
from svc_agent.domain.evidence import Thresholds
from svc_agent.domain.loop import Agent
from svc_agent.domain.model import ChatOptions, ChatRequest, Step
from svc_agent.domain.ports import GenerationRequest
from svc_agent.domain.settings import AgentSettings, AnswerMode, PlannerMode
from svc_agent.domain.stitch import Candidate, StitchParams, candidates, deltas, stitch, technical
from tests.unit.svc_agent.fakes import FakeEmbedder, rig, source

DEPLOYMENT = source(
    "deploy",
    "A Deployment provides declarative updates for Pods and ReplicaSets.\n"
    "A Deployment's rollout is triggered if and only if the Deployment's Pod template (that is, "
    "`.spec.template`) is changed, for example if the labels or container images of the template are updated. "
    "Other updates, such as scaling the Deployment, do not trigger a rollout.\n"
    "To roll back to the previous revision, run:\n"
    "```shell\n"
    "kubectl rollout undo deployment/nginx-deployment\n"
    "```\n"
    "The output is similar to this:",
    "Deployments",
)
DRAIN = source(
    "drain",
    "## Use kubectl drain to remove a node from service\n"
    "You can use `kubectl drain` to safely evict all of your pods from a node before you perform maintenance. "
    "Safe evictions allow the pod's containers to gracefully terminate.",
    "Safely Drain a Node",
)
LIMITS = source(
    "limits",
    "Each container of a Pod can specify a CPU limit with `resources.limits.cpu`. "
    "The CPU limit defines a hard ceiling on how much CPU time the container can use.",
    "Resource Management for Pods and Containers",
)
NOISE = source(
    "noise",
    "The harvest festival takes place in the autumn. Farmers bring pumpkins and apples to the market square.",
    "Village Chronicle",
)
CORPUS = [DEPLOYMENT, DRAIN, LIMITS, NOISE]
PARAMS = StitchParams(min_similarity=0.2)
SETTINGS = AgentSettings(
    answer_mode=AnswerMode.STITCH,
    stitch=PARAMS,
    planner_mode=PlannerMode.RULES,
    thresholds=Thresholds(min_relevance=0.1, strong_relevance=0.2, min_coverage=0.5),
)


def no_model(request: GenerationRequest) -> list[str]:
    raise AssertionError(f"stitch mode generated: {request.prompt[:80]!r}")


async def ask(agent: Agent, message: str) -> list[Envelope]:
    request = ChatRequest(tenant="acme", message=message, options=ChatOptions(bypass_cache=True))
    return [envelope async for envelope in agent.run(request)]


def final(envelopes: list[Envelope]) -> FinalEvent:
    last = envelopes[-1].event
    assert isinstance(last, FinalEvent)
    return last


def answer_sentences(answer: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+", answer) if s.strip()]


async def test_the_sentence_that_answers_is_quoted_and_cited_with_its_chunks_marker() -> None:
    stitched = await stitch(
        "What does a Deployment do when you update its Pod template?", CORPUS, FakeEmbedder(), PARAMS
    )

    assert not stitched.declined
    lead = stitched.chosen[0].candidate
    assert lead.marker == 1
    assert "Pod template" in lead.text
    assert "rollout is triggered" in stitched.answer()
    assert stitched.answer().split(".")[0] in DEPLOYMENT.text


async def test_every_sentence_of_the_answer_carries_a_marker_of_a_given_source() -> None:
    stitched = await stitch("How do I limit the CPU a container can use?", CORPUS, FakeEmbedder(), PARAMS)

    for sentence in answer_sentences(stitched.answer()):
        markers = [int(m) for m in re.findall(r"\[(\d+)\]", sentence)]
        assert markers, sentence
        assert all(1 <= m <= len(CORPUS) for m in markers)
    assert 3 in stitched.markers
    assert "`resources.limits.cpu`" in stitched.answer()


async def test_an_unrelated_question_declines() -> None:
    stitched = await stitch("Which wine goes with grilled salmon?", CORPUS, FakeEmbedder(), StitchParams())

    assert stitched.declined
    assert stitched.answer() == ""


async def test_near_identical_sentences_are_quoted_once() -> None:
    copy = source("copy", DRAIN.text, "Drain (copy)")
    stitched = await stitch("How do I use kubectl drain before maintenance?", [DRAIN, copy], FakeEmbedder(), PARAMS)

    texts = [s.candidate.text for s in stitched.chosen]
    assert len(texts) == len(set(texts))
    assert stitched.answer().count("safely evict") == 1


async def test_a_command_is_preferred_and_its_code_block_kept_whole() -> None:
    stitched = await stitch("How do I roll back a Deployment to the previous revision?", CORPUS, FakeEmbedder(), PARAMS)

    assert "`kubectl rollout undo deployment/nginx-deployment` [1]." in stitched.answer()


def test_inline_code_spans_are_never_cut_when_splitting_sentences() -> None:
    text = source("x", "Set `spec.containers[0]. resources. Limits` to a value. Then apply it with kubectl apply -f.")
    found = candidates([text], "limits", StitchParams())

    assert found[0].text == "Set `spec.containers[0]. resources. Limits` to a value."
    assert (
        technical("run `kubectl drain` now")
        and technical("set --service-node-port-range")
        and technical("resources.limits.cpu")
    )
    assert not technical("The kubelet restarts the container.")


def test_a_quoted_sentence_ends_with_its_marker_before_the_stop() -> None:
    assert Candidate(2, 0, "Pods are evicted.").quoted() == "Pods are evicted [2]."
    assert Candidate(1, 0, "1 out of 3 new replicas have been updated...").quoted() == (
        "1 out of 3 new replicas have been updated [1]."
    )
    assert Candidate(1, 0, "Is it ready?!").quoted() == "Is it ready [1]!"
    assert Candidate(1, 0, "Run this:", ("kubectl get pods",)).quoted() == "Run this: `kubectl get pods` [1]."


def test_deltas_join_to_the_text_and_do_not_split_a_code_span() -> None:
    text = "Use `kubectl rollout undo deployment/nginx --to-revision=2` to go back [1]."
    pieces = deltas(text, 2)

    assert "".join(pieces) == text
    assert any("`kubectl rollout undo deployment/nginx --to-revision=2`" in p for p in pieces)


async def test_the_loop_streams_a_stitched_answer_as_tokens_with_citations_and_no_generation() -> None:
    r = rig(CORPUS, no_model, SETTINGS)
    out = await ask(r.agent, "What does a Deployment do when you update its Pod template?")

    tokens = [e.event.text for e in out if isinstance(e.event, TokenEvent)]
    citations = [e.event for e in out if isinstance(e.event, CitationsEvent)]
    last = final(out)
    assert len(tokens) > 1
    assert "".join(tokens).strip() == last.answer
    assert last.answered_from_documents
    assert "[1]" in last.answer and "rollout is triggered" in last.answer
    assert citations and citations[0].citations[0].chunk_id == "deploy"
    assert {c.marker for c in last.citations} == {int(m) for m in re.findall(r"\[(\d+)\]", last.answer)}
    assert r.generator.requests == []


async def test_the_loop_declines_when_no_sentence_answers() -> None:
    strict = AgentSettings(
        answer_mode=AnswerMode.STITCH,
        stitch=StitchParams(min_similarity=0.99),
        planner_mode=PlannerMode.RULES,
        thresholds=SETTINGS.thresholds,
    )
    r = rig(CORPUS, no_model, strict)
    out = await ask(r.agent, "What does a Deployment do when you update its Pod template?")

    last = final(out)
    assert not last.answered_from_documents
    assert last.answer == prompts.DECLINE_ANSWER
    assert last.citations == ()
    details = [e.event.detail for e in out if isinstance(e.event, StepEvent) and e.event.step is Step.RESPOND]
    assert any("no sentence" in d for d in details)


async def test_the_loop_quotes_by_word_overlap_when_the_embedder_fails() -> None:
    r = rig(CORPUS, no_model, SETTINGS, caches=False)
    r.embedder.fail = True
    out = await ask(r.agent, "How do I use kubectl drain before maintenance?")

    last = final(out)
    assert last.answered_from_documents
    assert "`kubectl drain`" in last.answer
    details = [e.event.detail for e in out if isinstance(e.event, StepEvent) and e.event.step is Step.RESPOND]
    assert any("embedder failed" in d for d in details)


@pytest.mark.parametrize("mode", list(AnswerMode))
async def test_the_answer_mode_picks_the_responder(mode: AnswerMode) -> None:
    settings = AgentSettings(answer_mode=mode, planner_mode=PlannerMode.RULES, thresholds=SETTINGS.thresholds)
    r = rig(CORPUS, lambda request: ["Rollouts start [1]."], settings, caches=False)
    await ask(r.agent, "What does a Deployment do when you update its Pod template?")

    answered_by_model = any("numbered sources" in request.prompt for request in r.generator.requests)
    assert answered_by_model is (mode is AnswerMode.GENERATE)


def test_a_code_block_the_parser_flattened_stays_with_its_sentence_and_headings_are_no_sentences() -> None:
    flattened = source(
        "flat",
        "Rolling Back to a Previous Revision\n\n"
        "Now you've decided to undo the current rollout and rollback to the previous revision: "
        "shell kubectl rollout undo deployment/nginx-deployment\n\n"
        "You can save the namespace for all later kubectl commands in that context.\n\n"
        "shell kubectl config set-context --current --namespace=dev",
    )
    found = [c.quoted() for c in candidates([flattened], "roll back", StitchParams())]

    assert found == [
        "Now you've decided to undo the current rollout and rollback to the previous revision: "
        "`kubectl rollout undo deployment/nginx-deployment` [1].",
        "You can save the namespace for all later kubectl commands in that context: "
        "`kubectl config set-context --current --namespace=dev` [1].",
    ]


def test_a_sentence_that_opens_with_a_command_name_is_prose_not_code() -> None:
    # The docs' "`kubectl rollout undo daemonset` tells the server ..." reaches the responder without
    # its backticks; as a code line it was glued onto the note before it as one long "command", and
    # its own stop ended an answer sentence that had no marker.
    text = source(
        "ds",
        "If --to-revision flag is not specified, kubectl picks the most recent revision.\n\n"
        "kubectl rollout undo daemonset tells the server to start rolling back the DaemonSet. "
        "The real rollback is done asynchronously inside the cluster control plane.\n\n"
        "To watch the progress of the rollback:\n\n"
        "kubectl rollout status ds/<daemonset-name>",
    )
    found = [c.quoted() for c in candidates([text], "roll back a DaemonSet", StitchParams())]

    assert found == [
        "If --to-revision flag is not specified, kubectl picks the most recent revision [1].",
        "kubectl rollout undo daemonset tells the server to start rolling back the DaemonSet [1].",
        "The real rollback is done asynchronously inside the cluster control plane [1].",
        "To watch the progress of the rollback: `kubectl rollout status ds/<daemonset-name>` [1].",
    ]


async def test_a_sentence_that_points_back_is_quoted_after_the_one_it_points_to() -> None:
    ports = source(
        "ports",
        "The control plane allocates a port from a range of 30000-32767 by default. "
        "You can configure that range by setting the API server option --service-node-port-range.",
    )
    stitched = await stitch(
        "What option configures the range of node ports?", [ports], FakeEmbedder(), StitchParams(max_sentences=1)
    )

    assert stitched.answer().index("30000-32767") < stitched.answer().index("--service-node-port-range")


EVICTION = source(
    "eviction",
    "When the kubelet evicts pods under node pressure, it does not respect a PodDisruptionBudget. "
    "If you use soft eviction thresholds, the kubelet respects your eviction-max-pod-grace-period for the pods. "
    "If you use hard eviction thresholds, the kubelet evicts the pods with a 0s grace period. "
    "Pumpkins and apples arrive at the village market every autumn.",
    "Node-pressure Eviction",
)


async def test_the_sentences_beside_the_best_one_bring_its_details() -> None:
    question = "Does the kubelet respect a PodDisruptionBudget when it evicts pods under node pressure?"
    alone = await stitch(question, [EVICTION], FakeEmbedder(), StitchParams(max_passages=1, neighbour_steps=()))
    passage = await stitch(question, [EVICTION], FakeEmbedder(), StitchParams(max_passages=1))

    assert "eviction-max-pod-grace-period" not in alone.answer()
    assert passage.answer().startswith("When the kubelet evicts pods under node pressure")
    assert "eviction-max-pod-grace-period" in passage.answer()
    assert "0s grace period" in passage.answer()
    assert "Pumpkins" not in passage.answer()
    assert passage.answer().count("[1]") == 3


async def test_a_sentence_that_points_back_follows_its_neighbour_even_when_it_leads() -> None:
    revisions = source(
        "revisions",
        "A Deployment's revision is created when a Deployment's rollout is triggered. "
        "This means that a new revision is created if and only if the Deployment's Pod template "
        "(`.spec.template`) is changed, for example when you update the Pod template's container images.",
    )
    stitched = await stitch(
        "What does a Deployment do when you update its Pod template?",
        [revisions],
        FakeEmbedder(),
        StitchParams(max_passages=1),
    )

    answer = stitched.answer()
    assert stitched.chosen[0].candidate.text.startswith("A Deployment's revision"), answer
    assert answer.index("rollout is triggered") < answer.index("This means"), answer
    assert answer.count("rollout is triggered") == 1


async def test_a_passage_after_the_first_prefers_a_source_not_quoted_yet() -> None:
    taints = source(
        "taints",
        "A taint on a node lets the node repel Pods that do not tolerate it. "
        "A taint on a node has a key, a value and an effect that repel Pods. "
        "A taint on a node with the NoExecute effect evicts running Pods that do not tolerate it.",
    )
    affinity = source(
        "affinity",
        "Node affinity attracts Pods to nodes with matching labels.",
    )
    question = "How does a taint on a node repel Pods that do not tolerate it, and what attracts Pods instead?"
    same = StitchParams(max_passages=2, neighbour_steps=(), repeat_source_penalty=0.0, min_share_of_best=0.1)
    mixed = dataclasses.replace(same, repeat_source_penalty=0.5)

    alone = await stitch(question, [taints, affinity], FakeEmbedder(), same)
    both = await stitch(question, [taints, affinity], FakeEmbedder(), mixed)

    assert alone.markers == (1,), alone.answer()
    assert both.markers == (1, 2), both.answer()
    assert both.chosen[0].candidate.marker == 1
    assert "Node affinity attracts Pods" in both.answer()


def test_a_list_flattened_into_a_line_is_a_sentence_per_item() -> None:
    text = source(
        "image-volume",
        "Beside that: - Sub path mounts for containers are not supported (spec.containers[*].volumeMounts.subpath). "
        "- The field spec.securityContext.fsGroupChangePolicy has no effect on this volume type. "
        "- The AlwaysPullImages admission controller works for this volume source too.",
    )

    found = [c.quoted() for c in candidates([text], "fsGroupChangePolicy", StitchParams())]

    assert found == [
        "Sub path mounts for containers are not supported (spec.containers[*].volumeMounts.subpath) [1].",
        "The field spec.securityContext.fsGroupChangePolicy has no effect on this volume type [1].",
        "The AlwaysPullImages admission controller works for this volume source too [1].",
    ]
