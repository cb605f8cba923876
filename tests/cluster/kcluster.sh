#!/usr/bin/env bash
# A real Kubernetes cluster on this machine, for upstream's e2e suite: etcd, kube-apiserver,
# kube-controller-manager (--allocate-node-cidrs), kube-scheduler, and N kubelet nodes.
#
# Layout (nothing of it lives in the host's network namespace):
#   <id>cp       the control plane's network namespace: bridge br0 10.199.0.1/24, etcd on its
#                loopback, kube-apiserver on 10.199.0.1:6443; e2e.test and kubectl run here.
#   <id>n1..nN   one network namespace per node, eth0 = 10.199.0.(10+i) on br0, default route
#                via 10.199.0.1 (which forwards nothing: pods reach other nodes only through
#                whatever network the test installs). Each node also has its own mount
#                namespace (a slave of the host's) in which the paths a node owns are bind
#                mounts of per-node directories: /etc/cni/net.d, /opt/cni/bin, /var/lib/kubelet,
#                /var/lib/containerd, /run/containerd, /run/netns, /var/log/pods,
#                /var/log/containers, /var/lib/kube-router, /etc/kubernetes, /var/lib/cni (the
#                IPAM's records: shared, the nodes would hand out each other's leases). So a DaemonSet's
#                hostPath means the node's own directory, as on a real node, and pod mounts
#                vanish with the node.
#   containerd + runc (Debian) and kubelet per node: restrict_oom_score_adj / oomScoreAdj 0
#   (root here lacks CAP_SYS_RESOURCE), cgroupfs, cgroupRoot /<id>n<i>, image GC off.
# Pod CIDRs 10.244.<i>.0/24 (controller-manager), Services 10.96.0.0/12.
#
# Usage (root):
#   kcluster.sh up [N]                 start; prints the state directory (also in $KRC_STATE)
#   kcluster.sh down                   stop everything, restore what the cluster changed
#   kcluster.sh kubectl ARGS...        kubectl as cluster admin (runs in the control plane's namespace)
#   kcluster.sh cp CMD...              run CMD in the control plane's network namespace
#   kcluster.sh node I CMD...          run CMD in node I's network + mount namespaces
#   kcluster.sh agent-start [FLAGS]    `kube-router run` as a process on every node (static-binary install)
#   kcluster.sh agent-stop             stop those processes
#   kcluster.sh agent-cleanup [FLAGS]  `kube-router cleanup` on every node
#   kcluster.sh kube-proxy-start | kube-proxy-stop | kube-proxy-cleanup   upstream's kube-proxy (iptables mode)
#   kcluster.sh static-net | static-net-remove   bridge CNI config + static pod routes (baseline)
#   kcluster.sh upstream-fw-start | upstream-fw-stop   upstream kube-router v2.1.0, firewall only (baseline)
#   kcluster.sh peer-start | peer-stop | birdc ARGS...   an external BGP router (BIRD, <id>peer, 10.199.0.2)
#   kcluster.sh wait-ready [TIMEOUT]   until every node is Ready
#   kcluster.sh dns [TIMEOUT]          deploy CoreDNS (kube-dns at 10.96.0.10) and wait until it serves
#   kcluster.sh leftovers              print anything of a cluster left on the host (empty = clean)
#   kcluster.sh timings                when each start-up phase ended (seconds since `up` began)
# Environment: KRC_STATE (default /var/lib/krc), KR_TEST_BIN (etcd, kube-apiserver),
# KRC_BIN (tests/cluster/build.sh output), KRC_IMAGES (tests/cluster/images.sh output),
# KRC_CNI_BIN=0 to leave the nodes' /opt/cni/bin empty (the DaemonSet's init container fills it).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
STATE=${KRC_STATE:-/var/lib/krc}
DENO=${DENO:-$repo/tools/deno/node_modules/.bin/deno}
NET=10.199.0
CP_IP=$NET.1
POD_CIDR=10.244.0.0/16
SVC_CIDR=10.96.0.0/12
cmd=${1:-}
shift || true

die() { echo "kcluster: $*" >&2; exit 1; }
load_state() {
  [ -f "$STATE/env" ] || die "no cluster at $STATE (run: kcluster.sh up)"
  # shellcheck disable=SC1091
  . "$STATE/env"
}
node_ip() { echo "$NET.$((10 + $1))"; }
# Runs a command inside node I's network and mount namespaces.
in_node() {
  local i=$1; shift
  nsenter --mount="$STATE/mnt/n$i" --net="/run/netns/${ID}n$i" -- "$@"
}
in_cp() { ip netns exec "${ID}cp" "$@"; }
# Starts a long-lived process in its own session; its pid goes to $STATE/pids/NAME.
spawn() {
  local name=$1; shift
  setsid "$@" >>"$STATE/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$STATE/pids/$name"
}
stop_pid() {
  local f=$STATE/pids/$1
  [ -f "$f" ] || return 0
  local pid; pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}
kc() { in_cp kubectl --kubeconfig "$STATE/pki/admin.kubeconfig" "$@"; }
wait_for() { # wait_for SECONDS DESCRIPTION CMD...
  local t=$1 what=$2; shift 2
  local end=$((SECONDS + t))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -ge $end ] && die "timed out after ${t}s waiting for $what"
    sleep 0.5
  done
}
cgroup_controllers() {
  local d
  for d in /sys/fs/cgroup/*; do
    [ -d "$d" ] && [ -f "$d/cgroup.procs" ] && echo "$d"
  done
}
# Kills every process in the cgroup subtrees NAME... (all controllers at once), then removes the
# cgroups bottom-up.
remove_cgroups() {
  local c name dirs=() pids
  for c in $(cgroup_controllers); do for name in "$@"; do [ -d "$c/$name" ] && dirs+=("$c/$name"); done; done
  [ ${#dirs[@]} -gt 0 ] || return 0
  for _ in $(seq 1 20); do
    # (cgroups vanish while find walks them: its status means nothing here)
    pids=$(find "${dirs[@]}" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u || true)
    [ -z "$pids" ] && break
    # shellcheck disable=SC2086
    kill -KILL $pids 2>/dev/null || true
    sleep 0.2
  done
  for _ in 1 2 3 4 5; do
    find "${dirs[@]}" -depth -type d -exec rmdir {} \; 2>/dev/null || true
    local left=0 d; for d in "${dirs[@]}"; do [ -d "$d" ] && left=1; done
    [ "$left" = 0 ] && break
    sleep 0.2
  done
}
SYSCTLS="vm.overcommit_memory kernel.panic kernel.panic_on_oops"
# Records that a start-up phase ended (milliseconds since `up` began), for `kcluster.sh timings`.
phase() { echo "$(($(date +%s%N) / 1000000 - T0_MS)) $*" >>"$STATE/timings"; }

# (EC keys: generating RSA keys costs seconds on a loaded machine.)
certs() {
  local p=$STATE/pki
  mkdir -p "$p"; cd "$p"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.crt -days 2 -subj /CN=krc-ca 2>/dev/null
  cat >san.cnf <<EOF
[req]
distinguished_name = dn
[dn]
[ext]
subjectAltName = IP:$CP_IP,IP:10.96.0.1,IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
extendedKeyUsage = serverAuth
EOF
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout apiserver.key -out apiserver.csr -subj /CN=kube-apiserver 2>/dev/null
  openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -out apiserver.crt \
    -extfile san.cnf -extensions ext 2>/dev/null
  printf '[ext]\nextendedKeyUsage = clientAuth\n' >client.cnf
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout admin.key -out admin.csr -subj "/O=system:masters/CN=admin" 2>/dev/null
  openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -out admin.crt \
    -extfile client.cnf -extensions ext 2>/dev/null
  openssl ecparam -name prime256v1 -genkey -noout -out sa.key 2>/dev/null
  openssl ec -in sa.key -pubout -out sa.pub 2>/dev/null
  cat >admin.kubeconfig <<EOF
apiVersion: v1
kind: Config
clusters: [{name: krc, cluster: {server: "https://$CP_IP:6443", certificate-authority: $p/ca.crt}}]
users: [{name: admin, user: {client-certificate: $p/admin.crt, client-key: $p/admin.key}}]
contexts: [{name: krc, context: {cluster: krc, user: admin}}]
current-context: krc
EOF
  cd - >/dev/null
}

node_dirs="etc-cni:/etc/cni/net.d opt-cni:/opt/cni/bin kubelet:/var/lib/kubelet containerd:/var/lib/containerd
run-containerd:/run/containerd netns:/run/netns log-pods:/var/log/pods log-containers:/var/log/containers
kube-router:/var/lib/kube-router etc-kubernetes:/etc/kubernetes cni-state:/var/lib/cni"

start_node() {
  local i=$1 ns=${ID}n$i ip; ip=$(node_ip "$i")
  local d=$STATE/nodes/n$i
  mkdir -p "$d"
  ip netns add "$ns"
  ip -n "${ID}cp" link add "n$i" type veth peer name eth0 netns "$ns"
  ip -n "${ID}cp" link set "n$i" master br0 up
  ip -n "$ns" link set lo up
  ip -n "$ns" addr add "$ip/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" route add default via "$CP_IP"
  # The node's mount namespace, kept alive by a bind mount of its nsfs file.
  touch "$STATE/mnt/n$i"
  unshare --mount="$STATE/mnt/n$i" --propagation slave true
  local pair src dst
  for pair in $node_dirs; do
    src=$d/${pair%%:*} dst=${pair#*:}
    mkdir -p "$src"
    in_node "$i" sh -c "mkdir -p '$dst' && mount --bind '$src' '$dst'"
  done
  # Pods' volume mounts must propagate between kubelet and the container runtime.
  in_node "$i" mount --make-rshared /
  if [ "${KRC_CNI_BIN:-1}" = 1 ]; then cp -a /usr/lib/cni/. "$d/opt-cni/"; fi
  cp "$STATE/pki/ca.crt" "$d/etc-kubernetes/ca.crt"
  cp "$STATE/pki/admin.kubeconfig" "$d/etc-kubernetes/kubelet.kubeconfig"
  local cg; for cg in $(cgroup_controllers); do
    mkdir -p "$cg/$ns"
    if [ -f "$cg/cpuset.cpus" ]; then
      cat "$cg/cpuset.cpus" >"$cg/$ns/cpuset.cpus"; cat "$cg/cpuset.mems" >"$cg/$ns/cpuset.mems"
    fi
  done
  cat >"$d/containerd.toml" <<EOF
version = 2
root = "/var/lib/containerd"
state = "/run/containerd"
oom_score = 0
[grpc]
  address = "/run/containerd/containerd.sock"
[ttrpc]
  address = "/run/containerd/containerd.sock.ttrpc"
[debug]
  level = "warn"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.10"
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/opt/cni/bin"
    conf_dir = "/etc/cni/net.d"
EOF
  # The node's image store starts as a copy of the prepared one (every image imported and
  # unpacked once; hard links, so a node costs no copy of the layers), like a node image with
  # its images baked in ...
  cp -al "$STORE/root/." "$d/containerd/"
  # ... except the databases, which containerd writes: each node gets its own.
  find "$d/containerd" -name '*.db' -type f | while read -r f; do cp "$f" "$f.tmp" && mv "$f.tmp" "$f"; done
  spawn "containerd-n$i" nsenter --mount="$STATE/mnt/n$i" --net="/run/netns/$ns" -- containerd --config "$d/containerd.toml"
  wait_for 30 "containerd on n$i" in_node "$i" ctr --address /run/containerd/containerd.sock version
  phase "n$i containerd up, images in place"
  printf 'nameserver %s\n' 10.96.0.10 >"$d/resolv.conf"
  cat >"$d/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: /etc/kubernetes/ca.crt}
authorization: {mode: AlwaysAllow}
cgroupDriver: cgroupfs
cgroupRoot: /$ns
cgroupsPerQOS: true
enforceNodeAllocatable: [pods]
failSwapOn: false
oomScoreAdj: 0
evictionHard: {}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
clusterDNS: [10.96.0.10]
clusterDomain: cluster.local
resolvConf: $d/resolv.conf
containerRuntimeEndpoint: unix:///run/containerd/containerd.sock
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
serializeImagePulls: false
protectKernelDefaults: false
localStorageCapacityIsolation: false
nodeStatusUpdateFrequency: 4s
EOF
}
start_kubelet() {
  local i=$1 ns=${ID}n$1 ip; ip=$(node_ip "$1")
  local d=$STATE/nodes/n$i
  spawn "kubelet-n$i" nsenter --mount="$STATE/mnt/n$i" --net="/run/netns/$ns" -- \
    "$KRC_BIN/kubelet" --config "$d/kubelet.yaml" --kubeconfig /etc/kubernetes/kubelet.kubeconfig \
    --hostname-override "n$i" --node-ip "$ip" --root-dir /var/lib/kubelet --v=1
}

# A containerd root holding every image of $IMAGES, imported and unpacked once per image set
# (cached beside the binaries); nodes start from hard-linked copies of it. Prints its directory.
image_store() {
  local cache=${KRC_CACHE:-$HOME/.cache/kube-router-deno} key
  key=$(stat -c '%n %s %Y' "$IMAGES"/*.tar | sha256sum | cut -c1-16)
  local dir=$cache/krc-images-$key
  if [ ! -f "$dir/done" ]; then
    rm -rf "$cache"/krc-images-*
    mkdir -p "$dir/root" "$STATE/imgstate"
    cat >"$STATE/imgstate/config.toml" <<EOF
version = 2
root = "$dir/root"
state = "$STATE/imgstate/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$STATE/imgstate/sock"
[ttrpc]
  address = "$STATE/imgstate/sock.ttrpc"
EOF
    spawn containerd-images ip netns exec "${ID}cp" containerd --config "$STATE/imgstate/config.toml"
    wait_for 30 "containerd (image store)" ctr --address "$STATE/imgstate/sock" version
    local img
    for img in "$IMAGES"/*.tar; do
      ctr --address "$STATE/imgstate/sock" -n k8s.io images import --no-unpack=false "$img" >/dev/null ||
        { stop_pid containerd-images; die "importing $img failed"; }
    done
    stop_pid containerd-images
    rm -rf "$STATE/imgstate"
    touch "$dir/done"
  fi
  echo "$dir"
}

up() {
  local n=${1:-3}
  T0_MS=$(($(date +%s%N) / 1000000))
  [ -e "$STATE/env" ] && die "a cluster already runs at $STATE (kcluster.sh down first)"
  [ -n "${KR_TEST_BIN:-}" ] || KR_TEST_BIN=$(bash "$repo/tests/servers/build.sh")
  [ -n "${KRC_BIN:-}" ] || KRC_BIN=$(bash "$here/build.sh")
  IMAGES=${KRC_IMAGES:-$STATE.images}
  bash "$here/images.sh" "$KRC_BIN" "$IMAGES" || die "building the images failed"
  ID=krc$(head -c2 /dev/urandom | od -An -tx1 | tr -d ' \n')
  mkdir -p "$STATE"/{pids,logs,mnt,nodes}
  phase "binaries and images built (cached)"
  cat >"$STATE/env" <<EOF
ID=$ID
N=$n
KR_TEST_BIN=$KR_TEST_BIN
KRC_BIN=$KRC_BIN
IMAGES=$IMAGES
T0_MS=$T0_MS
EOF
  # What kubelet changes in the host's kernel settings, to put back at teardown.
  local s; for s in $SYSCTLS; do echo "$s=$(sysctl -n "$s")"; done >"$STATE/sysctls"
  # The state dir's mount-namespace files must sit on a private mount.
  mount --bind "$STATE/mnt" "$STATE/mnt"
  mount --make-private "$STATE/mnt"
  # Stray traffic to the cluster's ranges never leaves the machine.
  : >"$STATE/blackholes"
  for s in $POD_CIDR $SVC_CIDR $NET.0/24; do
    if [ -z "$(ip route show exact "$s")" ]; then
      ip route add blackhole "$s" && echo "$s" >>"$STATE/blackholes"
    fi
  done
  ip netns add "${ID}cp"
  ip -n "${ID}cp" link set lo up
  ip -n "${ID}cp" link add br0 type bridge
  ip -n "${ID}cp" addr add "$CP_IP/24" dev br0
  ip -n "${ID}cp" link set br0 up
  for s in $POD_CIDR $SVC_CIDR; do ip -n "${ID}cp" route add blackhole "$s"; done
  certs
  local p=$STATE/pki
  spawn etcd ip netns exec "${ID}cp" "$KR_TEST_BIN/etcd" --name krc --data-dir "$STATE/etcd" \
    --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
    --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
    --initial-cluster krc=http://127.0.0.1:2380 --unsafe-no-fsync --log-level=warn
  spawn kube-apiserver ip netns exec "${ID}cp" "$KR_TEST_BIN/kube-apiserver" \
    --etcd-servers=http://127.0.0.1:2379 --bind-address=0.0.0.0 --advertise-address="$CP_IP" --secure-port=6443 \
    --cert-dir="$p" --tls-cert-file="$p/apiserver.crt" --tls-private-key-file="$p/apiserver.key" \
    --client-ca-file="$p/ca.crt" --authorization-mode=Node,RBAC \
    --kubelet-client-certificate="$p/admin.crt" --kubelet-client-key="$p/admin.key" \
    --service-cluster-ip-range=$SVC_CIDR --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$p/sa.pub" --service-account-signing-key-file="$p/sa.key" \
    --kubelet-preferred-address-types=InternalIP,Hostname --allow-privileged=true --profiling=false --v=1
  # The nodes' runtimes start while the API server comes up (they need nothing of it), all at once.
  STORE=$(image_store)
  phase "image store ready"
  local i pids=() failed=0
  for i in $(seq 1 "$n"); do start_node "$i" & pids+=($!); done
  wait_for 90 "kube-apiserver" kc get --raw /readyz
  phase "etcd + kube-apiserver ready"
  spawn kube-controller-manager ip netns exec "${ID}cp" "$KRC_BIN/kube-controller-manager" \
    --kubeconfig="$p/admin.kubeconfig" --authentication-kubeconfig="$p/admin.kubeconfig" \
    --authorization-kubeconfig="$p/admin.kubeconfig" --bind-address=127.0.0.1 --leader-elect=false \
    --allocate-node-cidrs=true --cluster-cidr=$POD_CIDR --node-cidr-mask-size=24 \
    --service-cluster-ip-range=$SVC_CIDR --service-account-private-key-file="$p/sa.key" \
    --root-ca-file="$p/ca.crt" --use-service-account-credentials=true --configure-cloud-routes=false \
    --node-monitor-grace-period=20s --v=1
  spawn kube-scheduler ip netns exec "${ID}cp" "$KRC_BIN/kube-scheduler" --kubeconfig="$p/admin.kubeconfig" \
    --authentication-kubeconfig="$p/admin.kubeconfig" --authorization-kubeconfig="$p/admin.kubeconfig" \
    --bind-address=127.0.0.1 --leader-elect=false --v=1
  for i in "${pids[@]}"; do wait "$i" || failed=1; done
  [ "$failed" = 0 ] || die "a node failed to start (logs: $STATE/logs)"
  for i in $(seq 1 "$n"); do start_kubelet "$i"; done
  # Registered, with a pod CIDR each (Ready needs a network: the test installs one).
  for i in $(seq 1 "$n"); do
    wait_for 90 "node n$i registered with a pod CIDR" sh -c "test -n \"\$(ip netns exec ${ID}cp kubectl --kubeconfig $p/admin.kubeconfig get node n$i -o jsonpath='{.spec.podCIDR}')\""
    phase "n$i registered, pod CIDR allocated"
  done
  echo "$STATE"
}

wait_ready() {
  local t=${1:-120} i
  for i in $(seq 1 "$N"); do
    wait_for "$t" "node n$i Ready" sh -c "ip netns exec ${ID}cp kubectl --kubeconfig $STATE/pki/admin.kubeconfig get node n$i -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].status}' | grep -qx True"
    phase "n$i Ready"
  done
}

agent_start() {
  [ -f "$repo/dist/kube-router/main.js" ] || (cd "$repo" && "$DENO" task bundle >/dev/null 2>&1)
  local i
  for i in $(seq 1 "$N"); do
    local d=$STATE/nodes/n$i
    # The static install as upstream documents it: the CNI network config is put in place (the
    # same one the DaemonSet's init container installs); the agent adds the node's pod CIDRs.
    if [ ! -f "$d/etc-cni/10-kuberouter.conflist" ] && [ "${KRC_CNI_TEMPLATE:-1}" = 1 ]; then
      sed -n '/cni-conf.json: |/,/^---/p' "$repo/manifests/daemonset.yaml" | sed '1d;/^---/d;s/^    //' \
        >"$d/etc-cni/10-kuberouter.conflist"
    fi
    # A node-local kubeconfig: the agent reaches the API server directly, not through the
    # Service it is about to program.
    spawn "agent-n$i" env DENO_NO_UPDATE_CHECK=1 KUBE_ROUTER_CNI_CONF_FILE="$d/etc-cni/10-kuberouter.conflist" \
      ip netns exec "${ID}n$i" "$DENO" run -A --no-prompt --no-config --no-code-cache --v8-flags=--max-semi-space-size=1,--expose-gc "$repo/dist/kube-router/main.js" run \
      --kubeconfig="$d/etc-kubernetes/kubelet.kubeconfig" --hostname-override="n$i" \
      --service-proxy-mode=nftables --hairpin-mode=true --health-port=20244 "$@"
  done
}
agent_stop() { local i; for i in $(seq 1 "$N"); do stop_pid "agent-n$i"; done; }
agent_cleanup() {
  local i
  for i in $(seq 1 "$N"); do
    KUBE_ROUTER_CNI_CONF_FILE="$STATE/nodes/n$i/etc-cni/10-kuberouter.conflist" \
      ip netns exec "${ID}n$i" "$DENO" run -A --no-prompt --no-config --no-code-cache --v8-flags=--max-semi-space-size=1,--expose-gc "$repo/dist/kube-router/main.js" cleanup "$@" \
      >>"$STATE/logs/agent-cleanup-n$i.log" 2>&1
  done
}

# Upstream kube-router v2.1.0 (built from the Go module proxy by tests/cluster/build.sh) as the
# NetworkPolicy firewall only, a process on each node: the baseline's policy engine.
upstream_fw_start() {
  local bin=${KRC_UPSTREAM:-$HOME/.cache/kube-router-deno/upstream-v2.1.0/kube-router} i
  if [ ! -x "$bin" ]; then # (as bench/upstream.ts builds it; about 2 min)
    env GOBIN="$(dirname "$bin")" GOFLAGS=-buildvcs=false CGO_ENABLED=0 PATH="$PATH:/usr/local/go/bin" \
      go install github.com/cloudnativelabs/kube-router/v2/cmd/kube-router@v2.1.0 || die "building upstream kube-router failed"
  fi
  for i in $(seq 1 "$N"); do
    spawn "upstream-fw-n$i" ip netns exec "${ID}n$i" "$bin" --kubeconfig="$STATE/pki/admin.kubeconfig" \
      --hostname-override="n$i" --run-firewall=true --run-router=false --run-service-proxy=false \
      --health-port=20245 --v=1
  done
}
upstream_fw_stop() {
  local bin=${KRC_UPSTREAM:-$HOME/.cache/kube-router-deno/upstream-v2.1.0/kube-router} i
  for i in $(seq 1 "$N"); do
    stop_pid "upstream-fw-n$i"
    ip netns exec "${ID}n$i" "$bin" --cleanup-config >>"$STATE/logs/upstream-fw-cleanup-n$i.log" 2>&1 || true
  done
}

kube_proxy_start() {
  local i
  for i in $(seq 1 "$N"); do
    cat >"$STATE/nodes/n$i/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $STATE/pki/admin.kubeconfig}
mode: iptables
clusterCIDR: $POD_CIDR
hostnameOverride: n$i
oomScoreAdj: 0
# Zero: leave the (machine-wide) conntrack table size and timeouts alone.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
EOF
    spawn "kube-proxy-n$i" ip netns exec "${ID}n$i" "$KRC_BIN/kube-proxy" --config "$STATE/nodes/n$i/kube-proxy.yaml" --v=1
  done
}
kube_proxy_stop() { local i; for i in $(seq 1 "$N"); do stop_pid "kube-proxy-n$i"; done; }
kube_proxy_cleanup() {
  local i
  for i in $(seq 1 "$N"); do
    ip netns exec "${ID}n$i" "$KRC_BIN/kube-proxy" --cleanup --v=1 >>"$STATE/logs/kube-proxy-cleanup-n$i.log" 2>&1 || true
  done
}

# An external BGP router: BIRD 2 in its own network namespace <id>peer on the cluster bridge
# ($NET.2, AS 64513), with an eBGP session to every node (AS 64512). It imports what the nodes
# advertise (into its own table only: it exports nothing and installs nothing).
PEER_IP=$NET.2
peer_start() {
  local ns=${ID}peer i
  ip netns add "$ns"
  ip -n "${ID}cp" link add peer type veth peer name eth0 netns "$ns"
  ip -n "${ID}cp" link set peer master br0 up
  ip -n "$ns" link set lo up
  ip -n "$ns" addr add "$PEER_IP/24" dev eth0
  ip -n "$ns" link set eth0 up
  {
    echo "router id $PEER_IP;"
    echo "protocol device {}"
    for i in $(seq 1 "$N"); do
      echo "protocol bgp n$i { local $PEER_IP as 64513; neighbor $(node_ip "$i") as 64512; ipv4 { import all; export none; }; }"
    done
  } >"$STATE/bird.conf"
  spawn bird ip netns exec "$ns" bird -f -c "$STATE/bird.conf" -s "$STATE/bird.ctl"
  wait_for 10 "BIRD" ip netns exec "$ns" birdc -s "$STATE/bird.ctl" show status
}
peer_stop() {
  stop_pid bird
  ip netns del "${ID}peer" 2>/dev/null || true
  rm -f "$STATE/bird.conf" "$STATE/bird.ctl"
}
peer_birdc() { ip netns exec "${ID}peer" birdc -s "$STATE/bird.ctl" "$@"; }

# The baseline's network: the bridge plugin from a file of ours, and a static route per node.
static_net() {
  local i j
  for i in $(seq 1 "$N"); do
    local cidr; cidr=$(kc get node "n$i" -o jsonpath='{.spec.podCIDR}')
    cat >"$STATE/nodes/n$i/etc-cni/10-baseline.conflist" <<EOF
{"cniVersion": "0.4.0", "name": "baseline", "plugins": [
  {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "$cidr"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
  {"type": "portmap", "capabilities": {"portMappings": true}, "snat": true}]}
EOF
    ip netns exec "${ID}n$i" sysctl -qw net.ipv4.ip_forward=1
    for j in $(seq 1 "$N"); do
      [ "$i" = "$j" ] && continue
      ip -n "${ID}n$i" route replace "$(kc get node "n$j" -o jsonpath='{.spec.podCIDR}')" via "$(node_ip "$j")"
    done
    ip -n "${ID}cp" route replace "$cidr" via "$(node_ip "$i")"
  done
}
static_net_remove() {
  local i j
  for i in $(seq 1 "$N"); do
    rm -f "$STATE/nodes/n$i/etc-cni/10-baseline.conflist"
    for j in $(seq 1 "$N"); do
      [ "$i" = "$j" ] && continue
      ip -n "${ID}n$i" route del "10.244.$((j - 1)).0/24" 2>/dev/null || true
    done
  done
  ip -n "${ID}cp" route show | awk '/^10\.244\./ && / via / {print $1}' | while read -r r; do ip -n "${ID}cp" route del "$r"; done
  ip -n "${ID}cp" route add blackhole $POD_CIDR 2>/dev/null || true
}

down() {
  [ -f "$STATE/env" ] || { echo "kcluster: nothing at $STATE"; return 0; }
  # Teardown goes on whatever fails on the way: half a teardown is the worst outcome.
  set +e
  load_state
  local i f
  # (All at once: each may take seconds to exit.)
  for f in "$STATE"/pids/agent-* "$STATE"/pids/upstream-fw-* "$STATE"/pids/kube-proxy-* "$STATE"/pids/kubelet-*; do
    [ -e "$f" ] && stop_pid "$(basename "$f")" &
  done
  wait
  # Every pod's processes (they live in the nodes' cgroups), then the runtimes and their shims
  # (in the nodes' mount namespaces).
  local nodes=(); for i in $(seq 1 "$N"); do nodes+=("${ID}n$i"); done
  remove_cgroups "${nodes[@]}"
  for i in $(seq 1 "$N"); do stop_pid "containerd-n$i" & done
  wait
  for i in $(seq 1 "$N"); do
    if [ -e "$STATE/mnt/n$i" ]; then
      local mntns; mntns=$(stat -L -c %i "$STATE/mnt/n$i" 2>/dev/null || true)
      local p
      for p in /proc/[0-9]*; do
        [ "$(stat -L -c %i "$p/ns/mnt" 2>/dev/null)" = "$mntns" ] && kill -KILL "${p#/proc/}" 2>/dev/null
      done
    fi
  done
  sleep 0.5
  remove_cgroups "${nodes[@]}"
  for f in kube-scheduler kube-controller-manager kube-apiserver; do stop_pid "$f" & done
  wait
  stop_pid etcd
  for f in "$STATE"/pids/*; do [ -e "$f" ] && stop_pid "$(basename "$f")"; done
  for i in $(seq 1 "$N"); do
    umount "$STATE/mnt/n$i" 2>/dev/null || true
    ip netns del "${ID}n$i" 2>/dev/null || true
  done
  umount "$STATE/mnt" 2>/dev/null || true
  ip netns del "${ID}peer" 2>/dev/null || true
  ip netns del "${ID}cp" 2>/dev/null || true
  if [ -f "$STATE/blackholes" ]; then
    while read -r r; do ip route del blackhole "$r" 2>/dev/null || true; done <"$STATE/blackholes"
  fi
  if [ -f "$STATE/sysctls" ]; then
    while read -r kv; do sysctl -qw "$kv" || true; done <"$STATE/sysctls"
  fi
  # Anything a pod mounted lived in a node's mount namespace, gone with it; what remains is files.
  if findmnt -rn -o TARGET | grep -q "^$STATE"; then
    findmnt -rn -o TARGET | grep "^$STATE" | sort -r | while read -r m; do umount -l "$m" || true; done
  fi
  rm -rf "$STATE"
}

leftovers() { # leftovers ID: what of cluster ID (and of $STATE) is still on the host
  local id=${1:?cluster id}
  ip netns list 2>/dev/null | grep "^$id" || true
  findmnt -rn -o TARGET | grep -E "^${STATE}(/|$)" || true
  local c; for c in $(cgroup_controllers); do ls -d "$c/$id"* 2>/dev/null || true; done
  ps -eo pid,args | grep -F -e "$STATE/" -e "$id" | grep -v -e grep -e "kcluster.sh leftovers" || true
  [ -e "$STATE" ] && echo "$STATE"
  # Pod addresses leased in the host's own CNI state (a node without its own /var/lib/cni).
  ls /var/lib/cni/networks/*/10.244.* 2>/dev/null || true
  grep -l '10\.244\.' /var/lib/cni/results/* 2>/dev/null || true
  # The blackhole routes are removed with the cluster unless another cluster still needs them.
  if ! ls /var/lib/krc*/env >/dev/null 2>&1; then
    ip route show | grep -E "^blackhole (10\.244\.0\.0/16|10\.96\.0\.0/12|$NET\.0/24)" || true
  fi
  return 0
}

case "$cmd" in
  up) up "$@" ;;
  down) down ;;
  kubectl) load_state; kc "$@" ;;
  cp) load_state; in_cp "$@" ;;
  node) load_state; i=$1; shift; in_node "$i" "$@" ;;
  agent-start) load_state; agent_start "$@" ;;
  agent-stop) load_state; agent_stop ;;
  agent-cleanup) load_state; agent_cleanup "$@" ;;
  kube-proxy-start) load_state; kube_proxy_start ;;
  kube-proxy-stop) load_state; kube_proxy_stop ;;
  kube-proxy-cleanup) load_state; kube_proxy_cleanup ;;
  static-net) load_state; static_net ;;
  upstream-fw-start) load_state; upstream_fw_start ;;
  upstream-fw-stop) load_state; upstream_fw_stop ;;
  peer-start) load_state; peer_start ;;
  peer-stop) load_state; peer_stop ;;
  birdc) load_state; peer_birdc "$@" ;;
  static-net-remove) load_state; static_net_remove ;;
  wait-ready) load_state; wait_ready "$@" ;;
  dns)
    load_state
    kc apply -f "$here/coredns.yaml" >/dev/null
    kc -n kube-system rollout status deployment/coredns --timeout="${1:-120}s" >/dev/null ;;
  leftovers) leftovers "$@" ;;
  env) load_state; cat "$STATE/env" ;;
  timings) load_state; awk '{t=$1; $1=""; printf "%6.1f s %s\n", t/1000, $0}' "$STATE/timings" ;;
  *) sed -n '2,40p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
