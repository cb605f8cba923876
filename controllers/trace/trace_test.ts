/**
 * `trace` over literal snapshots: policy verdicts across two nodes agree with the independent
 * reference evaluator (property test); services resolve to their backends; bad names are input
 * errors. Addresses: nodes 192.0.2.1-2, pods 10.201.1.0/24 (node-a) and 10.201.2.0/24 (node-b),
 * ClusterIPs 10.96.0.0/12.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { defaultOptions } from "../../options/mod.ts";
import type { LabelSelector, NetworkPolicyPeer, NetworkPolicyPort } from "../../watch/types.ts";
import { ep, slice, svc } from "../proxy/testing.ts";
import { connectionAllowed } from "../../tests/e2e/firewall_reference.ts";
import { node, ns, pod, policy, sel, snapshot } from "../firewall/testing.ts";
import { formatTrace, traceConnection, TraceInputError } from "./trace.ts";

const NODES = [
  node("node-a", "192.0.2.1", ["10.201.1.0/24"]),
  node("node-b", "192.0.2.2", ["10.201.2.0/24"]),
];
const opts = () => ({ ...defaultOptions(), enableIpv6: false });

const LABELS = ["x", "y"];
const arbSelector = fc.record({
  matchLabels: fc.dictionary(fc.constantFrom("app", "tier"), fc.constantFrom(...LABELS), { maxKeys: 1 }),
  matchExpressions: fc.constant([] as LabelSelector["matchExpressions"]),
});
const arbPeer: fc.Arbitrary<NetworkPolicyPeer> = fc.oneof(
  fc.record({ podSelector: arbSelector }),
  fc.record({ namespaceSelector: arbSelector }),
  fc.record({
    ipBlock: fc.record({
      cidr: fc.constantFrom("10.201.1.0/24", "10.201.2.0/24", "0.0.0.0/0"),
      except: fc.subarray(["10.201.1.0/30", "10.201.2.0/30"]),
    }),
  }),
);
const arbPort: fc.Arbitrary<NetworkPolicyPort> = fc.oneof(
  fc.record({ protocol: fc.constantFrom("TCP" as const, "UDP" as const), port: fc.constantFrom(80, 53) }),
  fc.record({ protocol: fc.constant("TCP" as const), port: fc.constant("http") }),
);
const arbPolicy = fc.record({
  namespace: fc.constantFrom("a", "b"),
  podSelector: arbSelector,
  types: fc.constantFrom(["Ingress"], ["Egress"], ["Ingress", "Egress"]) as fc.Arbitrary<
    Array<"Ingress" | "Egress">
  >,
  ingress: fc.array(
    fc.record({ peers: fc.array(arbPeer, { maxLength: 2 }), ports: fc.array(arbPort, { maxLength: 1 }) }),
    {
      maxLength: 2,
    },
  ),
  egress: fc.array(
    fc.record({ peers: fc.array(arbPeer, { maxLength: 2 }), ports: fc.array(arbPort, { maxLength: 1 }) }),
    {
      maxLength: 2,
    },
  ),
});

Deno.test("property: trace's verdict across two nodes equals the reference evaluator", () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.record({
          ns: fc.constantFrom("a", "b"),
          labels: fc.dictionary(fc.constantFrom("app", "tier"), fc.constantFrom(...LABELS), { maxKeys: 2 }),
          onB: fc.boolean(),
        }),
        { minLength: 2, maxLength: 4 },
      ),
      fc.array(arbPolicy, { maxLength: 3 }),
      (specs, pols) => {
        const counters = { a: 2, b: 2 };
        const pods = specs.map((p, i) => {
          const n = p.onB ? "b" : "a";
          const ip = `10.201.${p.onB ? 2 : 1}.${counters[n]++}`;
          return pod(p.ns, `p${i}`, ip, p.labels, {
            nodeName: `node-${n}`,
            hostIP: p.onB ? "192.0.2.2" : "192.0.2.1",
            ports: [["http", 80], ["dns", 53, "UDP"]],
          });
        });
        const policies = pols.map((p, i) =>
          policy(p.namespace, `np${i}`, {
            podSelector: p.podSelector,
            policyTypes: p.types,
            ingress: p.ingress,
            egress: p.egress,
          })
        );
        const namespaces = [ns("a", { team: "x" }), ns("b")];
        const snap = snapshot({ nodes: NODES, namespaces, pods, policies });
        for (const src of pods) {
          for (const dst of pods) {
            if (src === dst) continue;
            for (const [proto, port] of [["tcp", 80], ["udp", 53], ["tcp", 90]] as const) {
              const want = connectionAllowed(
                { pods, namespaces, policies },
                src,
                dst,
                proto.toUpperCase(),
                port,
              );
              const r = traceConnection(snap, opts(), {
                from: `${src.namespace}/${src.name}`,
                to: `${dst.namespace}/${dst.name}`,
                port,
                protocol: proto,
              });
              assert.equal(
                r.verdict === "allowed",
                want,
                `${src.name}@${src.nodeName} → ${dst.name}@${dst.nodeName} ${proto}/${port}\n${
                  formatTrace(r)
                }`,
              );
            }
          }
        }
      },
    ),
    { numRuns: 60 },
  );
});

Deno.test("trace: a service resolves to its backends, policies decide each, the route is named", () => {
  const web1 = pod("a", "web1", "10.201.1.5", { app: "web" }, { nodeName: "node-a", ports: [["http", 80]] });
  const web2 = pod("a", "web2", "10.201.2.5", { app: "web" }, { nodeName: "node-b", ports: [["http", 80]] });
  const cli = pod("b", "cli", "10.201.2.9", { app: "cli" }, { nodeName: "node-b" });
  const base = snapshot({ nodes: NODES, namespaces: [ns("a"), ns("b")], pods: [web1, web2, cli] });
  const snap = {
    ...base,
    services: new Map([[
      "a/web",
      svc("web", { namespace: "a", clusterIPs: ["10.96.0.20"], ports: [{ port: 80 }] }),
    ]]),
    endpointSlices: new Map([[
      "a/web-1",
      slice("web", [ep("10.201.1.5", "node-a"), ep("10.201.2.5", "node-b")], { namespace: "a", port: 80 }),
    ]]),
  };
  const r = traceConnection(snap, opts(), { from: "b/cli", to: "svc/a/web", port: 80, protocol: "tcp" });
  assert.equal(r.verdict, "allowed", formatTrace(r));
  assert.equal(r.service?.name, "a/web");
  assert.deepEqual(r.reachable.sort(), ["a/web1", "a/web2"]);
  const toWeb1 = r.paths.find((p) => p.target.name === "a/web1")!;
  assert.match(toWeb1.route, /^route 10\.201\.1\.0\/24 via 192\.0\.2\.1/);
  assert.deepEqual(toWeb1.firewall.map((f) => `${f.node}:${f.direction}`), [
    "node-b:egress",
    "node-a:ingress",
  ]);
  assert.match(r.paths.find((p) => p.target.name === "a/web2")!.route, /same node node-b: bridged/);

  // Deny-all ingress on web1 only: trace names the policy and the rejecting rule.
  const denied = {
    ...snap,
    pods: new Map([...snap.pods].map(([k, p]) => [k, k === "a/web2" ? { ...p, labels: {} } : p])),
    networkPolicies: new Map([[
      "a/deny-web1",
      policy("a", "deny-web1", { podSelector: sel({ app: "web" }) }),
    ]]),
  };
  const d = traceConnection(denied, opts(), { from: "b/cli", to: "a/web1", port: 80, protocol: "tcp" });
  assert.equal(d.verdict, "rejected", formatTrace(d));
  assert.deepEqual(d.destination.policies, { ingress: ["a/deny-web1"], egress: [] });
  assert.match(d.paths[0].firewall.at(-1)!.decidedBy, /REJECT traffic of POD a\/web1/);
  const s2 = traceConnection(denied, opts(), {
    from: "10.201.2.9",
    to: "10.96.0.20",
    port: 80,
    protocol: "tcp",
  });
  assert.deepEqual(s2.reachable, ["a/web2"]);
  assert.match(formatTrace(s2), /-> pod a\/web1 .*: REJECTED/);

  // No such port on the service; unknown names are input errors.
  const q = (from: string, to: string, port = 80) =>
    traceConnection(snap, opts(), { from, to, port, protocol: "tcp" });
  assert.equal(q("b/cli", "svc/a/web", 81).verdict, "rejected");
  assert.throws(() => q("b/nope", "a/web1"), TraceInputError);
  assert.throws(() => q("b/cli", "svc/a/nope"), TraceInputError);
});
