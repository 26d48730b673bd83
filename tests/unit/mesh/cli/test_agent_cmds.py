"""``ragmesh ask``: the JSON form of each event and the human rendering."""

from __future__ import annotations

import argparse
import io
import json

import pytest

import ragmesh_client
from mesh.cli import agent_cmds
from ragmesh.agent.v1 import agent_service_pb2 as pb
from ragmesh_client import events

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CITATION = pb.Citation(marker=1, chunk_id="c1", doc_id="d1", source_uri="file:///gc.md", title="GC", snippet="s")


def message(**event: object) -> events.ChatEvent:
    """The SDK's event for one StreamChat message, as the command receives it."""
    wire = pb.StreamChatResponse(session_id="s1", message_id="m1", sequence=3, **event)  # type: ignore[arg-type]
    parsed = events.from_message(ragmesh_client.agent.StreamChatResponse.parse(wire.SerializeToString()))
    assert parsed is not None
    return parsed


def test_event_json_for_every_kind() -> None:
    step = agent_cmds.event_json(
        message(step=pb.StepEvent(step=pb.STEP_RETRIEVE, status=pb.STEP_STATUS_FINISHED, detail="d", duration_ms=2))
    )
    assert step == {
        "type": "step",
        "sequence": 3,
        "session_id": "s1",
        "message_id": "m1",
        "step": "retrieve",
        "status": "finished",
        "detail": "d",
        "duration_ms": 2,
    }
    assert agent_cmds.event_json(message(token=pb.TokenDelta(text="Po")))["text"] == "Po"
    call = agent_cmds.event_json(
        message(tool_call=pb.ToolCall(call_id="x", tool="calculator", arguments_json='{"expression": "1+1"}'))
    )
    assert call["arguments"] == {"expression": "1+1"}
    final = agent_cmds.event_json(
        message(
            final=pb.FinalAnswer(
                answer="A [1].",
                citations=[CITATION],
                cache_hit=pb.CACHE_HIT_EXACT,
                answered_from_documents=True,
                latency=pb.LatencyBreakdown(time_to_first_token_ms=12.5, total_ms=40),
                trace_id=TRACE_ID,
            )
        )
    )
    assert final["type"] == "final" and final["answer"] == "A [1]." and final["cache_hit"] == "exact"
    assert final["citations"][0]["source"] == "file:///gc.md" and final["citations"][0]["chunk_id"] == "c1"
    assert final["latency_ms"]["time_to_first_token"] == 12.5
    assert final["trace_id"] == TRACE_ID
    json.dumps(final)


def test_human_output_streams_tokens_then_sources() -> None:
    out, err = io.StringIO(), io.StringIO()
    printer = agent_cmds._Printer(out, err, show_steps=True)
    printer(message(step=pb.StepEvent(step=pb.STEP_PLAN, status=pb.STEP_STATUS_FINISHED, detail="retrieve")))
    printer(message(token=pb.TokenDelta(text="Every five ")))
    printer(message(token=pb.TokenDelta(text="minutes [1].")))
    printer(message(final=pb.FinalAnswer(answer="Every five minutes [1].", citations=[CITATION], trace_id=TRACE_ID)))
    assert out.getvalue().startswith("Every five minutes [1].\n\nSources:\n  [1] GC - file:///gc.md (chunk c1)")
    assert "[plan finished 0 ms]: retrieve" in err.getvalue()
    assert "--session s1" in err.getvalue()
    # The request id after the answer is its trace id: the command that shows where the time went.
    assert f"request {TRACE_ID} (where the time went: ragmesh trace {TRACE_ID})" in err.getvalue()


def test_ask_is_registered_with_its_options() -> None:
    parser = argparse.ArgumentParser()
    agent_cmds.register(parser.add_subparsers())
    args = parser.parse_args(["ask", "What is a Pod?", "--json", "--session", "s", "--tenant", "acme", "--no-cache"])
    assert (args.question, args.json, args.session, args.tenant, args.no_cache) == (
        "What is a Pod?",
        True,
        "s",
        "acme",
        True,
    )
    assert args.addr is None and args.func is agent_cmds._run


def test_a_minted_dev_token_is_minted_again_before_it_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    from mesh.cli import common

    minted: list[str] = []
    monkeypatch.setattr(common, "dev_token", lambda tenant: minted.append(tenant) or f"tok-{len(minted)}")
    clock = [1000.0]
    monkeypatch.setattr(common.time, "monotonic", lambda: clock[0])
    args = argparse.Namespace(token="", tenant="acme")
    assert common.token(args) == common.token(args) == "tok-1"
    clock[0] += common.DEV_TOKEN_TTL_S - 30  # within the last minute of its life
    assert common.token(args) == "tok-2"
    assert common.token(argparse.Namespace(token="given", tenant="acme")) == "given"
