import assert from "node:assert/strict";
import { diffRoutes, parseRoutes, renderRouteDiff, renderRouteReplace, type Route } from "./route.ts";
import { parseRules, renderRuleAdd } from "./rule.ts";
import { renderTunnelAdd, renderVxlanAdd } from "./link.ts";
import { vtepMac } from "./neigh.ts";

// Addresses: 10.201.0.0/16 pod CIDRs and gateways, 2001:db8::/32 for IPv6.

Deno.test("parseRoutes reads ip -j route show table all proto 17 (filter hides protocol)", () => {
  const json = '[{"dst":"10.201.6.0/24","gateway":"10.201.0.3","dev":"br0","table":"77","flags":[]},' +
    '{"dst":"10.201.5.0/24","gateway":"10.201.0.2","dev":"br0","flags":["onlink"]},' +
    '{"dst":"10.201.7.0/24","flags":[],"nexthops":[{"gateway":"10.201.0.2","dev":"br0","weight":1,"flags":[]},' +
    '{"gateway":"10.201.0.3","dev":"br0","weight":1,"flags":[]}]}]';
  assert.deepEqual(parseRoutes(json, 4, 17), [
    { dst: "10.201.6.0/24", protocol: 17, table: 77, via: "10.201.0.3", dev: "br0" },
    { dst: "10.201.5.0/24", protocol: 17, via: "10.201.0.2", dev: "br0", onlink: true },
    {
      dst: "10.201.7.0/24",
      protocol: 17,
      nexthops: [{ via: "10.201.0.2", dev: "br0" }, { via: "10.201.0.3", dev: "br0" }],
    },
  ]);
  assert.deepEqual(parseRoutes("", 4), []);
});

Deno.test("diffRoutes replaces changed, adds new, removes stale; no-op when equal", () => {
  const a: Route = { dst: "10.201.1.0/24", via: "192.0.2.1" };
  const b: Route = { dst: "10.201.2.0/24", via: "192.0.2.2" };
  const c: Route = { dst: "10.201.3.0/24", via: "192.0.2.3" };
  const d = diffRoutes([a, { ...b, via: "192.0.2.9" }], [a, b, c]);
  assert.deepEqual(renderRouteDiff(d), [
    "route del 10.201.3.0/24 proto 17",
    "route replace 10.201.2.0/24 via 192.0.2.9 proto 17",
  ]);
  assert.deepEqual(diffRoutes([a, b], [b, a]), { replace: [], remove: [] });
});

Deno.test("route rendering: table, onlink, src, IPv6, multipath", () => {
  assert.equal(
    renderRouteReplace({
      dst: "10.201.1.0/24",
      via: "192.0.2.1",
      dev: "tun-abc",
      src: "192.0.2.5",
      onlink: true,
    }),
    "route replace 10.201.1.0/24 via 192.0.2.1 dev tun-abc src 192.0.2.5 proto 17 onlink",
  );
  assert.equal(
    renderRouteReplace({ dst: "192.0.2.1/32", dev: "tun-abc", table: 77 }),
    "route replace 192.0.2.1/32 dev tun-abc proto 17 table 77",
  );
  assert.equal(
    renderRouteReplace({ dst: "2001:db8:1::/64", via: "2001:db8::1" }),
    "route replace 2001:db8:1::/64 via 2001:db8::1 proto 17",
  );
  assert.equal(
    renderRouteReplace({ dst: "10.201.1.0/24", nexthops: [{ via: "192.0.2.1" }, { via: "192.0.2.2" }] }),
    "route replace 10.201.1.0/24 proto 17 nexthop via 192.0.2.1 nexthop via 192.0.2.2",
  );
});

Deno.test("rules parse and render", () => {
  const json =
    '[{"priority":0,"src":"all","table":"local"},{"priority":32765,"src":"10.201.1.0","srclen":24,' +
    '"table":"77"},{"priority":32766,"src":"all","table":"main"}]';
  assert.deepEqual(parseRules(json), [{ from: "10.201.1.0/24", table: 77, priority: 32765 }]);
  assert.equal(renderRuleAdd({ from: "10.201.1.0/24", table: 77 }), "rule add from 10.201.1.0/24 lookup 77");
});

// Golden lines for encapsulations this kernel cannot create (no ipip, no fou): checked against
// iproute2's ip-link(8) syntax, not against a kernel.
Deno.test("golden (packets in the VM: tests/vm/router_overlay.ts): IPIP / FoU tunnel lines as upstream builds them", () => {
  assert.equal(
    renderTunnelAdd({
      name: "tun-0123456789a",
      remote: "192.0.2.2",
      local: "192.0.2.1",
      encap: "ipip",
      encapPort: 5555,
    }),
    "link add name tun-0123456789a type ipip remote 192.0.2.2 local 192.0.2.1 ttl 225",
  );
  assert.equal(
    renderTunnelAdd({
      name: "tun-0123456789a",
      remote: "192.0.2.2",
      local: "192.0.2.1",
      encap: "fou",
      encapPort: 5555,
    }),
    "link add name tun-0123456789a type ipip remote 192.0.2.2 local 192.0.2.1 ttl 225 encap gue encap-sport auto encap-dport 5555",
  );
  assert.equal(
    renderTunnelAdd({
      name: "tun-0123456789a",
      remote: "2001:db8::2",
      local: "2001:db8::1",
      encap: "fou",
      encapPort: 5555,
    }),
    "link add name tun-0123456789a type ip6tnl remote 2001:db8::2 local 2001:db8::1 ttl 225 encap gue encap-sport auto encap-dport 5555 mode ip6ip6",
  );
});

Deno.test("vxlan line and VTEP MACs", () => {
  assert.equal(vtepMac("192.0.2.10"), "0e:6b:c0:00:02:0a");
  assert.equal(vtepMac("2001:db8::a:b"), "0e:6b:00:0a:00:0b");
  assert.equal(
    renderVxlanAdd({
      name: "kube-vxlan",
      vni: 4097,
      port: 4789,
      local: "192.0.2.1",
      address: vtepMac("192.0.2.1"),
    }),
    "link add name kube-vxlan address 0e:6b:c0:00:02:01 type vxlan id 4097 local 192.0.2.1 dstport 4789 nolearning",
  );
});
