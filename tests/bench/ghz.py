"""Running ghz (the gRPC load tester) from the benchmarks: the binary, a protoset, one step, its report.

ghz is built once into the stack's Go cache by ``scripts/install-go-tools.sh ghz``
(``go install``, a few CPU-minutes the first time); ``binary()`` runs that script
when the binary is missing, so ``ragmesh bench load`` works on any machine that
can build the stack's rate limit service. The configs in ``tests/load/`` are
plain ghz configs (``ghz --config tests/load/search.json --protoset ...
-m '{"authorization": "Bearer ..."}' 127.0.0.1:8080`` runs one by hand); ``step()`` fills
in what a run needs (host, protoset, token, concurrency, duration) and reads the
JSON report back, every call's status and latency included.
"""

from __future__ import annotations

import collections
import json
import os
import statistics
import string
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import FileDescriptor

from mesh.stack import StackConfig

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "tests" / "load"
INSTALL = REPO / "scripts" / "install-go-tools.sh"

# ghz reports status codes by their Go names; the benchmarks use the proto names.
_GO_CODES = {
    "OK": "OK",
    "Canceled": "CANCELLED",
    "Unknown": "UNKNOWN",
    "InvalidArgument": "INVALID_ARGUMENT",
    "DeadlineExceeded": "DEADLINE_EXCEEDED",
    "NotFound": "NOT_FOUND",
    "AlreadyExists": "ALREADY_EXISTS",
    "PermissionDenied": "PERMISSION_DENIED",
    "ResourceExhausted": "RESOURCE_EXHAUSTED",
    "FailedPrecondition": "FAILED_PRECONDITION",
    "Aborted": "ABORTED",
    "OutOfRange": "OUT_OF_RANGE",
    "Unimplemented": "UNIMPLEMENTED",
    "Internal": "INTERNAL",
    "Unavailable": "UNAVAILABLE",
    "DataLoss": "DATA_LOSS",
    "Unauthenticated": "UNAUTHENTICATED",
}
#: A rejected call "comes back quickly" within this (issue 13's line for RESOURCE_EXHAUSTED at c64).
FAST_REJECTION_MS = 100.0


def binary() -> Path:
    """The ghz binary in the stack's Go cache, built there first if it is missing."""
    path = StackConfig.from_env().go_home / "bin" / "ghz"
    if not (path.is_file() and os.access(path, os.X_OK)):
        print("bench: building ghz once into the Go cache (scripts/install-go-tools.sh ghz)", file=sys.stderr)
        env = {**os.environ, "RAGMESH_GO_HOME": str(path.parent.parent)}
        subprocess.run([str(INSTALL), "ghz"], check=True, env=env)
    return path


def write_protoset(path: Path, modules: Iterable[Any]) -> Path:
    """A FileDescriptorSet of the generated modules' files and everything they import, imports first."""
    ordered: list[FileDescriptor] = []
    seen: set[str] = set()

    def visit(file: FileDescriptor) -> None:
        if file.name in seen:
            return
        seen.add(file.name)
        for dependency in file.dependencies:
            visit(dependency)
        ordered.append(file)

    for module in modules:
        visit(module.DESCRIPTOR)
    files = descriptor_pb2.FileDescriptorSet()
    for file in ordered:
        file.CopyToProto(files.file.add())
    path.write_bytes(files.SerializeToString())
    return path


def load_config(name: str) -> dict[str, Any]:
    """A ghz config from tests/load/ (``name`` without .json)."""
    config: dict[str, Any] = json.loads((CONFIGS / f"{name}.json").read_text())
    return config


def _fill(value: Any, values: Mapping[str, str]) -> Any:
    """``$name`` placeholders in the config's data replaced (ghz's own ``{{...}}`` templates are left alone)."""
    if isinstance(value, str):
        return string.Template(value).safe_substitute(values)
    if isinstance(value, list):
        return [_fill(v, values) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, values) for k, v in value.items()}
    return value


def _percentile(ordered: Sequence[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def latency_summary(samples_ms: Iterable[float]) -> dict[str, float]:
    """p50/p95/p99/max in milliseconds (empty when there are no samples)."""
    ordered = sorted(samples_ms)
    if not ordered:
        return {}
    return {
        "p50_ms": round(statistics.median(ordered), 2),
        "p95_ms": round(_percentile(ordered, 0.95), 2),
        "p99_ms": round(_percentile(ordered, 0.99), 2),
        "max_ms": round(ordered[-1], 2),
    }


def code_name(go_name: str) -> str:
    return _GO_CODES.get(go_name, go_name.upper() or "UNKNOWN")


def summarize(report: Mapping[str, Any], concurrency: int) -> dict[str, Any]:
    """One step's figures from ghz's JSON report: every call's code, latencies of answers and of refusals."""
    details = report.get("details") or []
    codes: collections.Counter[str] = collections.Counter()
    ok_ms: list[float] = []
    by_code_ms: dict[str, list[float]] = collections.defaultdict(list)
    for detail in details:
        code = code_name(str(detail.get("status", "")))
        codes[code] += 1
        latency_ms = float(detail.get("latency", 0)) / 1e6
        (ok_ms if code == "OK" else by_code_ms[code]).append(latency_ms)
    count = int(report.get("count", 0))
    total_s = float(report.get("total", 0)) / 1e9
    reported = {code_name(k): int(v) for k, v in (report.get("statusCodeDistribution") or {}).items()}
    rejected = by_code_ms.get("RESOURCE_EXHAUSTED", [])
    errors = sorted((report.get("errorDistribution") or {}).items(), key=lambda kv: -kv[1])
    return {
        "concurrency": concurrency,
        "elapsed_s": round(total_s, 2),
        "calls": count,
        "codes": dict(sorted(codes.items())),
        # ghz's own tally and the per-call details must agree, and every call has a code.
        "accounted": len(details) == count and sum(codes.values()) == count and reported == dict(codes),
        "rps": round(count / total_s, 2) if total_s else 0.0,
        "ok_rps": round(codes["OK"] / total_s, 2) if total_s else 0.0,
        "latency_ok": latency_summary(ok_ms),
        "latency_by_code": {code: latency_summary(ms) for code, ms in sorted(by_code_ms.items())},
        "rejected": {
            "count": len(rejected),
            "within_100ms": sum(1 for ms in rejected if ms <= FAST_REJECTION_MS),
            **latency_summary(rejected),
        },
        "errors_other_than_resource_exhausted": sum(
            n for code, n in codes.items() if code not in ("OK", "RESOURCE_EXHAUSTED")
        ),
        "top_errors": [{"count": n, "error": text[:240]} for text, n in errors[:5]],
    }


def step(
    ghz: Path,
    config: Mapping[str, Any],
    *,
    host: str,
    protoset: Path,
    metadata: Mapping[str, str],
    concurrency: int,
    duration_s: float,
    values: Mapping[str, str] | None = None,
    rps: int = 0,
) -> dict[str, Any]:
    """Runs ghz once at ``concurrency`` for ``duration_s`` (calls in flight at the end are waited for)."""
    resolved = {key: value for key, value in config.items() if key != "name"}
    resolved["data"] = _fill(config.get("data", {}), values or {})
    resolved.update(
        {
            "host": host,
            "protoset": str(protoset),
            "metadata": dict(metadata),
            "concurrency": concurrency,
            "duration": f"{duration_s:g}s",
            # Calls in flight when the duration ends are waited for, so every call has an outcome.
            "duration-stop": "wait",
            "format": "json",
        }
    )
    if rps:
        resolved["rps"] = rps
    with tempfile.TemporaryDirectory(prefix="ragmesh-ghz-") as tmp:
        config_path = Path(tmp) / "config.json"
        output = Path(tmp) / "report.json"
        resolved["output"] = str(output)
        # The token is in this file: readable by this user only.
        config_path.touch(mode=0o600)
        config_path.write_text(json.dumps(resolved))
        done = subprocess.run([str(ghz), "--config", str(config_path)], capture_output=True, text=True, check=False)
        if not output.is_file() or output.stat().st_size == 0:
            raise RuntimeError(
                f"ghz ended {done.returncode} without a report: {(done.stderr or done.stdout).strip()[:2000]}"
            )
        report = json.loads(output.read_text())
    return summarize(report, concurrency)
