#!/usr/bin/env bash
# The real-cluster suite: builds (cached) the Kubernetes binaries and images, starts a cluster of
# kubelet nodes (tests/cluster/kcluster.sh), installs a network on it, judges it with upstream's
# e2e selection (tests/cluster/e2e.sh, one line per spec), tears everything down and checks that
# nothing is left. Ends with "N passed, N failed[, N skipped]".
#
#   tests/cluster/run.sh agent      `kube-router run` as a process on every node (static-binary install)
#   tests/cluster/run.sh daemonset  the DaemonSet from manifests/ applied with kubectl
#   tests/cluster/run.sh baseline   upstream kube-proxy + static routes + the bridge plugin
#   tests/cluster/run.sh walk       kube-proxy -> `kube-proxy --cleanup` -> agent as service proxy only
#                                   -> `kube-router cleanup` -> kube-proxy again (Services each time)
#   tests/cluster/run.sh ci         what tests/run.sh runs (agent: full selection; daemonset: Services)
# Environment: KRC_NODES (default 2: a 2-core machine; 3 works, slower), KRC_E2E_PROCS (default: cores), KRC_SELECTION (agent/baseline
# selection, default all), KRC_KEEP=1 leaves the cluster up on failure for inspection.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
export KRC_STATE=${KRC_STATE:-/var/lib/krc}
export DENO=${DENO:-$repo/tools/deno/node_modules/.bin/deno}
export PATH="$(dirname "$DENO"):$PATH"
mode=${1:-ci}
nodes=${KRC_NODES:-2}
K="bash $here/kcluster.sh"
passed=0 failed=0 skipped=0
log() { printf '\n--- %s (%s)\n' "$*" "$(date -u +%T)"; }

# Counts one e2e.sh run's summary line into the totals.
judge() {
  local label=$1; shift
  log "e2e: $label"
  local out; out=$(mktemp)
  bash "$here/e2e.sh" "$@" 2>&1 | tee "$out"
  local line; line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -1)
  rm -f "$out"
  if [ -z "$line" ]; then failed=$((failed + 1)); return; fi
  local p f s
  read -r p _ f _ s _ <<<"${line//,/}"
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + ${s:-0}))
}
check() { # check DESCRIPTION CMD...: one test
  local what=$1; shift
  if "$@"; then passed=$((passed + 1)); echo "PASS  $what"; else failed=$((failed + 1)); echo "FAIL  $what"; fi
}
up() {
  log "cluster up ($nodes nodes)"
  local t0=$SECONDS
  $K up "$nodes" >/dev/null || { echo "FAIL  cluster start"; failed=$((failed + 1)); return 1; }
  echo "control plane and $nodes kubelets registered in $((SECONDS - t0)) s"
}
ready() {
  local t0=$SECONDS
  if $K wait-ready "${1:-180}"; then
    echo "PASS  every node Ready ($((SECONDS - t0)) s after the network started)"; passed=$((passed + 1))
  else
    echo "FAIL  nodes not Ready"; failed=$((failed + 1)); $K kubectl get nodes -o wide; return 1
  fi
  # The cluster DNS runs as pods, so it needs the network just installed.
  check "CoreDNS serves (kube-dns 10.96.0.10)" $K dns 180
}
down() {
  if [ "$failed" -gt 0 ] && [ "${KRC_KEEP:-0}" = 1 ]; then echo "KRC_KEEP=1: cluster left at $KRC_STATE"; return; fi
  log "cluster down"
  local id; id=$(sed -n 's/^ID=//p' "$KRC_STATE/env" 2>/dev/null)
  $K down
  check "teardown leaves nothing (namespaces, mounts, cgroups, processes, routes)" \
    test -z "$($K leftovers "${id:-krc}")"
}
# Pods on every node reach each other and a Service (a quick smoke before the long e2e).
smoke() {
  $K kubectl create deployment smoke --image=registry.k8s.io/e2e-test-images/agnhost:2.53 --replicas="$nodes" \
    -- /agnhost netexec --http-port=8080 >/dev/null &&
    $K kubectl rollout status deployment/smoke --timeout=120s >/dev/null &&
    $K kubectl expose deployment smoke --port=80 --target-port=8080 >/dev/null
  local ok=1 ip pod
  ip=$($K kubectl get svc smoke -o jsonpath='{.spec.clusterIP}')
  for pod in $($K kubectl get pods -l app=smoke -o name); do
    $K kubectl exec "$pod" -- curl -s -m 5 "http://$ip/hostname" >/dev/null || ok=0
  done
  $K kubectl delete deployment smoke >/dev/null; $K kubectl delete svc smoke >/dev/null
  [ "$ok" = 1 ]
}

run_agent() {
  up || return
  log "kube-router run as a process on every node"
  $K agent-start
  ready && check "smoke: every node's pod reaches a ClusterIP Service" smoke &&
    judge "agent as the only network" --selection "${KRC_SELECTION:-all}" --out "$KRC_STATE.e2e-agent"
  down
}
run_baseline() {
  up || return
  log "baseline: upstream kube-proxy + static routes + bridge plugin"
  $K static-net && $K kube-proxy-start
  ready && judge "baseline (kube-proxy)" --selection "${KRC_SELECTION:-all}" --out "$KRC_STATE.e2e-baseline"
  down
}
# The agent as a DaemonSet: kube-router's ServiceAccount gets a token, which each node holds in
# its node-local kubeconfig (/var/lib/kube-router/kubeconfig, the manifests' hostPath).
run_daemonset() {
  KRC_CNI_BIN=0 up || return
  log "DaemonSet from manifests/ (kubectl apply)"
  . "$KRC_STATE/env"
  $K kubectl apply -f "$repo/manifests/rbac.yaml" >/dev/null
  local token i
  token=$($K kubectl -n kube-system create token kube-router --duration=24h)
  for i in $(seq 1 "$nodes"); do
    cat >"$KRC_STATE/nodes/n$i/kube-router/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters: [{name: krc, cluster: {server: "https://10.199.0.1:6443", certificate-authority-data: $(base64 -w0 "$KRC_STATE/pki/ca.crt")}}]
users: [{name: kube-router, user: {token: "$token"}}]
contexts: [{name: krc, context: {cluster: krc, user: kube-router}}]
current-context: krc
EOF
  done
  # This kernel has no IPVS: the one change to the shipped manifest.
  sed 's/--service-proxy-mode=ipvs/--service-proxy-mode=nftables/' "$repo/manifests/daemonset.yaml" |
    $K kubectl apply -f - >/dev/null
  check "DaemonSet rolled out on every node" $K kubectl -n kube-system rollout status ds/kube-router --timeout=180s
  ready && check "smoke: every node's pod reaches a ClusterIP Service" smoke &&
    judge "agent as a DaemonSet" --selection "${KRC_DS_SELECTION:-services}" --out "$KRC_STATE.e2e-daemonset"
  down
}
run_walk() {
  up || return
  log "walk 1/3: upstream kube-proxy"
  $K static-net && $K kube-proxy-start
  ready && judge "kube-proxy" --selection services --out "$KRC_STATE.e2e-walk1"
  log "walk 2/3: kube-proxy --cleanup, kube-router as the service proxy only"
  $K kube-proxy-stop; $K kube-proxy-cleanup
  check "nothing of kube-proxy left after --cleanup" test -z "$(kube_proxy_leftovers)"
  $K agent-start --run-service-proxy=true --run-firewall=false --run-router=false
  judge "kube-router service proxy" --selection services --out "$KRC_STATE.e2e-walk2"
  log "walk 3/3: kube-router cleanup, kube-proxy again"
  $K agent-stop; $K agent-cleanup --run-service-proxy=true --run-firewall=false --run-router=false
  check "nothing of kube-router left after cleanup" test -z "$(agent_leftovers)"
  $K kube-proxy-start
  judge "kube-proxy again" --selection services --out "$KRC_STATE.e2e-walk3"
  down
}
kube_proxy_leftovers() {
  . "$KRC_STATE/env"
  local i; for i in $(seq 1 "$nodes"); do
    # (`kube-proxy --cleanup` leaves KUBE-MARK-MASQ on purpose: kubelet has shared that chain.)
    ip netns exec "${ID}n$i" iptables-save | grep -E 'KUBE-(SERVICES|SVC|SEP|NODEPORTS|POSTROUTING|EXT|FW|XLB|SVL)' | sed "s/^/n$i: /"
    ip netns exec "${ID}n$i" nft list tables | grep -E 'kube-proxy' | sed "s/^/n$i: /"
  done
}
agent_leftovers() {
  . "$KRC_STATE/env"
  local i; for i in $(seq 1 "$nodes"); do
    ip netns exec "${ID}n$i" nft list tables | grep -iE 'kube-router|kube_router|kr_' | sed "s/^/n$i: /"
    ip netns exec "${ID}n$i" iptables-save | grep -iE 'KUBE-ROUTER' | sed "s/^/n$i: /"
    ip -n "${ID}n$i" addr show kube-dummy-if 2>/dev/null | sed "s/^/n$i: /"
  done
}

case "$mode" in
  agent) run_agent ;;
  baseline) run_baseline ;;
  daemonset) run_daemonset ;;
  walk) run_walk ;;
  ci) run_agent; run_daemonset ;;
  *) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
if [ "$skipped" -gt 0 ]; then echo "$passed passed, $failed failed, $skipped skipped"; else echo "$passed passed, $failed failed"; fi
[ "$failed" -eq 0 ]
