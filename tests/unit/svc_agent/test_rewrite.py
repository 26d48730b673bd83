"""Deterministic follow-up resolution and the checks on the model's rewrite."""

from __future__ import annotations

import pytest

from svc_agent.domain.model import Role, Turn
from svc_agent.domain.rewrite import Resolution, check_model_rewrite, find_pronouns, main_noun_phrase, resolve

HISTORY = [Turn(Role.USER, "What is a Pod disruption budget?"), Turn(Role.ASSISTANT, "It limits ... [1]")]


@pytest.mark.parametrize(
    ("question", "phrase"),
    [
        ("What is a Pod disruption budget?", "Pod disruption budget"),
        ("How do I create a Deployment?", "Deployment"),
        ("What is a PodDisruptionBudget?", "PodDisruptionBudget"),
        ("Which port does kube-proxy listen on?", "kube-proxy"),
        ("How do I configure liveness probes for a Pod?", "liveness probes"),
        ("how are you", ""),
    ],
)
def test_main_noun_phrase(question: str, phrase: str) -> None:
    assert main_noun_phrase(question) == phrase


@pytest.mark.parametrize(
    ("follow_up", "standalone"),
    [
        ("How do I create it?", "How do I create Pod disruption budget?"),
        ("How do I create one?", "How do I create Pod disruption budget?"),
        ("What does that mean?", "What does Pod disruption budget mean?"),
        ("What is its default?", "What is Pod disruption budget's default?"),
        ("Who uses them and why?", "Who uses Pod disruption budget and why?"),
        ("What about StatefulSets?", "What is a StatefulSets?"),
        ("And for DaemonSets?", "What is a DaemonSets?"),
    ],
)
def test_pronouns_and_ellipsis_resolve_to_the_previous_topic(follow_up: str, standalone: str) -> None:
    resolution = resolve(follow_up, HISTORY)
    assert resolution.query == standalone
    assert resolution.topic == "Pod disruption budget"
    assert resolution.changed and resolution.reason


@pytest.mark.parametrize(
    "question",
    [
        "Is this feature stable?",  # a determiner, not a pronoun
        "What happens to pods that are evicted?",  # a relative pronoun
        "How do I drain a node?",  # nothing to resolve
    ],
)
def test_questions_without_references_stay_as_they_are(question: str) -> None:
    assert resolve(question, HISTORY) == Resolution(query=question)


def test_without_history_nothing_is_resolved() -> None:
    assert resolve("How do I create it?", []) == Resolution(query="How do I create it?")


def test_the_previous_rewritten_question_is_the_reference() -> None:
    history = [Turn(Role.USER, "How do I create one?", rewritten_query="How do I create a NetworkPolicy?")]
    assert resolve("Can I delete it?", history).query == "Can I delete NetworkPolicy?"


def test_find_pronouns() -> None:
    assert find_pronouns("Can I scale it and its replicas?") == ["it", "its"]
    assert find_pronouns("Pods that fail") == []


def test_model_rewrite_checks() -> None:
    resolution = resolve("How do I create it?", HISTORY)
    question = "How do I create it?"
    assert check_model_rewrite("How do I create a Pod disruption budget?", question, resolution) is None
    assert check_model_rewrite("", question, resolution) == "empty"
    assert check_model_rewrite("How do I create it?", question, resolution) == "still has a pronoun"
    assert check_model_rewrite("What is a Pod?", question, resolution) == "does not name the topic"
    assert check_model_rewrite("Pod disruption budget basics", question, resolution) == (
        "drops the follow-up's own terms"
    )
    assert check_model_rewrite("x " * 400, question, resolution) == "too long"
