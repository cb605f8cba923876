// Unit test of the /proc/net/if_inet6 parser (addresses from 2001:db8::/32 and fe80::/10).
import assert from "node:assert/strict";
import { linkLocalFor, parseIfInet6 } from "./link_local.ts";

Deno.test("link-local: the fe80 address on the interface holding the global address", () => {
  const rows = parseIfInet6(`00000000000000000000000000000001 01 80 10 80       lo
20010db8024000000000000000000001 04 40 00 80     eth0
fe8000000000000000fc00fffe000001 04 40 20 80     eth0
20010db8099900000000000000000001 05 40 00 80     eth1
`);
  assert.equal(rows.length, 4);
  assert.equal(rows[1].addr, "2001:db8:240::1");
  assert.equal(linkLocalFor(rows, "2001:db8:240::1"), "fe80::fc:ff:fe00:1");
  assert.equal(linkLocalFor(rows, "2001:db8:999::1"), undefined, "eth1 has no link-local address");
  assert.equal(linkLocalFor(rows, "2001:db8::77"), undefined);
});
