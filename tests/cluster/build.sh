#!/usr/bin/env bash
# Builds what a real cluster of kubelet nodes needs beyond kube-apiserver + etcd (see
# tests/servers/build.sh): kubelet, kube-controller-manager, kube-scheduler, kube-proxy (the
# baseline), upstream's e2e.test and agnhost, all from the Go module proxy at the same
# Kubernetes release, into a cache directory so a second run is instant. Prints the bin directory.
#
# Same technique as tests/servers/build.sh: a module of our own that requires k8s.io/kubernetes
# and replaces every staging module with the published k8s.io/X of the same release.
set -euo pipefail
K8S_VERSION=${K8S_VERSION:-v1.32.13}
CACHE=${KR_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kube-router-deno}
BIN="$CACHE/cluster-bin-$K8S_VERSION"
mkdir -p "$BIN"
export GOFLAGS="-buildvcs=false" CGO_ENABLED=0
command -v go >/dev/null || export PATH="$PATH:/usr/local/go/bin"
command -v go >/dev/null || { echo "cluster/build.sh: no Go toolchain found (need Go >= 1.23)" >&2; exit 1; }
# Two cores are shared with other work: at most two compile jobs.
par=${KR_BUILD_PARALLEL:-2}

want="kubelet kube-controller-manager kube-scheduler kube-proxy e2e.test agnhost pause ginkgo coredns regression-issue-74839"
missing=""
for b in $want; do [ -x "$BIN/$b" ] || missing="$missing $b"; done
[ -z "$missing" ] && { echo "$BIN"; exit 0; }

mod="$CACHE/cluster-mod-$K8S_VERSION"
if [ ! -f "$mod/.ready" ]; then
  echo "preparing the build module for $K8S_VERSION" >&2
  rm -rf "$mod"; mkdir -p "$mod"; cd "$mod"
  go mod init kube-router-deno/cluster >/dev/null 2>&1
  gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  staging_version="v0.${K8S_VERSION#v1.}"
  for m in $(grep -oE '^\s*k8s\.io/[a-z0-9-]+ => \./staging/' "$gomod" | awk '{print $1}' | sort -u); do
    v=$staging_version
    # The proxy refuses these two zips at the release's own version (403 "not available"); the
    # nearest versions it serves are API-identical for what the binaries use.
    case "$m" in
      k8s.io/endpointslice) [ "$v" = v0.32.13 ] && v=v0.32.12 ;;
      k8s.io/sample-apiserver) case "$v" in v0.32.[6-9] | v0.32.1[0-9]) v=v0.32.5 ;; esac ;;
    esac
    go mod edit -replace "$m=$m@$v"
  done
  cat > tools.go <<'GO'
package main

import (
	_ "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	_ "k8s.io/kubernetes/cmd/kube-proxy/app"
	_ "k8s.io/kubernetes/cmd/kube-scheduler/app"
	_ "k8s.io/kubernetes/cmd/kubelet/app"
	_ "k8s.io/kubernetes/test/e2e"
	_ "k8s.io/kubernetes/test/images/agnhost/app"
)

func main() {}
GO
  go get "k8s.io/kubernetes@$K8S_VERSION" >&2
  # agnhost's package layout: fall back to importing its main package's directory if app/ is absent.
  if ! go list k8s.io/kubernetes/test/images/agnhost/app >/dev/null 2>&1; then
    sed -i '/agnhost\/app/d' tools.go
  fi
  go mod tidy >&2
  touch .ready
fi
cd "$mod"
v=k8s.io/component-base/version
minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
ldflags="-s -X $v.gitVersion=$K8S_VERSION -X $v.gitMajor=1 -X $v.gitMinor=$minor -X $v.gitTreeState=clean -X $v.buildDate=1970-01-01T00:00:00Z"
for b in $missing; do
  echo "building $b $K8S_VERSION" >&2
  t0=$(date +%s)
  case "$b" in
    e2e.test)
      # vet is off: it adds minutes and checks upstream's code, not ours. -mod=mod lets the test
      # package's own imports (not in tools.go's closure) be resolved.
      go test -c -vet=off -mod=mod -p "$par" -trimpath -ldflags="$ldflags" -o "$BIN/e2e.test.tmp" k8s.io/kubernetes/test/e2e >&2
      mv "$BIN/e2e.test.tmp" "$BIN/e2e.test" ;;
    regression-issue-74839)
      # The "boom server" of the Conntrack spec on invalid conntrack state (its own image upstream).
      go build -mod=mod -p "$par" -trimpath -ldflags=-s -o "$BIN/$b" "k8s.io/kubernetes/test/images/$b" >&2 ;;
    coredns)
      # The cluster DNS the e2e specs resolve Service names with (the version kubeadm 1.32 ships).
      # Its own module (no replace directives), so `go install mod@version` builds it as released.
      (cd / && GOBIN="$BIN" GOFLAGS="$GOFLAGS" go install -p "$par" -trimpath -ldflags=-s "github.com/coredns/coredns@${COREDNS_VERSION:-v1.11.3}") >&2 ;;
    ginkgo)
      # The ginkgo CLI of the version e2e.test links: it runs the precompiled suite in parallel.
      gv=$(go list -m -f '{{.Version}}' github.com/onsi/ginkgo/v2)
      go build -mod=mod -p "$par" -trimpath -ldflags=-s -o "$BIN/ginkgo" "github.com/onsi/ginkgo/v2/ginkgo@$gv" >&2 2>/dev/null ||
        GOBIN="$BIN" go install "github.com/onsi/ginkgo/v2/ginkgo@$gv" >&2 ;;
    pause)
      # The sandbox image's one process: sleeps until SIGTERM/SIGINT, reaps nothing else.
      mkdir -p pause
      printf 'package main\nimport (\n"os"\n"os/signal"\n"syscall"\n)\nfunc main() {\nc := make(chan os.Signal, 1)\nsignal.Notify(c, syscall.SIGTERM, syscall.SIGINT)\n<-c\n}\n' > pause/main.go
      go build -p "$par" -trimpath -ldflags=-s -o "$BIN/pause" ./pause >&2 ;;
    agnhost)
      go build -mod=mod -p "$par" -trimpath -ldflags=-s -o "$BIN/agnhost.tmp" k8s.io/kubernetes/test/images/agnhost >&2
      mv "$BIN/agnhost.tmp" "$BIN/agnhost" ;;
    *)
      go build -mod=mod -p "$par" -trimpath -ldflags="$ldflags" -o "$BIN/$b.tmp" "k8s.io/kubernetes/cmd/$b" >&2
      mv "$BIN/$b.tmp" "$BIN/$b" ;;
  esac
  echo "built $b in $(( $(date +%s) - t0 )) s" >&2
done
echo "$BIN"
