#!/usr/bin/env bash
# Fetch the Neo4j 5 community server jars (org.neo4j:neo4j and its runtime
# dependencies) from Maven Central into a local cache, for `ragmesh up`.
#
#   NEO4J_VERSION  release to fetch (default: the one mesh.stack.config pins)
#   NEO4J_LIB_DIR  where the jars go (default: .tools/neo4j/<version>/lib in the checkout)
#
# Idempotent and fast when the jars are there: a finished fetch leaves
# <lib>/.complete, and the directory only appears once every jar is in it.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
version="${NEO4J_VERSION:-5.26.25}"
dest="${NEO4J_LIB_DIR:-$root/.tools/neo4j/$version/lib}"

if [[ -f "$dest/.complete" ]]; then
  echo "fetch-neo4j: Neo4j $version jars already in $dest"
  exit 0
fi
command -v mvn >/dev/null || { echo "fetch-neo4j: mvn is missing (scripts/install-system-deps.sh, or apt-get install maven)" >&2; exit 1; }

mkdir -p "$(dirname "$dest")"
work="$(mktemp -d "$(dirname "$dest")/.fetch.XXXXXX")"
trap 'rm -rf "$work"' EXIT

cat > "$work/pom.xml" <<POM
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.ragmesh</groupId>
  <artifactId>neo4j-server-jars</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.neo4j</groupId>
      <artifactId>neo4j</artifactId>
      <version>$version</version>
    </dependency>
  </dependencies>
</project>
POM

echo "fetch-neo4j: resolving org.neo4j:neo4j:$version and its runtime dependencies"
mvn -B -q -Dstyle.color=never -f "$work/pom.xml" dependency:copy-dependencies \
  -DincludeScope=runtime -DoutputDirectory="$work/lib"
if ! ls "$work/lib"/neo4j-"$version".jar >/dev/null 2>&1; then
  echo "fetch-neo4j: org.neo4j:neo4j:$version was not resolved" >&2
  exit 1
fi
touch "$work/lib/.complete"
rm -rf "$dest"
mv "$work/lib" "$dest"
echo "fetch-neo4j: $(find "$dest" -name '*.jar' | wc -l) jars in $dest"
