#!/usr/bin/env bash
# Install the Debian packages the local stack and the services need.
# Idempotent: asks dpkg first and is a quick no-op when everything is present.
#
#   postgresql               PostgreSQL 15 (chat memory, jobs)
#   redis-server             cache, rate-limit counters
#   openjdk-17-jre-headless  Java for Neo4j
#   maven                    fetches the Neo4j jars (scripts/fetch-neo4j.sh)
#   bubblewrap               svc_sandbox isolation
#   tesseract-ocr            OCR for scanned PDFs (unstructured)
#   poppler-utils            PDF rendering for unstructured
#   libmagic1                file type detection for unstructured
#   util-linux               setpriv, to run PostgreSQL as its own user when we are root
set -euo pipefail

packages=(
  postgresql
  redis-server
  openjdk-17-jre-headless
  maven
  bubblewrap
  tesseract-ocr
  poppler-utils
  libmagic1
  util-linux
  unzip
  chromium
  fonts-dejavu-core
)

missing=()
for pkg in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-system-deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "install-system-deps: run as root (or install sudo): missing ${missing[*]}" >&2; exit 1; }
  sudo=(sudo)
fi

echo "install-system-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q
"${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"

# The Debian package starts a system-wide cluster and redis on the default ports;
# the local stack runs its own on other ports, so those are left as they are.
echo "install-system-deps: done"
