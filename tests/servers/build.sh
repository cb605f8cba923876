#!/usr/bin/env bash
# Builds the real kube-apiserver and etcd used by the integration tests (and libcni's cnitool), from the Go module
# proxy, into a cache directory so a second run is instant. Prints the bin directory.
#
# kube-apiserver lives in k8s.io/kubernetes, whose go.mod points its k8s.io/* staging modules
# at ./staging/...; outside that tree each must be replaced by the published k8s.io/X of the
# same release (v1.A.B -> v0.A.B). We derive that list from the module's own go.mod.
set -euo pipefail
K8S_VERSION=${K8S_VERSION:-v1.32.13}
ETCD_VERSION=${ETCD_VERSION:-v3.5.35}
CACHE=${KR_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kube-router-deno}
BIN="$CACHE/bin-$K8S_VERSION-$ETCD_VERSION"
mkdir -p "$BIN"
export GOFLAGS=-buildvcs=false CGO_ENABLED=0
# The machine's Go lives in /usr/local/go; a non-login shell may not have it on PATH.
command -v go >/dev/null || export PATH="$PATH:/usr/local/go/bin"
command -v go >/dev/null || { echo "build.sh: no Go toolchain found (need Go >= 1.23 for Kubernetes 1.32)" >&2; exit 1; }

if [ ! -x "$BIN/etcd" ]; then
  echo "building etcd $ETCD_VERSION" >&2
  # etcd's server module carries replace directives, so `go install mod@v` refuses it; a
  # three-line main of our own that calls etcdmain builds the same server.
  mod="$CACHE/etcd-mod-$ETCD_VERSION"
  rm -rf "$mod"; mkdir -p "$mod"; cd "$mod"
  go mod init kube-router-deno/etcd >/dev/null 2>&1
  printf 'package main\nimport (\n"os"\n"go.etcd.io/etcd/server/v3/etcdmain"\n)\nfunc main() { etcdmain.Main(os.Args) }\n' > main.go
  go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >&2
  go mod tidy >&2
  go build -trimpath -ldflags=-s -o "$BIN/etcd" .
fi

if [ ! -x "$BIN/kube-apiserver" ]; then
  echo "building kube-apiserver $K8S_VERSION" >&2
  mod="$CACHE/apiserver-mod-$K8S_VERSION"
  rm -rf "$mod"; mkdir -p "$mod"; cd "$mod"
  go mod init kube-router-deno/testservers >/dev/null 2>&1
  gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  staging_version="v0.${K8S_VERSION#v1.}"
  for m in $(grep -oE '^\s*k8s\.io/[a-z0-9-]+ => \./staging/' "$gomod" | awk '{print $1}' | sort -u); do
    go mod edit -replace "$m=$m@$staging_version"
  done
  printf 'package main\nimport _ "k8s.io/kubernetes/cmd/kube-apiserver/app"\nfunc main() {}\n' > tools.go
  go get "k8s.io/kubernetes@$K8S_VERSION" >&2
  go mod tidy >&2
  # Stamp the release into the binary (a plain `go build` reports v0.0.0-master, which makes
  # kubectl warn about version skew and clients that parse the server version misjudge it).
  v=k8s.io/component-base/version
  minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
  go build -trimpath -ldflags="-s -X $v.gitVersion=$K8S_VERSION -X $v.gitMajor=1 -X $v.gitMinor=$minor \
    -X $v.gitTreeState=clean -X $v.buildDate=1970-01-01T00:00:00Z" \
    -o "$BIN/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
fi
# cnitool: libcni's own command-line front end, so tests load the agent's CNI files exactly as
# containerd and CRI-O do (the plugins themselves come from Debian's containernetworking-plugins).
CNI_VERSION=${CNI_VERSION:-v1.1.2}
if [ ! -x "$BIN/cnitool-$CNI_VERSION" ]; then
  echo "building cnitool $CNI_VERSION" >&2
  GOBIN="$BIN/cnitool-build" go install "github.com/containernetworking/cni/cnitool@$CNI_VERSION" >&2
  mv "$BIN/cnitool-build/cnitool" "$BIN/cnitool-$CNI_VERSION" && rmdir "$BIN/cnitool-build"
fi
ln -sf "cnitool-$CNI_VERSION" "$BIN/cnitool"
echo "$BIN"
