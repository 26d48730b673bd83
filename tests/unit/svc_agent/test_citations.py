"""Citation markers in a streamed answer, snippets, and post-hoc attribution."""

from __future__ import annotations

import pytest

from svc_agent.domain.citations import MarkerFilter, attribute, make_citations, snippet, strip_markers, windows
from svc_agent.domain.model import Source
from tests.unit.svc_agent.fakes import FakeEmbedder, source


def stream(deltas: list[str], valid: list[int]) -> tuple[str, MarkerFilter]:
    markers = MarkerFilter(valid)
    out = "".join(markers.feed(d) for d in deltas) + markers.finish()
    return out, markers


@pytest.mark.parametrize(
    ("deltas", "shown", "used", "dropped"),
    [
        (["Pods [1] run."], "Pods [1] run.", [1], []),
        (["Pods [", "2", "] run [1]."], "Pods [2] run [1].", [2, 1], []),
        (["Pods [7] run."], "Pods  run.", [], [7]),
        (["Pods [1, 7, 2]."], "Pods [1][2].", [1, 2], [7]),
        (["See [the docs](x) and [", "a]"], "See [the docs](x) and [a]", [], []),
        (["Ends with ["], "Ends with [", [], []),
        (["Ends with [1"], "Ends with [1", [], []),
        (["[", "1", "]", "[", "1", "]"], "[1][1]", [1], []),
    ],
)
def test_marker_filter(deltas: list[str], shown: str, used: list[int], dropped: list[int]) -> None:
    out, markers = stream(deltas, [1, 2, 3])
    assert out == shown
    assert markers.used == used and markers.dropped == dropped


def test_marker_filter_holds_back_only_a_possible_marker() -> None:
    markers = MarkerFilter([1])
    assert markers.feed("Pods [") == "Pods "
    assert markers.feed("x") == "[x"
    assert markers.feed(" [12") == " "
    assert markers.feed("34567890123456789") == "[1234567890123456789"


def test_strip_markers() -> None:
    assert strip_markers("Pods run [1] here [2, 3].") == "Pods run here."


def test_make_citations_keeps_given_sources_in_marker_order() -> None:
    sources = [source("a", "Alpha text."), source("b", "Beta text.")]
    citations = make_citations([2, 1, 2, 9], sources)
    assert [(c.marker, c.chunk_id) for c in citations] == [(1, "a"), (2, "b")]


def test_snippet_centres_on_the_answer_words_and_is_short() -> None:
    text = "Intro sentence here. " * 30 + "The kubelet deletes images every five minutes. Tail."
    cut = snippet(source("a", text), near="kubelet deletes images")
    assert cut.startswith("The kubelet deletes images") and len(cut) <= 240


async def attribute_plainly(answer: str, sources: list[Source], question: str = "", weight: float = 0.0) -> object:
    return await attribute(
        answer,
        question,
        sources,
        FakeEmbedder(),
        min_similarity=0.3,
        standing_weight=weight,
        short_claim_words=0,
        source_chars=500,
    )


async def test_attribution_credits_each_sentence_to_its_closest_source_above_the_threshold() -> None:
    sources = [
        source("gc", "The kubelet garbage collects unused images every five minutes."),
        source("svc", "A Service exposes Pods on a stable virtual IP address."),
        source("mem", "A Pod that asks for too much memory stays Pending."),
    ]
    answer = "The kubelet garbage collects unused images every five minutes. A Service gives Pods a stable address."
    attribution = await attribute_plainly(answer, sources)
    assert attribution.markers == (1, 2) and attribution.sentences == 2  # type: ignore[attr-defined]
    unrelated = await attribute_plainly("Bananas grow in warm tropical places.", sources)
    assert unrelated.markers == ()  # type: ignore[attr-defined]


async def test_attribution_prefers_the_source_retrieval_ranked_higher_when_a_sentence_is_vague() -> None:
    vague = "The kubelet does this on a schedule for images and containers."
    sources = [
        source("b", "The kubelet garbage collects images on a schedule."),
        source("a", "The kubelet runs on nodes and manages images and containers."),
    ]
    assert (await attribute_plainly(vague, sources)).markers == (2,)  # type: ignore[attr-defined]
    assert (await attribute_plainly(vague, sources, weight=1.0)).markers == (1,)  # type: ignore[attr-defined]


async def test_standing_never_credits_a_sentence_that_resembles_no_source() -> None:
    sources = [
        source("gc", "The kubelet garbage collects unused images every five minutes."),
        source("svc", "A Service exposes Pods on a stable virtual IP address."),
    ]
    unrelated = "Bananas grow in warm tropical places."
    found = await attribute(
        unrelated,
        "",
        sources,
        FakeEmbedder(),
        min_similarity=0.3,
        standing_weight=3.0,
        short_claim_words=0,
        source_chars=500,
        min_own_similarity=0.25,
    )
    assert found.markers == ()


async def test_a_short_sentence_is_read_with_the_question_it_answers() -> None:
    sources = [
        source("jobs", "A CronJob keeps three successful Jobs and one failed Job by default."),
        source("gc", "The kubelet garbage collects unused images every five minutes."),
    ]
    question = "How many finished Jobs does a CronJob keep?"
    alone = await attribute(
        "Just that many.",
        question,
        sources,
        FakeEmbedder(),
        min_similarity=0.2,
        standing_weight=0.0,
        short_claim_words=0,
        source_chars=500,
    )
    with_question = await attribute(
        "Just that many.",
        question,
        sources,
        FakeEmbedder(),
        min_similarity=0.2,
        standing_weight=0.0,
        short_claim_words=20,
        source_chars=500,
    )
    assert alone.markers == () and with_question.markers == (1,)


def test_windows_cut_at_sentence_ends_and_never_exceed_the_limit() -> None:
    text = "One short sentence. " * 10 + "x" * 130 + " tail words here."
    pieces = windows(text, 60, 10)
    assert all(len(p) <= 60 for p in pieces)
    assert pieces[0] == "One short sentence. One short sentence. One short sentence."
    assert windows(text, 60, 2) == pieces[:2]


async def test_attribution_keeps_every_text_within_what_the_embedder_takes() -> None:
    embedder = FakeEmbedder(max_chars=80)
    long_source = source("gc", "The kubelet garbage collects unused images every five minutes. " * 20)
    answer = "The kubelet garbage collects unused images every five minutes, " + "and so on " * 30 + "."
    attribution = await attribute(
        answer,
        "How often are images collected? " * 10,
        [long_source],
        embedder,
        min_similarity=0.3,
        standing_weight=0.5,
        short_claim_words=8,
        source_chars=400,
    )
    assert attribution.markers == (1,)
    ((texts, _),) = embedder.calls
    assert all(len(t) <= 80 for t in texts) and len(texts) == 1 + 5


async def test_sources_that_support_a_sentence_about_as_well_as_the_best_are_cited_too() -> None:
    sentence = "The kubelet garbage collects unused images and dead containers on a schedule."
    sources = [
        source("images", "The kubelet garbage collects unused images on a schedule."),
        source("containers", "The kubelet garbage collects dead containers every minute on a schedule."),
        source("svc", "A Service exposes Pods on a stable virtual IP address."),
    ]

    async def cited(band: float) -> tuple[int, ...]:
        found = await attribute(
            sentence,
            "",
            sources,
            FakeEmbedder(),
            min_similarity=0.3,
            standing_weight=0.0,
            short_claim_words=0,
            source_chars=500,
            tie_band=band,
        )
        return found.markers

    assert len(await cited(0.0)) == 1
    assert sorted(await cited(0.2)) == [1, 2]


async def test_a_value_the_sentence_copied_points_at_the_source_it_came_from() -> None:
    sources = [
        source("lifecycle", "Deleting a Pod gives it a grace period of 30 seconds by default."),
        source("jobs", "Deleting a Pod of a Job gives it a grace period before it is killed."),
    ]

    async def cited(weight: float) -> tuple[int, ...]:
        found = await attribute(
            "The grace period is 30 seconds.",
            "How long is the grace period when deleting a Pod?",
            sources,
            FakeEmbedder(),
            min_similarity=0.1,
            standing_weight=0.0,
            short_claim_words=0,
            source_chars=500,
            lexical_weight=weight,
        )
        return found.markers

    assert await cited(1.0) == (1,)
