#!/usr/bin/env bash
# Materialize the third-party proto schemas our contracts import (protovalidate's
# buf/validate/validate.proto) from the Maven Central artifact that publishes them.
# There is no schema registry access here, so buf resolves them from this local
# module instead of a remote dependency. Idempotent: a no-op when present.
set -euo pipefail
cd "$(dirname "$0")/.."
version="${PROTOVALIDATE_VERSION:-1.3.0}"
dest=third_party/protovalidate
stamp="$dest/.version"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$version" && -f "$dest/buf/validate/validate.proto" ]]; then
  exit 0
fi
jar="$HOME/.m2/repository/build/buf/protovalidate/$version/protovalidate-$version.jar"
if [[ ! -f "$jar" ]]; then
  command -v mvn >/dev/null || { echo "fetch-proto-deps: mvn is missing (apt-get install maven)" >&2; exit 1; }
  mvn -q dependency:get -Dartifact="build.buf:protovalidate:$version" -Dtransitive=false >/dev/null
fi
rm -rf "$dest"
mkdir -p "$dest"
unzip -q -o "$jar" 'buf/validate/validate.proto' -d "$dest"
echo "$version" > "$stamp"
