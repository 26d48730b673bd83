"""The command line of the scripts that render checked-in files from the stack's own code.

scripts/render_k8s_envoy.py, render_k8s_collector.py and render_k8s_ratelimit.py each build
one text; ``write_or_check`` writes it to its file, or with ``--check`` fails (exit 1) when
the checked-in file differs, which the deploy tests run so a rendering cannot go stale.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path


def write_or_check(output: Path, render: Callable[[], str], *, description: str, argv: list[str] | None) -> int:
    """``render()`` into ``output``; with ``--check`` in ``argv``, 1 when the file is missing or differs."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--check", action="store_true", help="fail when the checked-in file is stale")
    args = parser.parse_args(argv)
    try:
        text = render()
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 1
    if args.check:
        if not output.exists() or output.read_text() != text:
            print(f"{output} is stale: run {Path(sys.argv[0]).name or 'the render script'}", file=sys.stderr)
            return 1
        return 0
    output.write_text(text)
    return 0
