"""The knowledge graph and the per-tenant corpus version in Neo4j.

Model: ``(:Document)-[:HAS_CHUNK]->(:Chunk)-[:MENTIONS]->(:Entity)``,
``(:Entity)-[:RELATES {type}]->(:Entity)`` and
``(:Document)-[:LINKS_TO]->(:Document)``. Every node carries ``tenant`` and a
``uid`` that includes it (unique constraints make MERGE safe under
concurrency). A RELATES edge is kept per asserting document (``doc_uid``), so
deleting or replacing a document removes exactly what it asserted. One
``(:CorpusVersion {tenant, version})`` node per tenant holds the corpus
version; it is bumped in the same transaction as the graph writes it counts.

Writes are MERGE only, one transaction per batch. Reads are auto-commit
statements without driver retries, so a dead server fails a search leg at
once instead of after the driver's retry budget; every statement carries the
request's remaining time as its server-side timeout. A read of several
statements gains nothing from an explicit transaction (Neo4j reads are read
committed: a later statement sees what committed in between either way), and
the transaction's BEGIN and its closing ROLLBACK cost a round trip and server
work on every search.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, LiteralString, Protocol, TypeVar

import neo4j
from neo4j import exceptions as neo4j_errors

from mesh import telemetry
from mesh.context import call_timeout_s
from mesh.entities import code_keys, query_keys
from mesh.errors import DeadlineExceeded, Unavailable
from svc_retrieval.clients.lucene import names_query, tenant_key
from svc_retrieval.domain.graph_rank import (
    ChunkRow,
    EntityRankSettings,
    entity_weights,
    expansion_weights,
    rank,
    shape_factor,
)
from svc_retrieval.domain.ids import normalize_entity
from svc_retrieval.domain.model import (
    DeleteStats,
    GraphCounts,
    GraphEdge,
    GraphLegResult,
    GraphNode,
    GraphQuery,
    LegHit,
    Neighbourhood,
    SearchFilter,
)
from svc_retrieval.domain.ports import GraphWrite, GraphWriteResult

log = logging.getLogger(__name__)

T = TypeVar("T")


class _Statements(Protocol):
    """What a read runs its statements on: an auto-commit runner (``_AutoCommit``) or a transaction."""

    async def run(self, query: LiteralString, parameters: dict[str, Any] | None = None) -> neo4j.AsyncResult: ...


class _AutoCommit:
    """Runs each statement as its own auto-commit read in ``session``, with the server-side timeout."""

    __slots__ = ("_session", "_timeout")

    def __init__(self, session: neo4j.AsyncSession, timeout: float) -> None:
        self._session = session
        self._timeout = timeout

    async def run(self, query: LiteralString, parameters: dict[str, Any] | None = None) -> neo4j.AsyncResult:
        return await self._session.run(neo4j.Query(query, timeout=self._timeout), parameters)


FULLTEXT_INDEX = "ragmesh_names"

#: Tenants whose chunk count (for the graph leg's entity weights) is remembered at once.
_CHUNK_COUNT_TENANTS = 4096

_SEP = "\x1f"

_SCHEMA: tuple[LiteralString, ...] = (
    "CREATE CONSTRAINT ragmesh_document_uid IF NOT EXISTS FOR (n:Document) REQUIRE n.uid IS UNIQUE",
    "CREATE CONSTRAINT ragmesh_chunk_uid IF NOT EXISTS FOR (n:Chunk) REQUIRE n.uid IS UNIQUE",
    "CREATE CONSTRAINT ragmesh_entity_uid IF NOT EXISTS FOR (n:Entity) REQUIRE n.uid IS UNIQUE",
    "CREATE CONSTRAINT ragmesh_corpus_version IF NOT EXISTS FOR (n:CorpusVersion) REQUIRE n.tenant IS UNIQUE",
    "CREATE INDEX ragmesh_document_tenant IF NOT EXISTS FOR (n:Document) ON (n.tenant)",
    "CREATE INDEX ragmesh_chunk_tenant IF NOT EXISTS FOR (n:Chunk) ON (n.tenant)",
    # A document's first chunks by position, without walking all its HAS_CHUNK edges (the title and link
    # matches of the graph leg read them for every matched document).
    "CREATE INDEX ragmesh_chunk_position IF NOT EXISTS FOR (n:Chunk) ON (n.doc_id, n.chunk_index)",
    "CREATE INDEX ragmesh_entity_tenant IF NOT EXISTS FOR (n:Entity) ON (n.tenant)",
    "CREATE INDEX ragmesh_relates_doc IF NOT EXISTS FOR ()-[r:RELATES]-() ON (r.doc_uid)",
    "CREATE FULLTEXT INDEX ragmesh_names IF NOT EXISTS FOR (n:Entity|Document) ON EACH [n.name, n.title, n.tenant_key]"
    " OPTIONS {indexConfig: {`fulltext.analyzer`: 'english'}}",
)

_FAULTS_UNAVAILABLE = (
    neo4j_errors.ServiceUnavailable,
    neo4j_errors.SessionExpired,
    neo4j_errors.TransientError,
    neo4j_errors.DatabaseUnavailable,
    neo4j_errors.ConnectionAcquisitionTimeoutError,
    neo4j_errors.IncompleteCommit,
    ConnectionError,
    OSError,
)


@dataclass(frozen=True)
class GraphSearchSettings:
    """How the graph leg turns fulltext matches into ranked chunks."""

    fulltext_limit: int = 20
    """Fulltext matches considered."""
    fulltext_fields: tuple[str, ...] = ("title",)
    """Fields the fulltext part matches the question's words in: document titles; entities are matched by
    their exact keys instead (adding "name" also matches entity names word by word, which the rule
    extractor's many phrases turn into noise that pushes title matches out of ``fulltext_limit``)."""
    title_chunks: int = 3
    """Leading chunks of a title-matched document that the leg returns."""
    title_weight: float = 1.0
    """Multiplier of a title match's Lucene score."""
    mention_weight: float = 1.0
    """Multiplier of an entity match's Lucene score, per mentioning chunk."""
    link_decay: float = 0.3
    """Score share a document one LINKS_TO hop away inherits."""
    chunk_decay: float = 0.85
    """Per-position decay among a title-matched document's leading chunks."""
    entities: EntityRankSettings = field(default_factory=EntityRankSettings)
    """Entity matching from the question (the extractor's keys), its weights and bounds."""


def _uid(tenant: str, key: str) -> str:
    return f"{tenant}{_SEP}{key}"


def _first_statement(text: bool, entities: bool) -> LiteralString:
    """The graph leg's first statement: the corpus version, then the fulltext part, the entity part
    or both, in one round trip."""
    if text and entities:
        return _LEG_VERSION + _LEG_TEXT + _LEG_ENTITIES + _LEG_RETURN_BOTH
    if text:
        return _LEG_VERSION + _LEG_TEXT + _LEG_RETURN_TEXT
    return _LEG_VERSION + _LEG_ENTITIES + _LEG_RETURN_ENTITIES


def _doc_filter(alias: str, search_filter: SearchFilter, params: dict[str, Any]) -> str:
    """A WHERE fragment (always valid, "true" when empty) over document ``alias``."""
    parts = ["true"]
    if search_filter.source_prefix:
        parts.append(f"{alias}.source_uri STARTS WITH $f_prefix")
        params["f_prefix"] = search_filter.source_prefix
    if search_filter.document_types:
        parts.append(f"{alias}.document_type IN $f_types")
        params["f_types"] = list(search_filter.document_types)
    if search_filter.doc_ids:
        parts.append(f"{alias}.doc_id IN $f_docs")
        params["f_docs"] = list(search_filter.doc_ids)
    if search_filter.ingested_after is not None:
        parts.append(f"{alias}.ingested_at > datetime($f_after)")
        params["f_after"] = search_filter.ingested_after.isoformat()
    return " AND ".join(parts)


class Neo4jGraph:
    """GraphStore over a Neo4j 5 server."""

    def __init__(
        self,
        driver: neo4j.AsyncDriver,
        *,
        database: str = "neo4j",
        search: GraphSearchSettings | None = None,
        call_ceiling_s: float = 30.0,
    ) -> None:
        self._driver = driver
        self._database = database
        self._search = search or GraphSearchSettings()
        self._call_ceiling_s = call_ceiling_s
        self._schema_ready = False
        self._schema_lock = asyncio.Lock()
        # Per tenant: the corpus version its chunks were last counted at, and the count. Every write
        # that adds or removes a chunk moves the version, so a search recounts only after one.
        self._chunk_counts: collections.OrderedDict[str, tuple[int, int]] = collections.OrderedDict()

    @classmethod
    def connect(
        cls,
        uri: str,
        user: str,
        password: str,
        *,
        database: str = "neo4j",
        search: GraphSearchSettings | None = None,
        connect_timeout_s: float = 2.0,
        call_ceiling_s: float = 30.0,
    ) -> Neo4jGraph:
        """A graph over a new driver; connecting is lazy, so a down server does not stop start-up."""
        driver = neo4j.AsyncGraphDatabase.driver(
            uri,
            auth=(user, password),
            connection_timeout=connect_timeout_s,
            connection_acquisition_timeout=connect_timeout_s,
            max_transaction_retry_time=5.0,
            # Hints such as "label does not exist yet" on an empty database are noise in a service log.
            notifications_min_severity="OFF",
        )
        return cls(driver, database=database, search=search, call_ceiling_s=call_ceiling_s)

    async def open(self) -> None:
        """Creates constraints, indexes and the fulltext index; a server that is down is retried on first use."""
        try:
            await self._ensure_schema()
        except Unavailable as exc:
            log.warning("graph store not reachable at start-up; the schema is created on first use: %s", exc)

    async def _ensure_schema(self) -> None:
        if self._schema_ready:
            return
        async with self._schema_lock:
            if self._schema_ready:
                return
            await self._guard(self._run_schema())
            self._schema_ready = True

    async def _run_schema(self) -> None:
        # Auto-commit statements, no driver retries: when the server is down the
        # caller learns at once (a search then degrades its graph leg right away).
        async with self._driver.session(database=self._database) as session:
            for statement in (*_SCHEMA, "CALL db.awaitIndexes(60)"):
                await (await session.run(statement)).consume()

    async def close(self) -> None:
        """Closes the driver."""
        await self._driver.close()

    # -- plumbing ----------------------------------------------------------

    async def _guard(self, awaitable: Awaitable[T]) -> T:
        timeout = call_timeout_s(self._call_ceiling_s)
        try:
            return await asyncio.wait_for(awaitable, timeout)
        except TimeoutError as exc:
            raise DeadlineExceeded(f"graph store call did not finish within {timeout:.3f} s") from exc
        except _FAULTS_UNAVAILABLE as exc:
            raise Unavailable(f"graph store unavailable: {exc}", reason="GRAPH_STORE_UNAVAILABLE") from exc
        except neo4j_errors.ClientError as exc:
            if "TransactionTimedOut" in (exc.code or ""):
                raise DeadlineExceeded(f"graph store transaction timed out: {exc.message}") from exc
            raise

    async def _read(self, work: Callable[[_Statements], Awaitable[T]]) -> T:
        await self._ensure_schema()
        timeout = call_timeout_s(self._call_ceiling_s)

        async def run() -> T:
            async with self._driver.session(database=self._database, default_access_mode=neo4j.READ_ACCESS) as session:
                return await work(_AutoCommit(session, timeout))

        return await self._guard(run())

    async def _write(self, work: Callable[[neo4j.AsyncManagedTransaction], Awaitable[T]]) -> T:
        await self._ensure_schema()
        timeout = call_timeout_s(self._call_ceiling_s)

        async def run() -> T:
            async with self._driver.session(database=self._database) as session:
                return await session.execute_write(neo4j.unit_of_work(timeout=timeout)(work))

        return await self._guard(run())

    # -- writes ------------------------------------------------------------

    @telemetry.traced_store("neo4j", "write")
    async def write(self, batch: GraphWrite) -> GraphWriteResult:
        """MERGEs one batch in one transaction; bumps the corpus version when anything changed."""
        tenant = batch.tenant
        doc = batch.document
        duid = _uid(tenant, doc.doc_id)
        src_prefix = duid + _SEP
        labels = {normalize_entity(e.name): (e.name, e.label) for e in batch.entities}
        entities: dict[str, dict[str, str]] = {}

        def entity(name: str) -> str:
            key = normalize_entity(name)
            if key not in entities:
                shown, label = labels.get(key, (name, ""))
                entities[key] = {"uid": _uid(tenant, key), "key": key, "name": shown, "label": label}
            return entities[key]["uid"]

        chunks = [{"uid": cid, "index": index} for cid, index, _ in batch.chunks]
        mentions = [
            {"chunk": cid, "entity": entity(name)}
            for cid, _, names in batch.chunks
            for name in dict.fromkeys(names)
            if normalize_entity(name)
        ]
        relations = [
            {"source": entity(r.source), "target": entity(r.target), "type": r.type}
            for r in batch.relations
            if normalize_entity(r.source) and normalize_entity(r.target)
        ]
        links = [
            {"uid": _uid(tenant, target), "doc_id": target}
            for target in dict.fromkeys(doc.links_to)
            if target != doc.doc_id
        ]
        params: dict[str, Any] = {
            "tenant": tenant,
            "tkey": tenant_key(tenant),
            "duid": duid,
            "doc_id": doc.doc_id,
            "title": doc.title,
            "source_uri": doc.source_uri,
            "document_type": doc.document_type,
            "content_hash": doc.content_hash,
            "version": doc.doc_version,
            "ingested_at": batch.ingested_at_iso,
            "chunks": chunks,
            "entities": list(entities.values()),
            "mentions": mentions,
            "relations": relations,
            "links": links,
            "src_prefix": src_prefix,
        }

        async def work(tx: neo4j.AsyncManagedTransaction) -> GraphWriteResult:
            created_nodes = created_rels = deleted_nodes = deleted_rels = 0
            statements: list[LiteralString] = [_MERGE_DOCUMENT]
            if chunks:
                statements.append(_MERGE_CHUNKS)
            if entities:
                statements.append(_MERGE_ENTITIES)
            if mentions:
                statements.append(_MERGE_MENTIONS)
            if relations:
                statements.append(_MERGE_RELATIONS)
            if links:
                statements.append(_MERGE_LINKS)
            if batch.document_complete:
                statements.extend(_COMPLETE_DOCUMENT)
            # A new version number alone is a change too: a retry after a failed graph write
            # finds the points already moved, and only the document node still tells.
            previous = await (await tx.run(_DOCUMENT_VERSION, params)).single()
            version_moved = previous is None or previous["version"] != doc.doc_version
            for statement in statements:
                summary = await (await tx.run(statement, params)).consume()
                counters = summary.counters
                created_nodes += counters.nodes_created
                created_rels += counters.relationships_created
                deleted_nodes += counters.nodes_deleted
                deleted_rels += counters.relationships_deleted
            changed = (
                batch.points_changed or version_moved or created_nodes or created_rels or deleted_nodes or deleted_rels
            )
            version = await _bump(tx, tenant) if changed else await _version(tx, tenant)
            return GraphWriteResult(created_nodes, created_rels, deleted_nodes, version)

        return await self._write(work)

    @telemetry.traced_store("neo4j", "delete_documents")
    async def delete_documents(self, tenant: str, doc_ids: Sequence[str], points_deleted: int) -> DeleteStats:
        """Removes the documents with their chunks, links and assertions, then the tenant's orphan entities."""
        params = {"tenant": tenant, "duids": [_uid(tenant, d) for d in doc_ids]}

        async def work(tx: neo4j.AsyncManagedTransaction) -> DeleteStats:
            deleted_nodes = deleted_rels = 0
            for statement in _DELETE_DOCUMENTS:
                counters = (await (await tx.run(statement, params)).consume()).counters
                deleted_nodes += counters.nodes_deleted
                deleted_rels += counters.relationships_deleted
            changed = points_deleted or deleted_nodes or deleted_rels
            version = await _bump(tx, tenant) if changed else await _version(tx, tenant)
            return DeleteStats(points_deleted=points_deleted, nodes_deleted=deleted_nodes, corpus_version=version)

        return await self._write(work)

    # -- reads -------------------------------------------------------------

    async def corpus_version(self, tenant: str) -> int:
        """The tenant's corpus version (0 before its first write)."""

        async def work(tx: _Statements) -> int:
            return await _version(tx, tenant)

        return await self._read(work)

    async def counts(self, tenant: str) -> GraphCounts:
        """Nodes and relationships the tenant has."""

        async def work(tx: _Statements) -> GraphCounts:
            record = await (await tx.run(_COUNTS, {"tenant": tenant})).single(strict=True)
            return GraphCounts(
                documents=int(record["documents"]),
                chunk_nodes=int(record["chunks"]),
                entity_nodes=int(record["entities"]),
                relationships=int(record["relationships"]),
            )

        return await self._read(work)

    @telemetry.traced_store("neo4j", "search")
    async def search(self, query: GraphQuery) -> GraphLegResult:
        """The graph leg: chunks mentioning the question's entities (exact keys, weighed by specificity,
        bounded expansion to bridging neighbours), plus fulltext title and name matches with one link hop;
        with the corpus version, read in the same statement as the first matches."""
        cfg = self._search
        ranking = cfg.entities
        tenant = query.tenant
        keys = query_keys(query.text)[: ranking.max_query_keys]
        code = code_keys(query.text)
        shapes = {_uid(tenant, k): shape_factor(k, ranking, k in code) for k in keys}
        lucene = names_query(tenant, query.text, fields=cfg.fulltext_fields)
        if lucene is None and not keys:
            return GraphLegResult([], await self.corpus_version(tenant))
        params: dict[str, Any] = {
            "tenant": tenant,
            "lucene": lucene,
            "uids": [_uid(tenant, k) for k in keys],
            "ft_limit": cfg.fulltext_limit,
            "limit": query.limit,
            "title_chunks": cfg.title_chunks,
            "title_weight": cfg.title_weight,
            "mention_weight": cfg.mention_weight,
            "link_decay": cfg.link_decay,
            "chunk_decay": cfg.chunk_decay,
            "per_entity": ranking.chunks_per_entity,
            "expand_cap": ranking.expansion_limit * 4,
        }
        where_d = _doc_filter("d", query.filter, params)
        # Only fixed fragments go into the text; every value travels as a parameter.
        first = _first_statement(lucene is not None, bool(keys)).replace("$$DOC_FILTER$$", where_d)
        rows_statement: LiteralString = _ENTITY_CHUNKS.replace("$$DOC_FILTER$$", where_d)

        async def work(tx: _Statements) -> GraphLegResult:
            found = await (await tx.run(first, params)).single(strict=True)
            version = int(found["version"])
            text_hits = [(str(chunk), str(doc), float(score)) for chunk, doc, score in found["text_hits"]]
            matched = {str(uid): int(mentions) for uid, mentions in found["matched"]}
            total = await self._total_chunks(tx, tenant, version) if matched else 0
            weights = entity_weights(matched, total, ranking, shapes) if matched else {}
            rows: list[ChunkRow] = []
            if weights:
                expand = {**params, "uids": list(weights), "need": 2 if len(weights) >= 2 else 1}
                expanded = await (await tx.run(_EXPAND_ENTITIES, expand)).single(strict=True)
                neighbours = [(str(uid), int(links), int(mentions)) for uid, links, mentions in expanded["neighbours"]]
                weights.update(expansion_weights(neighbours, total, ranking, len(weights)))
                listed = await (await tx.run(rows_statement, {**params, "uids": list(weights)})).single(strict=True)
                rows = [
                    ChunkRow(str(entity), str(chunk), str(doc))
                    for entity, chunks in listed["rows"]
                    for chunk, doc in chunks
                ]
            ranked = rank(rows, weights, text_hits, ranking, query.limit)
            hits = [LegHit(cid, position, score) for position, (cid, score) in enumerate(ranked, start=1)]
            return GraphLegResult(hits, version)

        return await self._read(work)

    async def _total_chunks(self, tx: _Statements, tenant: str, version: int) -> int:
        """The tenant's chunk count at ``version``: remembered, and counted again (in ``tx``) only when the
        version moved since the last count."""
        counted = self._chunk_counts.get(tenant)
        if counted is not None and counted[0] == version:
            self._chunk_counts.move_to_end(tenant)
            return counted[1]
        total = int((await (await tx.run(_COUNT_CHUNKS, {"tenant": tenant})).single(strict=True))["chunks"])
        self._chunk_counts[tenant] = (version, total)
        self._chunk_counts.move_to_end(tenant)
        while len(self._chunk_counts) > _CHUNK_COUNT_TENANTS:
            self._chunk_counts.popitem(last=False)
        return total

    async def explore(self, tenant: str, entity: str, depth: int, max_nodes: int) -> Neighbourhood | None:
        """Breadth-first over RELATES from the best-matching entity, then the chunks and documents mentioning them."""
        lucene = names_query(tenant, entity, fields=("name",))
        if lucene is None:
            return None

        async def work(tx: _Statements) -> Neighbourhood | None:
            start = await (await tx.run(_FIND_ENTITY, {"lucene": lucene, "tenant": tenant})).single()
            if start is None:
                return None
            nodes: dict[str, GraphNode] = {}
            edges: dict[tuple[str, str, str], GraphEdge] = {}
            truncated = False
            start_uid = str(start["uid"])
            nodes[start_uid] = _entity_node(start["key"], start["name"], start["label"])
            frontier = [start_uid]
            for _ in range(depth):
                if not frontier:
                    break
                result = await tx.run(_RELATES_HOP, {"frontier": frontier, "tenant": tenant, "cap": max_nodes * 4 + 1})
                rows = [r async for r in result]
                if len(rows) > max_nodes * 4:
                    truncated = True
                next_frontier: list[str] = []
                for r in rows:
                    other = str(r["other_uid"])
                    if other not in nodes:
                        if len(nodes) >= max_nodes:
                            truncated = True
                            continue
                        nodes[other] = _entity_node(r["other_key"], r["other_name"], r["other_label"])
                        next_frontier.append(other)
                    a, b = (r["from_uid"], other) if r["outgoing"] else (other, r["from_uid"])
                    edge = GraphEdge(nodes[str(a)].node_id, nodes[str(b)].node_id, f"RELATES:{r['type']}")
                    edges[(edge.source_id, edge.target_id, edge.type)] = edge
                frontier = next_frontier
            # Where the entities are mentioned: chunks and their documents, start entity first.
            entity_uids = list(nodes)
            result = await tx.run(_MENTIONED_IN, {"uids": entity_uids, "tenant": tenant, "cap": max_nodes + 1})
            for r in [r async for r in result]:
                chunk_id = f"chunk:{r['chunk_id']}"
                doc_id = f"document:{r['doc_id']}"
                needed = [n for n in (chunk_id, doc_id) if n not in nodes]
                if len(nodes) + len(needed) > max_nodes:
                    truncated = True
                    break
                if doc_id not in nodes:
                    nodes[doc_id] = GraphNode(doc_id, "Document", "", str(r["title"] or ""), str(r["source_uri"] or ""))
                if chunk_id not in nodes:
                    nodes[chunk_id] = GraphNode(
                        chunk_id, "Chunk", "", f"{r['title'] or r['doc_id']} #{r['chunk_index']}"
                    )
                entity_node = nodes[str(r["entity_uid"])]
                for edge in (
                    GraphEdge(doc_id, chunk_id, "HAS_CHUNK"),
                    GraphEdge(chunk_id, entity_node.node_id, "MENTIONS"),
                ):
                    edges[(edge.source_id, edge.target_id, edge.type)] = edge
            return Neighbourhood(nodes=tuple(nodes.values()), edges=tuple(edges.values()), truncated=truncated)

        return await self._read(work)


def _entity_node(key: Any, name: Any, label: Any) -> GraphNode:
    return GraphNode(node_id=f"entity:{key}", kind="Entity", label=str(label or ""), name=str(name or key))


async def _bump(tx: neo4j.AsyncManagedTransaction, tenant: str) -> int:
    record = await (await tx.run(_BUMP_VERSION, {"tenant": tenant})).single(strict=True)
    return int(record["version"])


async def _version(tx: _Statements | neo4j.AsyncManagedTransaction, tenant: str) -> int:
    record = await (await tx.run(_READ_VERSION, {"tenant": tenant})).single()
    return 0 if record is None else int(record["version"])


_DOCUMENT_VERSION: LiteralString = "MATCH (d:Document {uid: $duid}) RETURN d.doc_version AS version"

_MERGE_DOCUMENT: LiteralString = """
MERGE (d:Document {uid: $duid})
ON CREATE SET d.tenant = $tenant, d.doc_id = $doc_id, d.tenant_key = $tkey
SET d.title = $title, d.source_uri = $source_uri, d.document_type = $document_type,
    d.doc_version = $version, d.content_hash = $content_hash, d.ingested_at = datetime($ingested_at),
    d.placeholder = false
"""

_MERGE_CHUNKS: LiteralString = """
MATCH (d:Document {uid: $duid})
UNWIND $chunks AS c
MERGE (ch:Chunk {uid: c.uid})
ON CREATE SET ch.tenant = $tenant, ch.chunk_id = c.uid, ch.doc_id = $doc_id, ch.chunk_index = c.index
SET ch.doc_version = $version
MERGE (d)-[:HAS_CHUNK]->(ch)
"""

_MERGE_ENTITIES: LiteralString = """
UNWIND $entities AS e
MERGE (n:Entity {uid: e.uid})
ON CREATE SET n.tenant = $tenant, n.tenant_key = $tkey, n.key = e.key, n.name = e.name, n.label = e.label
ON MATCH SET n.label = CASE WHEN n.label = '' THEN e.label ELSE n.label END
"""

_MERGE_MENTIONS: LiteralString = """
UNWIND $mentions AS m
MATCH (ch:Chunk {uid: m.chunk})
MATCH (n:Entity {uid: m.entity})
MERGE (ch)-[:MENTIONS]->(n)
"""

_MERGE_RELATIONS: LiteralString = """
UNWIND $relations AS r
MATCH (a:Entity {uid: r.source})
MATCH (b:Entity {uid: r.target})
MERGE (a)-[rel:RELATES {type: r.type, doc_uid: $duid}]->(b)
ON CREATE SET rel.tenant = $tenant
SET rel.doc_version = $version
"""

_MERGE_LINKS: LiteralString = """
MATCH (d:Document {uid: $duid})
UNWIND $links AS l
MERGE (t:Document {uid: l.uid})
ON CREATE SET t.tenant = $tenant, t.doc_id = l.doc_id, t.tenant_key = $tkey, t.placeholder = true
MERGE (d)-[link:LINKS_TO]->(t)
SET link.doc_version = $version
"""

# On a document's last batch: drop what older versions left, then entities nothing refers to any more.
_COMPLETE_DOCUMENT: tuple[LiteralString, ...] = (
    """
    MATCH (d:Document {uid: $duid})-[:HAS_CHUNK]->(c:Chunk)
    WHERE c.doc_version <> $version
    OPTIONAL MATCH (c)-[:MENTIONS]->(e:Entity)
    WITH c, collect(e) AS touched
    DETACH DELETE c
    WITH touched UNWIND touched AS e
    WITH DISTINCT e
    WHERE NOT (e)<-[:MENTIONS]-() AND NOT (e)-[:RELATES]-()
    DETACH DELETE e
    """,
    """
    MATCH (a:Entity)-[r:RELATES]->(b:Entity)
    WHERE r.doc_uid = $duid AND r.doc_version <> $version
    DELETE r
    WITH [a, b] AS ends UNWIND ends AS e
    WITH DISTINCT e
    WHERE NOT (e)<-[:MENTIONS]-() AND NOT (e)-[:RELATES]-()
    DETACH DELETE e
    """,
    """
    MATCH (d:Document {uid: $duid})-[l:LINKS_TO]->(t:Document)
    WHERE l.doc_version <> $version
    DELETE l
    WITH DISTINCT t
    WHERE t.placeholder AND NOT ()-[:LINKS_TO]->(t)
    DELETE t
    """,
)

_DELETE_DOCUMENTS: tuple[LiteralString, ...] = (
    """
    MATCH ()-[r:RELATES]->() WHERE r.doc_uid IN $duids DELETE r
    """,
    """
    UNWIND $duids AS duid
    MATCH (d:Document {uid: duid})
    OPTIONAL MATCH (d)-[:HAS_CHUNK]->(c:Chunk)
    DETACH DELETE c
    """,
    """
    UNWIND $duids AS duid
    MATCH (d:Document {uid: duid})
    DETACH DELETE d
    """,
    """
    MATCH (t:Document {tenant: $tenant})
    WHERE t.placeholder AND NOT ()-[:LINKS_TO]->(t)
    DELETE t
    """,
    """
    MATCH (e:Entity {tenant: $tenant})
    WHERE NOT (e)<-[:MENTIONS]-() AND NOT (e)-[:RELATES]-()
    DETACH DELETE e
    """,
)

_BUMP_VERSION: LiteralString = """
MERGE (v:CorpusVersion {tenant: $tenant})
ON CREATE SET v.version = 0
SET v.version = v.version + 1
RETURN v.version AS version
"""

_READ_VERSION: LiteralString = "MATCH (v:CorpusVersion {tenant: $tenant}) RETURN v.version AS version"

_COUNTS: LiteralString = """
CALL () { MATCH (d:Document {tenant: $tenant}) WHERE NOT d.placeholder
          RETURN count(d) AS documents }
CALL () { MATCH (c:Chunk {tenant: $tenant}) RETURN count(c) AS chunks, sum(COUNT { (c)-[:MENTIONS]->() }) AS mentions }
CALL () { MATCH (e:Entity {tenant: $tenant}) RETURN count(e) AS entities, sum(COUNT { (e)-[:RELATES]->() }) AS relates }
CALL () { MATCH (d:Document {tenant: $tenant}) RETURN sum(COUNT { (d)-[:HAS_CHUNK|LINKS_TO]->() }) AS doc_edges }
RETURN documents, chunks, entities, mentions + relates + doc_edges AS relationships
"""

# The graph leg reads in three statements, each answering one record of lists: the driver decodes and
# hands over every record and message in Python, which cost more than Neo4j's own work when each row was
# a record (a search read about 170 of them over five statements).

# $$DOC_FILTER$$ is replaced by a WHERE fragment over `d` built only from fixed text and parameters.
# The first statement is put together from the parts the question needs: the tenant's corpus version
# (so a search reads it in the leg's own round trip), fulltext title (and link) matches, the question's
# entities with their mention counts (the chunk count they are weighed against: _COUNT_CHUNKS).
_LEG_VERSION: LiteralString = """
CALL () { OPTIONAL MATCH (v:CorpusVersion {tenant: $tenant}) RETURN coalesce(v.version, 0) AS version }
"""

_LEG_TEXT: LiteralString = """
CALL () {
  CALL db.index.fulltext.queryNodes('ragmesh_names', $lucene, {limit: $ft_limit}) YIELD node, score
  WHERE node.tenant = $tenant
  CALL (node, score) {
    MATCH (node:Entity)<-[:MENTIONS]-(c:Chunk)<-[:HAS_CHUNK]-(d:Document)
    WHERE $$DOC_FILTER$$
    RETURN c, d, score * $mention_weight AS s
    UNION ALL
    MATCH (node:Document)
    WITH node AS d, score
    WHERE $$DOC_FILTER$$
    MATCH (c:Chunk)
    WHERE c.doc_id = d.doc_id AND c.chunk_index < $title_chunks AND c.tenant = $tenant AND (d)-[:HAS_CHUNK]->(c)
    RETURN c, d, score * $title_weight * ($chunk_decay ^ c.chunk_index) AS s
  }
  WITH c, d, sum(s) AS s
  WITH collect({c: c, d: d, s: s}) AS direct
  CALL (direct) {
    UNWIND direct AS hit
    WITH hit.d AS src, max(hit.s) AS s
    MATCH (src)-[:LINKS_TO]-(d:Document)
    WHERE d.tenant = $tenant AND $$DOC_FILTER$$
    MATCH (c:Chunk {doc_id: d.doc_id, chunk_index: 0})
    WHERE c.tenant = $tenant AND (d)-[:HAS_CHUNK]->(c)
    RETURN c, sum(s * $link_decay) AS s
    UNION ALL
    UNWIND direct AS hit
    RETURN hit.c AS c, hit.s AS s
  }
  WITH c, sum(s) AS score
  WITH c.uid AS chunk, c.doc_id AS doc, score
  ORDER BY score DESC, chunk
  LIMIT $limit
  RETURN collect([chunk, doc, score]) AS text_hits
}
"""

_LEG_ENTITIES: LiteralString = """
CALL () {
  UNWIND $uids AS uid
  MATCH (e:Entity {uid: uid})
  WHERE e.tenant = $tenant
  RETURN collect([e.uid, COUNT { (e)<-[:MENTIONS]-() }]) AS matched
}
"""

_LEG_RETURN_TEXT: LiteralString = "RETURN version, text_hits, [] AS matched"
_LEG_RETURN_ENTITIES: LiteralString = "RETURN version, [] AS text_hits, matched"
_LEG_RETURN_BOTH: LiteralString = "RETURN version, text_hits, matched"

# The tenant's chunk count walks its whole chunk index (40,000 entries for a large tenant): a statement of
# its own, run only when the corpus version moved since the last count. As a subquery of the first
# statement guarded by "WHERE version <> $counted_version", the planner seeked the index before the guard
# and counted every chunk on every search.
_COUNT_CHUNKS: LiteralString = "MATCH (c:Chunk {tenant: $tenant}) RETURN count(c) AS chunks"

# Neighbours one RELATES hop from the weighted entities, most connected first; bounded twice
# (the cap here, the expansion limit in the ranking).
_EXPAND_ENTITIES: LiteralString = """
MATCH (e:Entity)-[:RELATES]-(m:Entity)
WHERE e.uid IN $uids AND m.tenant = $tenant AND NOT m.uid IN $uids
WITH m, count(DISTINCT e) AS links
WHERE links >= $need
WITH m.uid AS uid, links, COUNT { (m)<-[:MENTIONS]-() } AS mentions
ORDER BY links DESC, mentions ASC, uid
LIMIT $expand_cap
RETURN collect([uid, links, mentions]) AS neighbours
"""

# $$DOC_FILTER$$ as in _LEG_TEXT. One [entity uid, [[chunk uid, doc id], ...]] per entity.
_ENTITY_CHUNKS: LiteralString = """
UNWIND $uids AS uid
MATCH (e:Entity {uid: uid})
WHERE e.tenant = $tenant
CALL (e) {
  MATCH (e)<-[:MENTIONS]-(c:Chunk)<-[:HAS_CHUNK]-(d:Document)
  WHERE d.tenant = $tenant AND $$DOC_FILTER$$
  RETURN c, d
  LIMIT $per_entity
}
WITH e, collect([c.uid, d.doc_id]) AS chunks
RETURN collect([e.uid, chunks]) AS rows
"""

_FIND_ENTITY: LiteralString = """
CALL db.index.fulltext.queryNodes('ragmesh_names', $lucene, {limit: 10}) YIELD node, score
WHERE node:Entity AND node.tenant = $tenant
RETURN node.uid AS uid, node.key AS key, node.name AS name, node.label AS label
ORDER BY score DESC
LIMIT 1
"""

_RELATES_HOP: LiteralString = """
MATCH (n:Entity)-[r:RELATES]-(m:Entity)
WHERE n.uid IN $frontier AND m.tenant = $tenant
RETURN DISTINCT n.uid AS from_uid, m.uid AS other_uid, m.key AS other_key, m.name AS other_name,
       m.label AS other_label, r.type AS type, startNode(r) = n AS outgoing
LIMIT $cap
"""

_MENTIONED_IN: LiteralString = """
UNWIND range(0, size($uids) - 1) AS i
MATCH (e:Entity {uid: $uids[i]})<-[:MENTIONS]-(c:Chunk)<-[:HAS_CHUNK]-(d:Document)
WHERE d.tenant = $tenant
RETURN e.uid AS entity_uid, c.chunk_id AS chunk_id, c.chunk_index AS chunk_index,
       d.doc_id AS doc_id, d.title AS title, d.source_uri AS source_uri
ORDER BY i, d.doc_id, c.chunk_index
LIMIT $cap
"""
