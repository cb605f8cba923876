#!/usr/bin/env bash
# Writes the DaemonSet variants in manifests/ from one template, so they differ only where they
# must. Run after editing this file; the YAML files are committed (users apply them directly).
#   daemonset.yaml                     all features: router (iBGP, CNI) + firewall + service proxy
#   daemonset-service-proxy.yaml       service proxy only (replaces kube-proxy; another CNI routes pods)
#   daemonset-firewall.yaml            NetworkPolicy firewall only (alongside another CNI and kube-proxy)
#   daemonset-router-firewall-peer.yaml  router + firewall, pod CIDRs advertised to an external BGP peer
#   daemonset-dsr.yaml                 all features + DSR (hostPID, the CRI socket; needs IPVS)
# Every variant reaches the API server through a node-local kubeconfig
# (/var/lib/kube-router/kubeconfig, as upstream's manifests), never through the ClusterIP it
# programs itself; tolerates every NoSchedule and NoExecute taint (it is the node's network).
# --hairpin-mode=true: a pod reaching itself through its own Service works (a conformance spec).
set -euo pipefail
cd "$(dirname "$0")"
version=$(sed -n 's/.*VERSION = "\([^"]*\)".*/\1/p' ../cmd/version.ts | head -1)
image="kube-router-deno:${version:-v0.1.0-deno}"

cni_cm() {
  cat <<'EOF'
---
# The CNI network config the init container installs when the node has none; the agent fills
# in this node's pod CIDRs (host-local ranges) and MTU. hairpinMode: a pod reaching itself
# through its own Service; portmap: hostPort.
apiVersion: v1
kind: ConfigMap
metadata:
  name: kube-router-cfg
  namespace: kube-system
  labels: { tier: node, k8s-app: kube-router }
data:
  cni-conf.json: |
    {
      "cniVersion": "0.3.0",
      "name": "mynet",
      "plugins": [
        {
          "name": "kubernetes",
          "type": "bridge",
          "bridge": "kube-bridge",
          "isDefaultGateway": true,
          "hairpinMode": true,
          "ipam": { "type": "host-local" }
        },
        { "type": "portmap", "capabilities": { "snat": true, "portMappings": true } }
      ]
    }
EOF
}

# ds NAME COMMENT CNI(yes|no) HOSTPID(yes|no) ARGS...
ds() {
  local name=$1 comment=$2 cni=$3 hostpid=$4; shift 4
  local out="$name.yaml"
  {
    printf '%s\n' "$comment" | sed 's/^/# /'
    echo "# Apply rbac.yaml first. Image: manifests/Dockerfile ($image)."
    [ "$cni" = yes ] && cni_cm
    cat <<EOF
---
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: kube-router
  namespace: kube-system
  labels: { k8s-app: kube-router, tier: node }
spec:
  selector:
    matchLabels: { k8s-app: kube-router, tier: node }
  updateStrategy:
    type: RollingUpdate
    rollingUpdate: { maxUnavailable: 1 }
  template:
    metadata:
      labels: { k8s-app: kube-router, tier: node }
    spec:
      priorityClassName: system-node-critical
      serviceAccountName: kube-router
      hostNetwork: true
EOF
    [ "$hostpid" = yes ] && echo "      hostPID: true"
    if [ "$cni" = yes ]; then
      cat <<EOF
      initContainers:
        # Installs the CNI plugins this network needs (bridge, host-local, loopback, portmap)
        # where the node's container runtime looks for them, and the network config above
        # when the node has none yet.
        - name: install-cni
          image: $image
          imagePullPolicy: IfNotPresent
          command:
            - /bin/sh
            - -c
            - |
              set -e
              for p in bridge host-local loopback portmap; do
                if [ ! -x "/opt/cni/bin/\$p" ]; then
                  cp "/usr/lib/cni/\$p" "/opt/cni/bin/.\$p.tmp" && mv "/opt/cni/bin/.\$p.tmp" "/opt/cni/bin/\$p"
                fi
              done
              if [ ! -f /etc/cni/net.d/10-kuberouter.conflist ]; then
                cp /etc/kube-router/cni-conf.json /etc/cni/net.d/.10-kuberouter.tmp
                mv /etc/cni/net.d/.10-kuberouter.tmp /etc/cni/net.d/10-kuberouter.conflist
              fi
          volumeMounts:
            - { name: cni-conf-dir, mountPath: /etc/cni/net.d }
            - { name: cni-bin-dir, mountPath: /opt/cni/bin }
            - { name: kube-router-cfg, mountPath: /etc/kube-router }
EOF
    fi
    cat <<EOF
      containers:
        - name: kube-router
          image: $image
          imagePullPolicy: IfNotPresent
          args:
EOF
    local a; for a in "$@"; do echo "            - $a"; done
    cat <<EOF
            - --kubeconfig=/var/lib/kube-router/kubeconfig
          env:
            - name: NODE_NAME
              valueFrom: { fieldRef: { fieldPath: spec.nodeName } }
EOF
    [ "$cni" = yes ] && cat <<EOF
            - name: KUBE_ROUTER_CNI_CONF_FILE
              value: /etc/cni/net.d/10-kuberouter.conflist
EOF
    cat <<EOF
          livenessProbe:
            httpGet: { path: /healthz, port: 20244 }
            initialDelaySeconds: 10
            periodSeconds: 3
          resources:
            requests: { cpu: 250m, memory: 250Mi }
          securityContext: { privileged: true }
          volumeMounts:
            - { name: lib-modules, mountPath: /lib/modules, readOnly: true }
            - { name: kubeconfig, mountPath: /var/lib/kube-router, readOnly: true }
            - { name: xtables-lock, mountPath: /run/xtables.lock }
EOF
    [ "$cni" = yes ] && echo "            - { name: cni-conf-dir, mountPath: /etc/cni/net.d }"
    [ "$hostpid" = yes ] && echo "            - { name: cri-socket, mountPath: /run/containerd/containerd.sock }"
    cat <<EOF
      tolerations:
        - { key: CriticalAddonsOnly, operator: Exists }
        - { effect: NoSchedule, operator: Exists }
        - { effect: NoExecute, operator: Exists }
      volumes:
        - { name: lib-modules, hostPath: { path: /lib/modules } }
        - { name: kubeconfig, hostPath: { path: /var/lib/kube-router } }
        - { name: xtables-lock, hostPath: { path: /run/xtables.lock, type: FileOrCreate } }
EOF
    if [ "$cni" = yes ]; then
      cat <<EOF
        - { name: cni-conf-dir, hostPath: { path: /etc/cni/net.d, type: DirectoryOrCreate } }
        - { name: cni-bin-dir, hostPath: { path: /opt/cni/bin, type: DirectoryOrCreate } }
        - { name: kube-router-cfg, configMap: { name: kube-router-cfg } }
EOF
    fi
    [ "$hostpid" = yes ] && echo "        - { name: cri-socket, hostPath: { path: /run/containerd/containerd.sock, type: Socket } }"
    true
  } >"$out"
}

ds daemonset "kube-router for Deno, all features: routes pods over iBGP (writes the CNI config),
enforces NetworkPolicy and replaces kube-proxy. Upstream's args, so an existing DaemonSet switches
by changing the image. --service-proxy-mode=nftables on kernels without IPVS." yes no \
  --run-router=true --run-firewall=true --run-service-proxy=true --service-proxy-mode=ipvs --hairpin-mode=true \
  --bgp-graceful-restart=true

ds daemonset-service-proxy "kube-router for Deno as the service proxy only (instead of kube-proxy; run
\`kube-proxy --cleanup\` on each node first). Pod networking comes from another CNI.
--service-proxy-mode=nftables on kernels without IPVS." no no \
  --run-router=false --run-firewall=false --run-service-proxy=true --service-proxy-mode=ipvs --hairpin-mode=true

ds daemonset-firewall "kube-router for Deno as the NetworkPolicy firewall only, next to another CNI and
kube-proxy." no no \
  --run-router=false --run-firewall=true --run-service-proxy=false

ds daemonset-router-firewall-peer "kube-router for Deno routing pods (iBGP between nodes, CNI config) and enforcing
NetworkPolicy, kube-proxy stays; every node also peers with an external router and advertises its
pod CIDR and the Services' cluster IPs. Replace 192.0.2.1 / 64513 with your router's address
and AS (--peer-router-ips/--peer-router-asns, one entry per router)." yes no \
  --run-router=true --run-firewall=true --run-service-proxy=false --bgp-graceful-restart=true \
  --cluster-asn=64512 --peer-router-ips=192.0.2.1 --peer-router-asns=64513 \
  --advertise-cluster-ip=true --advertise-pod-cidr=true

ds daemonset-dsr "kube-router for Deno, all features with Direct Server Return for Services annotated
kube-router.io/service.dsr=tunnel: hostPID and the container runtime's socket let the agent enter
each backend pod's network namespace to configure the tunnel end. DSR is an IPVS feature: this
variant needs a kernel with IPVS and IPIP." yes yes \
  --run-router=true --run-firewall=true --run-service-proxy=true --service-proxy-mode=ipvs --hairpin-mode=true \
  --bgp-graceful-restart=true --runtime-endpoint=unix:///run/containerd/containerd.sock

# The repository's formatter owns the layout (deno fmt formats YAML too).
deno=${DENO:-../tools/deno/node_modules/.bin/deno}
if [ -x "$deno" ]; then "$deno" fmt daemonset*.yaml >/dev/null 2>&1; fi
