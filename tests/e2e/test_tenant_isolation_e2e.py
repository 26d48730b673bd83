"""Tenants and people stay apart through the authenticated edge, with the real stores behind it.

Two fresh tenants each ingest a page that answers the same question with a fact
of their own (a colour word no other tenant has). Hypothesis then drives random
sequences of calls by random people of random tenants: search, chat (the
answer caches are on: both tenants ask the very same question), list and read
sessions, list documents, read ingest jobs, and reach for another person's
session. No response to a token of one tenant may carry the other tenant's
page, chunk, fact, session, cached answer or ingest job, and no person sees or
touches another person's session.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mesh.settings import MeshSettings
from ragmesh.agent.v1 import agent_service_pb2 as apb
from ragmesh.agent.v1 import agent_service_pb2_grpc as apb_grpc
from ragmesh.ingest.v1 import ingest_service_pb2 as gpb
from ragmesh.ingest.v1 import ingest_service_pb2_grpc as gpb_grpc
from ragmesh.retrieval.v1 import retrieval_service_pb2 as rpb
from ragmesh.retrieval.v1 import retrieval_service_pb2_grpc as rpb_grpc
from tests.support.auth import stack_bearer
from tests.support.edge_limits import within_limits

pytestmark = pytest.mark.e2e

QUESTION = "What is the zorblax signal colour?"
PEOPLE = ("ann", "bob")
_DONE = {gpb.JOB_STATE_SUCCEEDED, gpb.JOB_STATE_PARTIAL_SUCCESS, gpb.JOB_STATE_FAILED, gpb.JOB_STATE_CANCELLED}


@dataclasses.dataclass
class Tenant:
    name: str
    folder: Path
    colour: str
    job_id: str = ""
    sessions: dict[str, set[str]] = dataclasses.field(default_factory=lambda: {p: set() for p in PEOPLE})

    def secrets(self) -> tuple[str, ...]:
        """Strings only this tenant's data contains."""
        return (self.colour, self.folder.name)


@dataclasses.dataclass
class Edge:
    agent: apb_grpc.AgentServiceStub
    ingest: gpb_grpc.IngestServiceStub
    retrieval: rpb_grpc.RetrievalServiceStub
    tenants: list[Tenant]


def _md(tenant: Tenant, person: str) -> tuple[tuple[str, str], ...]:
    return stack_bearer(tenant.name, subject=person, roles=("reader", "editor"))


def _page(tenant: Tenant) -> str:
    return (
        "# Zorblax signalling handbook\n\n"
        f"The zorblax signal colour of this team is {tenant.colour}. "
        f"When the zorblax beacon turns {tenant.colour}, the on-call engineer acknowledges the page.\n\n"
        "## Escalation\n\nIf nobody acknowledges the zorblax signal within ten minutes, it escalates.\n"
    )


@pytest.fixture(scope="module")
def edge(settings: MeshSettings) -> Iterator[Edge]:
    tenants = []
    for _ in range(2):
        tag = uuid.uuid4().hex[:8]
        folder = Path(tempfile.mkdtemp(prefix=f"iso-{tag}-"))
        folder.chmod(0o755)
        tenants.append(Tenant(name=f"iso-{tag}", folder=folder, colour=f"vermilion{tag}"))
    with grpc.insecure_channel(settings.edge_addr) as channel:
        ingest = gpb_grpc.IngestServiceStub(channel)
        for tenant in tenants:
            (tenant.folder / "zorblax.md").write_text(_page(tenant))
            created = ingest.CreateIngestJob(
                gpb.CreateIngestJobRequest(sources=[str(tenant.folder)], options=gpb.IngestOptions(skip_graph=True)),
                metadata=_md(tenant, "ann"),
                timeout=30,
            )
            tenant.job_id = created.job.job_id
        for tenant in tenants:
            deadline = time.monotonic() + 600
            while True:
                job = ingest.GetIngestJob(
                    gpb.GetIngestJobRequest(job_id=tenant.job_id), metadata=_md(tenant, "ann"), timeout=10
                ).job
                if job.state in _DONE:
                    break
                assert time.monotonic() < deadline, f"ingest of {tenant.name} did not finish"
                time.sleep(1.0)
            assert job.state == gpb.JOB_STATE_SUCCEEDED, job.failure
        yield Edge(apb_grpc.AgentServiceStub(channel), ingest, rpb_grpc.RetrievalServiceStub(channel), tenants)


def _assert_clean(text: str, me: Tenant, everyone: list[Tenant]) -> None:
    for other in everyone:
        if other is not me:
            for secret in other.secrets():
                assert secret not in text, f"{me.name} saw {other.name}'s data: {secret!r} in {text[:300]!r}"


def _search(edge: Edge, me: Tenant, person: str) -> None:
    reply = within_limits(
        edge.retrieval.Search, rpb.SearchRequest(query="zorblax signal colour", top_k=10), metadata=_md(me, person)
    )
    assert reply.hits, "the tenant's own page is found"
    for hit in reply.hits:
        _assert_clean(str(hit), me, edge.tenants)
    assert any(me.colour in hit.chunk.text for hit in reply.hits)


def _chat(edge: Edge, me: Tenant, person: str) -> None:
    # A refused stream fails before its first event, so the whole read is what is called again.
    events = within_limits(
        lambda: list(
            edge.agent.StreamChat(apb.StreamChatRequest(message=QUESTION), metadata=_md(me, person), timeout=300)
        )
    )
    me.sessions[person].update(e.session_id for e in events if e.session_id)
    _assert_clean("".join(str(e) for e in events), me, edge.tenants)
    final = [e for e in events if e.WhichOneof("event") == "final"]
    assert final, "every chat ends with a final answer"
    for citation in final[0].final.citations:
        assert f"/{me.folder.name}/" in citation.source_uri, citation.source_uri


def _sessions(edge: Edge, me: Tenant, person: str) -> None:
    listed = within_limits(edge.agent.ListSessions, apb.ListSessionsRequest(page_size=100), metadata=_md(me, person))
    ids = {s.session_id for s in listed.sessions}
    assert ids == me.sessions[person], "a person lists exactly their own sessions"
    for session_id in ids:
        got = within_limits(
            edge.agent.GetSession, apb.GetSessionRequest(session_id=session_id), metadata=_md(me, person)
        )
        _assert_clean(str(got), me, edge.tenants)


def _someone_elses_session(edge: Edge, me: Tenant, person: str) -> None:
    for other in edge.tenants:
        for owner, ids in other.sessions.items():
            if other is me and owner == person:
                continue
            expected = grpc.StatusCode.PERMISSION_DENIED if other is me else grpc.StatusCode.NOT_FOUND
            for session_id in ids:
                with pytest.raises(grpc.RpcError) as read:
                    within_limits(
                        edge.agent.GetSession, apb.GetSessionRequest(session_id=session_id), metadata=_md(me, person)
                    )
                assert read.value.code() == expected  # type: ignore[attr-defined]
                with pytest.raises(grpc.RpcError) as deleted:
                    within_limits(
                        edge.agent.DeleteSession,
                        apb.DeleteSessionRequest(session_id=session_id),
                        metadata=_md(me, person),
                    )
                assert deleted.value.code() == expected  # type: ignore[attr-defined]


def _documents(edge: Edge, me: Tenant, person: str) -> None:
    listed = within_limits(edge.ingest.ListDocuments, gpb.ListDocumentsRequest(page_size=100), metadata=_md(me, person))
    assert listed.documents
    for document in listed.documents:
        assert f"/{me.folder.name}/" in document.source_uri, document.source_uri


def _jobs(edge: Edge, me: Tenant, person: str) -> None:
    own = within_limits(edge.ingest.GetIngestJob, gpb.GetIngestJobRequest(job_id=me.job_id), metadata=_md(me, person))
    _assert_clean(str(own), me, edge.tenants)
    for other in edge.tenants:
        if other is not me:
            with pytest.raises(grpc.RpcError) as info:
                within_limits(
                    edge.ingest.GetIngestJob, gpb.GetIngestJobRequest(job_id=other.job_id), metadata=_md(me, person)
                )
            assert info.value.code() == grpc.StatusCode.NOT_FOUND  # type: ignore[attr-defined]


OPERATIONS = {
    "search": _search,
    "chat": _chat,
    "sessions": _sessions,
    "someone_elses_session": _someone_elses_session,
    "documents": _documents,
    "jobs": _jobs,
}


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    steps=st.lists(
        st.tuples(st.integers(0, 1), st.sampled_from(PEOPLE), st.sampled_from(sorted(OPERATIONS))),
        min_size=2,
        max_size=4,
    )
)
def test_no_response_crosses_tenants_or_people(edge: Edge, steps: list[tuple[int, str, str]]) -> None:
    for tenant_index, person, operation in steps:
        OPERATIONS[operation](edge, edge.tenants[tenant_index], person)


def test_both_tenants_asked_the_same_question_and_kept_their_own_answers(edge: Edge) -> None:
    """The exact and semantic answer caches are keyed by tenant: the second tenant never gets the first's answer."""
    for tenant in edge.tenants:
        _chat(edge, tenant, "ann")
        _chat(edge, tenant, "ann")  # the second ask of a tenant may come from its own cache
    for tenant in edge.tenants:
        _sessions(edge, tenant, "ann")
        _someone_elses_session(edge, tenant, "bob")
