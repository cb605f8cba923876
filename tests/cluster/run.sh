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
#   tests/cluster/run.sh variants   the other manifest variants (external BGP peer, firewall only,
#                                   service proxy only), each applied with kubectl alone
#   tests/cluster/run.sh ci         what tests/run.sh runs: on one cluster, the agent as a process, the
#                                   full selection; every pod and the agent removed, nothing of it left on
#                                   any node; then the DaemonSet, the full selection again
# Environment: KRC_NODES (default 3), KRC_E2E_PROCS (default: cores), KRC_SELECTION (selection of
# every mode, default all), KRC_KEEP=1 leaves the cluster up on failure for inspection.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
export KRC_STATE=${KRC_STATE:-/var/lib/krc}
export DENO=${DENO:-$repo/tools/deno/node_modules/.bin/deno}
export PATH="$(dirname "$DENO"):$PATH"
mode=${1:-ci}
nodes=${KRC_NODES:-3}
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
  if [ "${f:-0}" -gt 0 ]; then agent_diag; fi
}
# After a failed spec: what each node's agent went through (restarts, problems it logged), so a
# failure seen once (in CI) can be read without the cluster.
agent_diag() {
  log "agent diagnostics"
  local i pod
  if $K kubectl -n kube-system get ds kube-router >/dev/null 2>&1; then
    $K kubectl -n kube-system get pods -l k8s-app=kube-router -o wide
    for pod in $($K kubectl -n kube-system get pods -l k8s-app=kube-router -o name); do
      echo "== $pod (previous container, if any)"
      $K kubectl -n kube-system logs "$pod" --previous --tail=30 2>/dev/null
      echo "== $pod: warnings and errors"
      $K kubectl -n kube-system logs "$pod" 2>/dev/null | grep -iE 'warn|error|fail|refus|timeout|restart' | tail -40
    done
  else
    for i in $(seq 1 "$nodes"); do
      echo "== agent-n$i: warnings and errors"
      grep -iE 'warn|error|fail|refus|timeout|restart' "$KRC_STATE/logs/agent-n$i.log" 2>/dev/null | tail -40
    done
  fi
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

agent_process() {
  log "kube-router run as a process on every node"
  $K agent-start
  ready && check "smoke: every node's pod reaches a ClusterIP Service" smoke &&
    judge "agent as the only network" --selection "${KRC_SELECTION:-all}" --out "$KRC_STATE.e2e-agent"
}
run_agent() { up || return; agent_process; down; }

# Takes the agent (as a process) off a cluster the way its user would: every pod gone first (the
# CNI plugin releases their addresses), then `kube-router cleanup` on each node, then the CNI
# config and plugins the static install put in place. Nothing of it may remain on any node.
agent_remove() {
  log "removing the agent (process) from every node"
  local t0=$SECONDS
  # The e2e suite deletes its namespaces without waiting for them.
  local end=$((SECONDS + 300))
  while [ -n "$($K kubectl get ns --no-headers -o custom-columns=N:.metadata.name |
    grep -vxE 'default|kube-system|kube-public|kube-node-lease')" ] && [ $SECONDS -lt $end ]; do sleep 2; done
  $K kubectl -n kube-system delete -f "$here/coredns.yaml" --wait=true >/dev/null 2>&1
  end=$((SECONDS + 120))
  while [ -n "$($K kubectl get pods -A --no-headers 2>/dev/null)" ] && [ $SECONDS -lt $end ]; do sleep 2; done
  check "every pod gone before the agent leaves" test -z "$($K kubectl get pods -A --no-headers 2>/dev/null)"
  $K agent-stop
  $K agent-cleanup
  . "$KRC_STATE/env"
  local i
  for i in $(seq 1 "$nodes"); do
    rm -rf "$KRC_STATE/nodes/n$i/etc-cni/"* "$KRC_STATE/nodes/n$i/opt-cni/"*
  done
  local left; left=$(agent_leftovers; node_net_leftovers)
  [ -n "$left" ] && echo "$left"
  check "nothing of the agent left on any node ($((SECONDS - t0)) s)" test -z "$left"
  # (A kube-bridge left by cleanup would shadow the next network's pod routes: see run_variants.)
  for i in $(seq 1 "$nodes"); do ip -n "${ID}n$i" link del kube-bridge 2>/dev/null; done
}
# What a node network leaves besides the agent's own objects: links other than lo and eth0
# (bridge, veths, tunnels), routes beyond the node's own subnet and default, IPAM leases.
node_net_leftovers() {
  . "$KRC_STATE/env"
  local i; for i in $(seq 1 "$nodes"); do
    ip -n "${ID}n$i" -o link show | awk -F': ' '{print $2}' | grep -vxE 'lo|eth0@.*' | sed "s/^/n$i link: /"
    ip -n "${ID}n$i" route show | grep -vE "^default via $NET_CP |^10\.199\.0\.0/24 " | sed "s/^/n$i route: /"
    find "$KRC_STATE/nodes/n$i/cni-state" -name '10.244.*' 2>/dev/null | sed "s/^/n$i lease: /"
  done
}
NET_CP=10.199.0.1
# The baseline: upstream kube-proxy + static routes + the bridge plugin; kube-proxy enforces no
# NetworkPolicy, so upstream kube-router v2.1.0's firewall (only) runs beside it for the Netpol specs
# (KRC_BASELINE_FW=0: without it).
run_baseline() {
  up || return
  log "baseline: upstream kube-proxy + static routes + bridge plugin (+ upstream kube-router v2.1.0 firewall)"
  $K static-net && $K kube-proxy-start
  [ "${KRC_BASELINE_FW:-1}" = 1 ] && $K upstream-fw-start
  ready && judge "baseline (kube-proxy)" --selection "${KRC_SELECTION:-all}" --out "$KRC_STATE.e2e-baseline"
  down
}
# The agent as a DaemonSet: kube-router's ServiceAccount gets a token, which each node holds in
# its node-local kubeconfig (/var/lib/kube-router/kubeconfig, the manifests' hostPath).
run_daemonset() { KRC_CNI_BIN=0 up || return; agent_daemonset; down; }
agent_daemonset() {
  log "DaemonSet from manifests/ (kubectl apply)"
  ds_kubeconfig
  # This kernel has no IPVS: the one change to the shipped manifest.
  sed 's/--service-proxy-mode=ipvs/--service-proxy-mode=nftables/' "$repo/manifests/daemonset.yaml" |
    $K kubectl apply -f - >/dev/null
  check "DaemonSet rolled out on every node" $K kubectl -n kube-system rollout status ds/kube-router --timeout=180s
  ready && check "smoke: every node's pod reaches a ClusterIP Service" smoke &&
    judge "agent as a DaemonSet" --selection "${KRC_SELECTION:-all}" --out "$KRC_STATE.e2e-daemonset"
  # A controller that never syncs turns /healthz red and kubelet restarts the agent: every restart
  # is a window in which nothing is programmed, so the run counts only with none.
  local restarts
  restarts=$($K kubectl -n kube-system get pods -l k8s-app=kube-router \
    -o jsonpath='{range .items[*]}{.metadata.name}={.status.containerStatuses[0].restartCount} {end}')
  echo "agent restarts: $restarts"
  check "no agent restarted (liveness /healthz held through the run)" \
    test -z "$(echo "$restarts" | tr ' ' '\n' | grep -v '=0$' | grep .)"
}
# RBAC as shipped; kube-router's ServiceAccount gets a token, which each node holds in its
# node-local kubeconfig (/var/lib/kube-router/kubeconfig, the manifests' hostPath).
ds_kubeconfig() {
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
}
# The manifest variants other than daemonset.yaml (the DaemonSet mode runs that one), each applied
# with kubectl alone on one cluster, each removed (kubectl delete, `kube-router cleanup`) before
# the next, with a check of what it is for:
#   router + firewall + external peer   kube-proxy for Services; BIRD (kcluster.sh peer-start)
#                                       learns every node's pod CIDR and the cluster IPs
#   firewall only                       bridge plugin + static routes + kube-proxy; a default-deny
#                                       policy blocks a pod, deleting it lets the pod through again
#   service proxy only                  bridge plugin + static routes, `kube-proxy --cleanup`; pods on
#                                       every node reach a ClusterIP Service
# DSR (daemonset-dsr.yaml) is not run: it needs IPVS, which this kernel lacks (docs/testing.md).
variant_apply() { # variant_apply FILE [SED-EXPR]
  sed -e 's/--service-proxy-mode=ipvs/--service-proxy-mode=nftables/' ${2:+-e "$2"} "$repo/manifests/$1" |
    $K kubectl apply -f - >/dev/null
  check "$1: rolled out on every node" $K kubectl -n kube-system rollout status ds/kube-router --timeout=180s
}
variant_remove() { # variant_remove FILE [CLEANUP-FLAGS]
  local f=$1; shift
  $K kubectl delete -f "$repo/manifests/$f" --wait=true >/dev/null 2>&1
  local end=$((SECONDS + 120))
  while [ -n "$($K kubectl -n kube-system get pods -l k8s-app=kube-router --no-headers 2>/dev/null)" ] &&
    [ $SECONDS -lt $end ]; do sleep 2; done
  $K agent-cleanup "$@"
}
# A client pod on node 1 reaches a server pod on node N (by pod IP); prints nothing, 0 on success.
pod_reach() {
  local ip; ip=$($K kubectl get pod vsrv -o jsonpath='{.status.podIP}')
  $K kubectl exec vcli -- curl -s -m 3 "http://$ip:8080/hostname" >/dev/null
}
variant_pods() {
  $K kubectl run vsrv --image=registry.k8s.io/e2e-test-images/agnhost:2.53 --labels=app=vsrv \
    --overrides="{\"spec\":{\"nodeName\":\"n$nodes\"}}" -- netexec --http-port=8080 >/dev/null
  $K kubectl run vcli --image=registry.k8s.io/e2e-test-images/agnhost:2.53 \
    --overrides='{"spec":{"nodeName":"n1"}}' -- pause >/dev/null
  $K kubectl wait --for=condition=Ready pod/vsrv pod/vcli --timeout=120s >/dev/null
}
bird_has() { # bird_has PREFIX: BIRD's table holds PREFIX, learned over BGP
  $K birdc show route "$1" | grep -q "BGP\|bgp\|\[n[0-9]"
}
run_variants() {
  KRC_CNI_BIN=1 up || return
  ds_kubeconfig
  log "variant: router + firewall, advertising to an external peer (BIRD), kube-proxy for Services"
  $K peer-start
  $K kube-proxy-start
  variant_apply daemonset-router-firewall-peer.yaml "s/--peer-router-ips=192.0.2.1/--peer-router-ips=10.199.0.2/"
  $K wait-ready 180
  local i cidr ok end
  for i in $(seq 1 "$nodes"); do
    cidr=$($K kubectl get node "n$i" -o jsonpath='{.spec.podCIDR}')
    end=$((SECONDS + 90)); ok=1
    until bird_has "$cidr"; do [ $SECONDS -ge $end ] && { ok=0; break; }; sleep 2; done
    check "BIRD learned n$i's pod CIDR $cidr (via $($K birdc show route "$cidr" | grep -oE 'via [0-9.]+' | head -1))" test "$ok" = 1
  done
  check "BIRD learned the kubernetes Service's cluster IP 10.96.0.1/32" bird_has 10.96.0.1/32
  $K birdc show route
  variant_pods
  check "router+firewall: a pod on n1 reaches a pod on n$nodes over the iBGP routes" pod_reach
  $K kubectl delete pod vsrv vcli --wait=true >/dev/null
  variant_remove daemonset-router-firewall-peer.yaml
  $K peer-stop
  . "$KRC_STATE/env"
  for i in $(seq 1 "$nodes"); do rm -f "$KRC_STATE/nodes/n$i/etc-cni/"*; done
  left=$(agent_leftovers; node_net_leftovers)
  [ -n "$left" ] && echo "$left"
  check "router+firewall removed: nothing of it left on any node" test -z "$left"
  # A kube-bridge the bridge plugin made (a pod started before the agent) survives `kube-router
  # cleanup` with the plugin's gateway address, and its route for the node's pod CIDR would shadow
  # the next network's (docs/testing.md): removed here so the next variant is judged on its own.
  for i in $(seq 1 "$nodes"); do ip -n "${ID}n$i" link del kube-bridge 2>/dev/null; done

  log "variant: firewall only (bridge plugin + static routes + kube-proxy)"
  $K static-net
  variant_apply daemonset-firewall.yaml
  $K wait-ready 120
  variant_pods
  check "firewall: reachable with no policy" pod_reach
  $K kubectl apply -f - >/dev/null <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: deny-vsrv }
spec: { podSelector: { matchLabels: { app: vsrv } }, policyTypes: [Ingress] }
EOF
  end=$((SECONDS + 30)); ok=0
  while [ $SECONDS -lt $end ]; do pod_reach || { ok=1; break; }; sleep 1; done
  check "firewall: a default-deny ingress policy blocks the pod" test "$ok" = 1
  $K kubectl delete networkpolicy deny-vsrv >/dev/null
  end=$((SECONDS + 30)); ok=0
  while [ $SECONDS -lt $end ]; do pod_reach && { ok=1; break; }; sleep 1; done
  check "firewall: deleting the policy lets it through again" test "$ok" = 1
  variant_remove daemonset-firewall.yaml
  left=$(agent_leftovers)
  [ -n "$left" ] && echo "$left"
  check "firewall removed: nothing of it left on any node" test -z "$left"

  log "variant: service proxy only (kube-proxy --cleanup first; bridge plugin + static routes)"
  $K kube-proxy-stop; $K kube-proxy-cleanup
  variant_apply daemonset-service-proxy.yaml
  check "service proxy: every node's pod reaches a ClusterIP Service" smoke
  $K kubectl delete pod vsrv vcli --wait=true >/dev/null
  variant_remove daemonset-service-proxy.yaml
  left=$(agent_leftovers)
  [ -n "$left" ] && echo "$left"
  check "service proxy removed: nothing of it left on any node" test -z "$left"
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
  variants) run_variants ;;
  ci) if up; then agent_process; agent_remove; agent_daemonset; down; fi ;;
  *) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
if [ "$skipped" -gt 0 ]; then echo "$passed passed, $failed failed, $skipped skipped"; else echo "$passed passed, $failed failed"; fi
[ "$failed" -eq 0 ]
