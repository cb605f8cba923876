// Unit tests of the proxy's renderers and small pure parts: nftables state and transactions,
// IPVS-mode iptables/ipset state (golden, including `-m ipvs` rules this kernel cannot load),
// the desired IPVS table, drains, stale UDP flows, health answers, node identity.
// Addresses: VIPs 10.96.0.0/16, node 192.0.2.10, pods 10.201.0.0/24 (node-a), 10.202.0.0/24.
import assert from "node:assert/strict";
import { applyDrain } from "./drain.ts";
import { healthResponse } from "./health.ts";
import { ipsetState, iptablesState } from "./iptables_render.ts";
import { desiredIpvsTable } from "./ipvs_apply.ts";
import { renderFull, renderIncremental, renderState, SPREAD_PRESET } from "./nft_render.ts";
import { plan } from "./plan.ts";
import { staleUdpFlows } from "./stale_flows.ts";
import { ep, nodeA, pod, proxyOptions, slice, snapshot, svc } from "./testing.ts";
import { nodeIdentity } from "./controller.ts";
import { renderBatch } from "../../kernel/ipvs/diff.ts";
import { diffTables } from "../../kernel/ipvs/mod.ts";

const opts = proxyOptions({ serviceExternalIpRange: ["198.51.100.0/24"] });

function webPlan(
  eps = [ep("10.201.0.5"), ep("10.202.0.6", "node-b")],
  extra: Parameters<typeof svc>[1] = {},
) {
  return plan(
    snapshot({
      services: [
        svc("web", {
          type: "NodePort",
          clusterIPs: ["10.96.0.10"],
          ports: [{ port: 80, nodePort: 30080 }],
          ...extra,
        }),
      ],
      slices: [slice("web", eps)],
    }),
    opts,
    nodeA(),
  );
}

Deno.test("nft: full transaction replaces the table atomically and maps every virtual service", () => {
  const text = renderFull(renderState(webPlan(), 4));
  const lines = text.trim().split("\n");
  assert.deepEqual(lines.slice(0, 3), [
    "add table ip kube-router-proxy",
    "delete table ip kube-router-proxy",
    "add table ip kube-router-proxy",
  ]);
  assert.ok(lines.includes(
    "add element ip kube-router-proxy service-ips { 10.96.0.10 . tcp . 80 : goto spread-2, 192.0.2.10 . tcp . 30080 : goto spread-2-masq }",
  ));
  assert.ok(lines.includes(
    "add element ip kube-router-proxy endpoints { 10.96.0.10 . tcp . 80 . 0 : 10.201.0.5 . 8080, 10.96.0.10 . tcp . 80 . 1 : 10.202.0.6 . 8080, " +
      "192.0.2.10 . tcp . 30080 . 0 : 10.201.0.5 . 8080, 192.0.2.10 . tcp . 30080 . 1 : 10.202.0.6 . 8080 }",
  ));
  // NodePort (external, policy Cluster) is marked for masquerade; ClusterIP is not.
  const spread = "ip daddr . meta l4proto . th dport . numgen random mod 2 map @endpoints";
  assert.ok(
    lines.includes(
      `add rule ip kube-router-proxy spread-2 meta l4proto @l4protos dnat ip to ${spread}`,
    ),
  );
  assert.ok(lines.includes("add rule ip kube-router-proxy spread-2-masq meta mark set meta mark | 0x4000"));
  assert.ok(
    lines.includes(
      `add rule ip kube-router-proxy spread-2-masq meta l4proto @l4protos dnat ip to ${spread}`,
    ),
  );
  assert.ok(!lines.some((l) => /\{ 0 : /.test(l)), "no anonymous maps");
});

Deno.test("nft: endpoint change → a few element updates, no table replace; no change → empty", () => {
  const a = renderState(webPlan(), 4);
  const b = renderState(webPlan([ep("10.201.0.5"), ep("10.202.0.7", "node-b")]), 4);
  assert.equal(
    renderIncremental(a, b),
    [
      "delete element ip kube-router-proxy endpoints { 10.96.0.10 . tcp . 80 . 1, 192.0.2.10 . tcp . 30080 . 1 }",
      "add element ip kube-router-proxy endpoints { 10.96.0.10 . tcp . 80 . 1 : 10.202.0.7 . 8080, 192.0.2.10 . tcp . 30080 . 1 : 10.202.0.7 . 8080 }",
    ].join("\n") + "\n",
  );
  const c = renderState(
    webPlan([ep("10.201.0.5"), ep("10.202.0.6", "node-b"), ep("10.202.0.7", "node-b")]),
    4,
  );
  const grow = renderIncremental(a, c)!;
  assert.doesNotMatch(grow, /table|chain/, "spread chains for up to SPREAD_PRESET endpoints always exist");
  assert.match(
    grow,
    /add element ip kube-router-proxy service-ips \{ 10\.96\.0\.10 \. tcp \. 80 : goto spread-3, /,
  );
  const many = renderState(
    webPlan(
      Array.from(
        { length: SPREAD_PRESET + 1 },
        (_, i) => ep(`10.201.${1 + Math.floor(i / 250)}.${1 + (i % 250)}`),
      ),
    ),
    4,
  );
  assert.equal(renderIncremental(a, many), undefined, "a new endpoints-map chain needs a full replace");
  assert.equal(renderIncremental(c, c), "");
});

Deno.test("nft: services losing their endpoints leave the map and enter the reject set", () => {
  const a = renderState(webPlan(), 4);
  const b = renderState(webPlan([]), 4);
  const inc = renderIncremental(a, b)!.trim().split("\n");
  assert.ok(
    inc.includes(
      "delete element ip kube-router-proxy service-ips { 10.96.0.10 . tcp . 80, 192.0.2.10 . tcp . 30080 }",
    ),
  );
  assert.ok(!inc.some((l) => l.startsWith("delete chain")), "preset spread chains stay");
  assert.ok(
    inc.includes("add element ip kube-router-proxy no-endpoints-tcp { 10.96.0.10 . 80, 192.0.2.10 . 30080 }"),
  );
});

Deno.test("nft: ClientIP affinity uses per-endpoint chains and dynamic sets with the timeout; IPv6 syntax", () => {
  const p = plan(
    snapshot({
      services: [svc("s", {
        clusterIPs: ["10.96.0.11", "2001:db8:96::11"],
        sessionAffinity: "ClientIP",
        sessionAffinityTimeout: 600,
      })],
      slices: [
        slice("s", [ep("10.201.0.5"), ep("10.201.0.6")]),
        slice("s", [ep("2001:db8:201::5")], { addressType: "IPv6", name: "s6" }),
      ],
    }),
    { ...opts, enableIpv6: true },
    nodeA({ ipv6: "2001:db8::10" }),
  );
  const v4 = renderFull(renderState(p, 4));
  assert.match(
    v4,
    /add set ip kube-router-proxy aff-\w+ \{ type ipv4_addr ; flags dynamic,timeout ; timeout 600s ; \}/,
  );
  assert.match(v4, /ip saddr @aff-\w+ goto ep-\w+/);
  assert.match(v4, /numgen random mod 2 vmap \{ 0 : goto ep-\w+, 1 : goto ep-\w+ \}/);
  assert.match(v4, /update @aff-\w+ \{ ip saddr \}/);
  const v6 = renderFull(renderState(p, 6));
  assert.match(v6, /add table ip6 kube-router-proxy/);
  assert.match(v6, /meta l4proto tcp dnat ip6 to \[2001:db8:201::5\]:8080/);
  assert.match(v6, /service-ips \{ 2001:db8:96::11 \. tcp \. 80 : goto svc-/);
});

Deno.test("iptables (IPVS mode) golden: services chain, SNAT, hairpin, DSR marks, jumps", () => {
  const p = plan(
    snapshot({
      services: [
        svc("web", {
          type: "NodePort",
          clusterIPs: ["10.96.0.10"],
          ports: [{ port: 80, nodePort: 30080 }],
          annotations: { "kube-router.io/service.hairpin": "" },
        }),
        svc("empty", { clusterIPs: ["10.96.0.15"], ports: [{ port: 53, protocol: "UDP" }] }),
        svc("dsr", {
          clusterIPs: ["10.96.0.20"],
          externalIPs: ["198.51.100.20"],
          annotations: { "kube-router.io/service.dsr": "tunnel" },
        }),
      ],
      slices: [slice("web", [ep("10.201.0.5")]), slice("dsr", [ep("10.201.0.7")])],
      pods: [pod("x")],
    }),
    opts,
    nodeA(),
  );
  const st = iptablesState(p, opts, 4);
  const show = (table: string) =>
    [...st.tables.get(table)!].flatMap(([c, rules]) => rules.map((r) => `-A ${c} ${r.join(" ")}`));
  assert.deepEqual(show("filter"), [
    "-A KUBE-ROUTER-SERVICES -d 10.96.0.15/32 -p udp -m udp --dport 53 -m conntrack --ctstate NEW -m comment --comment default/empty has no endpoints -j REJECT --reject-with icmp-port-unreachable",
    "-A KUBE-ROUTER-SERVICES -p icmp -m icmp --icmp-type echo-request -j ACCEPT",
    "-A KUBE-ROUTER-SERVICES -p icmp -m icmp --icmp-type destination-unreachable -j ACCEPT",
    "-A KUBE-ROUTER-SERVICES -p icmp -m icmp --icmp-type time-exceeded -j ACCEPT",
    "-A KUBE-ROUTER-SERVICES -m set --match-set kube-router-svip-prt dst,dst -j ACCEPT",
    "-A KUBE-ROUTER-SERVICES -m set ! --match-set kube-router-local-ips dst -j REJECT --reject-with icmp-port-unreachable",
  ]);
  assert.deepEqual(show("nat"), [
    "-A KUBE-ROUTER-POSTROUTING -m ipvs --ipvs --vdir ORIGINAL -j KUBE-ROUTER-HAIRPIN",
    "-A KUBE-ROUTER-POSTROUTING -m ipvs --ipvs --vdir ORIGINAL --vmethod MASQ ! -s 10.201.0.0/24 ! -d 10.201.0.0/24 -m comment --comment kube-router proxy -j SNAT --to-source 192.0.2.10 --random-fully",
    "-A KUBE-ROUTER-POSTROUTING -m ipvs --vaddr 192.0.2.10/32 --vport 30080 --vdir ORIGINAL --vmethod MASQ -j SNAT --to-source 192.0.2.10 --random-fully",
    "-A KUBE-ROUTER-HAIRPIN -s 10.201.0.5/32 -d 10.201.0.5/32 -m ipvs --vaddr 10.96.0.10/32 --vport 80 -j SNAT --to-source 10.96.0.10",
    "-A KUBE-ROUTER-HAIRPIN -s 10.201.0.5/32 -d 10.201.0.5/32 -m ipvs --vaddr 192.0.2.10/32 --vport 30080 -j SNAT --to-source 192.0.2.10",
  ]);
  const mark = p.dsrMarks[0].fwmark;
  assert.deepEqual(show("mangle"), [
    `-A KUBE-ROUTER-DSR -d 198.51.100.20/32 -p tcp -m tcp --dport 80 -j MARK --set-xmark 0x${
      mark.toString(16)
    }/0xffffffff`,
    "-A KUBE-ROUTER-DSR-MSS -s 198.51.100.20/32 -i kube-bridge -p tcp -m tcp --sport 80 --tcp-flags SYN,RST SYN -j TCPMSS --set-mss 1440",
  ]);
  assert.deepEqual(st.jumps.map((j) => `${j.table} ${j.chain} ${j.args.join(" ")}`), [
    "filter INPUT -m set --match-set kube-router-svip dst -m comment --comment kube-router proxy -j KUBE-ROUTER-SERVICES",
    "nat POSTROUTING -m comment --comment kube-router proxy -j KUBE-ROUTER-POSTROUTING",
    "mangle PREROUTING -m comment --comment kube-router proxy -j KUBE-ROUTER-DSR",
    "mangle OUTPUT -m comment --comment kube-router proxy -j KUBE-ROUTER-DSR",
    "mangle PREROUTING -m comment --comment kube-router proxy -j KUBE-ROUTER-DSR-MSS",
  ]);
  assert.deepEqual(ipsetState(p, 6).map((s) => s.name), [
    "inet6:kube-router-local-ips",
    "inet6:kube-router-svip",
    "inet6:kube-router-svip-prt",
  ]);

  // The IPVS batch for this plan from an empty kernel (golden).
  const batch = renderBatch(diffTables(new Map(), desiredIpvsTable(p), { owned: () => true }));
  assert.equal(
    batch,
    [
      `-A -f ${mark} -s rr`,
      "-A -t 10.96.0.10:80 -s rr",
      "-A -t 10.96.0.20:80 -s rr",
      "-A -t 192.0.2.10:30080 -s rr",
      "-A -u 10.96.0.15:53 -s rr",
      `-a -f ${mark} -r 10.201.0.7:8080 -i -w 1`,
      "-a -t 10.96.0.10:80 -r 10.201.0.5:8080 -m -w 1",
      "-a -t 10.96.0.20:80 -r 10.201.0.7:8080 -m -w 1",
      "-a -t 192.0.2.10:30080 -r 10.201.0.5:8080 -m -w 1",
    ].join("\n") + "\n",
  );
});

Deno.test("drain: terminating endpoints at weight 0 until the pod's grace period ends; removed ones with --ipvs-graceful-termination", () => {
  const o = {
    gracefulRemoval: true,
    gracePeriodMs: 30_000,
    podGraceMs: (p: string) => (p === "default/p1" ? 5_000 : undefined),
  };
  const p0 = webPlan([ep("10.201.0.5"), ep("10.201.0.6")]);
  const p1 = webPlan([
    ep("10.201.0.5"),
    ep("10.201.0.6", "node-a", { ready: false, serving: true, terminating: true, targetPod: "default/p1" }),
  ]);
  let d = applyDrain(p0, p1, new Map(), 1000, o);
  assert.deepEqual(d.plan.services[0].realServers.map((r) => [r.ip, r.weight]), [["10.201.0.5", 1], [
    "10.201.0.6",
    0,
  ]]);
  assert.equal(d.nextDeadline, 6000);
  d = applyDrain(d.plan, p1, d.state, 6000, o);
  assert.deepEqual(d.plan.services[0].realServers.map((r) => r.ip), ["10.201.0.5"], "grace over: removed");
  // Found by the IPVS VM suite: a later sync while the slice still lists the endpoint as
  // terminating must not give it a fresh grace period (it was re-added at weight 0).
  d = applyDrain(d.plan, p1, d.state, 7000, o);
  assert.deepEqual(d.plan.services[0].realServers.map((r) => r.ip), ["10.201.0.5"], "stays removed");
  assert.equal(d.nextDeadline, undefined);

  const p2 = webPlan([ep("10.201.0.5")]);
  let g = applyDrain(p0, p2, new Map(), 0, o);
  assert.deepEqual(g.plan.services[0].realServers.map((r) => [r.ip, r.weight]), [["10.201.0.5", 1], [
    "10.201.0.6",
    0,
  ]]);
  g = applyDrain(g.plan, p2, g.state, 29_999, o);
  assert.equal(g.plan.services[0].realServers.length, 2);
  g = applyDrain(g.plan, p2, g.state, 30_000, o);
  assert.equal(g.plan.services[0].realServers.length, 1);
  assert.equal(
    applyDrain(p0, p2, new Map(), 0, { ...o, gracefulRemoval: false }).plan.services[0].realServers.length,
    1,
  );
});

Deno.test("stale UDP flows: one filter per removed UDP endpoint", () => {
  const mk = (ips: string[]) =>
    plan(
      snapshot({
        services: [
          svc("dns", {
            clusterIPs: ["10.96.0.53"],
            ports: [{ port: 53, protocol: "UDP" }, { port: 53, name: "t" }],
          }),
        ],
        slices: [slice("dns", ips.map((i) => ep(i)), {
          ports: [{ name: "", port: 5353, protocol: "UDP" }, { name: "t", port: 5353, protocol: "TCP" }],
        })],
      }),
      opts,
      nodeA(),
    );
  assert.deepEqual(staleUdpFlows(mk(["10.201.0.5", "10.201.0.6"]), mk(["10.201.0.6"])), [
    { protocol: "udp", origDst: "10.96.0.53", origDstPort: 53, replySrc: "10.201.0.5", replySrcPort: 5353 },
  ]);
  assert.deepEqual(staleUdpFlows(undefined, mk([])), []);
});

// Found by upstream's e2e on the real cluster ("Conntrack should be able to preserve UDP traffic
// when server pod cycles for a ClusterIP service with InternalTrafficPolicy set to Local"): the
// client on node-a sent to the VIP while the only endpoint was on node-b, so node-a had no virtual
// service and the flow was confirmed un-NATed; when node-a's own endpoint appeared, that flow kept
// bypassing the new DNAT. kube-proxy clears a UDP VIP's flows when it goes from no endpoint to some.
Deno.test("stale UDP flows: a VIP that gains its first usable endpoint has all its flows cleared", () => {
  const mk = (eps: ReturnType<typeof ep>[], local = true) =>
    plan(
      snapshot({
        services: [svc("udp", {
          clusterIPs: ["10.96.0.77"],
          ports: [{ port: 80, protocol: "UDP" }],
          internalTrafficPolicy: local ? "Local" : "Cluster",
        })],
        slices: [slice("udp", eps, { ports: [{ name: "", port: 8080, protocol: "UDP" }] })],
      }),
      opts,
      nodeA(),
    );
  const onlyRemote = mk([ep("10.202.0.6", "node-b")]);
  const withLocal = mk([ep("10.202.0.6", "node-b"), ep("10.201.0.5")]);
  assert.deepEqual(staleUdpFlows(onlyRemote, withLocal), [
    { protocol: "udp", origDst: "10.96.0.77", origDstPort: 80 },
  ]);
  // No endpoint at all (traffic was rejected) -> one: the same.
  assert.deepEqual(staleUdpFlows(mk([], false), mk([ep("10.201.0.5")], false)), [
    { protocol: "udp", origDst: "10.96.0.77", origDstPort: 80 },
  ]);
  // Endpoints before and after: nothing to clear; unchanged plans: nothing.
  assert.deepEqual(staleUdpFlows(withLocal, mk([ep("10.202.0.6", "node-b"), ep("10.201.0.5")])), []);
  assert.deepEqual(staleUdpFlows(withLocal, withLocal), []);
});

Deno.test("health: 200 with local endpoints, 503 without", () => {
  assert.equal(healthResponse({ service: "ns/a", port: 32000, localEndpoints: 2 }).status, 200);
  const r = healthResponse({ service: "ns/a", port: 32000, localEndpoints: 0 });
  assert.equal(r.status, 503);
  assert.deepEqual(JSON.parse(r.body), { service: { namespace: "ns", name: "a" }, localEndpoints: 0 });
});

Deno.test("nodeIdentity: primary IPs from the Node, local addresses without lo, kube-*, dummy, link-local", () => {
  const s = snapshot();
  const snap = {
    ...s,
    nodes: new Map([["n1", {
      name: "n1",
      labels: {},
      annotations: {},
      podCIDRs: ["10.201.0.0/24"],
      internalIPs: ["192.0.2.10", "2001:db8::10"],
      externalIPs: [],
      providerID: "",
    }]]),
  };
  const id = nodeIdentity(snap, "n1", [
    { dev: "lo", ip: "127.0.0.1", prefixlen: 8, scope: "host" },
    { dev: "eth0", ip: "192.0.2.10", prefixlen: 24, scope: "global" },
    { dev: "eth1", ip: "198.51.100.3", prefixlen: 24, scope: "global" },
    { dev: "kube-bridge", ip: "10.201.0.1", prefixlen: 24, scope: "global" },
    { dev: "kube-dummy-if", ip: "10.96.0.1", prefixlen: 32, scope: "link" },
    { dev: "eth0", ip: "fe80::1", prefixlen: 64, scope: "link" },
  ]);
  assert.deepEqual(id, {
    name: "n1",
    ipv4: "192.0.2.10",
    ipv6: "2001:db8::10",
    localAddresses: ["192.0.2.10", "198.51.100.3"],
    podCIDRs: ["10.201.0.0/24"],
  });
});
