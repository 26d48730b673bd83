"""Turn `terraform output -json` into the prod overlay's terraform-outputs.env.

The prod overlay (kustomize/overlays/prod) takes the identifiers terraform creates (IAM
roles, region, cluster name, model file system) from that env file through kustomize
replacements. Only the outputs the overlay uses are written, sorted, one per line:

    terraform -chdir=terraform output -json \\
      | uv run --no-sync python scripts/terraform_outputs_env.py \\
      > kustomize/overlays/prod/namespaced/terraform-outputs.env
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import Any

#: The outputs the prod overlay reads (keys of terraform-outputs.env).
OVERLAY_OUTPUTS = (
    "aws_region",
    "cluster_name",
    "documents_bucket",
    "external_secrets_role_arn",
    "ingest_role_arn",
    "karpenter_node_role_name",
    "models_file_system_id",
)

HEADER = "# Written by scripts/terraform_outputs_env.py from `terraform output -json`; do not edit.\n"


def env_file(outputs: Mapping[str, Any]) -> str:
    """The env file for ``outputs`` (the parsed JSON); an error names any output that is missing or not a string."""
    lines = []
    for name in OVERLAY_OUTPUTS:
        entry = outputs.get(name)
        if not isinstance(entry, Mapping) or "value" not in entry:
            raise ValueError(f"terraform output {name!r} is missing: run `terraform apply` with this tree's terraform/")
        value = entry["value"]
        if not isinstance(value, str) or not value or "\n" in value:
            raise ValueError(f"terraform output {name!r} must be a one-line string, got {value!r}")
        lines.append(f"{name}={value}\n")
    return HEADER + "".join(lines)


def main() -> int:
    try:
        sys.stdout.write(env_file(json.load(sys.stdin)))
    except (ValueError, json.JSONDecodeError) as exc:
        print(f"terraform_outputs_env: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
