#!/usr/bin/env bash
# The main job: start the mesh, ingest the project's sample corpus, and stream a
# cited answer to a sample question through the Envoy edge.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.local/bin:$PATH"
RUN=(uv run --no-sync)
TENANT="${RAGMESH_DEMO_TENANT:-demo}"
QUESTION="${RAGMESH_DEMO_QUESTION:-What does a Deployment do when you update its Pod template?}"

step() { printf '\n\033[1m==> %s\033[0m\n' "$*" >&2; }

step "starting the mesh (ragmesh up)"
"${RUN[@]}" ragmesh up
"${RUN[@]}" ragmesh status

# Every call through the edge carries a verified token: mint one for a person of the demo tenant.
step "minting a token for tenant '$TENANT' (ragmesh token issue)"
RAGMESH_TOKEN="$("${RUN[@]}" ragmesh token issue --tenant "$TENANT" --subject demo-user --roles reader,editor --ttl 2h)"
export RAGMESH_TOKEN

step "ingesting the sample corpus (samples/) as tenant '$TENANT'"
# The knowledge graph is built by the rule-based extractor (RAGMESH_INGEST_GRAPH_EXTRACTOR=rules,
# the default) at ingest speed on CPU; RAGMESH_DEMO_GRAPH=0 skips it.
GRAPH_FLAG=()
[[ "${RAGMESH_DEMO_GRAPH:-1}" == 0 ]] && GRAPH_FLAG=(--no-graph)
"${RUN[@]}" ragmesh ingest samples/k8s samples/noise "${GRAPH_FLAG[@]}"

step "asking: $QUESTION"
"${RUN[@]}" ragmesh ask "$QUESTION"

cat >&2 <<TXT

The mesh is still running. Calls need a token; --tenant mints a 15-minute one from the
stack's key, or export one: export RAGMESH_TOKEN=\$(uv run ragmesh token issue --tenant $TENANT --subject you --roles reader)
Try:
  uv run ragmesh ask "How do I limit the CPU a container can use?" --tenant $TENANT
  uv run ragmesh search "pod disruption budget" --tenant $TENANT
  uv run ragmesh status          # every part, healthy or not
  uv run ragmesh down            # stop it (keeps data; --purge deletes it)
TXT
