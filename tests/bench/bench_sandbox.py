"""Cost of isolation: an empty execution in the sandbox vs a plain ``python3 -c pass``, in one run."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from svc_sandbox.config import Config
from svc_sandbox.domain import run_benchmark
from tests.bench.machine import machine


def run(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="ragmesh bench sandbox")
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    figures = asyncio.run(run_benchmark(Config.from_env().settings, iterations=args.iterations, rounds=args.rounds))
    return {**figures, "machine": machine()}
