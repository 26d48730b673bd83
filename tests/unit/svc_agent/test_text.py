"""Text helpers: words, terms, normalisation, cleaning of source markup."""

from __future__ import annotations

from svc_agent.domain.text import (
    clean_source_text,
    content_terms,
    keyword_query,
    normalize_question,
    sentences,
    shorten,
)


def test_normalize_question_ignores_case_spacing_and_end_punctuation() -> None:
    assert normalize_question("  How do   I drain a NODE?? ") == "how do i drain a node"
    assert normalize_question("ﬁle") == "file"


def test_content_terms_drop_stopwords_and_light_plurals() -> None:
    assert content_terms("How do the Pods restart their containers?") == ["pod", "restart", "container"]


def test_keyword_query_keeps_the_words_as_written() -> None:
    assert keyword_query("How does the Kubelet collect images?") == "Kubelet collect images"


def test_clean_source_text_removes_markup_that_is_not_content() -> None:
    raw = (
        "---\ntitle: GC\n---\n"
        'The {{< glossary_tooltip text="kubelet" term_id="kubelet" >}} deletes images.\n\n\n'
        '{{< feature-state for_k8s_version="v1.29" state="alpha" >}}\n'
        "See [the docs](/docs/x) and <b>bold</b> text."
    )
    assert clean_source_text(raw) == "The kubelet deletes images.\nSee the docs and bold text."


def test_placeholders_in_angle_brackets_are_content_not_tags() -> None:
    raw = (
        "Watch it: kubectl rollout status ds/<daemonset-name> (<none> when unset).<br/>\n"
        '<table><tr><td class="x">Node</td></tr></table> <P>kubectl drain <node-to-drain></P>'
    )
    assert clean_source_text(raw) == (
        "Watch it: kubectl rollout status ds/<daemonset-name> (<none> when unset). \n"
        " Node kubectl drain <node-to-drain>"
    )


def test_sentences_and_shorten() -> None:
    assert sentences("One. Two! Three?\nFour") == ["One.", "Two!", "Three?", "Four"]
    assert shorten("alpha beta gamma delta", 12) == "alpha beta…"
    assert shorten("short", 12) == "short"
