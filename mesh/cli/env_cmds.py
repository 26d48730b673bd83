"""``ragmesh env``: print the client-side environment of the configured stack.

``eval "$(ragmesh env)"`` points every client in the shell (CLI, tests,
benchmarks) at the stack that the current RAGMESH_* settings describe, for
example a test stack on other ports.
"""

from __future__ import annotations

import argparse
import shlex
from typing import Any

from mesh.stack import StackConfig
from mesh.stack.layout import StackLayout
from mesh.stack.service_env import store_env


def _env(args: argparse.Namespace) -> int:
    config = StackConfig.from_env()
    for key, value in sorted(store_env(config, StackLayout(config.home)).items()):
        print(f"export {key}={shlex.quote(value)}")
    return 0


def register(sub: Any) -> None:
    parser = sub.add_parser("env", help="print export lines that point clients at the configured stack")
    parser.set_defaults(func=_env)
