/**
 * Router plan unit tests over literal snapshots.
 * Addresses: nodes 192.0.2.11-.13 (IPv4) and 2001:db8::11-13, pod CIDRs 10.201.N.0/24 and
 * 2001:db8:20N::/64, services 10.96.0.0/12, external peers 198.51.100.0/24.
 */
import assert from "node:assert/strict";
import { defaultOptions } from "../../options/mod.ts";
import { emptySnapshot, type NodeInfo, type ServiceInfo } from "../../watch/types.ts";
import { planRouter } from "./plan.ts";
import { problemText } from "./identity.ts";
import type { RouterOptions } from "./peers.ts";
import { parseCommunity } from "./policies.ts";

function node(n: number, extra: Partial<NodeInfo> = {}): NodeInfo {
  return {
    name: `node-${n}`,
    labels: {},
    annotations: {},
    podCIDRs: [`10.201.${n}.0/24`],
    internalIPs: [`192.0.2.1${n}`],
    externalIPs: [],
    providerID: "",
    ...extra,
  };
}

function svc(name: string, extra: Partial<ServiceInfo> = {}): ServiceInfo {
  return {
    namespace: "default",
    name,
    labels: {},
    annotations: {},
    type: "ClusterIP",
    clusterIPs: ["10.96.0.10"],
    headless: false,
    externalIPs: [],
    loadBalancerIPs: [],
    loadBalancerClass: "",
    ports: [],
    sessionAffinity: "None",
    sessionAffinityTimeout: 0,
    externalTrafficPolicy: "Cluster",
    internalTrafficPolicy: "Cluster",
    healthCheckNodePort: 0,
    ipFamilies: ["IPv4"],
    ipFamilyPolicy: "SingleStack",
    ...extra,
  };
}

function snap(nodes: NodeInfo[], services: ServiceInfo[] = []) {
  const s = emptySnapshot();
  return {
    ...s,
    nodes: new Map(nodes.map((n) => [n.name, n])),
    services: new Map(services.map((x) => [`${x.namespace}/${x.name}`, x])),
  };
}

function opts(o: Partial<RouterOptions> = {}): RouterOptions {
  return { ...defaultOptions(), ...o };
}

Deno.test("full mesh: every other node is an iBGP peer on the cluster ASN, pod CIDR advertised", () => {
  const p = planRouter({ snapshot: snap([node(1), node(2), node(3)]), options: opts(), nodeName: "node-1" });
  assert.deepEqual(p.problems, []);
  assert.deepEqual(p.speaker, {
    asn: 64512,
    routerId: "192.0.2.11",
    listenAddresses: ["192.0.2.11"],
    port: 179,
  });
  assert.deepEqual(p.peers.map((x) => [x.kind, x.address, x.asn, x.port, x.localAddress]), [
    ["node", "192.0.2.12", 64512, 179, "192.0.2.11"],
    ["node", "192.0.2.13", 64512, 179, "192.0.2.11"],
  ]);
  assert.deepEqual(p.advertisements, [{ prefix: "10.201.1.0/24", nextHop: "192.0.2.11", kind: "pod-cidr" }]);
  assert.deepEqual(p.allPodCidrs, ["10.201.1.0/24", "10.201.2.0/24", "10.201.3.0/24"]);
  assert.deepEqual(p.peers[0].exportPolicy, {
    default: "reject",
    statements: [{
      name: "podcidrdefinedset",
      match: { prefixes: [{ prefix: { afi: 1, addr: "10.201.1.0", len: 24 } }] },
      actions: { result: "accept" },
    }],
  });
  assert.deepEqual(p.peers[0].importPolicy?.statements.map((s) => s.name), ["defaultroutedefinedset"]);
});

Deno.test("pod CIDR annotations win over spec; overlapping node is skipped with a clear error", () => {
  const n2 = node(2, { annotations: { "kube-router.io/pod-cidrs": "10.201.22.0/24" } });
  const n3 = node(3, { podCIDRs: ["10.201.0.0/16"] });
  const p = planRouter({ snapshot: snap([node(1), n2, n3]), options: opts(), nodeName: "node-1" });
  assert.deepEqual(p.allPodCidrs, ["10.201.1.0/24", "10.201.22.0/24"]);
  assert.deepEqual(p.problems.map(problemText), [
    "node/node-3: pod CIDR: 10.201.0.0/16 overlaps 10.201.1.0/24 of node/node-1; node skipped (pod CIDRs must be disjoint)",
  ]);
  assert.deepEqual(p.peers.map((x) => x.address), ["192.0.2.12"]);
});

Deno.test("conflicts between nodes: the oldest Node wins the pod CIDR and the address, the other is skipped", () => {
  // node-3 is older than node-2: it keeps the overlapping CIDR although its name sorts later.
  const n2 = node(2, { podCIDRs: ["10.201.0.0/16"], creationTimestamp: "2024-06-01T00:00:00Z" });
  const n3 = node(3, { podCIDRs: ["10.201.3.0/24"], creationTimestamp: "2024-01-01T00:00:00Z" });
  // node-4 (no creation time known: sorts last) has node-1's address.
  const n4 = node(4, { internalIPs: ["192.0.2.11"] });
  const p = planRouter({
    snapshot: snap([node(1, { creationTimestamp: "2023-01-01T00:00:00Z" }), n2, n3, n4]),
    options: opts(),
    nodeName: "node-1",
  });
  assert.deepEqual(p.problems.map(problemText), [
    "node/node-2: pod CIDR: 10.201.0.0/16 overlaps 10.201.1.0/24 of node/node-1; node skipped (pod CIDRs must be disjoint)",
    "node/node-4: status.addresses: 192.0.2.11 is also the address of node/node-1, which is older and wins; node skipped (node addresses must be unique)",
  ]);
  assert.deepEqual(p.allPodCidrs, ["10.201.1.0/24", "10.201.3.0/24"]);
  assert.deepEqual(p.peers.map((x) => x.address), ["192.0.2.13"]);
});

Deno.test("external peers from flags: passwords base64, ports, multihop TTL, hold time, GR", () => {
  const o = opts({
    peerRouterIps: ["198.51.100.1", "198.51.100.2"],
    peerRouterAsns: [65001, 65002],
    peerRouterPorts: [179, 1790],
    peerRouterPasswords: [btoa("s3cret"), ""],
    peerRouterMultihopTtl: 3,
    bgpHoldtime: 30_000,
    bgpGracefulRestart: true,
    enableIbgp: false,
  });
  const p = planRouter({ snapshot: snap([node(1)]), options: o, nodeName: "node-1" });
  assert.deepEqual(p.problems, []);
  assert.deepEqual(
    p.peers.map(({ address, asn, port, password, multihopTtl, holdTime, gracefulRestart, localAddress }) => ({
      address,
      asn,
      port,
      password,
      multihopTtl,
      holdTime,
      gracefulRestart,
      localAddress,
    })),
    [
      {
        address: "198.51.100.1",
        asn: 65001,
        port: 179,
        password: "s3cret",
        multihopTtl: 3,
        holdTime: 30,
        gracefulRestart: true,
        localAddress: "192.0.2.11",
      },
      {
        address: "198.51.100.2",
        asn: 65002,
        port: 1790,
        password: undefined,
        multihopTtl: 3,
        holdTime: 30,
        gracefulRestart: true,
        localAddress: "192.0.2.11",
      },
    ],
  );
  assert.deepEqual(p.speaker?.gracefulRestart, { restartTime: 90, deferralTime: 360 });
});

Deno.test("password list length mismatch: global peers skipped, error names the flag; file fallback", () => {
  const base = { peerRouterIps: ["198.51.100.1", "198.51.100.2"], peerRouterAsns: [65001, 65002] };
  const bad = planRouter({
    snapshot: snap([node(1), node(2)]),
    options: opts({ ...base, peerRouterPasswords: [btoa("x")] }),
    nodeName: "node-1",
  });
  assert.deepEqual(bad.problems.map(problemText), [
    "flag: --peer-router-passwords: 1 passwords for 2 peer IPs; give none or one per peer (blank allowed), global peers skipped",
  ]);
  assert.deepEqual(bad.peers.map((x) => x.address), ["192.0.2.12"], "iBGP still routes");
  const file = planRouter({
    snapshot: snap([node(1)]),
    options: opts(base),
    nodeName: "node-1",
    passwordsFileText: `${btoa("a")},${btoa("b")}\n`,
  });
  assert.deepEqual(file.peers.map((x) => x.password), ["a", "b"]);
});

Deno.test("malformed ASN and peer IP in annotations skip only that peer", () => {
  const n1 = node(1, {
    annotations: {
      "kube-router.io/peers": [
        "- remoteip: 198.51.100.1",
        "  remoteasn: 65001",
        "  password: " + btoa("pw"),
        "  port: 1179",
        "- remoteip: 198.51.100.999",
        "  remoteasn: 65002",
        "- remoteip: 198.51.100.3",
        "  remoteasn: 64500",
      ].join("\n"),
    },
  });
  const p = planRouter({ snapshot: snap([n1]), options: opts(), nodeName: "node-1" });
  assert.deepEqual(p.peers.map((x) => [x.address, x.asn, x.port, x.password]), [[
    "198.51.100.1",
    65001,
    1179,
    "pw",
  ]]);
  assert.deepEqual(p.problems.map(problemText), [
    'node/node-1: annotation kube-router.io/peers[1]: peer IP "198.51.100.999" is not an IPv4/IPv6 address',
    "node/node-1: annotation kube-router.io/peers[2]: peer ASN 64500 is malformed or reserved (expected 1-4294967294, not 23456, 64496-64511, 65535, 65536-65551)",
  ]);
});

Deno.test("deprecated peer.* annotations and length mismatch", () => {
  const ok = node(1, {
    annotations: {
      "kube-router.io/peer.ips": "198.51.100.1,198.51.100.2",
      "kube-router.io/peer.asns": "65001,65002",
      "kube-router.io/peer.localips": "192.0.2.11,192.0.2.111",
    },
  });
  const p = planRouter({ snapshot: snap([ok]), options: opts(), nodeName: "node-1" });
  assert.deepEqual(p.peers.map((x) => [x.address, x.asn, x.localAddress]), [
    ["198.51.100.1", 65001, "192.0.2.11"],
    ["198.51.100.2", 65002, "192.0.2.111"],
  ]);
  const bad = node(1, {
    annotations: { "kube-router.io/peer.ips": "198.51.100.1", "kube-router.io/peer.asns": "x,y" },
  });
  const q = planRouter({ snapshot: snap([bad]), options: opts(), nodeName: "node-1" });
  assert.deepEqual(q.peers, []);
  assert.match(
    problemText(q.problems[0]),
    /^node\/node-1: annotation kube-router.io\/peer.asns: 2 entries for 1 peer IPs/,
  );
});

Deno.test("node.asn without full mesh: peers only with the same ASN; missing/malformed reported", () => {
  const a = (n: number, asn: string) => node(n, { annotations: { "kube-router.io/node.asn": asn } });
  const p = planRouter({
    snapshot: snap([a(1, "65100"), a(2, "65100"), a(3, "65200")]),
    options: opts({ nodesFullMesh: false }),
    nodeName: "node-1",
  });
  assert.equal(p.speaker?.asn, 65100);
  assert.deepEqual(p.peers.map((x) => x.address), ["192.0.2.12"]);
  const bad = planRouter({
    snapshot: snap([a(1, "sixty")]),
    options: opts({ nodesFullMesh: false }),
    nodeName: "node-1",
  });
  assert.equal(bad.speaker, null);
  assert.deepEqual(bad.problems.map(problemText), [
    'node/node-1: annotation kube-router.io/node.asn: "sixty" is not an ASN (expected 1-4294967295)',
  ]);
});

Deno.test("route reflectors: server marks clients, client peers only with servers, server has no policies", () => {
  const srv = node(1, { annotations: { "kube-router.io/rr.server": "42" } });
  const c2 = node(2, { annotations: { "kube-router.io/rr.client": "42" } });
  const c3 = node(3, { annotations: { "kube-router.io/rr.client": "42" } });
  const s = planRouter({ snapshot: snap([srv, c2, c3]), options: opts(), nodeName: "node-1" });
  assert.equal(s.speaker?.clusterId, "0.0.0.42");
  assert.deepEqual(s.peers.map((x) => [x.address, x.routeReflectorClient]), [["192.0.2.12", true], [
    "192.0.2.13",
    true,
  ]]);
  assert.equal(s.peers[0].exportPolicy, undefined);
  assert.equal(s.peers[0].importPolicy, undefined);
  const c = planRouter({ snapshot: snap([srv, c2, c3]), options: opts(), nodeName: "node-2" });
  assert.deepEqual(c.peers.map((x) => x.address), ["192.0.2.11"]);
});

Deno.test("service VIPs: flag, annotation override, Local policy without local endpoints withdraws", () => {
  const s1 = svc("a", { clusterIPs: ["10.96.0.10"] });
  const s2 = svc("b", {
    clusterIPs: ["10.96.0.11"],
    annotations: { "kube-router.io/service.advertise.clusterip": "false" },
    externalIPs: ["198.51.100.50"],
  });
  const s3 = svc("c", {
    type: "LoadBalancer",
    clusterIPs: ["10.96.0.12"],
    externalTrafficPolicy: "Local",
    loadBalancerIPs: [{ ip: "198.51.100.60", hostname: "", ipMode: "VIP" }],
  });
  const o = opts({ advertiseClusterIp: true, advertiseExternalIp: true, advertiseLoadbalancerIp: true });
  const p = planRouter({ snapshot: snap([node(1), node(2)], [s1, s2, s3]), options: o, nodeName: "node-1" });
  assert.deepEqual(p.advertisements.map((a) => `${a.kind} ${a.prefix}`), [
    "pod-cidr 10.201.1.0/24",
    "cluster-ip 10.96.0.10/32",
    "cluster-ip 10.96.0.12/32",
    "external-ip 198.51.100.50/32",
  ]);
  // With a ready local endpoint the LB IP appears.
  const sn = snap([node(1), node(2)], [s1, s2, s3]);
  const withEp = {
    ...sn,
    endpointSlices: new Map([["default/c-x", {
      namespace: "default",
      name: "c-x",
      serviceName: "c",
      addressType: "IPv4" as const,
      ports: [],
      endpoints: [{
        addresses: ["10.201.1.5"],
        ready: true,
        serving: true,
        terminating: false,
        nodeName: "node-1",
        targetPod: "",
      }],
    }]]),
  };
  const q = planRouter({ snapshot: withEp, options: o, nodeName: "node-1" });
  assert.ok(q.advertisements.some((a) => a.prefix === "198.51.100.60/32"));
  // External peers' export policy: VIPs then pod CIDR; import rejects every service VIP.
  const ext = planRouter({
    snapshot: withEp,
    options: { ...o, peerRouterIps: ["198.51.100.1"], peerRouterAsns: [65001], overrideNexthop: true },
    nodeName: "node-1",
  });
  const e = ext.peers.find((x) => x.kind === "external")!;
  assert.deepEqual(e.exportPolicy?.statements.map((s) => s.name), [
    "servicevipsdefinedset",
    "podcidrdefinedset",
  ]);
  assert.equal(e.exportPolicy?.statements[0].actions.nextHop, "self");
  assert.deepEqual(
    e.importPolicy?.statements[0].match?.prefixes?.map((x) => x.prefix.addr),
    ["10.96.0.10", "10.96.0.11", "10.96.0.12", "198.51.100.50", "198.51.100.60"],
  );
});

Deno.test("communities, path prepend, custom import reject from annotations", () => {
  const n1 = node(1, {
    annotations: {
      "kube-router.io/node.bgp.communities": "100,65000:10,no-export,bogus",
      "kube-router.io/path-prepend.as": "65000",
      "kube-router.io/path-prepend.repeat-n": "3",
      "kube-router.io/node.bgp.customimportreject": "10.250.0.0/16",
    },
  });
  const p = planRouter({
    snapshot: snap([n1]),
    options: opts({ peerRouterIps: ["198.51.100.1"], peerRouterAsns: [65001] }),
    nodeName: "node-1",
  });
  const st = p.peers[0].exportPolicy!.statements[0];
  assert.deepEqual(st.actions, {
    result: "accept",
    addCommunities: [100, 65000 * 65536 + 10, 0xffffff01],
    asPathPrepend: { asn: 65000, count: 3 },
  });
  assert.deepEqual(p.peers[0].importPolicy!.statements[1].match?.prefixes, [
    { prefix: { afi: 1, addr: "10.250.0.0", len: 16 }, ge: 16, le: 32 },
  ]);
  assert.match(problemText(p.problems[0]), /"bogus" is not a community/);
  assert.equal(parseCommunity("65536:1"), null);
});

Deno.test("router id: generate, explicit, IPv6-only needs the flag; bad cluster ASN", () => {
  const g = planRouter({
    snapshot: snap([node(1)]),
    options: opts({ routerId: "generate" }),
    nodeName: "node-1",
  });
  assert.match(g.speaker!.routerId, /^\d+\.\d+\.\d+\.\d+$/);
  assert.notEqual(g.speaker!.routerId, "192.0.2.11");
  const v6 = node(1, { internalIPs: ["2001:db8::11"], podCIDRs: ["2001:db8:201::/64"] });
  const o6 = opts({ enableIpv4: false, enableIpv6: true });
  const bad = planRouter({ snapshot: snap([v6]), options: o6, nodeName: "node-1" });
  assert.equal(bad.speaker, null);
  assert.match(problemText(bad.problems[0]), /--router-id: node has no IPv4 address/);
  const ok = planRouter({
    snapshot: snap([v6]),
    options: { ...o6, routerId: "192.0.2.99" },
    nodeName: "node-1",
  });
  assert.deepEqual(ok.advertisements, [{
    prefix: "2001:db8:201::/64",
    nextHop: "2001:db8::11",
    kind: "pod-cidr",
  }]);
  const asn = planRouter({
    snapshot: snap([node(1)]),
    options: opts({ clusterAsn: 100 }),
    nodeName: "node-1",
  });
  assert.match(problemText(asn.problems[0]), /--cluster-asn: 100 is not a private ASN/);
});

Deno.test("dual-stack: both families on one IPv4 session, both pod CIDRs advertised", () => {
  const ds = (n: number) =>
    node(n, {
      internalIPs: [`192.0.2.1${n}`, `2001:db8::1${n}`],
      podCIDRs: [`10.201.${n}.0/24`, `2001:db8:20${n}::/64`],
    });
  const p = planRouter({
    snapshot: snap([ds(1), ds(2)]),
    options: opts({ enableIpv6: true }),
    nodeName: "node-1",
  });
  assert.deepEqual(p.peers.map((x) => [x.address, x.families]), [["192.0.2.12", [{ afi: 1, safi: 1 }, {
    afi: 2,
    safi: 1,
  }]]]);
  assert.deepEqual(p.advertisements.map((a) => `${a.prefix} ${a.nextHop}`), [
    "10.201.1.0/24 192.0.2.11",
    "2001:db8:201::/64 2001:db8::11",
  ]);
  assert.deepEqual(p.speaker?.listenAddresses, ["192.0.2.11", "2001:db8::11"]);
});

Deno.test("plan: bgp-local-addresses that are not IPs are a problem, and the speaker keeps its defaults", () => {
  const bad = node(1, { annotations: { "kube-router.io/bgp-local-addresses": "bogus,192.0.2.11" } });
  const p = planRouter({ snapshot: snap([bad, node(2)]), options: opts(), nodeName: "node-1" });
  assert.deepEqual(p.speaker?.listenAddresses, ["192.0.2.11"]);
  assert.ok(
    p.problems.map(problemText).some((t) => /bgp-local-addresses.*"bogus" is not an IP address/.test(t)),
  );
  const good = node(1, {
    annotations: { "kube-router.io/bgp-local-addresses": " 192.0.2.11 , 2001:DB8::11" },
  });
  const q = planRouter({ snapshot: snap([good]), options: opts(), nodeName: "node-1" });
  assert.deepEqual(q.speaker?.listenAddresses, ["192.0.2.11", "2001:db8::11"]);
  assert.equal(q.problems.length, 0);
});
