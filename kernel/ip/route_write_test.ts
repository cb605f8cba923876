import assert from "node:assert/strict";
import { DryRunRunner, formatCommand } from "../exec.ts";
import { encodeRouteOp, RouteMessageEncoder, writeRoutes } from "./route_write.ts";

Deno.test("route messages: RTM_NEWROUTE layout (header, rtmsg, RTA_DST, RTA_GATEWAY, RTA_OIF, onlink, table)", () => {
  const e = new RouteMessageEncoder();
  const err = encodeRouteOp(
    e,
    { del: false, route: { dst: "10.1.2.0/24", via: "192.0.2.1", dev: "eth0", onlink: true, table: 77 } },
    7,
    (d) => d === "eth0" ? 3 : 0,
  );
  assert.equal(err, null);
  const b = e.message();
  const v = new DataView(b.buffer, b.byteOffset);
  assert.equal(v.getUint32(0, true), b.length, "nlmsg_len covers the message");
  assert.equal(v.getUint16(4, true), 24, "RTM_NEWROUTE");
  assert.equal(v.getUint16(6, true), 0x1 | 0x100 | 0x400, "REQUEST|REPLACE|CREATE: answered only on failure");
  e.ackLast();
  assert.equal(v.getUint16(6, true), 0x1 | 0x4 | 0x100 | 0x400, "the last of a chunk asks for an ACK");
  assert.equal(v.getUint32(8, true), 7, "sequence number");
  assert.deepEqual(
    [...b.subarray(16, 24)],
    [2, 24, 0, 0, 77, 17, 0, 1],
    "AF_INET /24 table 77 proto 17 universe unicast",
  );
  assert.equal(v.getUint32(24, true), 4, "RTNH_F_ONLINK");
  assert.deepEqual([...b.subarray(28, 36)], [8, 0, 1, 0, 10, 1, 2, 0], "RTA_DST");
  assert.deepEqual([...b.subarray(36, 44)], [8, 0, 5, 0, 192, 0, 2, 1], "RTA_GATEWAY");
  assert.deepEqual([...b.subarray(44, 52)], [8, 0, 4, 0, 3, 0, 0, 0], "RTA_OIF");
  assert.equal(b.length, 52);
});

Deno.test("route messages: a delete matches by prefix and protocol only; bad input fails that op alone", () => {
  const e = new RouteMessageEncoder();
  assert.equal(
    encodeRouteOp(e, { del: true, route: { dst: "2001:db8::/64", via: "2001:db8::1" } }, 1, () => 0),
    null,
  );
  const b = e.message();
  assert.equal(new DataView(b.buffer).getUint16(4, true), 25, "RTM_DELROUTE");
  assert.deepEqual(
    [...b.subarray(16, 24)],
    [10, 64, 0, 0, 254, 17, 255, 0],
    "AF_INET6 /64 main proto 17 scope nowhere",
  );
  assert.equal(b.length, 16 + 12 + 20, "no gateway on a delete");
  const len = e.len;
  assert.match(encodeRouteOp(e, { del: false, route: { dst: "10.0.0.0/33" } }, 2, () => 0)!, /bad prefix/);
  assert.match(
    encodeRouteOp(e, { del: false, route: { dst: "10.0.0.0/8", dev: "nope" } }, 3, () => 0)!,
    /nope/,
  );
  assert.match(
    encodeRouteOp(e, { del: false, route: { dst: "10.0.0.0/8", via: "10.0.0.300" } }, 4, () => 0)!,
    /next hop/,
  );
  assert.equal(e.len, len, "a refused op leaves nothing behind");
  assert.ok(e.buf.subarray(len, len + 64).every((x) => x === 0), "and the buffer stays zeroed");
});

Deno.test("writeRoutes without a netlink channel (dry-run): one `ip -force -batch -` with every change", async () => {
  const printed: string[] = [];
  const dry = new DryRunRunner((c) => printed.push(formatCommand(c)));
  const r = await writeRoutes(dry, [
    { del: true, route: { dst: "10.9.0.0/24" } },
    { del: false, route: { dst: "10.8.0.0/24", via: "192.0.2.1" } },
  ]);
  assert.equal(r.via, "ip-batch");
  assert.equal(r.done, 2);
  assert.deepEqual(printed, [
    "# ip -force -batch - <<'EOF'\nroute del 10.9.0.0/24 proto 17\nroute replace 10.8.0.0/24 via 192.0.2.1 proto 17\nEOF",
  ]);
});
