#!/usr/bin/env bash
# Build the Go programs the local stack runs, into a cache outside the checkout, for
# `ragmesh up` and the tests:
#
#   ratelimit   the Envoy rate limit service (github.com/envoyproxy/ratelimit), the
#               per-tenant global limits behind the edge (mesh/stack/parts.py)
#   jaeger      the Jaeger v2 trace backend (github.com/jaegertracing/jaeger), in-memory;
#               the stack's OTLP endpoint and trace query API (`ragmesh trace`). Optional:
#               `--runtime` skips it unless RAGMESH_JAEGER_BUILD=1, and the stack runs
#               without it with tracing off (~14 CPU-minutes, ~2 GB to link, once)
#   ghz         the gRPC load tester `ragmesh bench load` drives (tests/load/); built only
#               when named (make deps names it; make demo and make up never wait for it;
#               ~3 CPU-minutes, 42 MB; `ragmesh bench load` builds it when it is missing)
#
#   RAGMESH_GO_HOME  cache root (default: $HOME/.cache/ragmesh/go); binaries land in
#                    its bin/, with GOPATH, GOCACHE and GOMODCACHE beside them, so a
#                    rerun reuses the downloaded modules and the build cache
#
# Idempotent: a tool is skipped when its binary is there and was built from the pinned
# version (bin/<name>.version); a fresh machine builds it once (~2 min on 2 cores).
#   scripts/install-go-tools.sh            # every tool the stack runs (not ghz)
#   scripts/install-go-tools.sh ratelimit  # only the named ones
set -euo pipefail

go_home="${RAGMESH_GO_HOME:-$HOME/.cache/ragmesh/go}"
bin="$go_home/bin"
mkdir -p "$go_home"
# One build at a time: checkouts running make deps side by side share the cache and bin/.
exec 9>"$go_home/.build.lock"
flock 9

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

# build_tool NAME MODULE VERSION: for commands whose module `go install` refuses (replace
# directives): a scratch module records MODULE@VERSION as a tool dependency and builds it.
build_tool() {
  local name="$1" module="$2" version="$3"
  if [[ -x "$bin/$name" && "$(cat "$bin/$name.version" 2>/dev/null)" == "$module@$version" ]]; then
    echo "install-go-tools: $name already built ($bin/$name)"
    return 0
  fi
  find_go
  echo "install-go-tools: building $name from $module@$version (first time: ~14 CPU-minutes)" >&2
  mkdir -p "$bin"
  scratch="$(mktemp -d "$go_home/.install.XXXXXX")"
  trap 'rm -rf "$scratch"' EXIT
  (
    cd "$scratch"
    export GOPATH="$go_home/path" GOCACHE="$go_home/cache" GOMODCACHE="$go_home/mod" \
      GOFLAGS="${GOFLAGS:-} -buildvcs=false" GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
    "$go_cmd" mod init ragmesh.local/"$name" >/dev/null 2>&1
    "$go_cmd" get -tool "$module@$version"
    nice -n 10 "$go_cmd" build -o "$scratch/$name" "$module"
  )
  mv -f "$scratch/$name" "$bin/$name"
  rm -rf "$scratch"
  printf '%s\n' "$module@$version" > "$bin/$name.version"
  echo "install-go-tools: $name built ($bin/$name)"
}

jaeger_module="github.com/jaegertracing/jaeger/cmd/jaeger"
jaeger_version="v1.75.0"

# @latest resolves to the older v0.93.0, and v0.130.0 and later are refused: pin the tag.
ghz_module="github.com/bojand/ghz/cmd/ghz"
ghz_version="v0.121.0"

tools=("$@")
if [[ ${#tools[@]} -eq 0 ]]; then
  tools=(ratelimit jaeger)
fi
for tool in "${tools[@]}"; do
  case "$tool" in
    ratelimit) install_tool ratelimit "$ratelimit_module" "$ratelimit_version" service_cmd ;;
    jaeger) build_tool jaeger "$jaeger_module" "$jaeger_version" ;;
    ghz) install_tool ghz "$ghz_module" "$ghz_version" ghz ;;
    *) echo "install-go-tools: unknown tool $tool (ratelimit, jaeger, ghz)" >&2; exit 2 ;;
  esac
done
