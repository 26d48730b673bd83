"""Both vector backends on the real engines: same schema, filters and fusion arithmetic.

The embedded Qdrant engine (qdrant-edge) and the server backend's code over
qdrant-client's local mode must agree with each other and with the domain's
RRF formula, since the graph leg is merged into the engine's fused scores.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import qdrant_edge as qe
from qdrant_client import AsyncQdrantClient

from mesh.sparse import default_encoder
from svc_retrieval.clients import payload as pl
from svc_retrieval.clients.edge_index import EdgeVectorIndex, HnswSettings
from svc_retrieval.clients.qdrant_index import QdrantServerIndex
from svc_retrieval.domain import fusion
from svc_retrieval.domain.model import ChunkPoint, SearchFilter, StoredChunk, VectorQuery
from svc_retrieval.domain.ports import VectorIndex

pytestmark = pytest.mark.integration

DIM = 16
T0 = datetime(2025, 1, 1, tzinfo=UTC)
TEXTS = [
    "pods are scheduled onto nodes by the scheduler",
    "taints repel pods from nodes unless tolerated",
    "the kubelet garbage collects unused images",
    "services expose pods behind a stable address",
    "persistent volumes outlive the pods using them",
    "config maps hold configuration for pods",
]


def _points(tenant: str) -> list[ChunkPoint]:
    rng = np.random.default_rng(3)
    out = []
    for i, text in enumerate(TEXTS):
        vec = rng.normal(size=DIM)
        stored = StoredChunk(
            chunk_id=f"00000000-0000-4000-8000-{i:012d}" if tenant == "a" else f"00000000-0000-4000-9000-{i:012d}",
            doc_id=f"doc{i % 3}",
            source_uri=f"file:///corpus/{'k8s' if i < 4 else 'noise'}/{i}.md",
            title=f"Title {i}",
            section="",
            chunk_index=i,
            chunk_hash="h",
            text=text,
            document_type="markdown" if i % 2 == 0 else "html",
            doc_version=1,
            ingested_at=T0 + timedelta(days=i),
        )
        out.append(
            ChunkPoint(tenant, stored, (vec / np.linalg.norm(vec)).tolist(), default_encoder().encode_document(text))
        )
    return out


@pytest.fixture(params=["edge", "qdrant-local"])
async def index(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[VectorIndex]:
    vectors: VectorIndex
    if request.param == "edge":
        vectors = EdgeVectorIndex(tmp_path / "shard", DIM, HnswSettings(), optimize_idle_s=0.1)
    else:
        vectors = QdrantServerIndex(AsyncQdrantClient(location=":memory:"), "chunks", DIM, HnswSettings())
    await vectors.open()
    await vectors.upsert(_points("a") + _points("b"))
    try:
        yield vectors
    finally:
        await vectors.close()


def _query(**kw: object) -> VectorQuery:
    rng = np.random.default_rng(5)
    q = rng.normal(size=DIM)
    base: dict[str, object] = {
        "tenant": "a",
        "dense": (q / np.linalg.norm(q)).tolist(),
        "sparse": default_encoder().encode_query("pods nodes"),
        "filter": SearchFilter(),
        "leg_limit": 10,
        "fused_limit": 10,
        "rrf_k": 2,
        "dense_weight": 1.0,
        "sparse_weight": 1.7,
    }
    base.update(kw)
    return VectorQuery(**base)  # type: ignore[arg-type]


async def test_engine_fusion_is_the_domain_rrf_formula(index: VectorIndex) -> None:
    result = await index.search(_query())
    expected = fusion.rrf([(result.dense, 1.0), (result.sparse, 1.7)], k=2)
    assert [h.chunk_id for h in result.fused] == fusion.best_first(expected)[: len(result.fused)]
    for hit in result.fused:
        assert hit.score == pytest.approx(expected[hit.chunk_id], rel=1e-4)
    assert set(result.chunks) == {h.chunk_id for h in result.fused}


async def test_every_query_is_scoped_to_the_tenant(index: VectorIndex) -> None:
    result = await index.search(_query(tenant="a"))
    assert all(cid.startswith("00000000-0000-4000-8000") for cid in result.chunks)
    assert await index.count("a") == len(TEXTS)
    other = [p.chunk.chunk_id for p in _points("b")]
    assert await index.fetch("a", other, SearchFilter()) == {}
    assert await index.existing_versions("a", other) == {}


@pytest.mark.parametrize(
    ("flt", "allowed"),
    [
        (SearchFilter(source_prefix="file:///corpus/noise/"), {4, 5}),
        (SearchFilter(document_types=("html",)), {1, 3, 5}),
        (SearchFilter(doc_ids=("doc0",)), {0, 3}),
        (SearchFilter(ingested_after=T0 + timedelta(days=3, hours=1)), {4, 5}),
        (SearchFilter(source_prefix="file:///corpus/k8s/", document_types=("markdown",)), {0, 2}),
    ],
)
async def test_filters_mean_the_same_on_both_backends(index: VectorIndex, flt: SearchFilter, allowed: set[int]) -> None:
    result = await index.search(_query(filter=flt))
    got = {c.chunk_index for c in result.chunks.values()}
    assert got and got <= allowed
    everything = [p.chunk.chunk_id for p in _points("a")]
    assert {c.chunk_index for c in (await index.fetch("a", everything, flt)).values()} == allowed


async def test_versions_move_and_stale_points_go(index: VectorIndex) -> None:
    ids = [p.chunk.chunk_id for p in _points("a") if p.chunk.doc_id == "doc0"]
    await index.set_version("a", ids[:1], 2, (T0 + timedelta(days=30)).isoformat())
    assert (await index.existing_versions("a", ids))[ids[0]] == 2
    assert await index.delete_stale("a", "doc0", keep_version=2) == len(ids) - 1
    assert set(await index.existing_versions("a", ids)) == {ids[0]}
    assert await index.delete_documents("a", ["doc0", "doc1"]) == 1 + 2
    assert await index.count("a") == len(TEXTS) - len(ids) - 2
    assert await index.count("b") == len(TEXTS)


async def test_edge_indexes_the_payload_fields_it_filters_on(tmp_path: Path) -> None:
    vectors = EdgeVectorIndex(tmp_path / "shard", DIM, HnswSettings())
    await vectors.open()
    await vectors.close()
    shard = qe.EdgeShard.load(str(tmp_path / "shard"))
    try:
        schema = shard.info().payload_schema
    finally:
        shard.close()
    expected = {pl.TENANT_FIELD, pl.SOURCE_FIELD, pl.DATETIME_FIELD, pl.VERSION_FIELD, *pl.KEYWORD_FIELDS}
    assert expected <= set(schema)


_COUNT_SEARCH_THREADS = """
import asyncio, sys
from pathlib import Path
from svc_retrieval.clients.edge_index import EdgeVectorIndex, HnswSettings
from tests.integration.retrieval.test_vector_index import DIM, _points, _query

async def main() -> None:
    vectors = EdgeVectorIndex(Path(sys.argv[1]), DIM, HnswSettings(), search_threads=int(sys.argv[2]))
    await vectors.open()
    await vectors.upsert(_points("a"))
    assert (await vectors.search(_query())).fused
    # The engine names its search pool's threads edge-search-N.
    tasks = Path("/proc/self/task").iterdir()
    print(sum(1 for t in tasks if (t / "comm").read_text().startswith("edge-search")))
    await vectors.close()

asyncio.run(main())
"""


@pytest.mark.parametrize("threads", [1, 2])
def test_edge_searches_on_as_many_threads_as_it_is_given(tmp_path: Path, threads: int) -> None:
    # A process of its own: engines opened by other tests in this one have pools of their own.
    shard = tmp_path / "shard"
    run = subprocess.run(
        [sys.executable, "-c", _COUNT_SEARCH_THREADS, str(shard), str(threads)],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    assert run.stdout.split() == [str(threads)]
    assert f'"max_search_threads":{threads}' in (shard / "edge_config.json").read_text()


async def test_edge_fuses_in_process_exactly_as_the_engine_fused_request_would(tmp_path: Path) -> None:
    # The embedded backend runs each leg once and fuses itself; the engine's fused request
    # (both legs as prefetches, weighted RRF) on the same shard must give the same hits and scores.
    rng = np.random.default_rng(11)
    words = [
        "pod",
        "node",
        "taint",
        "toleration",
        "service",
        "volume",
        "claim",
        "scheduler",
        "kubelet",
        "image",
        "config",
        "secret",
    ]
    points = []
    for i in range(240):
        vec = rng.normal(size=DIM)
        text = " ".join(rng.choice(words, size=8))
        stored = StoredChunk(
            chunk_id=f"00000000-0000-4000-8000-{i:012d}",
            doc_id=f"doc{i % 40}",
            source_uri=f"file:///corpus/{i}.md",
            title="",
            section="",
            chunk_index=i,
            chunk_hash="h",
            text=text,
            document_type="markdown",
            doc_version=1,
            ingested_at=T0,
        )
        points.append(
            ChunkPoint("a", stored, (vec / np.linalg.norm(vec)).tolist(), default_encoder().encode_document(text))
        )
    index = EdgeVectorIndex(tmp_path / "shard", DIM, HnswSettings(), optimize_idle_s=0.1)
    await index.open()
    try:
        await index.upsert(points)
        for k, dense_weight, sparse_weight in ((60, 1.0, 2.0), (2, 1.0, 1.7)):
            query = _query(
                sparse=default_encoder().encode_query("taint toleration scheduler"),
                leg_limit=30,
                fused_limit=20,
                rrf_k=k,
                dense_weight=dense_weight,
                sparse_weight=sparse_weight,
            )
            result = await index.search(query)
            assert query.dense is not None and query.sparse is not None
            flt = qe.Filter(must=[qe.FieldCondition(pl.TENANT_FIELD, match=qe.MatchValue("a"))])
            # The engine fuses every candidate of both legs (limit 60 = 30 + 30), so each of our hits can be
            # looked up in its answer, whichever of two equal scores either side kept at the cut of 20.
            engine = qe.QueryRequest(
                limit=60,
                prefetches=[
                    qe.Prefetch(limit=30, query=qe.Query.Nearest(list(query.dense), using=pl.DENSE_VECTOR), filter=flt),
                    qe.Prefetch(
                        limit=30,
                        query=qe.Query.Nearest(
                            qe.SparseVector(list(query.sparse.indices), list(query.sparse.values)),
                            using=pl.SPARSE_VECTOR,
                        ),
                        filter=flt,
                    ),
                ],
                query=qe.Fusion.Rrf(k=k, weights=[dense_weight, sparse_weight]),  # type: ignore[arg-type]
                filter=flt,
            )
            (fused,) = await index._call(lambda shard, engine=engine: shard.query_batch(qe.QueryBatchRequest([engine])))
            ours = [(round(h.score, 6), h.chunk_id) for h in result.fused]
            theirs = [(round(p.score, 6), str(p.id)) for p in fused]
            engine_score = {chunk_id: score for score, chunk_id in theirs}
            assert len(ours) == 20
            # The same scores in the same order as the engine's best 20 ...
            assert [s for s, _ in ours] == [s for s, _ in theirs[:20]]
            # ... each hit scored as the engine scores it ...
            assert all(engine_score.get(chunk_id) == score for score, chunk_id in ours)
            # ... and above the cut's score, the very same hits; ties among ours go by chunk id.
            cut = ours[-1][0]
            assert {c for s, c in ours if s > cut} == {c for s, c in theirs[:20] if s > cut}
            raw = [(h.score, h.chunk_id) for h in result.fused]
            assert raw == sorted(raw, key=lambda s: (-s[0], s[1]))
            assert set(result.chunks) == {h.chunk_id for h in result.fused}
            assert all(result.chunks[h.chunk_id].chunk_id == h.chunk_id for h in result.fused)
    finally:
        await index.close()
