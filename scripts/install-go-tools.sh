#!/usr/bin/env bash
# Build the Go programs the local stack runs, into a cache outside the checkout, for
# `ragmesh up` and the tests:
#
#   ratelimit   the Envoy rate limit service (github.com/envoyproxy/ratelimit), the
#               per-tenant global limits behind the edge (mesh/stack/parts.py)
#
#   RAGMESH_GO_HOME  cache root (default: $HOME/.cache/ragmesh/go); binaries land in
#                    its bin/, with GOPATH, GOCACHE and GOMODCACHE beside them, so a
#                    rerun reuses the downloaded modules and the build cache
#
# Idempotent: a tool is skipped when its binary is there and was built from the pinned
# version (bin/<name>.version); a fresh machine builds it once (~2 min on 2 cores).
set -euo pipefail

go_home="${RAGMESH_GO_HOME:-$HOME/.cache/ragmesh/go}"
bin="$go_home/bin"

# envoyproxy/ratelimit has no tags; this is the pseudo-version the module proxy serves.
ratelimit_module="github.com/envoyproxy/ratelimit/src/service_cmd"
ratelimit_version="v1.4.1-0.20260122083618-3fb702589d36"

go_cmd=""
scratch=""
find_go() {
  if [[ -n $go_cmd ]]; then return 0; fi
  if command -v go >/dev/null 2>&1; then
    go_cmd="$(command -v go)"
  elif [[ -x /usr/local/go/bin/go ]]; then
    go_cmd=/usr/local/go/bin/go
  else
    echo "install-go-tools: the Go toolchain (go >= 1.24) is missing; install it from the Go project's release archive into /usr/local/go" >&2
    exit 1
  fi
}

# install_tool NAME MODULE VERSION BUILT_NAME: `go install MODULE@VERSION`, then rename
# the binary go names after its package directory (BUILT_NAME) to NAME.
install_tool() {
  local name="$1" module="$2" version="$3" built="$4"
  if [[ -x "$bin/$name" && "$(cat "$bin/$name.version" 2>/dev/null)" == "$module@$version" ]]; then
    echo "install-go-tools: $name already built ($bin/$name)"
    return 0
  fi
  find_go
  echo "install-go-tools: building $name from $module@$version (first time: ~2 min)" >&2
  mkdir -p "$bin"
  # A scratch GOBIN, so a half-built binary never sits where binaries.py looks.
  scratch="$(mktemp -d "$go_home/.install.XXXXXX")"
  trap 'rm -rf "$scratch"' EXIT
  GOPATH="$go_home/path" GOCACHE="$go_home/cache" GOMODCACHE="$go_home/mod" \
    GOBIN="$scratch" GOFLAGS="${GOFLAGS:-} -buildvcs=false" \
    nice -n 10 "$go_cmd" install "$module@$version"
  mv -f "$scratch/$built" "$bin/$name"
  rm -rf "$scratch"
  printf '%s\n' "$module@$version" > "$bin/$name.version"
  echo "install-go-tools: $name built ($bin/$name)"
}

install_tool ratelimit "$ratelimit_module" "$ratelimit_version" service_cmd
