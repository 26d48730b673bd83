"""``ragmesh bench <area>``: run a benchmark, print its figures, write them as JSON.

Benchmarks live in ``tests/bench/bench_<area>.py`` and define
``run(argv: list[str]) -> dict``; they measure, they never assert timings. Every
record names the machine it was measured on (``tests/bench/machine.py``, detected
at run time): a bench that records none of its own gets it here.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path
from typing import Any

_REPO = Path(__file__).resolve().parents[2]


def _areas() -> list[str]:
    bench_dir = _REPO / "tests" / "bench"
    return sorted(p.stem.removeprefix("bench_") for p in bench_dir.glob("bench_*.py"))


def _run(args: argparse.Namespace) -> int:
    areas = _areas()
    if args.area not in areas:
        print(f"ragmesh bench: unknown area {args.area!r}; choose from {', '.join(areas)}", file=sys.stderr)
        return 2
    if str(_REPO) not in sys.path:
        sys.path.insert(0, str(_REPO))
    module = importlib.import_module(f"tests.bench.bench_{args.area}")
    machine = importlib.import_module("tests.bench.machine").machine
    started = time.time()
    figures: dict[str, Any] = module.run(list(args.bench_args))
    figures.setdefault("machine", machine())
    record = {"area": args.area, "started_at": started, "figures": figures}
    out = Path(args.out) if args.out else _REPO / ".bench" / f"{args.area}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
    print(f"wrote {out}", file=sys.stderr)
    return 0


def register(sub: Any) -> None:
    parser = sub.add_parser("bench", help="run a benchmark (figures printed and written as JSON)")
    parser.add_argument("area", help="what to measure: " + ", ".join(_areas()))
    parser.add_argument("--out", help="JSON output path (default .bench/<area>.json)")
    parser.add_argument("bench_args", nargs=argparse.REMAINDER, help="options passed to the benchmark")
    parser.set_defaults(func=_run)
