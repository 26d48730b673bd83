#!/usr/bin/env bash
# buf breaking against the contracts on branch main (FILE rules).
# The third-party schemas are not committed, so the against-side is built from a
# checkout of main with the same materialized dependencies, as a buf image.
set -euo pipefail
cd "$(dirname "$0")/.."
ref="${BUF_BREAKING_AGAINST:-main}"
if ! git rev-parse --verify -q "$ref" >/dev/null || ! git ls-tree -d "$ref" proto >/dev/null 2>&1 \
   || [[ -z "$(git ls-tree -d "$ref" proto)" ]]; then
  echo "buf breaking: $ref has no protos yet; nothing to compare"
  exit 0
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
git archive "$ref" proto buf.yaml | tar -x -C "$tmp"
mkdir -p "$tmp/third_party"
cp -r third_party/protovalidate "$tmp/third_party/"
(cd "$tmp" && "$OLDPWD/node_modules/.bin/buf" build -o "$tmp/against.binpb")
node_modules/.bin/buf breaking proto --against "$tmp/against.binpb"
echo "buf breaking: no breaking changes against $ref"
