"""``ragmesh ask``: ask the agent a question and watch the cited answer stream in.

Calls AgentService.StreamChat through the Envoy edge by default (``--addr`` to
call the service directly) with --token (or a dev token for --tenant). Tokens go to stdout as
they arrive, then the sources; with ``--json`` every event is one JSON object
on its own line, the last one ``{"type": "final", "answer": ..., "citations":
[{"source": ..., "chunk_id": ...}, ...]}``. Ctrl-C cancels the call, which
stops the generation in the mesh.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any, TextIO

import grpc

from mesh.cli.common import add_connection_args, channel, metadata, report_rpc_error
from ragmesh.agent.v1 import agent_service_pb2 as pb
from ragmesh.agent.v1 import agent_service_pb2_grpc as pb_grpc

SERVICE = "ragmesh.agent.v1.AgentService"


def _enum_name(enum: Any, value: int, prefix: str) -> str:
    return str(enum.Name(value)).removeprefix(prefix).lower()


def citation_json(citation: pb.Citation) -> dict[str, Any]:
    """A citation as the --json output carries it."""
    return {
        "marker": citation.marker,
        "source": citation.source_uri,
        "chunk_id": citation.chunk_id,
        "doc_id": citation.doc_id,
        "title": citation.title,
        "snippet": citation.snippet,
        "score": round(citation.score, 6),
    }


def event_json(message: pb.StreamChatResponse) -> dict[str, Any]:
    """One StreamChat message as one JSON object with a "type"."""
    kind = message.WhichOneof("event") or "unknown"
    out: dict[str, Any] = {
        "type": kind,
        "sequence": message.sequence,
        "session_id": message.session_id,
        "message_id": message.message_id,
    }
    if kind == "step":
        out |= {
            "step": _enum_name(pb.Step, message.step.step, "STEP_"),
            "status": _enum_name(pb.StepStatus, message.step.status, "STEP_STATUS_"),
            "detail": message.step.detail,
            "duration_ms": round(message.step.duration_ms, 3),
        }
    elif kind == "token":
        out["text"] = message.token.text
    elif kind == "tool_call":
        out |= {
            "call_id": message.tool_call.call_id,
            "tool": message.tool_call.tool,
            "arguments": json.loads(message.tool_call.arguments_json or "{}"),
        }
    elif kind == "tool_result":
        result = message.tool_result
        out |= {"call_id": result.call_id, "tool": result.tool, "output": result.output, "is_error": result.is_error}
    elif kind == "citations":
        out["citations"] = [citation_json(c) for c in message.citations.citations]
    elif kind == "final":
        final = message.final
        latency = final.latency
        out |= {
            "answer": final.answer,
            "citations": [citation_json(c) for c in final.citations],
            "answered_from_documents": final.answered_from_documents,
            "rewritten_query": final.rewritten_query,
            "cache_hit": _enum_name(pb.CacheHit, final.cache_hit, "CACHE_HIT_"),
            "usage": {
                "prompt_tokens": final.usage.prompt_tokens,
                "completion_tokens": final.usage.completion_tokens,
            },
            "latency_ms": {
                "planning": round(latency.planning_ms, 3),
                "retrieval": round(latency.retrieval_ms, 3),
                "tools": round(latency.tools_ms, 3),
                "time_to_first_token": round(latency.time_to_first_token_ms, 3),
                "total": round(latency.total_ms, 3),
            },
        }
    return out


class _Printer:
    """Human output: tokens as they come, steps (with --steps) and tools on stderr, sources at the end."""

    def __init__(self, out: TextIO, err: TextIO, show_steps: bool) -> None:
        self.out, self.err, self.show_steps = out, err, show_steps
        self._midline = False

    def _note(self, text: str) -> None:
        # On a terminal both streams share the screen: start notes on a line of their own.
        print(("\n" if self._midline else "") + text, file=self.err)
        self._midline = False

    def __call__(self, message: pb.StreamChatResponse) -> None:
        kind = message.WhichOneof("event")
        if kind == "token":
            self.out.write(message.token.text)
            self.out.flush()
            self._midline = not message.token.text.endswith("\n")
        elif kind == "step" and self.show_steps:
            step = message.step
            status = _enum_name(pb.StepStatus, step.status, "STEP_STATUS_")
            timing = f" {step.duration_ms:.0f} ms" if status != "started" else ""
            detail = f": {step.detail}" if step.detail else ""
            self._note(f"[{_enum_name(pb.Step, step.step, 'STEP_')} {status}{timing}]{detail}")
        elif kind == "tool_call":
            self._note(f"[tool {message.tool_call.tool}] {message.tool_call.arguments_json}")
        elif kind == "final":
            self._final(message)

    def _final(self, message: pb.StreamChatResponse) -> None:
        final = message.final
        self.out.write("\n")
        if final.citations:
            self.out.write("\nSources:\n")
            for citation in final.citations:
                title = f"{citation.title} - " if citation.title else ""
                self.out.write(f"  [{citation.marker}] {title}{citation.source_uri} (chunk {citation.chunk_id})\n")
                if citation.snippet:
                    self.out.write(f"      {citation.snippet}\n")
        cache = _enum_name(pb.CacheHit, final.cache_hit, "CACHE_HIT_")
        latency = final.latency
        print(
            f"session {message.session_id} (continue with --session {message.session_id}); "
            f"first token {latency.time_to_first_token_ms:.0f} ms, total {latency.total_ms:.0f} ms, cache {cache}",
            file=self.err,
        )


async def ask(args: argparse.Namespace, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """Streams one answer; returns the exit code."""
    request = pb.StreamChatRequest(
        message=args.question,
        session_id=args.session,
        options=pb.ChatOptions(bypass_cache=args.no_cache, hyde=args.hyde, top_k=args.top_k),
    )
    printer = _Printer(out, err, args.steps)
    async with channel(args, (SERVICE,)) as chan:
        stub = pb_grpc.AgentServiceStub(chan)
        call = stub.StreamChat(request, metadata=metadata(args), timeout=args.timeout)
        try:
            async for message in call:
                if args.json:
                    print(json.dumps(event_json(message)), file=out, flush=True)
                else:
                    printer(message)
        except grpc.aio.AioRpcError as exc:
            if not args.json:
                out.write("\n")
            return report_rpc_error(exc, as_json=args.json)
    return 0


def _run(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(ask(args))
    except KeyboardInterrupt:
        # asyncio.run cancelled the call on the way out, which stops the generation downstream.
        print("\ncancelled", file=sys.stderr)
        return 130


def register(sub: Any) -> None:
    """Adds ``ask``."""
    parser = sub.add_parser("ask", help="ask the agent a question; streams a cited answer")
    parser.add_argument("question", help="the question (1 to 4,000 characters)")
    parser.add_argument("--session", default="", help="session to continue (printed after each answer)")
    parser.add_argument("--json", action="store_true", help="print every event as one JSON object per line")
    parser.add_argument("--no-cache", action="store_true", help="neither read nor write the answer caches")
    parser.add_argument("--hyde", action="store_true", help="also search with a hypothetical answer (HyDE)")
    parser.add_argument("--top-k", type=int, default=0, help="sources to retrieve, at most 20 (default: the agent's)")
    parser.add_argument("--steps", action="store_true", help="print each step of the loop on stderr")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for the whole answer")
    add_connection_args(parser)
    parser.set_defaults(func=_run)
