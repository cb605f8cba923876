/**
 * Plan semantics, checked by tracing packets through the planned chains (trace.ts), plus golden
 * renderings and a property test against the independent reference evaluator
 * (tests/e2e/firewall_reference.ts). Addresses: node 192.0.2.1, pods 10.201.x.y, 2001:db8::/32.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import type { NetworkPolicyInfo, NetworkPolicyPeer, NetworkPolicyPort, PodInfo } from "../../watch/types.ts";
import { connectionAllowed } from "../../tests/e2e/firewall_reference.ts";
import { joinArgs } from "../../kernel/iptables/mod.ts";
import { FirewallPlanner, planFirewall } from "./plan.ts";
import { fwOptions, node, ns, pod, policy, sel, snapshot } from "./testing.ts";
import { type Packet, trace } from "./trace.ts";
import { ruleArgs } from "./iptables_render.ts";
import { isOurChain, isOurSet } from "./names.ts";

const NODE = node("node-a", "192.0.2.1", ["10.201.1.0/24"]);

type Snap = ReturnType<typeof snapshot>;

/** Outcome of a new TCP/UDP connection src→dst as the node's FORWARD chain decides it. */
function verdict(
  snap: Snap,
  src: string,
  dst: string,
  port: number,
  proto: Packet["proto"] = "tcp",
  opts = {},
) {
  const plan = planFirewall(snap, fwOptions(opts), "node-a");
  const st = plan.families.find((f) => f.family === (src.includes(":") ? "ipv6" : "ipv4"))!;
  return trace(st, { src, dst, proto, dport: port, hook: "FORWARD" }).outcome;
}

function allowed(
  snap: Snap,
  src: string,
  dst: string,
  port: number,
  proto: Packet["proto"] = "tcp",
): boolean {
  const o = verdict(snap, src, dst, port, proto);
  assert.ok(o === "accept" || o === "reject", `unexpected outcome ${o}`);
  return o === "accept";
}

const A = pod("a", "web", "10.201.1.2", { app: "web" }, { ports: [["http", 8080], ["dns", 53, "UDP"]] });
const B = pod("a", "cli", "10.201.1.3", { app: "cli" });
const C = pod("b", "cli", "10.201.1.4", { app: "cli" });
const R = pod("b", "remote", "10.201.2.5", { app: "cli" }, { nodeName: "node-b" });
const NSS = [ns("a", { team: "x" }), ns("b", { team: "y" })];

function snap(policies: NetworkPolicyInfo[], pods: PodInfo[] = [A, B, C, R]): Snap {
  return snapshot({ nodes: [NODE], namespaces: NSS, pods, policies });
}

Deno.test("a pod selected by no policy is open, in both directions", () => {
  const s = snap([]);
  assert.ok(allowed(s, B.podIPs[0], A.podIPs[0], 80));
  assert.ok(allowed(s, A.podIPs[0], R.podIPs[0], 80));
});

Deno.test("deny-all ingress (empty podSelector, no rules) rejects new connections, allows replies", () => {
  const s = snap([policy("a", "deny", { podSelector: sel(), policyTypes: ["Ingress"] })]);
  assert.ok(!allowed(s, C.podIPs[0], A.podIPs[0], 80));
  assert.ok(!allowed(s, R.podIPs[0], B.podIPs[0], 80));
  // egress of the selected pods is untouched
  assert.ok(allowed(s, A.podIPs[0], C.podIPs[0], 80));
  // replies pass through conntrack
  const st = planFirewall(s, fwOptions(), "node-a").families[0];
  assert.equal(
    trace(st, {
      src: C.podIPs[0],
      dst: A.podIPs[0],
      proto: "tcp",
      dport: 80,
      hook: "FORWARD",
      ct: "ESTABLISHED",
    })
      .outcome,
    "accept",
  );
  // the node itself may reach its pods
  assert.equal(
    trace(st, { src: "192.0.2.1", dst: A.podIPs[0], proto: "tcp", dport: 80, hook: "OUTPUT", srcLocal: true })
      .outcome,
    "accept",
  );
});

Deno.test("deny-all egress rejects pod → anything, including pod → node (INPUT)", () => {
  const s = snap([policy("a", "deny", { policyTypes: ["Egress"] })]);
  assert.ok(!allowed(s, A.podIPs[0], C.podIPs[0], 80));
  assert.ok(allowed(s, C.podIPs[0], A.podIPs[0], 80));
  const st = planFirewall(s, fwOptions(), "node-a").families[0];
  assert.equal(
    trace(st, { src: A.podIPs[0], dst: "192.0.2.1", proto: "tcp", dport: 22, hook: "INPUT", dstLocal: true })
      .outcome,
    "reject",
  );
});

Deno.test("implied policyTypes: egress rules imply Egress; Ingress always", () => {
  const p = policy("a", "p", { egress: [{ peers: [], ports: [{ protocol: "TCP", port: 53 }] }] });
  assert.deepEqual(p.policyTypes, ["Ingress", "Egress"]);
  const s = snap([p]);
  assert.ok(allowed(s, A.podIPs[0], C.podIPs[0], 53));
  assert.ok(!allowed(s, A.podIPs[0], C.podIPs[0], 80));
  assert.ok(!allowed(s, C.podIPs[0], A.podIPs[0], 53)); // ingress implied with no rules: deny
});

Deno.test("namespaceSelector, podSelector, both in one peer, and matchExpressions", () => {
  const fromNs = snap([policy("a", "p", {
    podSelector: sel({ app: "web" }),
    ingress: [{ peers: [{ namespaceSelector: sel({ team: "y" }) }], ports: [] }],
  })]);
  assert.ok(allowed(fromNs, C.podIPs[0], A.podIPs[0], 80));
  assert.ok(allowed(fromNs, R.podIPs[0], A.podIPs[0], 80));
  assert.ok(!allowed(fromNs, B.podIPs[0], A.podIPs[0], 80));

  const both = snap([policy("a", "p", {
    podSelector: sel({ app: "web" }),
    ingress: [{
      peers: [{
        namespaceSelector: sel({}, [{ key: "team", operator: "In", values: ["y"] }]),
        podSelector: sel({}, [{ key: "app", operator: "NotIn", values: ["cli"] }]),
      }],
      ports: [],
    }],
  })], [A, B, C, R, pod("b", "other", "10.201.1.9", { app: "db" })]);
  assert.ok(!allowed(both, C.podIPs[0], A.podIPs[0], 80));
  assert.ok(allowed(both, "10.201.1.9", A.podIPs[0], 80));

  const podOnly = snap([policy("a", "p", {
    podSelector: sel({}, [{ key: "app", operator: "Exists", values: [] }]),
    ingress: [{
      peers: [{ podSelector: sel({}, [{ key: "tier", operator: "DoesNotExist", values: [] }]) }],
      ports: [],
    }],
  })]);
  assert.ok(allowed(podOnly, B.podIPs[0], A.podIPs[0], 80)); // same namespace
  assert.ok(!allowed(podOnly, C.podIPs[0], A.podIPs[0], 80)); // other namespace
});

Deno.test("empty namespaceSelector selects every namespace; empty podSelector every pod of the policy's namespace", () => {
  const s = snap([policy("a", "p", {
    podSelector: sel({ app: "web" }),
    ingress: [{ peers: [{ namespaceSelector: sel() }], ports: [{ protocol: "TCP", port: 80 }] }],
  })]);
  assert.ok(allowed(s, C.podIPs[0], A.podIPs[0], 80));
  assert.ok(!allowed(s, C.podIPs[0], A.podIPs[0], 81));
  // ipBlock addresses outside the cluster's pods are not "pods in every namespace"
  assert.ok(!allowed(s, "198.51.100.7", A.podIPs[0], 80));
});

Deno.test("ipBlock with except, and /0", () => {
  const s = snap([policy("a", "p", {
    podSelector: sel({ app: "web" }),
    ingress: [{ peers: [{ ipBlock: { cidr: "10.201.0.0/16", except: ["10.201.1.0/28"] } }], ports: [] }],
  })]);
  assert.ok(allowed(s, R.podIPs[0], A.podIPs[0], 80));
  assert.ok(!allowed(s, B.podIPs[0], A.podIPs[0], 80));
  const all = snap([policy("a", "p", {
    podSelector: sel({ app: "web" }),
    ingress: [{ peers: [{ ipBlock: { cidr: "0.0.0.0/0", except: ["198.51.100.0/24"] } }], ports: [] }],
  })]);
  assert.ok(allowed(all, "203.0.113.9", A.podIPs[0], 80));
  assert.ok(!allowed(all, "198.51.100.9", A.podIPs[0], 80));
  const set = planFirewall(all, fwOptions(), "node-a").families[0].sets;
  assert.ok(
    [...set.values()].some((x) => x.entries.join() === "0.0.0.0/1,128.0.0.0/1,198.51.100.0/24 nomatch"),
  );
});

Deno.test("numbered ports, endPort ranges, protocols", () => {
  const s = snap([policy("a", "p", {
    podSelector: sel({ app: "web" }),
    ingress: [{
      peers: [],
      ports: [{ protocol: "TCP", port: 8000, endPort: 8010 }, { protocol: "UDP", port: 53 }, {
        protocol: "SCTP",
      }],
    }],
  })]);
  assert.ok(allowed(s, B.podIPs[0], A.podIPs[0], 8000));
  assert.ok(allowed(s, B.podIPs[0], A.podIPs[0], 8010));
  assert.ok(!allowed(s, B.podIPs[0], A.podIPs[0], 8011));
  assert.ok(allowed(s, B.podIPs[0], A.podIPs[0], 53, "udp"));
  assert.ok(!allowed(s, B.podIPs[0], A.podIPs[0], 53, "tcp"));
  assert.ok(allowed(s, B.podIPs[0], A.podIPs[0], 9999, "sctp"));
});

Deno.test("named ports resolve per destination pod (ingress: the target; egress: the peer)", () => {
  const A2 = pod("a", "web2", "10.201.1.6", { app: "web" }, { ports: [["http", 9090]] });
  const s = snap([policy("a", "p", {
    podSelector: sel({ app: "web" }),
    ingress: [{ peers: [], ports: [{ protocol: "TCP", port: "http" }] }],
  })], [A, A2, B]);
  assert.ok(allowed(s, B.podIPs[0], A.podIPs[0], 8080));
  assert.ok(!allowed(s, B.podIPs[0], A.podIPs[0], 9090));
  assert.ok(allowed(s, B.podIPs[0], A2.podIPs[0], 9090));
  assert.ok(!allowed(s, B.podIPs[0], A2.podIPs[0], 8080));
  const e = snap([policy("a", "e", {
    podSelector: sel({ app: "cli" }),
    policyTypes: ["Egress"],
    egress: [{ peers: [{ podSelector: sel({ app: "web" }) }], ports: [{ protocol: "TCP", port: "http" }] }],
  })], [A, A2, B]);
  assert.ok(allowed(e, B.podIPs[0], A.podIPs[0], 8080));
  assert.ok(allowed(e, B.podIPs[0], A2.podIPs[0], 9090));
  assert.ok(!allowed(e, B.podIPs[0], A2.podIPs[0], 8080));
});

Deno.test("several policies on one pod add up", () => {
  const s = snap([
    policy("a", "p1", {
      podSelector: sel({ app: "web" }),
      ingress: [{ peers: [{ podSelector: sel({ app: "cli" }) }], ports: [{ protocol: "TCP", port: 80 }] }],
    }),
    policy("a", "p2", {
      podSelector: sel({ app: "web" }),
      ingress: [{
        peers: [{ namespaceSelector: sel({ team: "y" }) }],
        ports: [{ protocol: "TCP", port: 443 }],
      }],
    }),
  ]);
  assert.ok(allowed(s, B.podIPs[0], A.podIPs[0], 80));
  assert.ok(!allowed(s, B.podIPs[0], A.podIPs[0], 443));
  assert.ok(allowed(s, C.podIPs[0], A.podIPs[0], 443));
  assert.ok(!allowed(s, C.podIPs[0], A.podIPs[0], 80));
});

Deno.test("a policy allowing both directions to the same pods does not let egress rules open ingress", () => {
  const s = snap([policy("a", "p", {
    podSelector: sel(),
    policyTypes: ["Ingress", "Egress"],
    egress: [{ peers: [{ podSelector: sel() }], ports: [] }],
  })]);
  assert.ok(!allowed(s, B.podIPs[0], A.podIPs[0], 80)); // ingress of A denies
});

Deno.test("bad input: unparsable CIDR, unknown protocol, unresolvable named port skip only that piece", () => {
  const bad = policy("a", "bad", {
    podSelector: sel({ app: "web" }),
    ingress: [
      {
        peers: [{ ipBlock: { cidr: "10.300.0.0/16", except: [] } }, { podSelector: sel({ app: "cli" }) }],
        ports: [],
      },
      { peers: [], ports: [{ protocol: "ICMP" as "TCP", port: 1 }, { protocol: "TCP", port: 7 }] },
      { peers: [], ports: [{ protocol: "TCP", port: "nope" }] },
    ],
  });
  const s = snap([bad]);
  const plan = planFirewall(s, fwOptions(), "node-a");
  assert.deepEqual(plan.problems.map((p) => `${p.object} ${p.field} ${p.value}`), [
    "a/bad spec.ingress[0].from[0].ipBlock.cidr 10.300.0.0/16",
    "a/bad spec.ingress[1].ports[0].protocol ICMP",
    "a/bad spec.ingress[2].ports[0].port nope",
  ]);
  assert.ok(allowed(s, B.podIPs[0], A.podIPs[0], 80)); // pod peer of rule 0 still applies
  assert.ok(allowed(s, C.podIPs[0], A.podIPs[0], 7)); // rule 1's good port
  assert.ok(!allowed(s, C.podIPs[0], A.podIPs[0], 80)); // nothing else
});

Deno.test("host-network and finished pods get no chain; pods of other nodes none either", () => {
  const h = pod("a", "host", "192.0.2.1", {}, { hostNetwork: true });
  const done = pod("a", "done", "10.201.1.7", {}, { phase: "Succeeded" });
  const plan = planFirewall(snap([], [A, h, done, R]), fwOptions(), "node-a");
  const podChains = [...plan.families[0].chains.keys()].filter((c) => c.startsWith("KUBE-POD-FW-"));
  assert.equal(podChains.length, 1);
});

Deno.test("an address two pods claim belongs to the live, newer pod: the terminating one's policies do not judge it", () => {
  // The old pod's sandbox is gone and the CNI plugin gave its address to a new pod; the old pod
  // still shows it while it terminates, in a namespace whose policy denies all ingress.
  const old = pod("old", "gone", "10.201.1.9", { app: "web" }, {
    deletionTimestamp: "2026-12-03T10:05:00Z",
    creationTimestamp: "2026-12-03T10:00:00Z",
  });
  const fresh = pod("a", "new", "10.201.1.9", { app: "new" }, { creationTimestamp: "2026-12-03T10:06:00Z" });
  const denyOld = policy("old", "deny", { podSelector: sel(), policyTypes: ["Ingress", "Egress"] });
  // A policy allowing ingress from app=web pods must not admit the new pod by the old one's labels.
  const fromWeb = policy("a", "from-web", {
    podSelector: sel({ app: "web" }),
    ingress: [{ peers: [{ podSelector: sel({ app: "web" }), namespaceSelector: sel() }], ports: [] }],
  });
  for (const pods of [[old, fresh, A, B], [fresh, old, A, B]]) {
    const s = snapshot({
      nodes: [NODE],
      namespaces: [...NSS, ns("old")],
      pods,
      policies: [denyOld, fromWeb],
    });
    assert.ok(allowed(s, B.podIPs[0], fresh.podIPs[0], 80), "the old pod's deny-all applies to the new pod");
    assert.ok(
      allowed(s, fresh.podIPs[0], B.podIPs[0], 80),
      "the old pod's egress deny applies to the new pod",
    );
    assert.ok(!allowed(s, fresh.podIPs[0], A.podIPs[0], 8080), "the new pod is admitted as app=web");
  }
  // Two live pods: the newer one owns the address; while alone, the terminating pod keeps its policy.
  const older = pod("old", "older", "10.201.1.9", {}, { creationTimestamp: "2026-12-03T09:00:00Z" });
  const s2 = snapshot({
    nodes: [NODE],
    namespaces: [...NSS, ns("old")],
    pods: [older, fresh, B],
    policies: [denyOld],
  });
  assert.ok(allowed(s2, B.podIPs[0], fresh.podIPs[0], 80));
  const s3 = snapshot({
    nodes: [NODE],
    namespaces: [...NSS, ns("old")],
    pods: [old, B],
    policies: [denyOld],
  });
  assert.ok(!allowed(s3, B.podIPs[0], old.podIPs[0], 80));
});

Deno.test("INPUT allowances from the service, external, LB and node-port ranges (golden)", () => {
  const plan = planFirewall(
    snap([]),
    fwOptions({
      serviceExternalIpRange: ["198.51.100.0/24"],
      loadbalancerIpRange: ["203.0.113.0/24", "2001:db8:5::/64"],
    }),
    "node-a",
  );
  const st = plan.families[0];
  const lines = st.chains.get("KUBE-ROUTER-INPUT")!.slice(0, 6).map((r) => joinArgs(ruleArgs(r, "ipv4")));
  assert.deepEqual(lines, [
    '-d 10.96.0.0/12 -m comment --comment "allow traffic to cluster IP range 10.96.0.0/12" -j RETURN',
    '-p tcp -m multiport --dports 30000:32767 -m addrtype --dst-type LOCAL -m comment --comment "allow LOCAL TCP traffic to node ports" -j RETURN',
    '-p udp -m multiport --dports 30000:32767 -m addrtype --dst-type LOCAL -m comment --comment "allow LOCAL UDP traffic to node ports" -j RETURN',
    '-p sctp -m multiport --dports 30000:32767 -m addrtype --dst-type LOCAL -m comment --comment "allow LOCAL SCTP traffic to node ports" -j RETURN',
    '-d 198.51.100.0/24 -m comment --comment "allow traffic to external IP range 198.51.100.0/24" -j RETURN',
    '-d 203.0.113.0/24 -m comment --comment "allow traffic to load balancer IP range 203.0.113.0/24" -j RETURN',
  ]);
});

Deno.test("pod chain layout (golden)", () => {
  const plan = planFirewall(
    snap([policy("a", "deny", { podSelector: sel({ app: "web" }) })], [A]),
    fwOptions(),
    "node-a",
  );
  const st = plan.families[0];
  const chain = [...st.chains.keys()].find((c) => c.startsWith("KUBE-POD-FW-"))!;
  const pol = [...st.chains.keys()].find((c) => /^KUBE-NWPLCY-[A-Z2-7]{16}$/.test(c))!;
  assert.deepEqual(st.chains.get(chain)!.map((r) => joinArgs(ruleArgs(r, "ipv4"))), [
    '-m comment --comment "rule to jump traffic of POD a/web to chain KUBE-NWPLCY-COMMON" -j KUBE-NWPLCY-COMMON',
    `-d 10.201.1.2 -m addrtype --src-type LOCAL -m comment --comment "rule to permit the traffic to POD a/web when the source is the pod's local node" -j ACCEPT`,
    `-d 10.201.1.2 -m comment --comment "run ingress of POD a/web through network policy a/deny" -j ${pol}`,
    '-s 10.201.1.2 -m comment --comment "rule to allow egress of POD a/web: no network policy selects it" -j KUBE-NWPLCY-DEFAULT',
    '-m mark ! --mark 0x10000/0x10000 -m limit --limit 10/minute --limit-burst 10 -m comment --comment "rule to log dropped traffic of POD a/web" -j NFLOG --nflog-group 100',
    '-m mark ! --mark 0x10000/0x10000 -m comment --comment "rule to REJECT traffic of POD a/web no network policy allows" -j REJECT',
    "-j MARK --set-xmark 0x0/0x10000",
    '-m comment --comment "set mark to ACCEPT traffic of POD a/web that complies with network policies" -j MARK --set-xmark 0x20000/0x20000',
  ]);
});

Deno.test("names are deterministic, within kernel limits, recognised by isOurs", () => {
  const s = snap([
    policy("a", "p", { podSelector: sel(), ingress: [{ peers: [{ podSelector: sel() }], ports: [] }] }),
  ]);
  const o = fwOptions({ enableIpv6: true });
  const p1 = planFirewall(s, o, "node-a");
  const p2 = planFirewall(s, o, "node-a");
  assert.deepEqual(p1, p2);
  for (const f of p1.families) {
    for (const c of f.chains.keys()) {
      assert.ok(c.length <= 28, c);
      assert.ok(isOurChain(c), c);
    }
    for (const n of f.sets.keys()) {
      assert.ok(n.length <= 31, n);
      assert.ok(isOurSet(n), n);
    }
  }
  assert.ok(
    !isOurChain("KUBE-ROUTER-SERVICES") && !isOurChain("KUBE-POD-FW-x") && !isOurSet("KUBE-SRC-short"),
  );
});

Deno.test("dual-stack: IPv6 pods are enforced by the ipv6 family plan", () => {
  const a6 = pod("a", "web", ["10.201.1.2", "2001:db8:1::2"], { app: "web" });
  const b6 = pod("a", "cli", ["10.201.1.3", "2001:db8:1::3"], { app: "cli" });
  const c6 = pod("b", "cli", ["10.201.1.4", "2001:db8:1::4"], { app: "cli" });
  const s = snap([policy("a", "p", {
    podSelector: sel({ app: "web" }),
    ingress: [{
      peers: [{ podSelector: sel({ app: "cli" }) }, { ipBlock: { cidr: "2001:db8:9::/48", except: [] } }],
      ports: [],
    }],
  })], [a6, b6, c6]);
  const plan = planFirewall(s, fwOptions({ enableIpv6: true }), "node-a");
  const v6 = plan.families.find((f) => f.family === "ipv6")!;
  const t = (src: string) =>
    trace(v6, { src, dst: "2001:db8:1::2", proto: "tcp", dport: 80, hook: "FORWARD" }).outcome;
  assert.equal(t("2001:db8:1::3"), "accept");
  assert.equal(t("2001:db8:1::4"), "reject");
  assert.equal(t("2001:db8:9::1"), "accept");
  assert.ok([...v6.sets.keys()].every((n) => n.startsWith("inet6:")));
});

Deno.test("--netpol-default-deny rejects pod-CIDR traffic not handled by a pod chain", () => {
  const s = snap([], [A]);
  const plan = planFirewall(s, fwOptions({ netpolDefaultDeny: true }), "node-a");
  const st = plan.families[0];
  // a pod not yet known (no chain, not in kube-router-local-pods)
  assert.equal(
    trace(st, { src: "10.201.1.50", dst: "10.201.2.5", proto: "tcp", dport: 80, hook: "FORWARD" }).outcome,
    "reject",
  );
  assert.equal(
    trace(st, { src: A.podIPs[0], dst: "10.201.2.5", proto: "tcp", dport: 80, hook: "FORWARD" }).outcome,
    "accept",
  );
  assert.deepEqual(st.sets.get("kube-router-local-pods")?.entries, [A.podIPs[0]]);
  // the node's own address in the pod CIDR (kube-bridge) is not a pod: not rejected
  assert.equal(
    trace(st, {
      src: "10.201.1.1",
      dst: "10.201.2.5",
      proto: "tcp",
      dport: 80,
      hook: "OUTPUT",
      srcLocal: true,
    }).outcome,
    "continue",
  );
  assert.equal(
    trace(st, {
      src: "10.201.2.5",
      dst: "10.201.1.1",
      proto: "tcp",
      dport: 22,
      hook: "INPUT",
      dstLocal: true,
    }).outcome,
    "continue",
  );
});

// ---- property test against the reference evaluator ----

const LABELS = ["x", "y"];
const arbLabels = fc.dictionary(fc.constantFrom("app", "tier"), fc.constantFrom(...LABELS), { maxKeys: 2 });
const arbSelector = fc.record({
  matchLabels: fc.dictionary(fc.constantFrom("app", "tier"), fc.constantFrom(...LABELS), { maxKeys: 1 }),
  matchExpressions: fc.array(
    fc.record({
      key: fc.constantFrom("app", "tier"),
      operator: fc.constantFrom("In" as const, "NotIn" as const, "Exists" as const, "DoesNotExist" as const),
      values: fc.subarray(LABELS, { minLength: 1 }),
    }),
    { maxLength: 1 },
  ),
});
const arbPeer: fc.Arbitrary<NetworkPolicyPeer> = fc.oneof(
  fc.record({ podSelector: arbSelector }),
  fc.record({ namespaceSelector: arbSelector }),
  fc.record({ podSelector: arbSelector, namespaceSelector: arbSelector }),
  fc.record({
    ipBlock: fc.record({
      cidr: fc.constantFrom("10.201.1.0/24", "10.201.0.0/16", "0.0.0.0/0", "10.201.1.0/29", "bogus"),
      except: fc.subarray(["10.201.1.0/30", "10.201.1.8/29"]),
    }),
  }),
);
const arbPort: fc.Arbitrary<NetworkPolicyPort> = fc.oneof(
  fc.record({ protocol: fc.constantFrom("TCP" as const, "UDP" as const), port: fc.constantFrom(80, 81, 53) }),
  fc.record({
    protocol: fc.constant("TCP" as const),
    port: fc.constant(80),
    endPort: fc.constantFrom(81, 90),
  }),
  fc.record({
    protocol: fc.constantFrom("TCP" as const, "UDP" as const),
    port: fc.constantFrom("http", "dns", "none"),
  }),
  fc.record({ protocol: fc.constant("TCP" as const) }),
);
const arbRule = fc.record({
  peers: fc.array(arbPeer, { maxLength: 2 }),
  ports: fc.array(arbPort, { maxLength: 2 }),
});
const arbPolicy = fc.record({
  namespace: fc.constantFrom("a", "b"),
  podSelector: arbSelector,
  types: fc.constantFrom(["Ingress"], ["Egress"], ["Ingress", "Egress"]) as fc.Arbitrary<
    Array<"Ingress" | "Egress">
  >,
  ingress: fc.array(arbRule, { maxLength: 2 }),
  egress: fc.array(arbRule, { maxLength: 2 }),
});

Deno.test("property: traced plan verdicts equal the reference evaluator for every pod pair and port", () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.record({ ns: fc.constantFrom("a", "b"), labels: arbLabels, http: fc.constantFrom(80, 81) }),
        {
          minLength: 2,
          maxLength: 5,
        },
      ),
      fc.array(arbPolicy, { maxLength: 3 }),
      fc.dictionary(fc.constantFrom("a", "b"), arbLabels),
      (podSpecs, pols, nsLabels) => {
        const pods = podSpecs.map((p, i) =>
          pod(p.ns, `p${i}`, `10.201.1.${i + 2}`, p.labels, { ports: [["http", p.http], ["dns", 53, "UDP"]] })
        );
        const policies = pols.map((p, i) =>
          policy(p.namespace, `np${i}`, {
            podSelector: p.podSelector,
            policyTypes: p.types,
            ingress: p.ingress,
            egress: p.egress,
          })
        );
        const namespaces = ["a", "b"].map((n) => ns(n, nsLabels[n] ?? {}));
        const s = snapshot({ nodes: [NODE], namespaces, pods, policies });
        const st = planFirewall(s, fwOptions(), "node-a").families[0];
        const ref = { pods, namespaces, policies };
        for (const src of pods) {
          for (const dst of pods) {
            if (src === dst) continue;
            for (const [proto, port] of [["tcp", 80], ["tcp", 81], ["udp", 53], ["tcp", 90]] as const) {
              const want = connectionAllowed(ref, src, dst, proto.toUpperCase(), port);
              const got = trace(st, {
                src: src.podIPs[0],
                dst: dst.podIPs[0],
                proto,
                dport: port,
                hook: "FORWARD",
              });
              assert.equal(
                got.outcome === "accept",
                want,
                `${src.namespace}/${src.name} → ${dst.namespace}/${dst.name} ${proto}/${port}: reference ${want}, plan ${got.outcome} via ${
                  got.path.join(" ")
                }`,
              );
            }
          }
        }
      },
    ),
    { numRuns: Number(Deno.env.get("FW_PROP_RUNS") ?? 300) },
  );
});

Deno.test("problems are reported once even with both families, and in an IPv6-only cluster", () => {
  const bad = policy("a", "bad", {
    podSelector: sel(),
    ingress: [{
      peers: [{ ipBlock: { cidr: "nonsense", except: [] } }],
      ports: [{ protocol: "TCP", port: "nope" }],
    }],
  });
  const p6 = pod("a", "six", "2001:db8:1::9");
  for (const o of [{ enableIpv6: true }, { enableIpv4: false, enableIpv6: true }]) {
    const plan = planFirewall(
      snap([bad], [p6, { ...A, podIPs: [...A.podIPs, "2001:db8:1::2"] }]),
      fwOptions(o),
      "node-a",
    );
    assert.deepEqual(plan.problems.map((p) => p.field), [
      "spec.ingress[0].from[0].ipBlock.cidr",
      "spec.ingress[0].ports[0].port",
    ]);
  }
});

Deno.test("planner: one planner reuses unchanged chains across plans; another planner shares nothing", () => {
  const s = snap([
    policy("a", "p", { podSelector: sel(), ingress: [{ peers: [{ podSelector: sel() }], ports: [] }] }),
  ]);
  const o = fwOptions();
  const planner = new FirewallPlanner();
  const [a, b] = [planner.plan(s, o, "node-a"), planner.plan(s, o, "node-a")];
  const other = new FirewallPlanner().plan(s, o, "node-a");
  const fresh = planFirewall(s, o, "node-a");
  assert.deepEqual(a, other);
  assert.deepEqual(a, fresh);
  let checked = 0;
  for (const [name, rules] of a.families[0].chains) {
    if (!/^KUBE-(NWPLCY-[A-Z2-7]{16}|POD-FW-)/.test(name)) continue;
    checked++;
    assert.equal(b.families[0].chains.get(name), rules, `${name}: same array from the same planner`);
    assert.notEqual(other.families[0].chains.get(name), rules, `${name}: nothing shared between planners`);
  }
  assert.ok(checked >= 2, "a policy chain and a pod chain were compared");
});
