"""``ragmesh bench fuzz``: descriptor-drawn requests to every public RPC through the edge, at full budget.

The fuzzer of the e2e fuzz test (tests/support/edge_fuzz.py) with many more
requests: by default 1,000 per public RPC. It reports, per RPC, how many calls
ended with each status code; the calls that came back INTERNAL or UNKNOWN or
leaked an internal detail (with the first bytes of their bodies); each
service's health through the edge afterwards; the parts whose pid changed
during the run (``ragmesh status --json`` before and after); the time taken
and the machine. Run it against a stack ``ragmesh up`` started.
"""

from __future__ import annotations

import argparse
import collections
import json
import subprocess
import sys
import time
from typing import Any

import grpc

from mesh.settings import MeshSettings
from tests.bench.machine import machine
from tests.support import edge_fuzz
from tests.support.auth import stack_bearer


def _pids() -> dict[str, int | None]:
    done = subprocess.run(
        [sys.executable, "-m", "mesh.cli", "status", "--json"], capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode != 0 or not done.stdout:
        raise SystemExit(f"ragmesh status --json failed: {done.stderr.strip()}")
    return edge_fuzz.part_pids(json.loads(done.stdout))


def run(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="ragmesh bench fuzz")
    parser.add_argument("--per-rpc", type=int, default=1000, help="requests per public RPC")
    parser.add_argument("--chat-per-rpc", type=int, default=None, help="requests to StreamChat (default: --per-rpc)")
    parser.add_argument("--timeout-s", type=float, default=5.0, help="deadline of each call")
    parser.add_argument("--chat-timeout-s", type=float, default=2.0, help="deadline of each StreamChat call")
    parser.add_argument("--rpc", action="append", default=[], help="fuzz only RPCs whose name contains this")
    args = parser.parse_args(argv)

    settings = MeshSettings.from_env()
    rpcs = [r for r in edge_fuzz.public_rpcs() if not args.rpc or any(part in r.name for part in args.rpc)]
    pacer = edge_fuzz.Pacer()
    counts: dict[str, collections.Counter[str]] = {}
    seconds: dict[str, float] = {}
    problems: list[str] = []
    pids_before = _pids()
    started = time.perf_counter()
    with grpc.insecure_channel(settings.edge_addr) as channel:
        for rpc in rpcs:
            seen = counts.setdefault(rpc.name, collections.Counter())
            timeout_s = edge_fuzz.timeout_for(rpc, args.timeout_s, args.chat_timeout_s)
            examples = args.chat_per_rpc if rpc.family == "chat" and args.chat_per_rpc is not None else args.per_rpc
            # A fresh token per RPC: a dev token lives 15 minutes and a full-budget run lasts longer
            # (one minted at the start made every RPC after the first quarter hour UNAUTHENTICATED).
            metadata = stack_bearer(edge_fuzz.TENANT, subject="fuzzer", roles=edge_fuzz.ROLES)

            def send(
                bodies: list[bytes],
                rpc: edge_fuzz.Rpc = rpc,
                seen: collections.Counter[str] = seen,
                timeout_s: float = timeout_s,
                metadata: tuple[tuple[str, str], ...] = metadata,
            ) -> None:
                pacer.wait(rpc.family)
                outcome = edge_fuzz.call(channel, rpc, bodies, metadata, timeout_s)
                seen[outcome.code] += 1
                if outcome.problem is not None:
                    problems.append(f"{rpc.name} {[b[:64] for b in bodies]!r}: {outcome.problem}")

            rpc_started = time.perf_counter()
            edge_fuzz.fuzz(rpc, examples, send)
            seconds[rpc.name] = round(time.perf_counter() - rpc_started, 1)
            print(f"{rpc.name}: {dict(seen)} in {seconds[rpc.name]} s", file=sys.stderr)
        health = edge_fuzz.health(channel)
    elapsed = time.perf_counter() - started
    restarts = edge_fuzz.restarted(pids_before, _pids())
    total = collections.Counter[str]()
    for seen in counts.values():
        total.update(seen)
    return {
        "tenant": edge_fuzz.TENANT,
        "requests_per_rpc_asked": args.per_rpc,
        "requests": sum(total.values()),
        "codes_per_rpc": {name: dict(sorted(c.items())) for name, c in counts.items()},
        "seconds_per_rpc": seconds,
        "codes_total": dict(sorted(total.items())),
        "internal_or_unknown": sum(total[code] for code in edge_fuzz.FORBIDDEN_CODES),
        # Every call carries a valid token: any UNAUTHENTICATED means the run measured the edge's refusal instead.
        "unauthenticated": total["UNAUTHENTICATED"],
        "problems": len(problems),
        "first_problems": problems[:20],
        "restarted_parts": restarts,
        "health_after": health,
        "elapsed_s": round(elapsed, 1),
        "machine": machine(),
    }
