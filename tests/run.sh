#!/usr/bin/env bash
# The whole test suite on a fresh machine, as root. Installs what it needs (Debian packages,
# Deno from npm, kube-apiserver + etcd built from the Go module proxy and cached), starts one
# shared API server, runs every suite, and ends with one line: "N passed, N failed[, N skipped]".
#
#   sudo bash tests/run.sh            # everything
#   sudo bash tests/run.sh unit       # only the unit tests (no root needed for these)
#   sudo bash tests/run.sh cluster    # only the real-cluster suite (tests/cluster/run.sh ci)
set -uo pipefail
cd "$(dirname "$0")/.."
export NO_COLOR=1
what=${1:-all}

log() { printf '\n=== %s\n' "$*"; }

if [ "$(id -u)" != 0 ] && [ "$what" != unit ]; then
  echo "tests/run.sh: the integration and end-to-end suites create network namespaces and need root" >&2
  exit 2
fi

# --- packages the suites drive (the kernel tools, the BGP daemons, probes; qemu, busybox and Debian's
#     stock kernel for the VM suites: tests/e2e/*_vm_test.ts, see tests/fixtures/vm.ts)
PKGS="iproute2 iptables ipset ipvsadm nftables conntrack bird2 frr gobgpd etcd-server etcd-client
      tcpdump socat iputils-ping netcat-openbsd openssl util-linux jq curl gawk
      containerd runc containernetworking-plugins busybox-static bash file qemu-system-x86 linux-image-amd64"
if [ "$what" != unit ]; then
  missing=$(for p in $PKGS; do dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"; done)
  if [ -n "$missing" ]; then
    log "installing Debian packages: $(echo $missing)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null ||
      { echo "tests/run.sh: apt-get install failed" >&2; exit 1; }
  fi
fi

# --- Deno, pinned in package.json
# (The pin lives in tools/deno/, not at the top: a package.json beside deno.json that depends on
# the `deno` npm package makes `deno task` run that package's shim instead of itself.)
if [ ! -x tools/deno/node_modules/.bin/deno ]; then
  log "installing Deno from npm"
  npm ci --prefix tools/deno --no-audit --no-fund >/dev/null || { echo "tests/run.sh: npm ci failed" >&2; exit 1; }
fi
DENO=$PWD/tools/deno/node_modules/.bin/deno
export DENO PATH="$PWD/tools/deno/node_modules/.bin:$PATH"

# --- the real API server
if [ "$what" != unit ]; then
  log "building kube-apiserver and etcd (cached after the first run)"
  bindir=$(bash tests/servers/build.sh) || { echo "tests/run.sh: building the test servers failed" >&2; exit 1; }
  export KR_TEST_BIN="$bindir"
fi

passed=0 failed=0 skipped=0
results=$(mktemp)
trap 'rm -f "$results"' EXIT

# Runs one suite, echoing its output, and adds its counts from deno's summary line.
suite() {
  local name=$1; shift
  log "$name"
  local out; out=$(mktemp)
  "$@" 2>&1 | tee "$out"
  local status=${PIPESTATUS[0]}
  local line; line=$(grep -E '^(ok|FAILED) \| [0-9]+ passed' "$out" | tail -n 1)
  if [ -z "$line" ]; then
    echo "suite '$name' ended without a summary (exit $status): counted as 1 failed"
    failed=$((failed + 1))
  else
    local p f i
    p=$(sed -E 's/.*\| ([0-9]+) passed.*/\1/' <<<"$line")
    f=$(sed -E 's/.*\| ([0-9]+) failed.*/\1/' <<<"$line")
    i=$(grep -oE '[0-9]+ ignored' <<<"$line" | grep -oE '[0-9]+' || echo 0)
    passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + ${i:-0}))
    [ "$status" -ne 0 ] && [ "$f" -eq 0 ] && { echo "suite '$name' exited $status"; failed=$((failed + 1)); }
  fi
  echo "$name: $line" >>"$results"
  rm -f "$out"
}

# Static checks count as one test each: formatting, lint, types.
check() {
  local name=$1; shift
  log "$name"
  if "$@"; then passed=$((passed + 1)); echo "$name: ok" >>"$results"
  else failed=$((failed + 1)); echo "$name: FAILED" >>"$results"; fi
}

# The real-cluster suite prints its own "N passed, N failed[, N skipped]".
cluster_suite() {
  log "real cluster: kubelet nodes, the agent as their only network, upstream's e2e (tests/cluster/run.sh ci)"
  if [ "${KR_SKIP_CLUSTER:-0}" = 1 ]; then
    echo "skipped: KR_SKIP_CLUSTER=1"; skipped=$((skipped + 1)); echo "real cluster: skipped (KR_SKIP_CLUSTER=1)" >>"$results"; return
  fi
  if ! command -v go >/dev/null && [ ! -x /usr/local/go/bin/go ]; then
    echo "skipped: no Go toolchain to build kubelet and e2e.test from the Go module proxy"; skipped=$((skipped + 1))
    echo "real cluster: skipped (no Go toolchain)" >>"$results"; return
  fi
  local out; out=$(mktemp)
  bash tests/cluster/run.sh ci 2>&1 | tee "$out"
  local line; line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -1)
  rm -f "$out"
  if [ -z "$line" ]; then failed=$((failed + 1)); echo "real cluster: no summary" >>"$results"; return; fi
  local p f s
  read -r p _ f _ s _ <<<"${line//,/}"
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + ${s:-0}))
  echo "real cluster: $line" >>"$results"
}
if [ "$what" = cluster ]; then
  passed=0 failed=0 skipped=0
  cluster_suite
  log "summary"; cat "$results"
  echo "$passed passed, $failed failed, $skipped skipped"
  [ "$failed" -eq 0 ]; exit
fi

check "deno fmt --check" "$DENO" fmt --check
check "deno lint" "$DENO" lint
check "deno check" "$DENO" task check

suite "unit tests (no root)" "$DENO" test -A --parallel --ignore=tests/,bench/

if [ "$what" != unit ]; then
  before_ns=$(ip netns list 2>/dev/null | awk '{print $1}' | sort)
  # Integration and end-to-end suites share one API server; they run one file at a time
  # because timing tests (hold timers, BFD detection) must not compete for the 2 cores.
  suite "integration and end-to-end (real kernel in namespaces, real API server, real BGP daemons)" \
    bash tests/servers/with-apiserver.sh "$DENO" test -A tests/
  # Nothing a test created may survive it.
  leftover=$(comm -13 <(echo "$before_ns") <(ip netns list 2>/dev/null | awk '{print $1}' | sort) | tr '\n' ' ')
  if [ -n "${leftover// /}" ]; then
    echo "network namespaces left behind by tests: $leftover"
    failed=$((failed + 1))
  fi
fi

[ "$what" = all ] && cluster_suite

log "summary"
cat "$results"
if [ "$skipped" -gt 0 ]; then
  echo "$passed passed, $failed failed, $skipped skipped"
else
  echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
