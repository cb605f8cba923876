// Unit tests of kube-dummy-if address handling (pure parts). Addresses: VIPs 10.96.0.0/16 and
// 2001:db8:96::/64, node 192.0.2.10 / 2001:db8::10.
import assert from "node:assert/strict";
import { monitorLineDev, parseAddresses, parseMtus, renderAddressSync, vipCidr } from "./address.ts";

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

Deno.test("monitorLineDev: link name of `ip -o monitor address` lines (captured on this kernel)", () => {
  assert.equal(
    monitorLineDev(
      "2: br9    inet 192.0.2.5/32 scope global br9\\       valid_lft forever preferred_lft forever",
    ),
    "br9",
  );
  assert.equal(
    monitorLineDev("Deleted 2: br9    inet 192.0.2.5/32 scope global br9\\       valid_lft forever"),
    "br9",
  );
  assert.equal(
    monitorLineDev("2: kube-dummy-if    inet6 2001:db8::5/128 scope global nodad \\ "),
    "kube-dummy-if",
  );
  assert.equal(monitorLineDev("garbage"), undefined);
});

Deno.test("parseMtus: link MTUs from ip -j addr show rows", () => {
  const json = JSON.stringify([{ ifname: "lo", mtu: 65536, addr_info: [] }, { ifname: "eth0", mtu: 1450 }, {
    ifname: "x",
  }]);
  assert.deepEqual([...parseMtus(json)], [["lo", 65536], ["eth0", 1450]]);
  assert.equal(parseMtus("").size, 0);
});
