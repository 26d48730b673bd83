"""mesh.sparse: the BM25-style encoder shared by ingestion and retrieval."""

from __future__ import annotations

import pytest

from mesh.sparse import SparseConfig, SparseEncoder, SparseVector, default_encoder


def test_query_and_document_share_terms_after_stemming_and_case() -> None:
    enc = default_encoder()
    query = enc.encode_query("Running PODS")
    doc = enc.encode_document("The pod is running on a node.")
    assert set(query.indices) <= set(doc.indices)
    assert all(v == 1.0 for v in query.values)


def test_stop_words_carry_no_terms() -> None:
    assert len(default_encoder().encode_query("the and of to")) == 0


def test_identifiers_also_yield_their_parts() -> None:
    enc = default_encoder()
    whole = set(enc.encode_query("HighThresholdPercent").indices)
    parts = set(enc.encode_query("high threshold percent").indices)
    assert parts < whole, "camelCase parts must be terms besides the identifier itself"
    snake = set(enc.encode_query("REDIS_PRIMARY_SERVICE_HOST").indices)
    assert set(enc.encode_query("redis primary").indices) <= snake


def test_encoding_is_deterministic_across_encoders() -> None:
    text = "kube-proxy watches Services and EndpointSlices"
    assert SparseEncoder().encode_document(text) == SparseEncoder().encode_document(text)


def test_term_frequency_saturates_and_long_chunks_weigh_less() -> None:
    enc = default_encoder()
    term = enc.encode_query("taint").indices[0]
    once = enc.encode_document("taint " + "filler " * 20).as_dict()[term]
    thrice = enc.encode_document("taint taint taint " + "filler " * 18).as_dict()[term]
    assert once < thrice < 3 * once
    long_doc = enc.encode_document("taint " + "filler " * 400).as_dict()[term]
    assert long_doc < once


def test_title_boosts_its_terms() -> None:
    enc = default_encoder()
    term = enc.encode_query("eviction").indices[0]
    plain = enc.encode_document("eviction happens under pressure").as_dict()[term]
    titled = enc.encode_document("eviction happens under pressure", title="Node-pressure Eviction").as_dict()[term]
    assert titled > plain
    only_in_title = enc.encode_document("it happens under pressure", title="Eviction").as_dict()
    assert term in only_in_title


def test_vectors_are_sorted_and_unique() -> None:
    vec = default_encoder().encode_document("b a c a b", title="a", section="c")
    assert list(vec.indices) == sorted(set(vec.indices))


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(ValueError):
        SparseConfig(b=1.5)
    with pytest.raises(ValueError):
        SparseConfig(avg_len=0)
    with pytest.raises(ValueError):
        SparseVector((1, 2), (1.0,))
