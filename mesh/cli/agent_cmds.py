"""``ragmesh ask``: ask the agent a question and watch the cited answer stream in.

Calls AgentService.StreamChat with the SDK (``ragmesh_client``) through the Envoy
edge by default (``--addr`` to call the service directly) with --token (or a dev
token for --tenant). Tokens go to stdout as
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

import ragmesh_client
from mesh.cli.common import add_connection_args, client, report_error
from ragmesh_client import events

agent = ragmesh_client.agent


def citation_json(citation: agent.Citation) -> dict[str, Any]:
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


_KINDS: dict[type[events.Event], str] = {
    events.Step: "step",
    events.Token: "token",
    events.ToolCall: "tool_call",
    events.ToolResult: "tool_result",
    events.Citations: "citations",
    events.Final: "final",
}


def event_json(event: events.ChatEvent) -> dict[str, Any]:
    """One StreamChat event as one JSON object with a "type"."""
    out: dict[str, Any] = {
        "type": _KINDS[type(event)],
        "sequence": event.sequence,
        "session_id": event.session_id,
        "message_id": event.message_id,
    }
    match event:
        case events.Step():
            out |= {
                "step": event.step.name.lower(),
                "status": event.status.name.lower(),
                "detail": event.detail,
                "duration_ms": round(event.duration_ms, 3),
            }
        case events.Token():
            out["text"] = event.text
        case events.ToolCall():
            out |= {"call_id": event.call_id, "tool": event.tool, "arguments": event.arguments}
        case events.ToolResult():
            out |= {"call_id": event.call_id, "tool": event.tool, "output": event.output, "is_error": event.is_error}
        case events.Citations():
            out["citations"] = [citation_json(c) for c in event.citations]
        case events.Final():
            latency = event.latency
            out |= {
                "answer": event.answer,
                "citations": [citation_json(c) for c in event.citations],
                "answered_from_documents": event.answered_from_documents,
                "rewritten_query": event.rewritten_query,
                "trace_id": event.trace_id,
                "cache_hit": event.cache_hit.name.lower(),
                "usage": {
                    "prompt_tokens": event.usage.prompt_tokens,
                    "completion_tokens": event.usage.completion_tokens,
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

    def __call__(self, event: events.ChatEvent) -> None:
        match event:
            case events.Token():
                self.out.write(event.text)
                self.out.flush()
                self._midline = not event.text.endswith("\n")
            case events.Step() if self.show_steps:
                status = event.status.name.lower()
                timing = f" {event.duration_ms:.0f} ms" if status != "started" else ""
                detail = f": {event.detail}" if event.detail else ""
                self._note(f"[{event.step.name.lower()} {status}{timing}]{detail}")
            case events.ToolCall():
                self._note(f"[tool {event.tool}] {json.dumps(event.arguments)}")
            case events.Final():
                self._final(event)

    def _final(self, final: events.Final) -> None:
        self.out.write("\n")
        if final.citations:
            self.out.write("\nSources:\n")
            for citation in final.citations:
                title = f"{citation.title} - " if citation.title else ""
                self.out.write(f"  [{citation.marker}] {title}{citation.source_uri} (chunk {citation.chunk_id})\n")
                if citation.snippet:
                    self.out.write(f"      {citation.snippet}\n")
        latency = final.latency
        print(
            f"session {final.session_id} (continue with --session {final.session_id}); "
            f"first token {latency.time_to_first_token_ms:.0f} ms, total {latency.total_ms:.0f} ms, "
            f"cache {final.cache_hit.name.lower()}",
            file=self.err,
        )
        if final.trace_id:
            print(f"request {final.trace_id} (where the time went: ragmesh trace {final.trace_id})", file=self.err)


async def ask(args: argparse.Namespace, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """Streams one answer; returns the exit code."""
    printer = _Printer(out, err, args.steps)
    async with client(args) as sdk:
        stream = sdk.ask(
            args.question,
            session_id=args.session,
            top_k=args.top_k,
            bypass_cache=args.no_cache,
            hyde=args.hyde,
            timeout_s=args.timeout,
        )
        try:
            async for event in stream:
                if args.json:
                    print(json.dumps(event_json(event)), file=out, flush=True)
                else:
                    printer(event)
        except ragmesh_client.RagmeshError as exc:
            if not args.json:
                out.write("\n")
            return report_error(exc, as_json=args.json)
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
