#!/usr/bin/env bash
# Build a real Kubernetes API server (etcd + kube-apiserver, from their Go module sources),
# fetch the CRDs the manifests use, and build OpenTofu (for `tofu fmt -check` on
# terraform/), for the deploy tests in tests/deploy.
# Everything lands in $RAGMESH_K8S_CACHE (default $HOME/.cache/ragmesh/k8s); a rerun with
# everything present is a no-op. The kube-apiserver build is ~19 CPU-minutes and ~3 GB of
# memory on the first run (it runs under nice so a shared machine stays usable).
#
#   scripts/build-k8s-apiserver.sh          # binaries and CRDs
#   scripts/build-k8s-apiserver.sh crds     # only the CRDs (seconds)
#   scripts/build-k8s-apiserver.sh bins     # only the binaries
#   scripts/build-k8s-apiserver.sh tofu     # only OpenTofu (~4 CPU-minutes)
set -euo pipefail

ETCD_VERSION=v3.7.3
K8S_VERSION=v1.37.2
KUBERAY_VERSION=v1.5.0
KARPENTER_VERSION=v1.15.0
KARPENTER_AWS_VERSION=v1.15.2
EXTERNAL_SECRETS_VERSION=v1.3.2
PROMETHEUS_OPERATOR_VERSION=v0.85.0
OPENTOFU_VERSION=v1.12.6
# The Karpenter modules declare a newer Go than this machine's 1.26.8; the go command
# fetches that toolchain (itself a module) for the download step only.
KARPENTER_GOTOOLCHAIN=go1.27.3

root=${RAGMESH_K8S_CACHE:-$HOME/.cache/ragmesh/k8s}
bin=$root/bin
mkdir -p "$bin" "$root/crds"
# A Go module and build cache of our own, writable so the folder can be removed by hand.
export GOMODCACHE=$root/gomod GOCACHE=$root/gocache GOFLAGS="-modcacherw -buildvcs=false"
export GOTOOLCHAIN=${GOTOOLCHAIN:-local}

step() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# One build at a time: two checkouts running make deps side by side would otherwise share
# (and remove) each other's work folders below $root/src.
exec 9>"$root/.build.lock"
flock 9

# The folder `go mod download` unpacked a module into.
module_dir() {
  go mod download -json "$1" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d.get("Dir") or sys.exit(d.get("Error","no Dir")))'
}

build_etcd() {
  local out=$bin/etcd-$ETCD_VERSION
  if [[ ! -x $out ]]; then
    step "building etcd $ETCD_VERSION (first run: ~4 CPU-minutes)"
    # `go install` refuses the module's replace directives; a scratch module that records
    # etcd as a tool dependency builds it.
    local work=$root/src/etcd-$ETCD_VERSION
    rm -rf "$work" && mkdir -p "$work"
    (cd "$work" && go mod init ragmesh.local/etcd >/dev/null 2>&1 &&
      go get -tool "go.etcd.io/etcd/server/v3@$ETCD_VERSION" &&
      nice -n 10 go build -o "$out.tmp" go.etcd.io/etcd/server/v3)
    mv "$out.tmp" "$out"
  fi
  ln -sfn "etcd-$ETCD_VERSION" "$bin/etcd"
}

build_kube_apiserver() {
  local out=$bin/kube-apiserver-$K8S_VERSION
  if [[ ! -x $out ]]; then
    step "building kube-apiserver $K8S_VERSION (first run: ~19 CPU-minutes, ~3 GB memory)"
    local src work staging minor
    src=$(module_dir "k8s.io/kubernetes@$K8S_VERSION")
    work=$root/src/kubernetes-$K8S_VERSION
    rm -rf "$work" && mkdir -p "$(dirname "$work")"
    cp -r "$src" "$work" && chmod -R u+w "$work"
    # The module zip has no staging/ tree: the k8s.io/* libraries come from their own
    # published modules at the matching v0 version instead of the workspace's replaces.
    staging=v0.${K8S_VERSION#v1.}
    rm -rf "$work/go.work" "$work/go.work.sum" "$work/vendor"
    sed -i -E "s#^([[:space:]]*(require[[:space:]]+)?k8s\.io/[^[:space:]]+) v0\.0\.0\$#\1 $staging#" "$work/go.mod"
    sed -i '/^replace (/,/^)/d' "$work/go.mod"
    minor=${K8S_VERSION#v1.}
    minor=${minor%%.*}
    local ld=""
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ld+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    done
    (cd "$work" && nice -n 10 go build -mod=mod -ldflags "$ld" -o "$out.tmp" ./cmd/kube-apiserver)
    mv "$out.tmp" "$out"
    rm -rf "$work"
  fi
  ln -sfn "kube-apiserver-$K8S_VERSION" "$bin/kube-apiserver"
}

build_opentofu() {
  local out=$bin/tofu-$OPENTOFU_VERSION
  if [[ ! -x $out ]]; then
    step "building OpenTofu $OPENTOFU_VERSION (first run: ~4 CPU-minutes)"
    # Like kube-apiserver: the module's replace directives rule out `go install`, but a
    # build inside a copy of the module honours them.
    local src work
    src=$(module_dir "github.com/opentofu/opentofu@$OPENTOFU_VERSION")
    work=$root/src/opentofu-$OPENTOFU_VERSION
    rm -rf "$work" && mkdir -p "$(dirname "$work")"
    cp -r "$src" "$work" && chmod -R u+w "$work"
    (cd "$work" && nice -n 10 go build -o "$out.tmp" ./cmd/tofu)
    mv "$out.tmp" "$out"
    rm -rf "$work"
  fi
  ln -sfn "tofu-$OPENTOFU_VERSION" "$bin/tofu"
}

# CRDs of the operators the manifests use, from the YAML their Go modules ship.
fetch_crds() {
  local dest=$root/crds/set-$KUBERAY_VERSION-$KARPENTER_VERSION-$KARPENTER_AWS_VERSION-$EXTERNAL_SECRETS_VERSION-$PROMETHEUS_OPERATOR_VERSION
  if [[ ! -f $dest/.complete ]]; then
    step "fetching CRDs (KubeRay, Karpenter, EC2NodeClass, External Secrets, Prometheus Operator)"
    rm -rf "$dest" && mkdir -p "$dest"
    local dir
    dir=$(module_dir "github.com/ray-project/kuberay/ray-operator@$KUBERAY_VERSION")
    cp "$dir"/config/crd/bases/ray.io_{rayclusters,rayjobs,rayservices}.yaml "$dest/"
    dir=$(GOTOOLCHAIN=$KARPENTER_GOTOOLCHAIN module_dir "sigs.k8s.io/karpenter@$KARPENTER_VERSION")
    cp "$dir"/pkg/apis/crds/karpenter.sh_{nodepools,nodeclaims}.yaml "$dest/"
    dir=$(GOTOOLCHAIN=$KARPENTER_GOTOOLCHAIN module_dir "github.com/aws/karpenter-provider-aws@$KARPENTER_AWS_VERSION")
    cp "$dir"/pkg/apis/crds/karpenter.k8s.aws_ec2nodeclasses.yaml "$dest/"
    dir=$(module_dir "github.com/external-secrets/external-secrets@$EXTERNAL_SECRETS_VERSION")
    cp "$dir"/config/crds/bases/external-secrets.io_{externalsecrets,secretstores,clustersecretstores}.yaml "$dest/"
    dir=$(module_dir "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION")
    cp "$dir"/example/prometheus-operator-crd/monitoring.coreos.com_{servicemonitors,prometheusrules}.yaml "$dest/"
    chmod -R u+w "$dest"
    touch "$dest/.complete"
  fi
  ln -sfn "$(basename "$dest")" "$root/crds/current"
}

case "${1:-all}" in
  bins) build_etcd; build_kube_apiserver ;;
  crds) fetch_crds ;;
  tofu) build_opentofu ;;
  all) fetch_crds; build_etcd; build_kube_apiserver; build_opentofu ;;
  *) echo "usage: $0 [all|bins|crds|tofu]" >&2; exit 2 ;;
esac
