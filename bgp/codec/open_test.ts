import assert from "node:assert/strict";
import { toHex } from "./bytes.ts";
import { decode, encode } from "./message.ts";
import { defaultCodecContext as ctx, type OpenMessage, type UpdateMessage } from "./types.ts";
import { checkUpdate, negotiate, validateOpen } from "./validate.ts";

const base: OpenMessage = {
  type: 1,
  version: 4,
  myAs: 64512,
  holdTime: 90,
  routerId: "192.0.2.1",
  capabilities: [
    { code: 1, kind: "multiprotocol", afi: 1, safi: 1 },
    { code: 1, kind: "multiprotocol", afi: 2, safi: 1 },
    { code: 2, kind: "route-refresh" },
    { code: 65, kind: "four-octet-as", asn: 64512 },
  ],
};

function decodeOpen(b: Uint8Array) {
  return decode(b, ctx);
}

Deno.test("OPEN: RFC 4271 §6.2 context-free checks", () => {
  const b = encode(base, ctx);
  const v3 = b.slice();
  v3[19] = 3;
  let r = decodeOpen(v3);
  assert.ok(!r.ok);
  assert.deepEqual([r.error.code, r.error.subcode, [...r.error.data]], [2, 1, [0, 4]]);
  for (const hold of [1, 2]) {
    r = decodeOpen(encode({ ...base, holdTime: hold }, ctx));
    assert.ok(!r.ok);
    assert.deepEqual([r.error.code, r.error.subcode], [2, 6]);
  }
  for (const hold of [0, 3]) assert.ok(decodeOpen(encode({ ...base, holdTime: hold }, ctx)).ok);
  r = decodeOpen(encode({ ...base, routerId: "0.0.0.0" }, ctx));
  assert.ok(!r.ok);
  assert.deepEqual([r.error.code, r.error.subcode], [2, 3]);
  r = decodeOpen(encode({ ...base, myAs: 0 }, ctx));
  assert.ok(!r.ok);
  assert.deepEqual([r.error.code, r.error.subcode], [2, 2]);
});

Deno.test("OPEN: an optional parameter other than capabilities is Unsupported Optional Parameter", () => {
  // Opt Parm Len 3: type 1 (authentication, deprecated), length 1, value 0.
  const b = encode({ ...base, capabilities: [] }, ctx);
  const m = new Uint8Array(b.length + 3);
  m.set(b);
  m[17] = m.length;
  m[28] = 3;
  m.set([1, 1, 0], 29);
  const r = decodeOpen(m);
  assert.ok(!r.ok);
  assert.deepEqual([r.error.code, r.error.subcode], [2, 4]);
  // Parameters that overrun the message are an (unspecific) OPEN error.
  m[28] = 9;
  const r2 = decodeOpen(m);
  assert.ok(!r2.ok && r2.error.code === 2);
});

Deno.test("OPEN: one capability per parameter (as gobgpd sends) round-trips through layout", () => {
  // Build the gobgpd style by hand: each capability in its own parameter.
  const caps = [[1, 4, 0, 1, 0, 1], [2, 0], [65, 4, 0, 0, 0xfc, 0]];
  const params = caps.flatMap((c) => [2, c.length, ...c]);
  const b = new Uint8Array(29 + params.length).fill(0xff, 0, 16);
  b[17] = b.length;
  b[18] = 1;
  b.set([4, 0xfc, 0, 0, 90, 192, 0, 2, 1, params.length], 19);
  b.set(params, 29);
  const r = decodeOpen(b);
  assert.ok(r.ok && r.msg.type === 1);
  assert.deepEqual(r.msg.layout, { capabilitiesPerParameter: [1, 1, 1], extendedLength: false });
  assert.equal(toHex(encode(r.msg, ctx)), toHex(b));
});

Deno.test("OPEN: RFC 9072 extended optional parameters decode, and are used when needed", () => {
  const caps: OpenMessage["capabilities"] = Array.from({ length: 20 }, (_, i) => ({
    code: 200 + i,
    kind: "unknown" as const,
    value: new Uint8Array(12).fill(i),
  }));
  const big = { ...base, capabilities: caps };
  const b = encode(big, ctx);
  assert.equal(b[28], 255);
  assert.equal(b[29], 255);
  const r = decodeOpen(b);
  assert.ok(r.ok);
  assert.deepStrictEqual(r.msg, big);
  // A short OPEN sent in the extended form keeps that form through layout.
  const short = encode({ ...base, layout: { capabilitiesPerParameter: [4], extendedLength: true } }, ctx);
  assert.equal(short[28], 255);
  const r2 = decodeOpen(short);
  assert.ok(r2.ok && r2.msg.type === 1);
  assert.deepEqual(r2.msg.capabilities, base.capabilities);
  assert.equal(toHex(encode(r2.msg, ctx)), toHex(short));
});

Deno.test("OPEN: unknown and malformed capabilities are kept raw", () => {
  const b = encode({ ...base, capabilities: [] }, ctx);
  // MP with SAFI 128, GR with a reserved flag bit, route refresh with a value.
  const capBytes = [1, 4, 0, 1, 0, 128, 64, 2, 0x30, 0x78, 2, 1, 7, 73, 3, 1, 2, 3];
  const m = new Uint8Array(b.length + 2 + capBytes.length);
  m.set(b);
  m[17] = m.length;
  m[28] = 2 + capBytes.length;
  m.set([2, capBytes.length, ...capBytes], 29);
  const r = decodeOpen(m);
  assert.ok(r.ok && r.msg.type === 1);
  assert.deepEqual(r.msg.capabilities.map((c) => c.kind), ["unknown", "unknown", "unknown", "unknown"]);
  assert.deepEqual(r.msg.capabilities.map((c) => c.code), [1, 64, 2, 73]);
  assert.equal(toHex(encode(r.msg, ctx)), toHex(m));
});

Deno.test("validateOpen: peer AS, BGP identifier, hold time", () => {
  const peer = {
    ...base,
    myAs: 23456,
    capabilities: [{ code: 65 as const, kind: "four-octet-as" as const, asn: 4200000001 }],
  };
  assert.equal(validateOpen(peer, { peerAs: 4200000001 }), null);
  let e = validateOpen(peer, { peerAs: 4200000002 });
  assert.deepEqual([e?.code, e?.subcode], [2, 2]);
  e = validateOpen({ ...base, myAs: 64513 }, {});
  assert.deepEqual([e?.code, e?.subcode], [2, 2], "My AS disagrees with the 4-octet capability");
  // RFC 6286: same identifier is only an error from an internal peer.
  e = validateOpen(base, { peerAs: 64512, localAs: 64512, localRouterId: "192.0.2.1" });
  assert.deepEqual([e?.code, e?.subcode], [2, 3]);
  assert.equal(validateOpen(base, { peerAs: 64512, localAs: 64999, localRouterId: "192.0.2.1" }), null);
  e = validateOpen({ ...base, holdTime: 5 }, { minHoldTime: 9 });
  assert.deepEqual([e?.code, e?.subcode], [2, 6]);
});

Deno.test("negotiate: families, hold time, 4-octet AS, eBGP", () => {
  const local: OpenMessage = {
    ...base,
    myAs: 23456,
    holdTime: 30,
    capabilities: [
      { code: 1, kind: "multiprotocol", afi: 1, safi: 1 },
      { code: 65, kind: "four-octet-as", asn: 4200000001 },
      { code: 2, kind: "route-refresh" },
    ],
  };
  const n = negotiate(local, base);
  assert.deepEqual(n.ctx, {
    fourOctetAs: true,
    extendedMessages: false,
    families: [{ afi: 1, safi: 1 }],
    ebgp: true,
  });
  assert.deepEqual([n.holdTime, n.keepaliveTime, n.peerAs, n.localAs, n.routeRefresh], [
    30,
    10,
    64512,
    4200000001,
    true,
  ]);
  // A peer without any MP capability speaks IPv4 unicast only (RFC 4760 §8).
  const old = negotiate(base, { ...base, capabilities: [] });
  assert.deepEqual(old.ctx.families, [{ afi: 1, safi: 1 }]);
  assert.equal(old.ctx.fourOctetAs, false);
  assert.equal(old.ctx.ebgp, false);
});

Deno.test("checkUpdate: first AS on eBGP, next hop that is ours (treat-as-withdraw)", () => {
  const u: UpdateMessage = {
    type: 2,
    withdrawn: [],
    nlri: [{ afi: 1, addr: "10.1.0.0", len: 16 }],
    attrs: { origin: 0, asPath: [{ type: 2, asns: [64512, 64600] }], nextHop: "192.0.2.2" },
  };
  assert.equal(checkUpdate(u, { ebgp: true, peerAs: 64512, localAddresses: ["192.0.2.1"] }), null);
  let e = checkUpdate(u, { ebgp: true, peerAs: 64513 });
  assert.deepEqual([e?.code, e?.subcode, e?.handling], [3, 11, "treat-as-withdraw"]);
  assert.equal(checkUpdate(u, { ebgp: true, peerAs: 64513, enforceFirstAs: false }), null);
  assert.equal(checkUpdate(u, { ebgp: false, peerAs: 64513 }), null);
  e = checkUpdate(u, { localAddresses: ["192.0.2.2"] });
  assert.deepEqual([e?.code, e?.subcode, e?.handling], [3, 8, "treat-as-withdraw"]);
  const v6: UpdateMessage = {
    type: 2,
    withdrawn: [],
    nlri: [],
    attrs: { origin: 0, asPath: [] },
    mpReach: {
      afi: 2,
      safi: 1,
      nextHops: ["2001:db8::1"],
      nlri: [{ afi: 2, addr: "2001:db8:1::", len: 48 }],
    },
  };
  assert.equal(checkUpdate(v6, { localAddresses: ["2001:db8::2"] }), null);
  assert.equal(checkUpdate(v6, { localAddresses: ["2001:DB8:0::1"] })?.subcode, 8);
  // Withdrawals are never checked.
  assert.equal(checkUpdate({ ...u, nlri: [], withdrawn: u.nlri }, { ebgp: true, peerAs: 1 }), null);
});
