/**
 * A generated cluster at the issues' scale (10,000 pods in 500 namespaces, 2,000 policies of four
 * usual shapes, 10,000 services × 5 endpoints, 10 nodes), as Kubernetes API objects, for
 * benchmarks that run the real agent on `--manifests`.
 * Addresses (data only): pods 10.200.0.0/14, endpoints 10.204.0.0/14, VIPs 10.96.0.0/12.
 *
 * @module
 */

export interface Scale {
  pods: number;
  namespaces: number;
  policies: number;
  services: number;
}

const ip = (base: number, i: number) =>
  `10.${base + Math.floor(i / 65536)}.${Math.floor(i / 256) % 256}.${i % 256}`;
const vip = (i: number) => `10.${96 + Math.floor(i / 65536)}.${Math.floor(i / 256) % 256}.${i % 256}`;

export const APPS = ["frontend", "backend", "db", "cache", "worker"];

/**
 * Pod i's `app` label: the i-th pod of each namespace cycles through every app, whatever the
 * namespace count (by `i % APPS.length` alone, a namespace count that is a multiple of 5 gave
 * each namespace one app, and every frontend→backend peer set was empty).
 */
export function podApp(i: number, namespaces: number): string {
  return APPS[Math.floor(i / namespaces) % APPS.length];
}

/** Pod i's node index. */
export function podNode(i: number, nodes: number): number {
  return i % nodes;
}

/** Pod i's IP. */
export function podIp(i: number): string {
  return ip(200, i + 256);
}

/** The cluster as API objects (a `kind: List`'s items). */
export function generatedCluster(
  { pods: PODS, namespaces: NAMESPACES, policies: POLICIES, services: SERVICES }: Scale,
): unknown[] {
  const items: unknown[] = [];
  const nodes = 10;
  for (let n = 0; n < nodes; n++) {
    items.push({
      apiVersion: "v1",
      kind: "Node",
      metadata: { name: `node-${n}` },
      spec: { podCIDR: `10.244.${n}.0/24` },
      status: { addresses: [{ type: "InternalIP", address: `192.0.2.${n + 1}` }] },
    });
  }
  for (let n = 0; n < NAMESPACES; n++) {
    items.push({
      apiVersion: "v1",
      kind: "Namespace",
      metadata: { name: `ns-${n}`, labels: { team: `t${n % 25}` } },
    });
  }
  for (let i = 0; i < PODS; i++) {
    items.push({
      apiVersion: "v1",
      kind: "Pod",
      metadata: {
        name: `pod-${i}`,
        namespace: `ns-${i % NAMESPACES}`,
        labels: { app: podApp(i, NAMESPACES) },
      },
      spec: {
        nodeName: `node-${podNode(i, nodes)}`,
        containers: [{ name: "c", ports: [{ name: "http", containerPort: 8080 + (i % 3) }] }],
      },
      status: {
        phase: "Running",
        hostIP: `192.0.2.${podNode(i, nodes) + 1}`,
        podIP: podIp(i),
      },
    });
  }
  for (let k = 0; k < POLICIES; k++) {
    const ns = `ns-${k % NAMESPACES}`;
    const spec = [
      { podSelector: { matchLabels: { app: "db" } }, policyTypes: ["Ingress"] },
      {
        podSelector: { matchLabels: { app: "backend" } },
        ingress: [{ from: [{ podSelector: { matchLabels: { app: "frontend" } } }], ports: [{ port: 8080 }] }],
      },
      {
        podSelector: { matchLabels: { app: "frontend" } },
        ingress: [{
          from: [{ namespaceSelector: { matchLabels: { team: `t${k % 25}` } } }],
          ports: [{ port: "http" }],
        }],
      },
      {
        podSelector: { matchExpressions: [{ key: "app", operator: "In", values: ["worker", "cache"] }] },
        policyTypes: ["Egress"],
        egress: [{ to: [{ ipBlock: { cidr: "10.0.0.0/8", except: ["10.99.0.0/16"] } }] }],
      },
    ][Math.floor(k / NAMESPACES) % 4];
    items.push({
      apiVersion: "networking.k8s.io/v1",
      kind: "NetworkPolicy",
      metadata: { name: `p-${k}`, namespace: ns },
      spec,
    });
  }
  for (let s = 0; s < SERVICES; s++) {
    const ns = `ns-${s % NAMESPACES}`;
    items.push({
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: `svc-${s}`, namespace: ns },
      spec: { clusterIP: vip(s + 256), ports: [{ name: "http", port: 80, targetPort: 8080 }] },
    });
    items.push({
      apiVersion: "discovery.k8s.io/v1",
      kind: "EndpointSlice",
      metadata: { name: `svc-${s}-a`, namespace: ns, labels: { "kubernetes.io/service-name": `svc-${s}` } },
      addressType: "IPv4",
      endpoints: Array.from({ length: 5 }, (_, e) => ({
        addresses: [ip(204, s * 5 + e)],
        conditions: { ready: true },
        nodeName: `node-${e % 10}`,
      })),
      ports: [{ name: "http", port: 8080, protocol: "TCP" }],
    });
  }
  return items;
}
