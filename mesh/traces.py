"""Read one trace back from the trace backend (Jaeger's query API) and show where its time went.

``ragmesh trace <id>`` and the tracing e2e test use it: ``fetch_trace`` reads
``/api/traces/<id>``, ``Trace`` holds its spans with their services and parents, and
``render`` prints the span tree with each span's start offset, duration and the
service it ran in, then the time each service spent itself (its spans' time less
their children's).
"""

from __future__ import annotations

import dataclasses
import json
import re
import urllib.error
import urllib.request
from collections import defaultdict
from typing import Any

_TRACE_ID = re.compile(r"[0-9a-f]{32}")


class TraceNotFound(LookupError):
    """The backend holds no trace of that id (yet: spans arrive a second or so after a request)."""


class TraceBackendError(RuntimeError):
    """The backend did not answer, or answered something that is not a trace."""


@dataclasses.dataclass(frozen=True)
class Span:
    """One span of a trace."""

    span_id: str
    parent_id: str
    """The span it is a child of; empty for the trace's root (or a span whose parent was not exported)."""
    service: str
    name: str
    start_us: int
    """Start, in microseconds since the epoch."""
    duration_us: int
    kind: str
    """``server``, ``client``, ``internal`` ... (OpenTelemetry's span.kind), empty when not recorded."""
    tags: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Trace:
    """The spans of one trace."""

    trace_id: str
    spans: tuple[Span, ...]

    @property
    def services(self) -> set[str]:
        return {s.service for s in self.spans}

    def by_id(self) -> dict[str, Span]:
        return {s.span_id: s for s in self.spans}

    def children(self) -> dict[str, list[Span]]:
        """Span id -> its children, by start time; the roots (no parent in the trace) under ""."""
        known = self.by_id()
        out: dict[str, list[Span]] = defaultdict(list)
        for span in sorted(self.spans, key=lambda s: (s.start_us, -s.duration_us)):
            out[span.parent_id if span.parent_id in known else ""].append(span)
        return out

    def parent_of(self, span: Span) -> Span | None:
        return self.by_id().get(span.parent_id)

    def ancestors(self, span: Span) -> list[Span]:
        """The span's parent, its parent's parent, ... up to the root."""
        known = self.by_id()
        out: list[Span] = []
        current = known.get(span.parent_id)
        while current is not None and current not in out:
            out.append(current)
            current = known.get(current.parent_id)
        return out


def is_trace_id(text: str) -> bool:
    """32 lowercase hex digits (what the CLI prints after an answer)."""
    return bool(_TRACE_ID.fullmatch(text))


def parse_trace(doc: dict[str, Any], trace_id: str) -> Trace:
    """A trace from the query API's JSON (``{"data": [{"spans": [...], "processes": {...}}]}``)."""
    data = doc.get("data") or []
    if not data:
        raise TraceNotFound(trace_id)
    raw = data[0]
    processes = {pid: p.get("serviceName", "?") for pid, p in (raw.get("processes") or {}).items()}
    spans = []
    for s in raw.get("spans") or []:
        parent = ""
        for ref in s.get("references") or []:
            if ref.get("refType") == "CHILD_OF" and ref.get("traceID") == raw.get("traceID"):
                parent = ref.get("spanID", "")
                break
        tags = {t.get("key"): t.get("value") for t in s.get("tags") or []}
        spans.append(
            Span(
                span_id=s["spanID"],
                parent_id=parent,
                service=processes.get(s.get("processID", ""), "?"),
                name=s.get("operationName", ""),
                start_us=int(s.get("startTime", 0)),
                duration_us=int(s.get("duration", 0)),
                kind=str(tags.get("span.kind", "")),
                tags=tags,
            )
        )
    return Trace(raw.get("traceID", trace_id), tuple(spans))


def fetch_trace(query_url: str, trace_id: str, timeout_s: float = 5.0) -> Trace:
    """The trace ``trace_id`` from the Jaeger query API at ``query_url`` (``http://host:port``)."""
    url = f"{query_url.rstrip('/')}/api/traces/{trace_id}"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            doc = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            raise TraceNotFound(trace_id) from None
        raise TraceBackendError(f"{url}: HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise TraceBackendError(f"{url}: {exc}") from None
    return parse_trace(doc, trace_id)


def self_time_by_service(trace: Trace) -> dict[str, int]:
    """Microseconds each service spent in its own spans, less the time of their children."""
    children = trace.children()
    out: dict[str, int] = defaultdict(int)
    for span in trace.spans:
        inner = sum(c.duration_us for c in children.get(span.span_id, ()))
        out[span.service] += max(0, span.duration_us - inner)
    return dict(out)


def render(trace: Trace) -> str:
    """The span tree (start offset, duration, service, name), then each service's own time."""
    if not trace.spans:
        return f"trace {trace.trace_id}: no spans"
    children = trace.children()
    start = min(s.start_us for s in trace.spans)
    end = max(s.start_us + s.duration_us for s in trace.spans)
    width = max(len(s.service) for s in trace.spans)
    lines = [
        f"trace {trace.trace_id}: {len(trace.spans)} spans from {len(trace.services)} services, "
        f"{(end - start) / 1000:.1f} ms",
        f"{'START':>10}  {'DURATION':>10}  {'SERVICE':<{width}}  SPAN",
    ]

    def walk(span: Span, depth: int) -> None:
        lines.append(
            f"{(span.start_us - start) / 1000:>8.1f}ms  {span.duration_us / 1000:>8.1f}ms  "
            f"{span.service:<{width}}  {'  ' * depth}{span.name}"
        )
        for child in children.get(span.span_id, ()):
            walk(child, depth + 1)

    for root in children.get("", ()):
        walk(root, 0)
    own = sorted(self_time_by_service(trace).items(), key=lambda item: -item[1])
    lines.append("time spent in each service itself (its spans less their children):")
    lines.extend(f"  {service:<{width}}  {us / 1000:>8.1f} ms" for service, us in own)
    return "\n".join(lines)
