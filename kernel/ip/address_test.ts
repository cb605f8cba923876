// Unit tests of kube-dummy-if address handling (pure parts). Addresses: VIPs 10.96.0.0/16 and
// 2001:db8:96::/64, node 192.0.2.10 / 2001:db8::10.
import assert from "node:assert/strict";
import { parseAddresses, renderAddressSync, vipCidr } from "./address.ts";

Deno.test("parseAddresses reads ip -j addr show", () => {
  const json = JSON.stringify([
    { ifname: "lo", addr_info: [{ family: "inet", local: "127.0.0.1", prefixlen: 8, scope: "host" }] },
    {
      ifname: "kube-dummy-if",
      addr_info: [
        { family: "inet", local: "10.96.0.1", prefixlen: 32, scope: "link" },
        { family: "inet6", local: "2001:db8:96::1", prefixlen: 128, scope: "global" },
      ],
    },
    { ifname: "eth0" },
  ]);
  assert.deepEqual(parseAddresses(json), [
    { dev: "lo", ip: "127.0.0.1", prefixlen: 8, scope: "host" },
    { dev: "kube-dummy-if", ip: "10.96.0.1", prefixlen: 32, scope: "link" },
    { dev: "kube-dummy-if", ip: "2001:db8:96::1", prefixlen: 128, scope: "global" },
  ]);
  assert.deepEqual(parseAddresses(""), []);
});

Deno.test("renderAddressSync: deletes extras, adds missing with a local route sourced from the node", () => {
  assert.deepEqual(
    renderAddressSync(
      "kube-dummy-if",
      ["10.96.0.1/32", "10.96.0.9/32"],
      ["10.96.0.1/32", "10.96.0.2/32", vipCidr("2001:db8:96::2")],
      { v4: "192.0.2.10", v6: "2001:db8::10" },
    ),
    [
      "addr del 10.96.0.9/32 dev kube-dummy-if",
      "addr add 10.96.0.2/32 dev kube-dummy-if scope link",
      "route replace local 10.96.0.2 dev kube-dummy-if table local proto kernel scope host src 192.0.2.10",
      "addr add 2001:db8:96::2/128 dev kube-dummy-if scope link",
      "route replace local 2001:db8:96::2 dev kube-dummy-if table local proto kernel scope host src 2001:db8::10",
    ],
  );
  assert.deepEqual(renderAddressSync("kube-dummy-if", ["10.96.0.1/32"], ["10.96.0.1/32"]), []);
});
