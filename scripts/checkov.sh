#!/usr/bin/env bash
# Run checkov (static analysis of Kubernetes manifests, Dockerfiles and Terraform) from its
# own virtual environment, cached in $HOME/.cache/ragmesh/checkov-<version>: its pinned
# dependencies conflict with the project's lock, so it stays out of .venv. The first run
# installs it (about a minute); later runs start at once. Arguments go to checkov; the
# skipped checks and the reason for each are in .checkov.yaml at the repository root.
#
#   scripts/checkov.sh -d terraform --framework terraform
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.local/bin:$PATH"

CHECKOV_VERSION=3.3.30
venv=${RAGMESH_CHECKOV_VENV:-$HOME/.cache/ragmesh/checkov-$CHECKOV_VERSION}
if [[ ! -x $venv/bin/checkov || "$("$venv/bin/checkov" --version 2>/dev/null)" != "$CHECKOV_VERSION" ]]; then
  echo "==> installing checkov $CHECKOV_VERSION into $venv" >&2
  rm -rf "$venv"
  uv venv --quiet --python 3.11 "$venv"
  VIRTUAL_ENV=$venv uv pip install --quiet "checkov==$CHECKOV_VERSION"
fi
exec "$venv/bin/checkov" --config-file .checkov.yaml "$@"
