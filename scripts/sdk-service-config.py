"""Bundles every service's service_config.json into the Python SDK (run by ``make proto``).

The SDK applies the same per-method deadlines and UNAVAILABLE-only retries as
the mesh's channels; it reads them from this one file, a generated copy of the
configs beside the protos, which ``make check-gen`` keeps in step.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "sdk/python/ragmesh_client/service_config.json"


def main() -> int:
    configs = [json.loads(p.read_text()) for p in sorted((ROOT / "proto").glob("ragmesh/*/v1/service_config.json"))]
    TARGET.write_text(json.dumps(configs, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
