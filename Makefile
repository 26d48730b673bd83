# ragmesh — the two commands that matter: `make demo` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
export PATH := $(HOME)/.local/bin:$(PATH)
RUN := uv run --no-sync
# What make proto writes (committed; make check-gen fails on any difference).
GENERATED := gen sdk/python/ragmesh_client/_proto sdk/python/ragmesh_client/service_config.json

.PHONY: help deps deps-runtime proto check-gen lint release-contract test test-unit demo up down status web

help:
	@echo "make demo   - install what is needed, start the mesh, ingest the samples, stream a cited answer"
	@echo "make test   - install what is needed, run the whole test suite against a real local stack"
	@echo "make deps | proto | lint | check-gen | release-contract | up | down | status"

deps:  ## install system packages, the Python env, npm tools and Maven artifacts (idempotent)
	@scripts/bootstrap.sh

deps-runtime:  ## what running the stack needs (no Kubernetes API server for the deploy tests)
	@scripts/bootstrap.sh --runtime

proto: deps  ## regenerate gen/python, gen/ts and the Python SDK's generated code from proto/
	@scripts/fetch-proto-deps.sh
	@node_modules/.bin/buf generate
	@$(RUN) python scripts/sdk-service-config.py

check-gen: proto  ## fail when the committed generated code differs from a fresh generation
	@git diff --exit-code --stat -- $(GENERATED) || (echo "generated code is stale: run make proto and commit" >&2; exit 1)
	@test -z "$$(git status --porcelain -- $(GENERATED))" || (git status --porcelain -- $(GENERATED); echo "generated code has untracked or stale files" >&2; exit 1)

lint: deps  ## contracts and Python lint: buf lint/format/breaking, ruff, mypy
	@scripts/fetch-proto-deps.sh
	node_modules/.bin/buf lint proto
	node_modules/.bin/buf format proto --diff --exit-code
	scripts/buf-breaking.sh
	$(RUN) ragmesh envoy-config --defaults --check envoy/envoy.yaml
	RAGMESH_EDGE_JWKS="$$($(RUN) python -c 'import json; from mesh.auth import SigningKey; print(json.dumps(SigningKey.generate().jwks()))')" \
	  "$$($(RUN) python -c 'from mesh.stack.binaries import envoy_binary; print(envoy_binary())')" --mode validate -c envoy/envoy.yaml --disable-hot-restart --log-level warn
	node_modules/.bin/tsc -p web/tsconfig.json
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) mypy mesh svc_inference svc_retrieval svc_ingest svc_sandbox svc_agent sdk/python/ragmesh_client

release-contract: deps  ## on a release: check proto/ against the last released contract, then record it (proto/released/)
	@scripts/fetch-proto-deps.sh
	scripts/buf-breaking.sh --release

test: deps  ## the whole suite: unit and contract tests, then integration and e2e against a real stack
	@scripts/test.sh

test-unit: deps
	$(RUN) pytest tests/unit tests/contract -q

demo: deps-runtime  ## start the mesh, ingest the sample corpus, stream a cited answer through Envoy
	@scripts/demo.sh

up: deps-runtime
	$(RUN) ragmesh up

down:
	$(RUN) ragmesh down

status:
	$(RUN) ragmesh status

web: deps  ## build the browser chat page (web/dist/app.js); serve web/ and open index.html?edge=http://127.0.0.1:8080
	npm run -s build:web
