"""Evidence levels: similarity and coverage of the question's specific terms."""

from __future__ import annotations

import dataclasses

from svc_agent.domain.evidence import Level, Thresholds, assess, merge_sources, same_specifics, specific_terms
from tests.unit.svc_agent.fakes import source

THRESHOLDS = Thresholds(min_relevance=0.3, strong_relevance=0.5, min_coverage=0.5)


def scored(chunk_id: str, text: str, relevance: float | None) -> object:
    return dataclasses.replace(source(chunk_id, text), relevance=relevance)


def test_specific_terms_are_names_flags_and_capitalised_words() -> None:
    terms = specific_terms("How do I configure a cert-manager ClusterIssuer with HTTP-01 and --history-max in Helm?")
    assert terms == ["cert-manager", "clusterissuer", "http-01", "history-max", "helm"]
    assert specific_terms("how do pods restart") == []


def test_levels_follow_the_best_similarity() -> None:
    question = "How do pods restart?"
    strong = assess(question, [scored("a", "pods restart", 0.7), scored("b", "x", 0.2)])
    weak = assess(question, [scored("a", "pods restart", 0.4)])
    none = assess(question, [scored("a", "pods restart", 0.1)])
    assert strong.level(THRESHOLDS) is Level.STRONG and strong.strength == 0.7
    assert weak.level(THRESHOLDS) is Level.WEAK
    assert none.level(THRESHOLDS) is Level.INSUFFICIENT


def test_missing_specific_terms_make_evidence_insufficient_however_similar() -> None:
    question = "How do I configure a cert-manager ClusterIssuer for Let's Encrypt?"
    evidence = assess(question, [scored("a", "Configure an issuer for TLS certificates in Kubernetes.", 0.8)])
    assert evidence.coverage < 0.5 and "clusterissuer" in evidence.missing_terms
    assert evidence.level(THRESHOLDS) is Level.INSUFFICIENT
    assert "missing: cert-manager" in evidence.describe()


def test_plural_and_singular_forms_cover_each_other() -> None:
    evidence = assess("How do ConfigMaps work with StatefulSet?", [scored("a", "a ConfigMap and StatefulSets", 0.8)])
    assert evidence.missing_terms == () and evidence.level(THRESHOLDS) is Level.STRONG


def test_without_dense_scores_lexical_overlap_stands_in() -> None:
    evidence = assess("pods restart policy", [scored("a", "The restart policy of pods", None)])
    assert evidence.lexical and evidence.strength == 1.0


def test_no_sources_is_insufficient() -> None:
    assert assess("anything at all", []).level(THRESHOLDS) is Level.INSUFFICIENT


def test_merge_sources_keeps_each_chunk_once_best_first() -> None:
    first = [scored("a", "x", 0.4), scored("b", "y", 0.3)]
    second = [scored("b", "y", 0.6), scored("c", "z", 0.5)]
    merged = merge_sources(first, second, limit=2)
    assert [(s.chunk_id, s.relevance) for s in merged] == [("b", 0.6), ("c", 0.5)]


def test_quantities_question_words_and_parts_of_other_terms_are_not_specific() -> None:
    assert specific_terms("I asked for 1000Gi on Kubernetes 1.25. What's wrong? Why?") == ["kubernetes"]
    assert specific_terms("Can I use CRON_TZ=Europe/Berlin to run on Berlin time?") == ["cron_tz", "europe/berlin"]


def test_terms_found_in_the_pool_or_by_lookup_count_as_covered() -> None:
    question = "How do Taints relate to NodeAffinity?"
    sources = [scored("a", "Node affinity attracts pods.", 0.8)]
    assert assess(question, sources).missing_terms == ("taints", "nodeaffinity")
    pooled = assess(question, sources, pool=[scored("b", "Taints repel pods.", None)], known={"nodeaffinity"})
    assert pooled.missing_terms == () and pooled.coverage == 1.0 and pooled.strength == 0.8


def test_only_names_count_towards_coverage() -> None:
    sources = [scored("a", "A generic ephemeral volume gets a claim named after the pod and the volume.", 0.7)]
    own_names = assess("Pod my-app declares a volume named scratch-volume. What is the claim called?", sources)
    assert own_names.missing_terms == ("my-app", "scratch-volume") and own_names.coverage == 1.0
    assert own_names.level(THRESHOLDS) is Level.WEAK
    product = assess("How many revisions does Helm keep (the --history-max default)?", sources)
    assert product.coverage == 0.0 and product.level(THRESHOLDS) is Level.INSUFFICIENT


def test_same_specifics() -> None:
    assert same_specifics("How many ReplicaSets does a Deployment keep?", "how many replicasets does a deployment keep")
    assert not same_specifics("How many ReplicaSets does a Deployment keep?", "How many does a StatefulSet keep?")
    assert not same_specifics("Is 10 the default?", "Is 20 the default?")
