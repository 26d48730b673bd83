"""``ragmesh trace <id>``: where one request's time went, read from the stack's trace backend."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from mesh import traces
from mesh.stack import StackConfig


def _query_url(args: argparse.Namespace) -> str:
    if args.url:
        return str(args.url)
    config = StackConfig.from_env()
    return f"http://{config.host}:{config.jaeger_query_port}"


def _trace(args: argparse.Namespace) -> int:
    trace_id = args.trace_id.strip().lower()
    if not traces.is_trace_id(trace_id):
        print(
            f"ragmesh: {args.trace_id!r} is not a trace id (32 hex digits, as printed after an answer)", file=sys.stderr
        )
        return 2
    url = _query_url(args)
    deadline = time.monotonic() + args.wait
    while True:
        try:
            found = traces.fetch_trace(url, trace_id)
            break
        except traces.TraceNotFound:
            if time.monotonic() >= deadline:
                print(
                    f"ragmesh: no trace {trace_id} at {url} (not sampled, older than the backend keeps, "
                    "or tracing is off: see ragmesh status)",
                    file=sys.stderr,
                )
                return 1
        except traces.TraceBackendError as exc:
            print(f"ragmesh: the trace backend did not answer: {exc} (is tracing on? ragmesh status)", file=sys.stderr)
            return 1
        time.sleep(0.5)
    if args.json:
        doc: dict[str, Any] = {
            "trace_id": found.trace_id,
            "spans": [
                {
                    "span_id": s.span_id,
                    "parent_id": s.parent_id,
                    "service": s.service,
                    "name": s.name,
                    "start_us": s.start_us,
                    "duration_us": s.duration_us,
                    "kind": s.kind,
                }
                for s in found.spans
            ],
            "self_time_us": traces.self_time_by_service(found),
        }
        print(json.dumps(doc, indent=2))
    else:
        print(traces.render(found))
    return 0


def register(sub: Any) -> None:
    """Adds ``trace``."""
    parser = sub.add_parser("trace", help="show where one request's time went (its trace, from the stack's Jaeger)")
    parser.add_argument("trace_id", help="the request id an answer prints (32 hex digits)")
    parser.add_argument("--url", default="", help="Jaeger query API base URL (default: the configured stack's)")
    parser.add_argument("--wait", type=float, default=5.0, help="seconds to wait for the trace to arrive")
    parser.add_argument("--json", action="store_true", help="print the spans as JSON")
    parser.set_defaults(func=_trace)
