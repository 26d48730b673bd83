"""The graph leg's Cypher stays inside the caller's tenant (checked on a fake transaction)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from svc_retrieval.clients import neo4j_graph
from svc_retrieval.clients.neo4j_graph import Neo4jGraph
from svc_retrieval.domain.model import GraphQuery, SearchFilter

SEP = "\x1f"


class FakeResult:
    """Rows of one statement, as the driver's result gives them."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self._rows = rows

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        async def gen() -> AsyncIterator[dict[str, Any]]:
            for row in self._rows:
                yield row

        return gen()

    async def single(self, strict: bool = False) -> dict[str, Any] | None:
        return self._rows[0] if self._rows else None


class FakeTx:
    """Records every statement and its parameters; answers from canned rows."""

    def __init__(self, tenant: str, version: int = 3) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._tenant = tenant
        self.version = version

    async def run(self, statement: str, params: dict[str, Any]) -> FakeResult:
        self.calls.append((statement, params))
        uid = f"{self._tenant}{SEP}pod disruption budget"
        # Each graph statement answers one record of lists.
        returns = (neo4j_graph._LEG_RETURN_BOTH, neo4j_graph._LEG_RETURN_TEXT, neo4j_graph._LEG_RETURN_ENTITIES)
        if statement.endswith(returns):
            matched = [[u, 2] for u in params["uids"] if u == uid]
            return FakeResult([{"version": self.version, "text_hits": [], "matched": matched}])
        if statement == neo4j_graph._COUNT_CHUNKS:
            return FakeResult([{"chunks": 100}])
        if statement == neo4j_graph._EXPAND_ENTITIES:
            return FakeResult([{"neighbours": []}])
        if statement.lstrip().startswith("UNWIND $uids AS uid\nMATCH (e:Entity {uid: uid})"):
            return FakeResult([{"rows": [[u, [["c-1", "disruptions"]]] for u in params["uids"] if u == uid]}])
        return FakeResult([])


def _graph(tx: FakeTx) -> Neo4jGraph:
    graph = Neo4jGraph(driver=None)  # type: ignore[arg-type]

    async def read(work: Callable[[Any], Awaitable[Any]]) -> Any:
        return await work(tx)

    graph._read = read  # type: ignore[method-assign]
    return graph


@pytest.mark.asyncio
async def test_search_looks_up_only_the_callers_entities() -> None:
    tx = FakeTx("acme")
    query = GraphQuery(
        tenant="acme", text="How does a PodDisruptionBudget limit kubectl drain?", limit=5, filter=SearchFilter()
    )
    result = await _graph(tx).search(query)
    assert [h.chunk_id for h in result.hits] == ["c-1"]
    assert result.corpus_version == 3
    # The leg's statements, the tenant's chunk count (its first search) among them.
    assert len(tx.calls) == 4
    for statement, params in tx.calls:
        assert "$tenant" in statement and params["tenant"] == "acme"
        assert all(u.startswith("acme" + SEP) for u in params.get("uids", []))
    looked_up = tx.calls[0][1]["uids"]
    assert "acme\x1fkubectl drain" in looked_up and "acme\x1fpod disruption budget" in looked_up


@pytest.mark.asyncio
async def test_another_tenant_never_meets_the_first_tenants_keys() -> None:
    tx = FakeTx("acme")
    query = GraphQuery(tenant="other", text="PodDisruptionBudget", limit=5, filter=SearchFilter())
    assert (await _graph(tx).search(query)).hits == []
    assert all(not u.startswith("acme") for _, p in tx.calls for u in p.get("uids", []))


@pytest.mark.asyncio
async def test_the_chunk_count_is_read_again_only_after_the_corpus_version_moves() -> None:
    tx = FakeTx("acme")
    graph = _graph(tx)
    query = GraphQuery(
        tenant="acme", text="How does a PodDisruptionBudget limit kubectl drain?", limit=5, filter=SearchFilter()
    )
    first = await graph.search(query)
    second = await graph.search(query)

    def counts() -> list[str]:
        return [p["tenant"] for statement, p in tx.calls if statement == neo4j_graph._COUNT_CHUNKS]

    assert counts() == ["acme"]
    # The second search used the remembered count: same weights, same scores.
    assert second.hits == first.hits
    # No statement of a search that needs no count walks the chunk index (the planner ran such a
    # subquery's index seek before its version guard, on every search).
    assert not any("count(c)" in statement for statement, _ in tx.calls if statement != neo4j_graph._COUNT_CHUNKS)
    tx.version = 4
    await graph.search(query)
    assert counts() == ["acme", "acme"]
    await graph.search(query)
    assert counts() == ["acme", "acme"]
    # Another tenant's count is its own.
    tx._tenant = "other"
    await graph.search(GraphQuery(tenant="other", text="PodDisruptionBudget", limit=5, filter=SearchFilter()))
    assert counts() == ["acme", "acme", "other"]
