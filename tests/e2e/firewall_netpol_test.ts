/**
 * End-to-end NetworkPolicy suite: two lab nodes, pods in three namespaces serving TCP 80, 8080,
 * 9090 and UDP 53, policies created through the real API server with kubectl, one firewall
 * controller per node fed by the API watch source (running in this process, with every kernel
 * command executed inside its node's namespace). For each scenario the expected allow/deny table
 * of every (source pod, destination pod, port) is computed by the independent reference
 * evaluator (firewall_reference.ts) and every triple is probed with a real connection; on a
 * mismatch the whole table is printed. `kube-router trace` is asked about every probe too (from
 * the snapshot the controllers planned from) and must give the verdict the real packet got.
 *
 * Node traffic is checked as upstream defines it: a node always reaches its own pods, other
 * nodes are outside addresses, and a pod's traffic to a node is egress.
 *
 * Bad input the API server rejects (unparsable CIDR, unknown protocol) cannot be created through
 * kubectl; the plan's unit tests cover it. The named port that resolves nowhere is tested here.
 *
 * Runs once with the iptables backend and once with `--use-nftables-for-netpol`.
 *
 * Addresses (lab conventions): nodes 10.250.0.1-2, node-1 pods 10.251.1.0/24, node-2 pods
 * 10.251.2.0/24. Kubernetes names carry a random suffix so the shared API server's other users
 * are not disturbed; namespace labels use the key `fwtest-team`.
 */
import assert from "node:assert/strict";
import { getLogger } from "@logtape/logtape";
import { defaultOptions } from "../../options/mod.ts";
import { CommandRunner } from "../../kernel/exec.ts";
import { MetricsRegistry } from "../../observe/metrics.ts";
import { runController } from "../../controllers/runner.ts";
import { FirewallController } from "../../controllers/firewall/controller.ts";
import { apiSource } from "../../watch/mod.ts";
import type { SnapshotSource } from "../../watch/mod.ts";
import type {
  ClusterSnapshot,
  ContainerPort,
  LabelSelector,
  NamespaceInfo,
  NetworkPolicyInfo,
  NetworkPolicyPeer,
  NetworkPolicyRule,
  PodInfo,
} from "../../watch/types.ts";
import { type ApiServer, sharedApiServer } from "../fixtures/apiserver.ts";
import { createLab, type Lab } from "../fixtures/lab.ts";
import { connectionAllowed, type RefCluster } from "./firewall_reference.ts";
import { formatTrace, traceConnection } from "../../controllers/trace/trace.ts";

const PORTS: Array<{ proto: "tcp" | "udp"; port: number }> = [
  { proto: "tcp", port: 80 },
  { proto: "tcp", port: 8080 },
  { proto: "tcp", port: 9090 },
  { proto: "udp", port: 53 },
];

interface PodDef {
  short: string;
  ns: "a" | "b" | "c";
  labNode: "n1" | "n2";
  labels: Record<string, string>;
  ports: Array<[string, number, "TCP" | "UDP"]>;
}

const PODS: PodDef[] = [
  {
    short: "web1",
    ns: "a",
    labNode: "n1",
    labels: { app: "web" },
    ports: [["http", 80, "TCP"], ["dns", 53, "UDP"]],
  },
  { short: "cli1", ns: "a", labNode: "n1", labels: { app: "cli" }, ports: [] },
  { short: "web2", ns: "b", labNode: "n1", labels: { app: "web" }, ports: [["http", 8080, "TCP"]] },
  { short: "cli2", ns: "b", labNode: "n2", labels: { app: "cli", role: "admin" }, ports: [] },
  { short: "db", ns: "c", labNode: "n2", labels: { app: "db" }, ports: [["http", 9090, "TCP"]] },
  { short: "web3", ns: "a", labNode: "n2", labels: { app: "web" }, ports: [["http", 8080, "TCP"]] },
];

const sel = (
  matchLabels: Record<string, string> = {},
  matchExpressions: LabelSelector["matchExpressions"] = [],
) => ({
  matchLabels,
  matchExpressions,
});

function selectorYaml(s: LabelSelector): unknown {
  const out: Record<string, unknown> = {};
  if (Object.keys(s.matchLabels).length) out.matchLabels = s.matchLabels;
  if (s.matchExpressions.length) out.matchExpressions = s.matchExpressions;
  return out;
}

function peerYaml(p: NetworkPolicyPeer): unknown {
  const out: Record<string, unknown> = {};
  if (p.podSelector) out.podSelector = selectorYaml(p.podSelector);
  if (p.namespaceSelector) out.namespaceSelector = selectorYaml(p.namespaceSelector);
  if (p.ipBlock) {
    out.ipBlock = { cidr: p.ipBlock.cidr, ...(p.ipBlock.except.length ? { except: p.ipBlock.except } : {}) };
  }
  return out;
}

function ruleYaml(r: NetworkPolicyRule, dir: "from" | "to"): unknown {
  const out: Record<string, unknown> = {};
  if (r.peers.length) out[dir] = r.peers.map(peerYaml);
  if (r.ports.length) out.ports = r.ports;
  return out;
}

/** JSON is valid YAML: kubectl apply -f - takes it. */
function policyJson(p: NetworkPolicyInfo, nsName: (n: string) => string): string {
  return JSON.stringify({
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: { name: p.name, namespace: nsName(p.namespace) },
    spec: {
      podSelector: selectorYaml(p.podSelector),
      policyTypes: p.policyTypes,
      ingress: p.ingress.map((r) => ruleYaml(r, "from")),
      egress: p.egress.map((r) => ruleYaml(r, "to")),
    },
  });
}

function pol(
  ns: string,
  name: string,
  o: {
    podSelector?: LabelSelector;
    types?: Array<"Ingress" | "Egress">;
    ingress?: NetworkPolicyRule[];
    egress?: NetworkPolicyRule[];
  },
): NetworkPolicyInfo {
  return {
    namespace: ns,
    name,
    podSelector: o.podSelector ?? sel(),
    policyTypes: o.types ?? (o.egress?.length ? ["Ingress", "Egress"] : ["Ingress"]),
    ingress: o.ingress ?? [],
    egress: o.egress ?? [],
  };
}

class World {
  readonly suffix = crypto.randomUUID().slice(0, 6);
  readonly ref: RefCluster = { pods: [], namespaces: [], policies: [] };
  readonly nodeName: Record<string, string> = {};
  readonly podByShort = new Map<string, PodInfo>();
  constructor(readonly api: ApiServer, readonly lab: Lab) {}

  ns(short: string): string {
    return `fw${this.suffix}-${short}`;
  }

  async kubectl(args: string[], stdin?: string): Promise<void> {
    await this.api.kubectl(args, stdin === undefined ? undefined : { stdin });
  }

  async setup(): Promise<void> {
    const teams: Record<string, string> = { a: "x", b: "y", c: "y" };
    for (const short of ["a", "b", "c"]) {
      const info: NamespaceInfo = { name: short, labels: { "fwtest-team": teams[short] } };
      this.ref.namespaces.push(info);
      await this.kubectl(
        ["apply", "-f", "-"],
        JSON.stringify({
          apiVersion: "v1",
          kind: "Namespace",
          metadata: { name: this.ns(short), labels: info.labels },
        }),
      );
    }
    for (const n of ["n1", "n2"]) {
      this.nodeName[n] = `fw${this.suffix}-${n}`;
      await this.lab.serve(n, { tcp: [80] });
    }
    for (const d of PODS) {
      const labPod = await this.lab.addPod(d.labNode, { name: d.short });
      await this.lab.serve(d.short, {
        tcp: PORTS.filter((p) => p.proto === "tcp").map((p) => p.port),
        udp: [53],
      });
      const ports: ContainerPort[] = d.ports.map(([name, containerPort, protocol]) => ({
        name,
        containerPort,
        protocol,
      }));
      const info: PodInfo = {
        namespace: d.ns,
        name: d.short,
        uid: d.short,
        labels: { ...d.labels },
        annotations: {},
        nodeName: this.nodeName[d.labNode],
        hostIP: this.lab.node(d.labNode).ip,
        podIPs: [labPod.ip],
        hostNetwork: false,
        phase: "Running",
        containerPorts: ports,
        deletionTimestamp: null,
        terminationGracePeriodSeconds: 0,
      };
      this.ref.pods.push(info);
      this.podByShort.set(d.short, info);
      await this.createPod(info);
    }
  }

  /** Creates the pod object and reports it Running with its IP (no kubelet here). */
  async createPod(p: PodInfo): Promise<void> {
    await this.kubectl(
      ["apply", "-f", "-"],
      JSON.stringify({
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: p.name, namespace: this.ns(p.namespace), labels: p.labels },
        spec: {
          nodeName: p.nodeName,
          containers: [{
            name: "c",
            image: "none",
            ports: p.containerPorts.map((c) => ({
              name: c.name,
              containerPort: c.containerPort,
              protocol: c.protocol,
            })),
          }],
        },
      }),
    );
    await this.api.setPodStatus(this.ns(p.namespace), p.name, {
      podIP: p.podIPs[0],
      hostIP: p.hostIP,
      phase: "Running",
    });
  }

  async applyPolicy(p: NetworkPolicyInfo): Promise<void> {
    this.ref.policies = this.ref.policies.filter((x) => !(x.namespace === p.namespace && x.name === p.name));
    this.ref.policies.push(p);
    await this.kubectl(["apply", "-f", "-"], policyJson(p, (n) => this.ns(n)));
  }

  async deletePolicy(ns: string, name: string): Promise<void> {
    this.ref.policies = this.ref.policies.filter((x) => !(x.namespace === ns && x.name === name));
    await this.kubectl(["delete", "networkpolicy", "-n", this.ns(ns), name]);
  }

  async deleteAllPolicies(): Promise<void> {
    for (const p of [...this.ref.policies]) await this.deletePolicy(p.namespace, p.name);
  }

  async labelPod(short: string, key: string, value: string | null): Promise<void> {
    const p = this.podByShort.get(short)!;
    if (value === null) delete p.labels[key];
    else p.labels[key] = value;
    await this.kubectl([
      "label",
      "pod",
      "-n",
      this.ns(p.namespace),
      short,
      "--overwrite",
      value === null ? `${key}-` : `${key}=${value}`,
    ]);
  }

  async cleanup(): Promise<void> {
    for (const short of ["a", "b", "c"]) {
      await this.api.kubectl(["delete", "namespace", this.ns(short), "--wait=false"], { okCodes: [0, 1] });
    }
  }
}

/** Whether the snapshot agrees with the reference model on everything the firewall reads. */
function snapshotMatches(src: SnapshotSource, w: World): boolean {
  const s = src.current();
  for (const n of w.ref.namespaces) {
    if (s.namespaces.get(w.ns(n.name))?.labels["fwtest-team"] !== n.labels["fwtest-team"]) return false;
  }
  for (const p of w.ref.pods) {
    const got = s.pods.get(`${w.ns(p.namespace)}/${p.name}`);
    if (!got || got.podIPs[0] !== p.podIPs[0] || got.phase !== "Running") return false;
    if (
      JSON.stringify(Object.entries(got.labels).sort()) !== JSON.stringify(Object.entries(p.labels).sort())
    ) return false;
  }
  const want = new Set(
    w.ref.policies.map((p) =>
      `${w.ns(p.namespace)}/${p.name}/${JSON.stringify(p.ingress)}/${JSON.stringify(p.egress)}`
    ),
  );
  const ours = [...s.networkPolicies.values()].filter((p) => p.namespace.startsWith(`fw${w.suffix}-`));
  if (ours.length !== want.size) return false;
  for (const p of ours) {
    // Compare the rules as the reference holds them (the converter fills defaults the same way).
    const ref = w.ref.policies.find((r) => w.ns(r.namespace) === p.namespace && r.name === p.name);
    if (!ref) return false;
    if (JSON.stringify(normRules(ref.ingress)) !== JSON.stringify(normRules(p.ingress))) return false;
    if (JSON.stringify(normRules(ref.egress)) !== JSON.stringify(normRules(p.egress))) return false;
    if (JSON.stringify(ref.podSelector) !== JSON.stringify(p.podSelector)) return false;
  }
  return true;
}

function normRules(rules: NetworkPolicyRule[]): unknown {
  return rules.map((r) => ({
    n: r.peers.length,
    ports: r.ports.map((p) => `${p.protocol}/${p.port}/${p.endPort ?? ""}`),
  }));
}

async function until(what: string, fn: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function converge(w: World, src: SnapshotSource, ctrls: FirewallController[]): Promise<void> {
  await until("the snapshot to reflect the scenario", () => snapshotMatches(src, w));
  const rev = src.current().revision;
  await until(
    `every controller to apply revision ${rev}`,
    () => ctrls.every((c) => c.appliedRevision >= rev),
  );
}

/**
 * `kube-router trace`'s verdict for one probe, from the same snapshot the controllers planned
 * from: it must equal what the real packet did.
 */
function traced(
  snap: ClusterSnapshot,
  from: string,
  to: string,
  proto: "tcp" | "udp",
  port: number,
): boolean {
  return traceReport(snap, from, to, proto, port).verdict === "allowed";
}

function traceReport(snap: ClusterSnapshot, from: string, to: string, proto: "tcp" | "udp", port: number) {
  return traceConnection(snap, defaultOptions(), { from, to, protocol: proto, port });
}

/**
 * How trace is told about a pod: by name, as an operator would (the shared API server may hold
 * another run's objects with the same lab addresses).
 */
function podRef(w: World, p: PodInfo): string {
  return `${w.ns(p.namespace)}/${p.name}`;
}

/** Probes every triple; returns the mismatches and the printed table. Trace must agree with every probe. */
async function checkTable(w: World, label: string, snap: ClusterSnapshot): Promise<number> {
  const triples: Array<{ src: PodInfo; dst: PodInfo; proto: "tcp" | "udp"; port: number }> = [];
  for (const src of w.ref.pods) {
    for (const dst of w.ref.pods) {
      if (src === dst) continue;
      for (const p of PORTS) triples.push({ src, dst, ...p });
    }
  }
  const results = await w.lab.probeMany(
    triples.map((t) => ({
      from: t.src.name,
      proto: t.proto,
      ip: t.dst.podIPs[0],
      port: t.port,
      timeoutMs: 1500,
    })),
  );
  const rows: string[] = [];
  let bad = 0;
  triples.forEach((t, i) => {
    const want = connectionAllowed(w.ref, t.src, t.dst, t.proto.toUpperCase(), t.port);
    const got = results[i].status === "connected";
    const tr = traced(snap, podRef(w, t.src), podRef(w, t.dst), t.proto, t.port);
    const mark = want !== got ? "X" : tr !== got ? "T" : " ";
    if (want !== got || tr !== got) bad++;
    rows.push(
      `${mark} ${t.src.namespace}/${t.src.name} -> ${t.dst.namespace}/${t.dst.name} ${t.proto}/${t.port}: want ${
        want ? "allow" : "deny "
      } got ${results[i].status}, trace ${tr ? "allow" : "deny"}`,
    );
  });
  if (bad) {
    // The first disagreement with trace, in full, to show where its model and the kernel part.
    const first = triples.find((t, i) =>
      traced(snap, podRef(w, t.src), podRef(w, t.dst), t.proto, t.port) !==
        (results[i].status === "connected")
    );
    const detail = first
      ? `\n${
        formatTrace(traceReport(snap, podRef(w, first.src), podRef(w, first.dst), first.proto, first.port))
      }`
      : "";
    throw new Error(
      `${label}: ${bad} of ${triples.length} probes differ from the reference (X) or from trace (T)\n${
        rows.join("\n")
      }${detail}`,
    );
  }
  return triples.filter((_, i) => results[i].status !== "connected").length;
}

for (const backend of ["iptables", "nftables"] as const) {
  Deno.test({
    name: `NetworkPolicy e2e (${backend}): every scenario's truth table matches real connections`,
    sanitizeResources: false,
    sanitizeOps: false,
    fn: async (t) => {
      const api = await sharedApiServer();
      const lab = await createLab({ nodes: [{ name: "n1" }, { name: "n2" }], prefix: "fw" });
      const w = new World(api, lab);
      const abort = new AbortController();
      let src: SnapshotSource | undefined;
      try {
        await w.setup();
        src = await apiSource({ kubeconfig: api.kubeconfigPath, backoff: { initialMs: 200, maxMs: 1000 } });
        await src.ready;
        const ctrls: FirewallController[] = [];
        for (const n of ["n1", "n2"] as const) {
          const options = {
            ...defaultOptions(),
            iptablesSyncPeriod: 2000,
            useNftablesForNetpol: backend === "nftables",
          };
          const c = new FirewallController({
            options,
            runner: new CommandRunner(lab.node(n).netns),
            nodeName: w.nodeName[n],
            log: getLogger(["kube-router", "firewall", n]),
            metrics: new MetricsRegistry(),
            dryRun: false,
          });
          ctrls.push(c);
          runController(c, src, { signal: abort.signal, minIntervalMs: 50 });
        }
        const s = src;
        const step = async (name: string, change: () => Promise<void>) => {
          await t.step(name, async () => {
            await change();
            await converge(w, s, ctrls);
            const denied = await checkTable(w, name, s.current());
            // Every scenario but the first denies something: a vacuous table proves nothing.
            if (w.ref.policies.length > 0) assert.ok(denied > 0, `${name}: nothing was denied`);
            console.log(
              `${name}: ${denied} denied of ${w.ref.pods.length * (w.ref.pods.length - 1) * PORTS.length}`,
            );
          });
        };

        await step("no policy: everything open", async () => {});
        await step(
          "deny-all ingress in namespace a",
          () => w.applyPolicy(pol("a", "deny-in", { types: ["Ingress"] })),
        );
        // Nodes, as upstream: a node always reaches its own pods (addrtype LOCAL); other nodes are
        // outside addresses that only an ipBlock admits; a pod's traffic to a node is egress.
        const nodeChecks = async (label: string, checks: Array<[string, string, boolean]>) => {
          const rows: string[] = [];
          for (const [from, to, want] of checks) {
            const ip = w.podByShort.get(to)?.podIPs[0] ?? lab.node(to).ip;
            const r = await lab.tcpProbe(from, ip, 80, 1500);
            if ((r.status === "connected") !== want) {
              rows.push(`${from} -> ${to}:80 want ${want} got ${r.status}`);
            }
            const ref = (x: string) => {
              const p = w.podByShort.get(x);
              return p ? podRef(w, p) : `node/${w.nodeName[x]}`;
            };
            const tr = traced(s.current(), ref(from), ref(to), "tcp", 80);
            if (tr !== (r.status === "connected")) {
              rows.push(`${from} -> ${to}:80 got ${r.status}, trace says ${tr ? "allow" : "deny"}`);
            }
          }
          assert.deepEqual(rows, [], label);
        };
        await t.step(
          "nodes under deny-all ingress: own node allowed, other node denied",
          () =>
            nodeChecks("deny-all ingress", [
              ["n1", "web1", true],
              ["n2", "web1", false],
              ["n2", "web3", true],
              ["n1", "web3", false],
              ["n1", "web2", true], // namespace b: no policy
            ]),
        );
        await step("deny-all egress in namespace b", async () => {
          await w.deleteAllPolicies();
          await w.applyPolicy(pol("b", "deny-out", { types: ["Egress"] }));
        });
        await t.step(
          "pods → nodes under deny-all egress: denied for selected pods only",
          () =>
            nodeChecks("deny-all egress", [
              ["web2", "n1", false], // b/web2 on n1 → its own node
              ["cli2", "n1", false], // b/cli2 on n2 → the other node
              ["web1", "n1", true], // a/web1: no egress policy
              ["db", "n2", true],
            ]),
        );
        await step("allow from a namespace (fwtest-team=y)", async () => {
          await w.deleteAllPolicies();
          await w.applyPolicy(pol("a", "from-team-y", {
            podSelector: sel({ app: "web" }),
            ingress: [{ peers: [{ namespaceSelector: sel({ "fwtest-team": "y" }) }], ports: [] }],
          }));
        });
        await step("allow from labelled pods in a labelled namespace (matchExpressions)", async () => {
          await w.deleteAllPolicies();
          await w.applyPolicy(pol("a", "cli-in-team-y", {
            podSelector: sel({}, [{ key: "app", operator: "In", values: ["web"] }]),
            ingress: [{
              peers: [{
                namespaceSelector: sel({ "fwtest-team": "y" }),
                podSelector: sel({}, [{ key: "role", operator: "Exists", values: [] }]),
              }],
              ports: [{ protocol: "TCP", port: 80 }, { protocol: "UDP", port: 53 }],
            }],
          }));
        });
        await step("ipBlock with except", async () => {
          await w.deleteAllPolicies();
          const n2 = lab.node("n2").podCidr;
          const db = w.podByShort.get("db")!.podIPs[0];
          await w.applyPolicy(pol("a", "ipblock", {
            podSelector: sel({ app: "web" }),
            ingress: [{
              peers: [{ ipBlock: { cidr: "10.251.0.0/16", except: [n2] } }, {
                ipBlock: { cidr: `${db}/32`, except: [] },
              }],
              ports: [],
            }],
          }));
        });
        await step("named ports resolved per destination pod", async () => {
          await w.deleteAllPolicies();
          await w.applyPolicy(pol("a", "named", {
            podSelector: sel({ app: "web" }),
            ingress: [{ peers: [], ports: [{ protocol: "TCP", port: "http" }] }],
          }));
          await w.applyPolicy(pol("b", "egress-named", {
            podSelector: sel({ app: "cli" }),
            types: ["Egress"],
            egress: [{
              peers: [{ namespaceSelector: sel() }],
              ports: [{ protocol: "TCP", port: "http" }, { protocol: "UDP", port: "dns" }],
            }],
          }));
        });
        await step("endPort ranges", async () => {
          await w.deleteAllPolicies();
          await w.applyPolicy(pol("c", "range", {
            podSelector: sel(),
            ingress: [{
              peers: [],
              ports: [{ protocol: "TCP", port: 8000, endPort: 8085 }, {
                protocol: "UDP",
                port: 50,
                endPort: 60,
              }],
            }],
          }));
        });
        await step("multiple policies on one pod add up", async () => {
          await w.deleteAllPolicies();
          await w.applyPolicy(pol("a", "p1", {
            podSelector: sel({ app: "web" }),
            ingress: [{
              peers: [{ podSelector: sel({ app: "cli" }) }],
              ports: [{ protocol: "TCP", port: 80 }],
            }],
          }));
          await w.applyPolicy(pol("a", "p2", {
            podSelector: sel({ app: "web" }),
            ingress: [{
              peers: [{ namespaceSelector: sel({ "fwtest-team": "y" }) }],
              ports: [{ protocol: "TCP", port: 9090 }],
            }],
          }));
          await w.applyPolicy(pol("a", "p3", {
            podSelector: sel({ app: "web" }),
            types: ["Egress"],
            egress: [{
              peers: [{ podSelector: sel({ app: "db" }), namespaceSelector: sel({ "fwtest-team": "y" }) }],
              ports: [],
            }],
          }));
        });
        await t.step(
          "policy update while traffic flows: connections allowed before and after never fail",
          async () => {
            const next = pol("a", "p1", {
              podSelector: sel({ app: "web" }),
              ingress: [{
                peers: [{ podSelector: sel({ app: "cli" }) }],
                ports: [{ protocol: "TCP", port: 8080 }],
              }],
            });
            const after: RefCluster = {
              ...w.ref,
              policies: [...w.ref.policies.filter((p) => p.name !== "p1"), next],
            };
            const stable = w.ref.pods.flatMap((a) =>
              w.ref.pods.filter((b) => b !== a).flatMap((b) =>
                PORTS.filter((p) => p.proto === "tcp").filter((p) =>
                  connectionAllowed(w.ref, a, b, "TCP", p.port) &&
                  connectionAllowed(after, a, b, "TCP", p.port)
                ).map((p) => ({
                  from: a.name,
                  proto: "tcp" as const,
                  ip: b.podIPs[0],
                  port: p.port,
                  timeoutMs: 1500,
                }))
              )
            );
            let flowing = true;
            const failures: string[] = [];
            let rounds = 0;
            const traffic = (async () => {
              while (flowing) {
                const rs = await lab.probeMany(stable);
                rs.forEach((r, i) => {
                  if (r.status !== "connected") {
                    failures.push(`${stable[i].from} -> ${stable[i].ip}:${stable[i].port} ${r.status}`);
                  }
                });
                rounds++;
              }
            })();
            try {
              await w.applyPolicy(next);
              await converge(w, s, ctrls);
            } finally {
              flowing = false;
              await traffic;
            }
            assert.deepEqual(
              failures,
              [],
              `connections failed during the update (${rounds} rounds of ${stable.length})`,
            );
            assert.ok(rounds >= 1);
            await checkTable(w, "after the update", s.current());
          },
        );
        await step("policy delete", () => w.deletePolicy("a", "p3"));
        await step("pod label changes", async () => {
          await w.labelPod("web3", "app", "db"); // no longer selected by a's policies
          await w.labelPod("cli2", "app", "web"); // no longer a cli peer
        });
        await step("namespace label change", async () => {
          const c = w.ref.namespaces.find((n) => n.name === "c")!;
          c.labels["fwtest-team"] = "x"; // namespace c leaves team y: its pods lose p2's allowance
          await w.kubectl(["label", "namespace", w.ns("c"), "--overwrite", "fwtest-team=x"]);
        });
        await step("pod IP change", async () => {
          const p = w.podByShort.get("web2")!;
          const n1 = lab.node("n1");
          const old = p.podIPs[0];
          const fresh = n1.podCidr.replace(/\.0\/\d+$/, ".77");
          const len = n1.podCidr.split("/")[1];
          // Deleting the primary address first: it would take a secondary of the same subnet along.
          await lab.exec("web2", ["ip", "addr", "del", `${old}/${len}`, "dev", "eth0"]);
          await lab.exec("web2", ["ip", "addr", "add", `${fresh}/${len}`, "dev", "eth0"]);
          await lab.exec("web2", ["ip", "route", "replace", "default", "via", n1.podGateway, "dev", "eth0"]);
          // A pod's IP changes when it is recreated: delete it, then create it again with the new IP.
          await w.kubectl(["delete", "pod", "-n", w.ns(p.namespace), p.name, "--grace-period=0", "--force"]);
          p.podIPs = [fresh];
          await w.createPod(p);
        });
        await step("unresolvable named port: that port allows nothing, the rest still enforced", async () => {
          await w.deleteAllPolicies();
          await w.applyPolicy(pol("a", "bad-named", {
            podSelector: sel(),
            ingress: [{
              peers: [],
              ports: [{ protocol: "TCP", port: "no-such-port" }, { protocol: "TCP", port: 9090 }],
            }],
          }));
        });
        await step("hand-deleted rules are repaired on the periodic resync", async () => {
          const n1 = lab.node("n1").netns;
          const cmd = backend === "iptables"
            ? ["iptables", "-F", "KUBE-ROUTER-FORWARD"]
            : ["nft", "flush", "chain", "ip", "kube-router-filter-ipv4", "KUBE-ROUTER-FORWARD"];
          await new CommandRunner(n1).run(cmd);
          // The next periodic sync (2 s) notices the drift and repairs it.
          const before = ctrls[0].appliedRevision;
          await until("a periodic resync", async () => {
            const r = await new CommandRunner(n1).run(
              backend === "iptables"
                ? ["iptables", "-S", "KUBE-ROUTER-FORWARD"]
                : ["nft", "list", "chain", "ip", "kube-router-filter-ipv4", "KUBE-ROUTER-FORWARD"],
            );
            return r.stdout.includes("KUBE-POD-FW-");
          }, 10_000);
          assert.equal(ctrls[0].appliedRevision, before);
        });
      } finally {
        abort.abort();
        await src?.close();
        await w.cleanup().catch(() => {});
        await lab.teardown();
      }
    },
  });
}
