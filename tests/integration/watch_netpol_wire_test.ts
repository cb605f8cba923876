/**
 * NetworkPolicies as the agent reads them from a real kube-apiserver: `kubectl apply`, then the
 * API source (`watch/kube/`: list and watch), conversion, the firewall plan and a packet trace.
 *
 * Regression (issue 14 #1, #5): the agent used to list through client-node 1.4's generated models,
 * which rename an ingress rule's `from` to `_from`; conversion read `from`, found nothing and
 * planned "from anywhere", so every port with a `from:` clause accepted any source, but only for
 * policies that came in a list (start-up, re-list), not in a watch event. Both paths are checked.
 *
 * Addresses exist only as API data: node 192.0.2.10, pods 10.244.7.0/24 (the list case) and
 * 10.244.8.0/24 (the watch case), sources 172.16.0.0/16. The two cases share one API server, so
 * their pods must not claim the same addresses: of two live pods with one address the firewall
 * keeps the newer, and pods created within the same second tie on creationTimestamp.
 */
import assert from "node:assert/strict";
import { sharedApiServer } from "../fixtures/apiserver.ts";
import { apiSource } from "../../watch/api.ts";
import type { SnapshotSource } from "../../watch/store.ts";
import type { ClusterSnapshot } from "../../watch/types.ts";
import { planFirewall } from "../../controllers/firewall/plan.ts";
import { fwOptions } from "../../controllers/firewall/testing.ts";
import { trace } from "../../controllers/firewall/trace.ts";
import { renderNftTable } from "../../controllers/firewall/nft_render.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const id = crypto.randomUUID().slice(0, 8);
const node = `wire-node-${id}`;

async function until(src: SnapshotSource, what: string, pred: (s: ClusterSnapshot) => boolean, ms = 20_000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (pred(src.current())) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for: ${what}`);
}

function manifest(ns: string): string {
  return `
apiVersion: v1
kind: Namespace
metadata: { name: ${ns} }
---
apiVersion: v1
kind: Pod
metadata: { name: web, namespace: ${ns}, labels: { app: web } }
spec:
  nodeName: ${node}
  containers: [{ name: c, image: x, ports: [{ name: http, containerPort: 8080 }] }]
---
apiVersion: v1
kind: Pod
metadata: { name: cli, namespace: ${ns}, labels: { app: cli } }
spec:
  nodeName: ${node}
  containers: [{ name: c, image: x }]
---
apiVersion: v1
kind: Pod
metadata: { name: other, namespace: ${ns}, labels: { app: other } }
spec:
  nodeName: ${node}
  containers: [{ name: c, image: x }]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: web, namespace: ${ns} }
spec:
  podSelector: { matchLabels: { app: web } }
  policyTypes: [Ingress, Egress]
  ingress:
  - from:
    - podSelector: { matchLabels: { app: cli } }
    - ipBlock: { cidr: 172.16.0.0/16, except: [172.16.9.0/24] }
    ports: [{ protocol: TCP, port: 8080 }]
  egress:
  - to: [{ ipBlock: { cidr: 198.51.100.0/24 } }]
`;
}

async function createObjects(ns: string, net: string): Promise<void> {
  const api = await sharedApiServer();
  await api.kubectl(["apply", "-f", "-"], { stdin: manifest(ns) });
  for (const [pod, ip] of [["web", `${net}.2`], ["cli", `${net}.3`], ["other", `${net}.4`]]) {
    await api.setPodStatus(ns, pod, { podIP: ip, hostIP: "192.0.2.10", phase: "Running" });
  }
}

/** Asserts the converted policy and what the planned firewall does with packets to `web`. */
function checkEnforced(snap: ClusterSnapshot, ns: string, path: string, net: string): void {
  const pol = snap.networkPolicies.get(`${ns}/web`)!;
  assert.equal(pol.ingress[0].peers.length, 2, `${path}: ingress peers were lost in conversion`);
  assert.deepEqual(pol.ingress[0].peers[1].ipBlock, { cidr: "172.16.0.0/16", except: ["172.16.9.0/24"] });
  assert.deepEqual(pol.egress[0].peers[0].ipBlock, { cidr: "198.51.100.0/24", except: [] });

  const plan = planFirewall(snap, fwOptions(), node);
  const v4 = plan.families.find((f) => f.family === "ipv4")!;
  const to = (src: string, dport = 8080) =>
    trace(v4, { src, dst: `${net}.2`, proto: "tcp", dport, hook: "FORWARD" }).outcome;
  const from = (dst: string) =>
    trace(v4, { src: `${net}.2`, dst, proto: "tcp", dport: 443, hook: "FORWARD" }).outcome;
  assert.equal(to(`${net}.3`), "accept", `${path}: the selected peer pod is allowed`);
  assert.equal(to("172.16.1.1"), "accept", `${path}: a source in the ipBlock is allowed`);
  assert.equal(to(`${net}.4`), "reject", `${path}: a pod the rule does not select is refused`);
  assert.equal(to("203.0.113.9"), "reject", `${path}: a source outside every peer is refused`);
  assert.equal(to("172.16.9.9"), "reject", `${path}: a source in ipBlock.except is refused`);
  assert.equal(to(`${net}.3`, 9090), "reject", `${path}: another port is refused`);
  assert.equal(from("198.51.100.7"), "accept", `${path}: egress to the ipBlock is allowed`);
  assert.equal(from("203.0.113.9"), "reject", `${path}: egress elsewhere is refused`);
  // The rendered transaction carries the except as a nomatch entry of the source set.
  const nft = renderNftTable(v4);
  assert.match(nft, /172\.16\.9\.0\/24/, `${path}: the except is in the rendered ruleset`);
}

Deno.test(
  "netpol from the API server, first seen in a list: sources enforced",
  opts,
  async () => {
    const ns = `wire-list-${id}`;
    await createObjects(ns, "10.244.7");
    // Started after the objects exist: they all come through the informer's list.
    const src = await apiSource({ kubeconfig: (await sharedApiServer()).kubeconfigPath });
    try {
      await src.ready;
      await until(src, "pods with IPs", (s) => s.pods.get(`${ns}/other`)?.podIPs.length === 1);
      checkEnforced(src.current(), ns, "list", "10.244.7");
    } finally {
      await src.close();
    }
  },
);

Deno.test(
  "netpol from the API server, first seen in a watch event (raw JSON): sources enforced",
  opts,
  async () => {
    const ns = `wire-watch-${id}`;
    const src = await apiSource({ kubeconfig: (await sharedApiServer()).kubeconfigPath });
    try {
      await src.ready;
      await createObjects(ns, "10.244.8");
      await until(
        src,
        "pods with IPs and the policy",
        (s) => s.pods.get(`${ns}/other`)?.podIPs.length === 1 && s.networkPolicies.has(`${ns}/web`),
      );
      checkEnforced(src.current(), ns, "watch", "10.244.8");
    } finally {
      await src.close();
    }
  },
);
