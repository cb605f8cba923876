/**
 * The API source against a real kube-apiserver + etcd (tests/fixtures/apiserver.ts).
 * Addresses: pod IPs from 10.244.0.0/16 and service IPs from 10.96.0.0/12 exist only as API data.
 */
import assert from "node:assert/strict";
import { sharedApiServer, startApiServer } from "../fixtures/apiserver.ts";
import { apiSource } from "../../watch/api.ts";
import type { SnapshotSource } from "../../watch/store.ts";
import type { ClusterSnapshot } from "../../watch/types.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

async function until(src: SnapshotSource, what: string, pred: (s: ClusterSnapshot) => boolean, ms = 20_000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (pred(src.current())) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for: ${what}`);
}

const ns = `watch-${crypto.randomUUID().slice(0, 8)}`;

const manifest = `
apiVersion: v1
kind: Namespace
metadata: { name: ${ns}, labels: { team: blue } }
---
apiVersion: v1
kind: Pod
metadata: { name: web, namespace: ${ns}, labels: { app: web } }
spec:
  nodeName: node-1
  containers: [{ name: c, image: x, ports: [{ name: http, containerPort: 8080 }] }]
---
apiVersion: v1
kind: Service
metadata: { name: web, namespace: ${ns} }
spec:
  selector: { app: web }
  ports: [{ name: http, port: 80, targetPort: http }]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: web-1, namespace: ${ns}, labels: { kubernetes.io/service-name: web } }
addressType: IPv4
endpoints: [{ addresses: [10.244.1.5], conditions: { ready: true }, nodeName: node-1 }]
ports: [{ name: http, port: 8080, protocol: TCP }]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: deny, namespace: ${ns} }
spec:
  podSelector: {}
  egress: [{ to: [{ ipBlock: { cidr: 10.0.0.0/8 } }] }]
`;

Deno.test("api source: list, watch, updates and deletes reach the snapshot", opts, async () => {
  const api = await sharedApiServer();
  const src = await apiSource({ kubeconfig: api.kubeconfigPath, backoff: { initialMs: 200, maxMs: 1000 } });
  try {
    await src.ready;
    const changes: number[] = [];
    src.subscribe((c) => changes.push(c.snapshot.revision));
    await api.kubectl(["apply", "-f", "-"], { stdin: manifest });
    await until(
      src,
      "all objects",
      (s) =>
        s.namespaces.get(ns)?.labels.team === "blue" && s.pods.has(`${ns}/web`) &&
        s.services.has(`${ns}/web`) && s.endpointSlices.has(`${ns}/web-1`) &&
        s.networkPolicies.has(`${ns}/deny`),
    );
    const snap = src.current();
    assert.equal(snap.pods.get(`${ns}/web`)!.containerPorts[0].name, "http");
    assert.equal(
      snap.services.get(`${ns}/web`)!.clusterIPs.length,
      1,
      "the API server allocated a ClusterIP",
    );
    assert.deepEqual(snap.networkPolicies.get(`${ns}/deny`)!.policyTypes, ["Ingress", "Egress"]);
    assert.equal(snap.endpointSlices.get(`${ns}/web-1`)!.serviceName, "web");

    await api.setPodStatus(ns, "web", { podIP: "10.244.1.5", hostIP: "10.250.0.1", phase: "Running" });
    await until(src, "pod IP", (s) => s.pods.get(`${ns}/web`)?.podIPs[0] === "10.244.1.5");
    await api.kubectl(["label", "pod", "-n", ns, "web", "tier=front"]);
    await until(src, "pod label", (s) => s.pods.get(`${ns}/web`)?.labels.tier === "front");
    await api.kubectl(["delete", "networkpolicy", "-n", ns, "deny"]);
    await until(src, "policy deleted", (s) => !s.networkPolicies.has(`${ns}/deny`));
    // Revisions only grow, and bursts were coalesced: far fewer snapshots than API events.
    assert.deepEqual(changes, [...changes].sort((a, b) => a - b));
  } finally {
    await src.close();
  }
});

Deno.test("api source: survives an API server restart and misses nothing done around it", opts, async () => {
  // A private server: restarting the shared one would disturb other suites.
  await using api = await startApiServer();
  const src = await apiSource({ kubeconfig: api.kubeconfigPath, backoff: { initialMs: 2000, maxMs: 4000 } });
  const rns = `${ns}-r`;
  try {
    await src.ready;
    await api.kubectl(["create", "namespace", rns]);
    await api.kubectl(["create", "configmap", "-n", rns, "unrelated", "--from-literal=a=b"]);
    await api.kubectl(["run", "-n", rns, "before", "--image=x", "--restart=Never"]);
    await until(src, "pod before", (s) => s.pods.has(`${rns}/before`));

    await api.restart({ downMs: 1500 });
    // The watch is still backing off: these happen while we are disconnected.
    await api.kubectl(["delete", "pod", "-n", rns, "before", "--wait=false"]);
    await api.kubectl(["run", "-n", rns, "after", "--image=x", "--restart=Never", "--labels=phase=after"]);
    await until(
      src,
      "changes made during the outage",
      (s) => !s.pods.has(`${rns}/before`) && s.pods.get(`${rns}/after`)?.labels.phase === "after",
      40_000,
    );
  } finally {
    await src.close();
  }
});
