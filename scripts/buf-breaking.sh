#!/usr/bin/env bash
# buf breaking (FILE rules, buf.yaml) against the last released contract: the buf image
# proto/released/ragmesh-v1.binpb, committed, so the check needs no git refs and fails on
# a clean clone as in CI (make lint runs it). A change that must break a v1 package is a
# new v2 package instead (STYLE.md), never an edit of the released one.
#
#   scripts/buf-breaking.sh [ROOT]    check ROOT/proto (default: this checkout; ROOT holds
#                                     buf.yaml, proto/ and third_party/ like the repo root)
#   scripts/buf-breaking.sh --release on a release (make release-contract): check, then
#                                     record this checkout's proto/ as the released image
#
# The image holds proto/ and its imports (protovalidate's rules, which the against side
# must resolve) without source info; changes to the imported third-party schemas are not
# ours to judge and are left out of the comparison (--exclude-imports).
# BUF_BREAKING_AGAINST names another image to compare with.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
buf="$repo/node_modules/.bin/buf"
released="$repo/proto/released/ragmesh-v1.binpb"
release=0
if [[ ${1:-} == --release ]]; then
  release=1
  shift
fi
root="$(cd "${1:-$repo}" && pwd)"
against="${BUF_BREAKING_AGAINST:-$released}"

if [[ ! -x $buf ]]; then
  echo "buf breaking: $buf is missing: run make deps" >&2
  exit 2
fi
cd "$root"
if [[ -f $against ]]; then
  if ! "$buf" breaking proto --against "$against" --exclude-imports; then
    echo "buf breaking: proto/ breaks the released contract ${against#"$repo"/} (above);" \
      "a breaking change is a new v2 package" >&2
    exit 1
  fi
  echo "buf breaking: no breaking change against the released contract ${against#"$repo"/}"
elif ((release)) && [[ $against == "$released" ]]; then
  echo "buf breaking: no released contract yet; this release is the first"
else
  echo "buf breaking: no released contract at $against to compare with" >&2
  echo "  (a release records one: make release-contract)" >&2
  exit 1
fi

if ((release)); then
  if [[ $root != "$repo" ]]; then
    echo "buf breaking: --release records this checkout's proto/ only" >&2
    exit 2
  fi
  mkdir -p "$(dirname "$released")"
  "$buf" build proto --exclude-source-info -o "$released"
  echo "buf breaking: recorded proto/ as the released contract ${released#"$repo"/}; commit it with the release"
fi
