#!/usr/bin/env bash
# Install everything ragmesh needs on a fresh Debian 12 machine; fast no-op when done.
# --runtime: only what running the stack needs (make demo, make up): skips the Kubernetes
# API server and its CRDs, which only the deploy tests use (~20 CPU-minutes to build once).
set -euo pipefail
runtime_only=false
if [[ "${1:-}" == "--runtime" ]]; then
  runtime_only=true
fi
cd "$(dirname "$0")/.."
export PATH="$HOME/.local/bin:$PATH"

step() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

if [[ -x scripts/install-system-deps.sh ]]; then
  scripts/install-system-deps.sh
fi

if ! command -v uv >/dev/null 2>&1; then
  step "installing uv"
  python3 -m pip install --quiet --user "uv==0.13.8" || python3 -m pip install --quiet "uv==0.13.8"
fi

# llama-cpp-python is compiled here. A native build (-march=native) on a CPU with AMX
# compiles ggml's AMX kernels, which crash in mul_mat with this model (SIGSEGV in
# ggml_backend_amx_mul_mat, seen on Xeon machines with amx_int8): build for AVX2 instead.
# uv keeps built wheels in its cache whatever CMAKE_ARGS were, so a wheel built with other
# flags is dropped from the cache once (the stamp beside the cache records the flags).
export CMAKE_ARGS="${RAGMESH_LLAMA_CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF}"
llama_stamp="$HOME/.cache/ragmesh/llama-cpp-cmake-args"
stamp=.venv/.ragmesh-synced
# Checkouts share uv's cache and the stamp: one sync at a time, so one checkout's cache
# clean cannot drop the wheel another is about to install (it would compile it again).
mkdir -p "$(dirname "$llama_stamp")"
exec 8>"$llama_stamp.lock"
flock 8
if [[ "$(cat "$llama_stamp" 2>/dev/null)" != "$CMAKE_ARGS" ]]; then
  step "llama-cpp-python: dropping a wheel built with other flags from the uv cache"
  uv cache clean llama-cpp-python >/dev/null 2>&1 || true
  rm -f "$stamp"
  reinstall=(--reinstall-package llama-cpp-python)
else
  reinstall=()
fi

# uv sync is itself idempotent, but resolving 270 packages costs seconds; skip when
# the lock file and project metadata have not changed since the last sync.
if [[ ! -f $stamp || uv.lock -nt $stamp || pyproject.toml -nt $stamp ]]; then
  step "syncing the Python environment (first run builds llama-cpp-python: ~5-15 min)"
  CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-2}" uv sync --frozen "${reinstall[@]}"
  mkdir -p "$(dirname "$llama_stamp")"
  printf '%s' "$CMAKE_ARGS" >"$llama_stamp"
  touch "$stamp"
fi
flock -u 8

if [[ ! -d node_modules || package-lock.json -nt node_modules/.package-lock.json ]]; then
  step "installing npm tools (buf, protoc-gen-es, connect-web)"
  npm ci --no-audit --no-fund --loglevel=error
fi

if [[ ! -f web/dist/app.js || -n "$(find web/src gen/ts package-lock.json -newer web/dist/app.js -print -quit)" ]]; then
  step "building the browser page (web/dist)"
  npm run -s build:web >/dev/null
fi

scripts/fetch-proto-deps.sh

if [[ -x scripts/fetch-neo4j.sh ]]; then
  scripts/fetch-neo4j.sh
fi

# Go programs the stack runs, built once into ~/.cache/ragmesh/go: the Envoy rate limit service,
# and the Jaeger trace backend (~14 CPU-minutes the first time). `--runtime` (make demo, make up)
# skips Jaeger unless it is built already or RAGMESH_JAEGER_BUILD=1: the stack runs without it,
# with tracing off (ragmesh status says so).
if [[ "$runtime_only" == false || "${RAGMESH_JAEGER_BUILD:-0}" == 1 ]]; then
  scripts/install-go-tools.sh ratelimit jaeger
else
  scripts/install-go-tools.sh ratelimit
fi
# ghz, the load tester ragmesh bench load drives (tests/load/), for the tests only: make demo
# and make up never wait for it.
if [[ "$runtime_only" == false ]]; then
  scripts/install-go-tools.sh ghz
fi

# A real Kubernetes API server (etcd + kube-apiserver from source) and the operators' CRDs,
# for the deploy tests' server-side dry runs; built once into ~/.cache/ragmesh/k8s.
if [[ "$runtime_only" == false ]]; then
  scripts/build-k8s-apiserver.sh
fi
