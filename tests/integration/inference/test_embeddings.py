"""Embed and Rerank against the real encoders, on Ray Serve and in-process."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from mesh.sparse import default_encoder
from ragmesh.inference.v1 import inference_service_pb2 as pb
from tests.support.inference import CROSS, Stack

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

PASSAGE = "A Pod is the smallest deployable unit of computing that you can create and manage in Kubernetes."
QUERY = "What is the smallest deployable unit in Kubernetes?"
UNRELATED = [
    "Simmer the tomato sauce for twenty minutes before adding fresh basil.",
    "The football match ended in a draw after extra time.",
    "Heavy rain is expected across the northern region tomorrow.",
    "She practised the piano sonata every morning for a month.",
    "The museum opens a new exhibition of impressionist paintings in May.",
    "Knead the dough until it is smooth and elastic, then let it rise.",
    "The marathon route passes along the river and through the old town.",
    "Migrating birds fly thousands of kilometres each autumn.",
    "The orchestra tuned their instruments before the concert began.",
    "A good espresso needs finely ground beans and steady pressure.",
    "The hiking trail climbs steeply through a pine forest to the summit.",
    "Children built a sandcastle while the tide came in.",
    "The novel follows three generations of a family of fishermen.",
    "Fresh strawberries are in season at the market this week.",
    "The tennis champion served twelve aces in the final set.",
    "Snow covered the village rooftops overnight.",
    "He tuned the old guitar and played a folk song by the fire.",
    "The bakery sells sourdough bread and almond croissants.",
    "Astronomers observed a comet passing close to the sun.",
    "The chess grandmaster sacrificed a knight to win the game.",
]


def _matrix(response: pb.EmbedResponse) -> np.ndarray:
    return np.array([list(e.dense) for e in response.embeddings], dtype=np.float32)


async def test_embeddings_are_unit_norm_384_d_and_identical_for_identical_input(stack: Stack) -> None:
    texts = [PASSAGE, UNRELATED[0], PASSAGE]
    first = await stack.stub.Embed(pb.EmbedRequest(texts=texts), timeout=60)
    again = await stack.stub.Embed(pb.EmbedRequest(texts=texts), timeout=60)
    vectors = _matrix(first)
    assert first.model == "all-minilm-l6-v2" and first.dimensions == 384
    assert vectors.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(vectors[0], vectors[2])
    assert np.array_equal(vectors, _matrix(again))
    assert not np.allclose(vectors[0], vectors[1])


async def test_a_query_ranks_its_own_passage_first_among_20_unrelated(stack: Stack) -> None:
    documents = [*UNRELATED[:10], PASSAGE, *UNRELATED[10:]]
    ranked = await stack.stub.Rerank(pb.RerankRequest(query=QUERY, documents=documents), timeout=60)
    assert ranked.method == "embedding-cosine" and ranked.model == "all-minilm-l6-v2-cosine"
    assert ranked.results[0].index == 10
    assert sorted(r.index for r in ranked.results) == list(range(21))
    scores = [r.score for r in ranked.results]
    assert scores == sorted(scores, reverse=True)
    # The same through Embed: query mode against document mode.
    query = await stack.stub.Embed(pb.EmbedRequest(texts=[QUERY], mode=pb.EMBED_MODE_QUERY), timeout=60)
    docs = await stack.stub.Embed(pb.EmbedRequest(texts=documents, mode=pb.EMBED_MODE_DOCUMENT), timeout=60)
    assert int(np.argmax(_matrix(docs) @ _matrix(query)[0])) == 10
    top3 = await stack.stub.Rerank(pb.RerankRequest(query=QUERY, documents=documents, top_n=3), timeout=60)
    assert [r.index for r in top3.results] == [r.index for r in ranked.results[:3]]


async def test_sparse_vectors_are_the_mesh_bm25_weights(stack: Stack) -> None:
    encoder = default_encoder()
    docs = await stack.stub.Embed(pb.EmbedRequest(texts=[PASSAGE], include_sparse=True), timeout=60)
    expected = encoder.encode_document(PASSAGE)
    assert list(docs.embeddings[0].sparse.indices) == list(expected.indices)
    np.testing.assert_allclose(list(docs.embeddings[0].sparse.values), expected.values, rtol=1e-6)
    query = await stack.stub.Embed(
        pb.EmbedRequest(texts=[QUERY], mode=pb.EMBED_MODE_QUERY, include_sparse=True), timeout=60
    )
    assert set(query.embeddings[0].sparse.values) == {1.0}
    plain = await stack.stub.Embed(pb.EmbedRequest(texts=[QUERY]), timeout=60)
    assert not plain.embeddings[0].HasField("sparse")


async def test_the_cross_encoder_path_scores_like_the_model_itself(stack: Stack, tiny_cross_encoder: Path) -> None:
    from sentence_transformers import CrossEncoder

    documents = [PASSAGE, *UNRELATED[:5]]
    ranked = await stack.stub.Rerank(
        pb.RerankRequest(model=CROSS, query=QUERY, documents=documents, top_n=4), timeout=60
    )
    assert ranked.method == "cross-encoder" and ranked.model == CROSS
    assert len(ranked.results) == 4
    direct = CrossEncoder(str(tiny_cross_encoder), device="cpu", local_files_only=True)
    import torch

    expected = direct.predict([(QUERY, d) for d in documents], activation_fn=torch.nn.Sigmoid())
    order = sorted(range(len(documents)), key=lambda i: (-float(expected[i]), i))[:4]
    assert [r.index for r in ranked.results] == order
    np.testing.assert_allclose([r.score for r in ranked.results], [float(expected[i]) for i in order], atol=1e-5)


async def test_query_and_document_prefixes_come_from_the_model_config() -> None:
    import dataclasses

    from svc_inference.app import source_settings
    from svc_inference.config import MODELS_DIR, Config
    from svc_inference.domain.embedder import Embedder
    from svc_inference.domain.model import EmbedMode, EmbedRequest
    from svc_inference.domain.model_config import load_profile

    config = dataclasses.replace(load_profile(MODELS_DIR, "local").embedders[0], query_prefix="query: ")
    embedder = Embedder(config, source_settings(Config()))
    as_query = embedder.embed(EmbedRequest(texts=("pod restarts",), mode=EmbedMode.QUERY)).dense[0]
    spelled_out = embedder.embed(EmbedRequest(texts=("query: pod restarts",), mode=EmbedMode.DOCUMENT)).dense[0]
    plain = embedder.embed(EmbedRequest(texts=("pod restarts",), mode=EmbedMode.DOCUMENT)).dense[0]
    assert np.array_equal(as_query, spelled_out)
    assert not np.array_equal(as_query, plain)


async def test_concurrent_requests_get_their_own_vectors(stack: Stack) -> None:
    # Texts of different lengths, long enough that their token counts are checked while other
    # requests are being encoded (on Ray Serve: batched together by @serve.batch).
    texts = [f"{UNRELATED[i % 20]} {PASSAGE * (1 + i % 3)} ({i})" for i in range(24)]
    requests = [texts[i : i + 8] for i in range(0, 24, 8)]
    expected = [_matrix(await stack.stub.Embed(pb.EmbedRequest(texts=r), timeout=60)) for r in requests]
    responses = await asyncio.gather(
        *(stack.stub.Embed(pb.EmbedRequest(texts=requests[i % 3]), timeout=120) for i in range(12))
    )
    for i, response in enumerate(responses):
        np.testing.assert_allclose(_matrix(response), expected[i % 3], atol=1e-5)
