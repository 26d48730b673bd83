"""Reading a trace back from Jaeger's query API JSON, and showing where its time went."""

from __future__ import annotations

from typing import Any

import pytest

from mesh import traces

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


def _span(span_id: str, parent: str, process: str, name: str, start: int, duration: int, kind: str) -> dict[str, Any]:
    refs = [{"refType": "CHILD_OF", "traceID": TRACE_ID, "spanID": parent}] if parent else []
    return {
        "traceID": TRACE_ID,
        "spanID": span_id,
        "operationName": name,
        "references": refs,
        "startTime": start,
        "duration": duration,
        "processID": process,
        "tags": [{"key": "span.kind", "type": "string", "value": kind}],
    }


DOC = {
    "data": [
        {
            "traceID": TRACE_ID,
            "spans": [
                _span("b", "a", "p2", "/ragmesh.agent.v1.AgentService/StreamChat", 1_000_100, 9_000, "server"),
                _span("a", "", "p1", "ingress", 1_000_000, 10_000, "server"),
                _span("c", "b", "p3", "/ragmesh.retrieval.v1.RetrievalService/Search", 1_001_000, 4_000, "server"),
                _span("d", "c", "p3", "qdrant search", 1_002_000, 1_000, "client"),
            ],
            "processes": {
                "p1": {"serviceName": "envoy"},
                "p2": {"serviceName": "svc_agent"},
                "p3": {"serviceName": "svc_retrieval"},
            },
        }
    ]
}


def test_spans_keep_their_services_and_parents() -> None:
    trace = traces.parse_trace(DOC, TRACE_ID)
    assert trace.services == {"envoy", "svc_agent", "svc_retrieval"}
    by_id = trace.by_id()
    assert [s.span_id for s in trace.children()[""]] == ["a"]
    assert [s.span_id for s in trace.ancestors(by_id["d"])] == ["c", "b", "a"]
    assert by_id["b"].kind == "server"


def test_render_shows_the_tree_and_each_services_own_time() -> None:
    text = traces.render(traces.parse_trace(DOC, TRACE_ID))
    lines = text.splitlines()
    assert lines[0] == f"trace {TRACE_ID}: 4 spans from 3 services, 10.0 ms"
    assert "      qdrant search" in text, "children are indented under their parents"
    assert traces.self_time_by_service(traces.parse_trace(DOC, TRACE_ID)) == {
        "envoy": 1_000,
        "svc_agent": 5_000,
        "svc_retrieval": 4_000,
    }


def test_no_trace_is_trace_not_found() -> None:
    with pytest.raises(traces.TraceNotFound):
        traces.parse_trace({"data": []}, TRACE_ID)
    assert traces.is_trace_id(TRACE_ID) and not traces.is_trace_id("req-123")
