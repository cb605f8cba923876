/**
 * Kernel-plan and host unit tests. Addresses: nodes 192.0.2.0/24 (this node .1, same-subnet
 * peer .2) and 198.51.100.0/24 (another subnet), pod CIDRs 10.201.N.0/24, 2001:db8::/32.
 */
import assert from "node:assert/strict";
import {
  bridgeCleanupLines,
  bridgeLines,
  formatBridgeRecord,
  gatewayOf,
  isGatewayAddress,
  parseBridgeRecord,
  vxlanLines,
  vxlanSpec,
} from "./host.ts";
import { kernelBatches, linkTunnelSignature } from "./ip_apply.ts";
import { parseLinks } from "../../kernel/ip/link.ts";
import { kernelPlan, overlayOverhead, type RouteContext, tunnelName } from "./routes.ts";
import { chainRules, desiredSets } from "./iptables_apply.ts";
import { updateCniConf } from "../../kernel/cni/conf.ts";

function ctx(o: Partial<RouteContext["overlay"]> = {}): RouteContext {
  return {
    overlay: { enabled: true, type: "subnet", encap: "vxlan", encapPort: 5555, ...o },
    localSubnets: ["192.0.2.0/24"],
    nodeIp: { v4: "192.0.2.1" },
    nodeIps: new Set(["192.0.2.2", "198.51.100.3"]),
    localPodCidrs: ["10.201.1.0/24"],
  };
}

const learned = [
  { prefix: "10.201.2.0/24", nextHop: "192.0.2.2" },
  { prefix: "10.201.3.0/24", nextHop: "198.51.100.3" },
  { prefix: "203.0.113.0/24", nextHop: "198.51.100.77" },
];

Deno.test("kernel plan, subnet overlay over VXLAN: same subnet direct, other subnet via kube-vxlan", () => {
  const kp = kernelPlan(learned, ctx());
  assert.deepEqual(kp.routes, [
    { dst: "10.201.2.0/24", via: "192.0.2.2" },
    { dst: "10.201.3.0/24", via: "198.51.100.3", dev: "kube-vxlan", onlink: true, src: "192.0.2.1" },
    { dst: "198.51.100.3/32", via: "198.51.100.3", dev: "kube-vxlan", onlink: true, table: 77 },
  ]);
  assert.deepEqual(kp.neighbours, [{ ip: "198.51.100.3", mac: "0e:6b:c6:33:64:03", dev: "kube-vxlan" }]);
  assert.deepEqual(kp.fdb, [{ mac: "0e:6b:c6:33:64:03", dev: "kube-vxlan", dst: "198.51.100.3" }]);
  assert.deepEqual(kp.rules, [{ from: "10.201.1.0/24", table: 77 }]);
  assert.deepEqual(
    kp.skipped,
    [{ prefix: "203.0.113.0/24", nextHop: "198.51.100.77" }],
    "not a node, off-subnet",
  );
  // full overlay: the same-subnet node is tunnelled too.
  assert.equal(
    kernelPlan(learned, ctx({ type: "full" })).routes.filter((r) => r.dev === "kube-vxlan").length,
    4,
  );
  // overlay off: only the same-subnet route.
  assert.deepEqual(kernelPlan(learned, ctx({ enabled: false })).routes, [{
    dst: "10.201.2.0/24",
    via: "192.0.2.2",
  }]);
});

Deno.test("kernel plan, IPIP (upstream naming; packets in the VM: tests/vm/router_overlay.ts)", () => {
  const kp = kernelPlan(learned, ctx({ encap: "ipip" }));
  const name = tunnelName("198.51.100.3");
  assert.match(name, /^tun-[0-9a-f]{11}$/);
  assert.equal(name.length, 15);
  assert.deepEqual(kp.tunnels, [{
    name,
    remote: "198.51.100.3",
    local: "192.0.2.1",
    encap: "ipip",
    encapPort: 5555,
  }]);
  const b = kernelBatches(kp, { routes: [], neighbours: [], fdb: [], rules: [], tunnels: [] });
  assert.deepEqual(b.ip, [
    `link add name ${name} type ipip remote 198.51.100.3 local 192.0.2.1 ttl 225`,
    `link set dev ${name} up`,
    "route replace 10.201.2.0/24 via 192.0.2.2 proto 17",
    `route replace 10.201.3.0/24 via 198.51.100.3 dev ${name} src 192.0.2.1 proto 17 onlink`,
    `route replace 198.51.100.3/32 dev ${name} proto 17 table 77`,
    "rule add from 10.201.1.0/24 lookup 77",
  ]);
});

Deno.test("kernel batches: an ipip tunnel found where a FoU one is planned is recreated, its routes rewritten", () => {
  const ipip = kernelPlan(learned, ctx({ encap: "ipip" }));
  const name = tunnelName("198.51.100.3");
  // What `ip -d -j link` says of the ipip tunnel (Debian's 6.1, as read in the overlay VM suite).
  const sig = linkTunnelSignature(
    parseLinks(JSON.stringify([{
      ifindex: 9,
      ifname: `${name}@NONE`,
      mtu: 1480,
      linkinfo: { info_kind: "ipip", info_data: { remote: "198.51.100.3", local: "192.0.2.1", ttl: 225 } },
    }]))[0],
  );
  const cur = {
    routes: ipip.routes,
    neighbours: [],
    fdb: [],
    rules: ipip.rules,
    tunnels: [name],
    tunnelSpecs: { [name]: sig },
    fouPorts: [],
  };
  assert.deepEqual(kernelBatches(ipip, cur), { ip: [], bridge: [] }, "same spec: nothing");
  const fou = kernelPlan(learned, ctx({ encap: "fou" }));
  assert.deepEqual(kernelBatches(fou, cur).ip, [
    "fou add port 5555 gue",
    `link del dev ${name}`,
    `link add name ${name} type ipip remote 198.51.100.3 local 192.0.2.1 ttl 225 encap gue encap-sport auto encap-dport 5555`,
    `link set dev ${name} up`,
    `route replace 10.201.3.0/24 via 198.51.100.3 dev ${name} src 192.0.2.1 proto 17 onlink`,
    `route replace 198.51.100.3/32 dev ${name} proto 17 table 77`,
  ]);
  const fouSig = linkTunnelSignature(
    parseLinks(JSON.stringify([{
      ifindex: 9,
      ifname: name,
      mtu: 1468,
      linkinfo: {
        info_kind: "ipip",
        info_data: {
          remote: "198.51.100.3",
          local: "192.0.2.1",
          ttl: 225,
          pmtudisc: true,
          encap: { type: "gue", sport: 0, dport: 5555, csum: false, csum6: false, remcsum: false },
        },
      },
    }]))[0],
  );
  assert.deepEqual(
    kernelBatches(fou, { ...cur, tunnelSpecs: { [name]: fouSig }, fouPorts: ["5555/4"] }),
    { ip: [], bridge: [] },
    "FoU found as planned: nothing",
  );
});

Deno.test("overlay overhead per encapsulation = what the kernel takes from a 1500-byte underlay", () => {
  // Tunnel MTUs Debian's 6.1 kernel gave in the overlay VM suite (tests/vm/router_overlay.ts): ipip
  // 1480, ipip with GUE encapsulation 1468; kube-bridge must not be larger than its tunnel.
  assert.equal(1500 - overlayOverhead("ipip"), 1480);
  assert.equal(1500 - overlayOverhead("fou"), 1468);
  assert.equal(1500 - overlayOverhead("vxlan"), 1450);
});

Deno.test("kernel batches: nothing when in sync; keepStale keeps unknown routes", () => {
  const kp = kernelPlan(learned, ctx());
  const state = { routes: kp.routes, neighbours: kp.neighbours, fdb: kp.fdb, rules: kp.rules, tunnels: [] };
  assert.deepEqual(kernelBatches(kp, state), { ip: [], bridge: [] });
  const stale = { ...state, routes: [...state.routes, { dst: "10.201.9.0/24", via: "192.0.2.9" }] };
  assert.deepEqual(kernelBatches(kp, stale, true), { ip: [], bridge: [] });
  assert.deepEqual(kernelBatches(kp, stale, false).ip, ["route del 10.201.9.0/24 proto 17"]);
});

Deno.test("host: gateway addresses, bridge lines, vxlan lines", () => {
  assert.equal(gatewayOf("10.201.1.0/24"), "10.201.1.1/24");
  assert.equal(gatewayOf("2001:db8:1::/64"), "2001:db8:1::1/64");
  assert.equal(isGatewayAddress("10.201.1.1/24"), true);
  assert.equal(isGatewayAddress("10.201.1.5/24"), false);
  const bridge = {
    name: "kube-bridge",
    ifindex: 3,
    kind: "bridge",
    mtu: 1500,
    up: false,
    address: "",
    data: {},
  };
  const facts = {
    links: [{ ...bridge, alias: "" }],
    addresses: [{ cidr: "10.201.7.1/24", dev: "kube-bridge" }, { cidr: "10.201.8.9/24", dev: "kube-bridge" }],
  };
  // A bridge we found: its settings are recorded first; its own gateway-looking address is not ours.
  const found = "kube-router:v1;origin=found;mtu=1500;up=0;added=10.201.1.1/24";
  assert.deepEqual(bridgeLines(facts, { mtu: 1450, gateways: ["10.201.1.1/24"] }), [
    `link set dev kube-bridge alias ${found}`,
    "link set dev kube-bridge mtu 1450 up",
    "addr replace 10.201.1.1/24 dev kube-bridge",
  ]);
  // Once recorded: our old gateway goes when the pod CIDR changes, the record follows.
  const after = {
    links: [{ ...bridge, mtu: 1450, up: true, alias: found }],
    addresses: [...facts.addresses, { cidr: "10.201.1.1/24", dev: "kube-bridge" }],
  };
  assert.deepEqual(bridgeLines(after, { mtu: 1450, gateways: ["10.201.1.1/24"] }), []);
  assert.deepEqual(bridgeLines(after, { mtu: 1450, gateways: ["10.201.2.1/24"] }), [
    "link set dev kube-bridge alias kube-router:v1;origin=found;mtu=1500;up=0;added=10.201.2.1/24",
    "addr replace 10.201.2.1/24 dev kube-bridge",
    "addr del 10.201.1.1/24 dev kube-bridge",
  ]);
  // Cleanup of a found bridge: only our address, then MTU and state back, record cleared.
  assert.deepEqual(bridgeCleanupLines(after).lines, [
    "addr del 10.201.1.1/24 dev kube-bridge",
    "link set dev kube-bridge mtu 1500 down",
    'link set dev kube-bridge alias ""',
  ]);
  // Found with the bridge plugin's gateway on it (a pod started before the agent), or bare (found
  // before the plugin addressed it), no pod left now: deleted; with a pod attached, restored.
  const pluginFound = {
    links: [{ ...bridge, mtu: 1450, up: true, alias: found }],
    addresses: [{ cidr: "10.201.7.1/24", dev: "kube-bridge" }, { cidr: "10.201.1.1/24", dev: "kube-bridge" }],
  };
  assert.deepEqual(bridgeCleanupLines(pluginFound).lines, ["link del dev kube-bridge"]);
  const veth = { ...bridge, name: "veth9", kind: "veth", alias: "", master: "kube-bridge" };
  assert.equal(
    bridgeCleanupLines({ ...pluginFound, links: [...pluginFound.links, veth] }).lines[0],
    "addr del 10.201.1.1/24 dev kube-bridge",
  );
  assert.deepEqual(
    bridgeCleanupLines({ ...pluginFound, addresses: [{ cidr: "10.201.1.1/24", dev: "kube-bridge" }] }).lines,
    ["link del dev kube-bridge"],
    "found bare, only our gateway on it now, no port: deleted",
  );
  const port = { ...bridge, name: "veth1", kind: "veth", alias: "", master: "kube-bridge" };
  assert.deepEqual(
    bridgeCleanupLines({ ...facts, links: [...facts.links, port] }).lines,
    [],
    "no record, a pod attached: left alone",
  );
  assert.deepEqual(
    bridgeCleanupLines(facts).lines,
    [],
    "no record, nothing attached, but an address that is no pod gateway (10.201.8.9): left alone",
  );
  const pluginOnly = { ...facts, addresses: [{ cidr: "10.201.7.1/24", dev: "kube-bridge" }] };
  assert.deepEqual(
    bridgeCleanupLines(pluginOnly).lines,
    ["link del dev kube-bridge"],
    "no record, only a pod gateway, nothing attached (the bridge plugin's, its pods gone): deleted",
  );
  assert.deepEqual(bridgeLines({ links: [], addresses: [] }, { gateways: [] }), [
    "link add name kube-bridge type bridge",
    "link set dev kube-bridge alias kube-router:v1;origin=created;added=",
    "link set dev kube-bridge up",
  ]);
  const created = {
    links: [{ ...bridge, up: true, alias: "kube-router:v1;origin=created;added=" }],
    addresses: [],
  };
  assert.deepEqual(bridgeCleanupLines(created).lines, ["link del dev kube-bridge"]);
  assert.deepEqual(parseBridgeRecord(found), {
    origin: "found",
    mtu: 1500,
    up: false,
    added: ["10.201.1.1/24"],
  });
  assert.equal(parseBridgeRecord("an operator's alias"), null);
  // The CNI path rides along (cleanup removes that file), unless it cannot be written in an alias.
  const withCni = { origin: "created" as const, added: [], cni: "/etc/cni/net.d/10-kuberouter.conflist" };
  assert.deepEqual(parseBridgeRecord(formatBridgeRecord(withCni)), withCni);
  assert.equal(parseBridgeRecord(formatBridgeRecord({ ...withCni, cni: "/a b" }))?.cni, undefined);
  assert.equal(
    parseBridgeRecord(formatBridgeRecord({ ...withCni, cni: "/" + "x".repeat(300) }))?.cni,
    undefined,
  );
  const spec = vxlanSpec("192.0.2.1", 1450, "eth0");
  assert.deepEqual(vxlanLines({ links: [], addresses: [] }, spec), [
    "link add name kube-vxlan address 0e:6b:c0:00:02:01 mtu 1450 type vxlan id 4097 local 192.0.2.1 dev eth0 dstport 4789 nolearning",
    "link set dev kube-vxlan mtu 1450 up",
  ]);
});

Deno.test("netfilter: chain rules and sets per family", () => {
  const r = chainRules({ v6: true, podEgress: true, bridge: "kube-bridge", podCidrs: [], nodeIps: [] });
  assert.deepEqual(r.nat[0].slice(0, 5), [
    "-m",
    "set",
    "--match-set",
    "inet6:kube-router-pod-subnets",
    "src",
  ]);
  assert.deepEqual(
    chainRules({ v6: false, podEgress: false, bridge: "kube-bridge", podCidrs: [], nodeIps: [] }).nat,
    [],
  );
  const sets = desiredSets({
    v6: false,
    podEgress: true,
    bridge: "kube-bridge",
    podCidrs: ["10.201.2.0/24", "10.201.1.0/24"],
    nodeIps: ["192.0.2.1"],
  });
  assert.deepEqual(sets.map((s) => [s.name, s.type, s.entries]), [
    ["kube-router-pod-subnets", "hash:net", ["10.201.1.0/24", "10.201.2.0/24"]],
    ["kube-router-node-ips", "hash:ip", ["192.0.2.1"]],
  ]);
});

Deno.test("CNI conf: legacy subnet → ranges, pod CIDRs inserted, mtu, unknown fields kept; conflist", () => {
  const legacy = JSON.stringify({
    cniVersion: "0.3.0",
    name: "mynet",
    type: "bridge",
    bridge: "kube-bridge",
    isDefaultGateway: true,
    hairpinMode: true,
    ipam: { type: "host-local", subnet: "10.201.1.0/24", custom: 1 },
    extra: { keep: "me" },
  });
  const out = JSON.parse(
    updateCniConf(legacy, { podCidrs: ["10.201.1.0/24", "2001:db8:1::/64"], mtu: 1450 }),
  );
  assert.deepEqual(out.ipam, {
    type: "host-local",
    custom: 1,
    ranges: [[{ subnet: "10.201.1.0/24" }], [{ subnet: "2001:db8:1::/64" }]],
  });
  assert.equal(out.mtu, 1450);
  assert.equal(out.hairpinMode, true);
  assert.deepEqual(out.extra, { keep: "me" });
  const list = JSON.stringify({
    cniVersion: "0.3.1",
    name: "kubernetes",
    plugins: [{ type: "bridge", bridge: "kube-bridge", ipam: { type: "host-local" } }, { type: "portmap" }],
  });
  const l = JSON.parse(updateCniConf(list, { podCidrs: ["10.201.1.0/24"] }));
  assert.deepEqual(l.plugins[0].ipam.ranges, [[{ subnet: "10.201.1.0/24" }]]);
  assert.deepEqual(l.plugins[1], { type: "portmap" });
  // Idempotent: the second pass returns the same text.
  const once = updateCniConf(list, { podCidrs: ["10.201.1.0/24"], mtu: 1500 });
  assert.equal(updateCniConf(once, { podCidrs: ["10.201.1.0/24"], mtu: 1500 }), once);
  assert.throws(
    () => updateCniConf(JSON.stringify({ name: "x", type: "ptp" }), { podCidrs: [] }),
    /expected "bridge"/,
  );
});

Deno.test("kernel plan, dual-stack: IPv6 prefix with an IPv6 next hop on a local subnet goes direct", () => {
  const c: RouteContext = {
    ...ctx({ enabled: false }),
    localSubnets: ["192.0.2.0/24", "2001:db8::/64"],
    nodeIp: { v4: "192.0.2.1", v6: "2001:db8::1" },
    nodeIps: new Set(["192.0.2.2", "2001:db8::2"]),
  };
  const kp = kernelPlan([
    { prefix: "10.201.2.0/24", nextHop: "192.0.2.2" },
    { prefix: "2001:db8:202::/64", nextHop: "2001:db8::2" },
  ], c);
  assert.deepEqual(kp.routes, [
    { dst: "10.201.2.0/24", via: "192.0.2.2" },
    { dst: "2001:db8:202::/64", via: "2001:db8::2" },
  ]);
  const b = kernelBatches(kp, { routes: [], neighbours: [], fdb: [], rules: [], tunnels: [] });
  assert.deepEqual(b.ip, [
    "route replace 10.201.2.0/24 via 192.0.2.2 proto 17",
    "route replace 2001:db8:202::/64 via 2001:db8::2 proto 17",
  ]);
});

Deno.test("kernel batches under keepStale keep the FDB entries and neighbours of kept routes", () => {
  const full = kernelPlan(learned, ctx());
  const state = {
    routes: full.routes,
    neighbours: full.neighbours,
    fdb: full.fdb,
    rules: full.rules,
    tunnels: [],
  };
  const empty = kernelPlan([], ctx());
  assert.deepEqual(kernelBatches(empty, state, true), { ip: [], bridge: [] });
  assert.deepEqual(kernelBatches(empty, state, false).bridge, [
    "fdb del 0e:6b:c6:33:64:03 dev kube-vxlan dst 198.51.100.3 self",
  ]);
});

Deno.test("VXLAN dual-stack: an IPv6 next hop rides the node's IPv4 VTEP", () => {
  const c: RouteContext = {
    ...ctx(),
    localSubnets: ["192.0.2.0/24", "2001:db8::/64"],
    nodeIp: { v4: "192.0.2.1", v6: "2001:db8::1" },
    nodeIps: new Set(["198.51.100.3", "2001:db8:3::3"]),
    vtepOf: new Map([["198.51.100.3", "198.51.100.3"], ["2001:db8:3::3", "198.51.100.3"]]),
  };
  const kp = kernelPlan([
    { prefix: "10.201.3.0/24", nextHop: "198.51.100.3" },
    { prefix: "2001:db8:203::/64", nextHop: "2001:db8:3::3" },
  ], c);
  assert.deepEqual(kp.neighbours, [
    { ip: "198.51.100.3", mac: "0e:6b:c6:33:64:03", dev: "kube-vxlan" },
    { ip: "2001:db8:3::3", mac: "0e:6b:c6:33:64:03", dev: "kube-vxlan" },
  ]);
  assert.deepEqual(kp.fdb, [{ mac: "0e:6b:c6:33:64:03", dev: "kube-vxlan", dst: "198.51.100.3" }]);
  assert.ok(
    kp.routes.some((r) => r.dst === "2001:db8:203::/64" && r.dev === "kube-vxlan" && r.src === "2001:db8::1"),
  );
});

Deno.test("golden (packets in the VM: tests/vm/router_overlay.ts): FoU tunnels get the GUE receive port first", () => {
  const kp = kernelPlan(learned, ctx({ encap: "fou", encapPort: 5555 }));
  const b = kernelBatches(kp, { routes: [], neighbours: [], fdb: [], rules: [], tunnels: [], fouPorts: [] });
  const name = tunnelName("198.51.100.3");
  assert.deepEqual(b.ip.slice(0, 3), [
    "fou add port 5555 gue",
    `link add name ${name} type ipip remote 198.51.100.3 local 192.0.2.1 ttl 225 encap gue encap-sport auto encap-dport 5555`,
    `link set dev ${name} up`,
  ]);
  const again = kernelBatches(kp, {
    routes: [],
    neighbours: [],
    fdb: [],
    rules: [],
    tunnels: [],
    fouPorts: ["5555/4"],
  });
  assert.ok(!again.ip.some((l) => l.startsWith("fou add")));
});
