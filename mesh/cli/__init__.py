"""The ``ragmesh`` command line.

Each command group lives in its own module under ``mesh.cli`` and exposes
``register(subparsers)``, which adds its sub-commands and sets ``func`` (a
callable taking the parsed arguments and returning an exit code).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Modules that contribute commands; each has register(subparsers).
_COMMAND_MODULES = (
    "mesh.cli.stack_cmds",
    "mesh.cli.bench_cmds",
    "mesh.cli.env_cmds",
    "mesh.cli.sandbox_cmds",
    "mesh.cli.ingest_cmds",
    "mesh.cli.retrieval_cmds",
    "mesh.cli.eval_answers",
    "mesh.cli.agent_cmds",
    "mesh.cli.token_cmds",
    "mesh.cli.trace_cmds",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ragmesh", description="ragmesh: agentic RAG over a gRPC mesh")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from mesh.cli.common import NoCredential

    try:
        code: int = args.func(args)
    except NoCredential as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
