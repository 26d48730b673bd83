"""Fulltext queries built from untrusted text."""

from __future__ import annotations

from svc_retrieval.clients.lucene import names_query, tenant_key, words


def test_tenant_key_is_one_alphanumeric_token_per_tenant() -> None:
    assert tenant_key("acme").isalnum()
    assert tenant_key("a-b_c") != tenant_key("a_b-c")
    assert tenant_key("x").startswith("t") and tenant_key("x")[-1].isdigit()


def test_syntax_in_user_text_is_only_words() -> None:
    query = names_query("acme", 'kube-proxy" OR title:* AND (x) \\ NOT ~2 ^9 {a TO b}')
    assert query is not None
    body = query.split("+(", 1)[1]
    for char in '"*~^{}\\':
        assert char not in body
    assert " OR " not in body.replace("name:(", "").replace("title:(", "")
    assert "kube" in body and "proxy" in body


def test_every_query_requires_the_tenant() -> None:
    query = names_query("acme", "pods")
    assert query is not None and query.startswith(f"+tenant_key:{tenant_key('acme')} +(")


def test_stop_words_only_give_no_query() -> None:
    assert names_query("acme", "how does the, and what is it?") is None
    assert names_query("acme", "   ") is None


def test_words_are_deduplicated_and_bounded() -> None:
    assert words("Pod pod POD pods") == ["pod", "pods"]
    assert len(words(" ".join(f"w{i}" for i in range(500)))) <= 48
