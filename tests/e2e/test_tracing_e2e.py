"""One trace per request, read back from the stack's trace backend (Jaeger's query API).

Against the stack ``ragmesh up`` started, with tracing on (the jaeger part built and
running): an ingest job over a fresh document shows its Ray Data workers' spans under
the job's trace, and one StreamChat through the edge is one trace whose root is Envoy's
span, with svc_agent, svc_retrieval, svc_inference, the Serve replica and the stores
below it, each under the hop that called it.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from mesh import traces
from mesh.settings import MeshSettings
from mesh.stack import StackConfig
from mesh.stack.service_env import otlp_endpoint
from ragmesh.agent.v1 import agent_service_pb2 as apb
from ragmesh.agent.v1 import agent_service_pb2_grpc as apb_grpc
from ragmesh.ingest.v1 import ingest_service_pb2 as gpb
from ragmesh.ingest.v1 import ingest_service_pb2_grpc as gpb_grpc
from tests.bench import JOB_ENDED
from tests.support.auth import stack_bearer
from tests.support.edge_limits import within_limits

pytestmark = [pytest.mark.e2e]

TENANT = "e2e-tracing"
CHAT = "/ragmesh.agent.v1.AgentService/StreamChat"
SEARCH = "/ragmesh.retrieval.v1.RetrievalService/Search"
INFERENCE_PREFIX = "/ragmesh.inference.v1.InferenceService/"
REPLICA = "svc_inference.serve"
WORKER = "svc_ingest.worker"


@pytest.fixture(scope="module")
def query_url(settings: MeshSettings) -> str:
    config = StackConfig.from_env()
    if not otlp_endpoint(config):
        pytest.skip("tracing is off on this stack (jaeger not built: scripts/install-go-tools.sh jaeger)")
    return f"http://{config.host}:{config.jaeger_query_port}"


@pytest.fixture(scope="module")
def edge(settings: MeshSettings) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(settings.edge_addr) as channel:
        yield channel


def wait_for_trace(query_url: str, trace_id: str, complete: Callable[[traces.Trace], bool]) -> traces.Trace:
    """The trace once ``complete`` holds (spans reach the backend a second or so after they end)."""
    deadline = time.monotonic() + 60
    found: traces.Trace | None = None
    while time.monotonic() < deadline:
        try:
            found = traces.fetch_trace(query_url, trace_id)
        except traces.TraceNotFound:
            found = None
        if found is not None and complete(found):
            return found
        time.sleep(1.0)
    summary = "no trace" if found is None else traces.render(found)
    raise AssertionError(f"trace {trace_id} did not become complete in 60 s:\n{summary}")


def whole(trace: traces.Trace) -> bool:
    """Every span's parent has arrived: the only root is Envoy's server span.

    Each process exports its spans in batches when they end, so a span that ends last (the edge's,
    a server span around its store calls) may reach the backend seconds after its children.
    """
    roots = trace.children()[""]
    return [(r.service, r.kind) for r in roots] == [("envoy", "server")]


def only(trace: traces.Trace, match: Callable[[traces.Span], bool], what: str) -> traces.Span:
    found = [s for s in trace.spans if match(s)]
    assert len(found) == 1, f"expected one {what}, found {len(found)}:\n{traces.render(trace)}"
    return found[0]


def under(trace: traces.Trace, span: traces.Span, ancestor: traces.Span) -> bool:
    return ancestor in trace.ancestors(span)


@pytest.fixture(scope="module")
def ingested(edge: grpc.Channel, query_url: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, str]:
    """A fresh document ingested under a trace the test chose: (trace id, the document's code word, folder)."""
    folder: Path = tmp_path_factory.mktemp("tracing-corpus")
    word = f"zephyrine-{uuid.uuid4().hex[:8]}"
    (folder / "harbour-signals.md").write_text(
        f"# Harbour signals\n\nThe harbour master raises the {word} flag when the tide turns; "
        f"ships then wait for the {word} signal before they enter the harbour.\n",
        encoding="utf-8",
    )
    trace_id = secrets.token_hex(16)
    # The caller starts the trace; the edge continues it (W3C traceparent), the job runs in it.
    metadata = (*stack_bearer(TENANT), ("traceparent", f"00-{trace_id}-{secrets.token_hex(8)}-01"))
    stub = gpb_grpc.IngestServiceStub(edge)  # type: ignore[no-untyped-call]
    request = gpb.CreateIngestJobRequest(sources=[str(folder)], options=gpb.IngestOptions(skip_graph=True))
    job = within_limits(stub.CreateIngestJob, request, metadata=metadata, timeout=30).job
    deadline = time.monotonic() + 600
    while job.state not in JOB_ENDED:
        assert time.monotonic() < deadline, f"ingest job {job.job_id} did not finish in 600 s"
        time.sleep(1.0)
        get = gpb.GetIngestJobRequest(job_id=job.job_id)
        job = within_limits(stub.GetIngestJob, get, metadata=stack_bearer(TENANT), timeout=10).job
    assert job.state == gpb.JOB_STATE_SUCCEEDED, job.failure
    return trace_id, word, str(folder)


def test_an_ingest_job_shows_its_worker_spans_under_the_jobs_trace(
    query_url: str, ingested: tuple[str, str, str]
) -> None:
    trace_id, _, _ = ingested

    def complete(t: traces.Trace) -> bool:
        names = {(s.service, s.name) for s in t.spans}
        # svc_retrieval exports its write spans in its own batches, possibly after every other
        # service's: a trace read before they arrive is whole (their parent is there) but not complete.
        stored = any(s.service == "svc_retrieval" and s.tags.get("db.system") == "qdrant" for s in t.spans)
        return (
            {(WORKER, "ingest parse"), (WORKER, "ingest embed")} <= names
            and REPLICA in t.services
            and stored
            and whole(t)
        )

    trace = wait_for_trace(query_url, trace_id, complete)
    assert trace.trace_id == trace_id
    edge_span = only(trace, lambda s: s.service == "envoy" and s.kind == "server", "edge span")
    create = only(
        trace, lambda s: s.service == "svc_ingest" and s.name.endswith("/CreateIngestJob"), "CreateIngestJob span"
    )
    job = only(trace, lambda s: s.service == "svc_ingest" and s.name == "ingest job", "job span")
    assert under(trace, create, edge_span)
    assert job.parent_id == create.span_id
    parse = only(trace, lambda s: s.service == WORKER and s.name == "ingest parse", "parse span")
    embed = only(trace, lambda s: s.service == WORKER and s.name == "ingest embed", "embed span")
    assert parse.parent_id == job.span_id
    assert embed.parent_id == job.span_id
    # The worker's Embed call is a client span under its stage, the service's and the replica's below it.
    served = [s for s in trace.spans if s.service == "svc_inference" and s.name.startswith(INFERENCE_PREFIX)]
    assert served and all(under(trace, s, embed) for s in served), traces.render(trace)
    replica = [s for s in trace.spans if s.service == REPLICA]
    assert replica and all(trace.parent_of(s) in served for s in replica), traces.render(trace)
    # The writes through IndexService are in the job's trace too, down to the vector store.
    stores = [s for s in trace.spans if s.tags.get("db.system") == "qdrant" and s.service == "svc_retrieval"]
    assert stores and all(under(trace, s, job) for s in stores), traces.render(trace)


def test_one_chat_is_one_trace_from_the_edge_through_every_hop_to_the_stores(
    edge: grpc.Channel, query_url: str, ingested: tuple[str, str, str]
) -> None:
    _, word, _ = ingested
    stub = apb_grpc.AgentServiceStub(edge)  # type: ignore[no-untyped-call]
    request = apb.StreamChatRequest(message=f"When does the harbour master raise the {word} flag?")

    def chat() -> list[apb.StreamChatResponse]:
        return list(stub.StreamChat(request, metadata=stack_bearer(TENANT), timeout=300))

    events = within_limits(chat)
    final = events[-1].final
    assert traces.is_trace_id(final.trace_id), f"the answer names no trace: {final.trace_id!r}"

    def complete(t: traces.Trace) -> bool:
        needed = {"envoy", "svc_agent", "svc_retrieval", "svc_inference", REPLICA}
        return needed <= t.services and any(s.name == CHAT for s in t.spans) and whole(t)

    trace = wait_for_trace(query_url, final.trace_id, complete)
    assert trace.trace_id == final.trace_id
    # The trace starts at the edge: Envoy's span is its only root.
    roots = trace.children()[""]
    assert [(r.service, r.kind) for r in roots] == [("envoy", "server")], traces.render(trace)
    (root,) = roots
    agent = only(trace, lambda s: s.service == "svc_agent" and s.name == CHAT, "StreamChat server span")
    assert under(trace, agent, root)
    searches = [s for s in trace.spans if s.service == "svc_retrieval" and s.name == SEARCH]
    assert searches and all(under(trace, s, agent) for s in searches), traces.render(trace)
    served = [s for s in trace.spans if s.service == "svc_inference" and s.name.startswith(INFERENCE_PREFIX)]
    assert served and all(under(trace, s, agent) for s in served), traces.render(trace)
    # The query's embedding runs on a replica, under svc_retrieval's Embed call.
    embeds = [s for s in served if s.name.endswith("/Embed")]
    assert any(under(trace, e, s) for e in embeds for s in searches), traces.render(trace)
    replica = [s for s in trace.spans if s.service == REPLICA]
    assert replica and all(trace.parent_of(s) in served for s in replica), traces.render(trace)
    # Store calls are child spans of the hop that made them: the nearest served call above each
    # is in the store's own service.
    stores = [s for s in trace.spans if s.tags.get("db.system")]
    systems = {str(s.tags["db.system"]) for s in stores}
    assert {"qdrant", "postgresql"} <= systems, traces.render(trace)
    for store in stores:
        served_above = [a for a in trace.ancestors(store) if a.kind == "server"]
        assert served_above and served_above[0].service == store.service, traces.render(trace)
    assert any(under(trace, s, agent) for s in stores if s.service == "svc_agent")
