#!/usr/bin/env bash
# The whole test suite: start a real local stack on test ports (its own home, so a
# running dev stack is untouched), run every test against it, stop and purge it.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.local/bin:$PATH"
RUN=(uv run --no-sync)

export RAGMESH_HOME="${RAGMESH_TEST_HOME:-$PWD/.ragmesh-test}"
# Test ports sit at RAGMESH_TEST_PORT_BASE (default 30000) + a fixed offset each, so two
# checkouts can run their suites side by side with different bases.
base=${RAGMESH_TEST_PORT_BASE:-30000}
export RAGMESH_POSTGRES_PORT=$((base + 1432)) RAGMESH_REDIS_PORT=$((base + 1379))
export RAGMESH_NEO4J_BOLT_PORT=$((base + 1687)) RAGMESH_NEO4J_HTTP_PORT=$((base + 1474))
export RAGMESH_RAY_GCS_PORT=$((base + 1380)) RAGMESH_RAY_CLIENT_SERVER_PORT=$((base + 1381))
export RAGMESH_RAY_DASHBOARD_AGENT_PORT=$((base + 1382))
# Ray worker nodes beside the head (ragmesh up --ray-workers): none unless asked, so the suite
# costs no more on a small runner; RAGMESH_TEST_RAY_WORKERS=2 rehearses the parse/embed groups.
# tests/integration/ingest/test_ray_nodes.py starts a multi-node cluster of its own either way.
export RAGMESH_RAY_WORKERS=${RAGMESH_TEST_RAY_WORKERS:-0} RAGMESH_RAY_WORKER_PORT_BASE=$((base + 2000))
export RAGMESH_SVC_INFERENCE_PORT=$((base + 51)) RAGMESH_SVC_RETRIEVAL_PORT=$((base + 52))
export RAGMESH_SVC_INGEST_PORT=$((base + 53)) RAGMESH_SVC_SANDBOX_PORT=$((base + 54)) RAGMESH_SVC_AGENT_PORT=$((base + 55))
export RAGMESH_ENVOY_LISTENER_PORT=$((base + 1080)) RAGMESH_ENVOY_ADMIN_PORT=$((base + 1901))
export RAGMESH_RATELIMIT_HTTP_PORT=$((base + 1070)) RAGMESH_RATELIMIT_GRPC_PORT=$((base + 1071))
export RAGMESH_RATELIMIT_DEBUG_PORT=$((base + 1072)) RAGMESH_RATELIMIT_METRICS_PORT=$((base + 1073))
export RAGMESH_SVC_INFERENCE_METRICS_PORT=$((base + 61)) RAGMESH_SVC_RETRIEVAL_METRICS_PORT=$((base + 62))
export RAGMESH_SVC_INGEST_METRICS_PORT=$((base + 63)) RAGMESH_SVC_SANDBOX_METRICS_PORT=$((base + 64))
export RAGMESH_SVC_AGENT_METRICS_PORT=$((base + 65))
export RAGMESH_JAEGER_OTLP_GRPC_PORT=$((base + 1317)) RAGMESH_JAEGER_QUERY_PORT=$((base + 1686))
export RAGMESH_JAEGER_QUERY_GRPC_PORT=$((base + 1685))
# A graph leg slower than its budget is dropped and the search marked degraded, and a degraded
# answer is never cached: on a loaded 2-core runner the default 2 s budget made the cache tests
# depend on timing. The degradation tests set their own budgets.
export RAGMESH_RETRIEVAL_GRAPH_TIMEOUT_S=15
eval "$("${RUN[@]}" ragmesh env)"

stop_stack() {
  echo "==> stopping the test stack" >&2
  "${RUN[@]}" ragmesh down --purge >/dev/null 2>&1 || "${RUN[@]}" ragmesh down || true
}
trap stop_stack EXIT

echo "==> starting the test stack in $RAGMESH_HOME" >&2
if ! "${RUN[@]}" ragmesh up; then
  "${RUN[@]}" ragmesh status || true
  exit 1
fi

echo "==> running the test suite" >&2
# Every suite: unit, contract, the service integration suites (each starts the real stores
# it needs on free ports) and the end-to-end suites through this stack's Envoy. Arguments
# narrow it, for example `scripts/test.sh tests/integration/retrieval -k tenant`.
if [[ $# -eq 0 ]]; then
  set -- tests
fi
"${RUN[@]}" pytest "$@"
