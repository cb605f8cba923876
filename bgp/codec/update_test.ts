/**
 * UPDATE decoding rules, one test per RFC 4271 §6.3 / RFC 7606 / RFC 6793 rule, on hand-built
 * bytes. Addresses: 10.0.0.0/8 and 2001:db8::/32 documentation-style values only.
 */

import assert from "node:assert/strict";
import { toHex } from "./bytes.ts";
import type { BgpError } from "./errors.ts";
import { decode, type DecodeResult, encode } from "./message.ts";
import { type CodecContext, defaultCodecContext, type UpdateMessage } from "./types.ts";

const ebgp4: CodecContext = { ...defaultCodecContext, fourOctetAs: true };
const ibgp4: CodecContext = { ...ebgp4, ebgp: false };
const ebgp2: CodecContext = { ...defaultCodecContext, fourOctetAs: false };

const ORIGIN = [0x40, 1, 1, 0];
const ASPATH = [0x40, 2, 6, 2, 1, 0, 0, 0xfc, 0x01]; // AS_SEQUENCE [64513], 4-octet
const NEXTHOP = [0x40, 3, 4, 10, 0, 0, 1];
const NLRI = [24, 10, 1, 2]; // 10.1.2.0/24
const MANDATORY = [ORIGIN, ASPATH, NEXTHOP];

function upd(attrs: number[][], nlri: number[] = NLRI, withdrawn: number[] = []): Uint8Array {
  const a = attrs.flat();
  const body = [
    withdrawn.length >> 8,
    withdrawn.length & 255,
    ...withdrawn,
    a.length >> 8,
    a.length & 255,
    ...a,
    ...nlri,
  ];
  const b = new Uint8Array(19 + body.length);
  b.fill(0xff, 0, 16);
  b[16] = b.length >> 8;
  b[17] = b.length & 255;
  b[18] = 2;
  b.set(body, 19);
  return b;
}

function ok(r: DecodeResult): { msg: UpdateMessage; errors: BgpError[] } {
  assert.ok(r.ok, r.ok ? "" : `unexpected error: ${r.error.message}`);
  assert.equal(r.msg.type, 2);
  return { msg: r.msg as UpdateMessage, errors: r.errors ?? [] };
}

function reset(r: DecodeResult, code: number, subcode: number): BgpError {
  assert.ok(!r.ok, "expected a session reset");
  assert.deepEqual([r.error.code, r.error.subcode, r.error.handling], [code, subcode, "session-reset"]);
  return r.error;
}

Deno.test("UPDATE: a clean message has no findings", () => {
  const { msg, errors } = ok(decode(upd(MANDATORY), ebgp4));
  assert.deepEqual(errors, []);
  assert.equal(msg.treatAsWithdraw, undefined);
  assert.deepEqual(msg.nlri, [{ afi: 1, addr: "10.1.2.0", len: 24 }]);
  assert.deepEqual(msg.attrs, { origin: 0, asPath: [{ type: 2, asns: [64513] }], nextHop: "10.0.0.1" });
});

Deno.test("UPDATE: RFC 7606 §7.1 ORIGIN length or value → treat-as-withdraw", () => {
  let r = ok(decode(upd([[0x40, 1, 2, 0, 0], ASPATH, NEXTHOP]), ebgp4));
  assert.equal(r.msg.treatAsWithdraw, true);
  assert.deepEqual(r.errors.map((e) => [e.code, e.subcode, e.handling]), [[3, 5, "treat-as-withdraw"]]);
  assert.deepEqual([...r.errors[0].data], [0x40, 1, 2, 0, 0], "data is the attribute");
  r = ok(decode(upd([[0x40, 1, 1, 3], ASPATH, NEXTHOP]), ebgp4));
  assert.equal(r.msg.treatAsWithdraw, true);
  assert.equal(r.errors[0].subcode, 6);
  // The prefixes are still there to be withdrawn.
  assert.deepEqual(r.msg.nlri, [{ afi: 1, addr: "10.1.2.0", len: 24 }]);
});

Deno.test("UPDATE: RFC 7606 §7.2 malformed AS_PATH → treat-as-withdraw", () => {
  for (
    const bad of [
      [0x40, 2, 2, 2, 0], // zero-length segment
      [0x40, 2, 6, 5, 1, 0, 0, 0, 1], // segment type 5
      [0x40, 2, 5, 2, 1, 0, 0, 0], // overrun
      [0x40, 2, 7, 2, 1, 0, 0, 0, 1, 2], // trailing single octet
      [0x40, 2, 6, 2, 1, 0, 0, 0, 0], // AS 0 (RFC 7607)
    ]
  ) {
    const r = ok(decode(upd([ORIGIN, bad, NEXTHOP]), ebgp4));
    assert.equal(r.msg.treatAsWithdraw, true, toHex(new Uint8Array(bad)));
    assert.equal(r.errors[0].subcode, 11);
  }
  // Confederation segments: malformed from an external peer, fine from an internal one.
  const confed = [0x40, 2, 6, 3, 1, 0, 0, 0xfc, 0x02];
  assert.equal(ok(decode(upd([ORIGIN, confed, NEXTHOP]), ebgp4)).msg.treatAsWithdraw, true);
  const i = ok(decode(upd([ORIGIN, confed, NEXTHOP]), ibgp4));
  assert.equal(i.msg.treatAsWithdraw, undefined);
  assert.deepEqual(i.msg.attrs.asPath, [{ type: 3, asns: [64514] }]);
});

Deno.test("UPDATE: RFC 7606 §3d missing well-known attributes → treat-as-withdraw only with NLRI", () => {
  let r = ok(decode(upd([ORIGIN, ASPATH]), ebgp4));
  assert.equal(r.msg.treatAsWithdraw, true);
  assert.deepEqual(r.errors.map((e) => [e.subcode, [...e.data]]), [[3, [3]]]);
  r = ok(decode(upd([], NLRI), ebgp4));
  assert.deepEqual(r.errors.map((e) => [...e.data][0]), [1, 2, 3]);
  // Withdrawals only: nothing is required.
  r = ok(decode(upd([], [], NLRI), ebgp4));
  assert.deepEqual(r.errors, []);
  assert.deepEqual(r.msg.withdrawn, [{ afi: 1, addr: "10.1.2.0", len: 24 }]);
  // MP_REACH only: NEXT_HOP is not needed (RFC 4760 §3), ORIGIN and AS_PATH are.
  const mp = [
    0x80,
    14,
    22,
    0,
    2,
    1,
    16,
    0x20,
    0x01,
    0x0d,
    0xb8,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    1,
    0,
    32,
    0x20,
    0x01,
    0x0d,
    0xb8,
  ].slice();
  mp[2] = mp.length - 3;
  r = ok(decode(upd([mp, ORIGIN, ASPATH], []), ebgp4));
  assert.deepEqual(r.errors, []);
  assert.deepEqual(r.msg.mpReach, {
    afi: 2,
    safi: 1,
    nextHops: ["2001:db8::1"],
    nlri: [{ afi: 2, addr: "2001:db8::", len: 32 }],
  });
  r = ok(decode(upd([mp], []), ebgp4));
  assert.equal(r.msg.treatAsWithdraw, true);
  assert.equal(r.msg.mpReach?.nlri.length, 1, "MP prefixes are available to withdraw");
});

Deno.test("UPDATE: RFC 7606 §7.3-7.10 per-attribute handling", () => {
  const cases: Array<{ attr: number[]; ctx?: CodecContext; twd: boolean; discarded?: number[] }> = [
    { attr: [0x40, 3, 3, 10, 0, 0], twd: true }, // NEXT_HOP length (replaces the good one below)
    { attr: [0x80, 4, 3, 0, 0, 0], twd: true }, // MED length
    { attr: [0x40, 5, 3, 0, 0, 0], ctx: ibgp4, twd: true }, // LOCAL_PREF length (iBGP)
    { attr: [0x40, 5, 4, 0, 0, 0, 100], twd: false, discarded: [5] }, // LOCAL_PREF from eBGP: disregarded
    { attr: [0x40, 6, 1, 0], twd: false, discarded: [6] }, // ATOMIC_AGGREGATE length
    { attr: [0xc0, 7, 6, 0, 0, 0xfc, 0, 10, 0], twd: false, discarded: [7] }, // AGGREGATOR 6 on a 4-octet session
    { attr: [0xc0, 7, 8, 0, 0, 0, 0, 10, 0, 0, 1], twd: false, discarded: [7] }, // AGGREGATOR AS 0
    { attr: [0xc0, 8, 5, 0, 0, 0, 0, 0], twd: true }, // COMMUNITIES length
    { attr: [0xc0, 8, 0], twd: true }, // COMMUNITIES empty
    { attr: [0x80, 9, 3, 0, 0, 0], ctx: ibgp4, twd: true }, // ORIGINATOR_ID length
    { attr: [0x80, 9, 4, 10, 0, 0, 9], twd: false, discarded: [9] }, // ORIGINATOR_ID from eBGP
    { attr: [0x80, 10, 6, 0, 0, 0, 0, 0, 0], ctx: ibgp4, twd: true }, // CLUSTER_LIST length
    { attr: [0xc0, 32, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], twd: true }, // LARGE_COMMUNITY length
    { attr: [0x40, 8, 4, 0, 0, 0, 1], twd: true }, // COMMUNITIES with the wrong flags (§3c)
    { attr: [0x80, 6, 0], twd: false, discarded: [6] }, // ATOMIC_AGGREGATE with the wrong flags
  ];
  for (const c of cases) {
    const attrs = c.attr[1] === 3 ? [ORIGIN, ASPATH, c.attr] : [...MANDATORY, c.attr];
    const r = ok(decode(upd(attrs), c.ctx ?? ebgp4));
    const what = toHex(new Uint8Array(c.attr));
    assert.equal(r.msg.treatAsWithdraw ?? false, c.twd, what);
    assert.deepEqual(r.msg.discarded, c.discarded, what);
  }
  const nh = ok(decode(upd([ORIGIN, ASPATH, [0x40, 3, 4, 127, 0, 0, 1]]), ebgp4));
  assert.equal(nh.msg.treatAsWithdraw, true);
  assert.equal(nh.errors[0].subcode, 8);
  const i = ok(
    decode(
      upd([...MANDATORY, [0x40, 5, 4, 0, 0, 0, 100], [0x80, 9, 4, 10, 0, 0, 9], [0x80, 10, 4, 10, 0, 0, 8]]),
      ibgp4,
    ),
  );
  assert.deepEqual([i.msg.attrs.localPref, i.msg.attrs.originatorId, i.msg.attrs.clusterList], [
    100,
    "10.0.0.9",
    ["10.0.0.8"],
  ]);
});

Deno.test("UPDATE: RFC 7606 §3g duplicates: later copies discarded; MP_REACH twice resets", () => {
  const r = ok(decode(upd([...MANDATORY, [0x80, 4, 4, 0, 0, 0, 1], [0x80, 4, 4, 0, 0, 0, 2]]), ebgp4));
  assert.equal(r.msg.attrs.med, 1);
  assert.deepEqual(r.msg.discarded, [4]);
  assert.equal(r.msg.treatAsWithdraw, undefined);
  const mpu = [0x80, 15, 3, 0, 2, 1];
  reset(decode(upd([mpu, mpu, ...MANDATORY]), ebgp4), 3, 1);
});

Deno.test("UPDATE: unknown attributes (RFC 4271 §5, §6.3, §9)", () => {
  // Well-known unknown → session reset, data = the attribute.
  const e = reset(decode(upd([...MANDATORY, [0x40, 99, 1, 7]]), ebgp4), 3, 2);
  assert.deepEqual([...e.data], [0x40, 99, 1, 7]);
  // Optional non-transitive unknown → dropped quietly.
  let r = ok(decode(upd([...MANDATORY, [0x80, 99, 1, 7]]), ebgp4));
  assert.equal(r.msg.attrs.unknown, undefined);
  assert.deepEqual(r.errors, []);
  // Optional transitive unknown → kept, re-sent with Partial; the received form stays byte-exact.
  const b = upd([...MANDATORY, [0xc0, 99, 2, 7, 8]]);
  r = ok(decode(b, ebgp4));
  assert.deepEqual(r.msg.attrs.unknown, [{ flags: 0xc0, code: 99, value: new Uint8Array([7, 8]) }]);
  assert.equal(toHex(encode(r.msg, ebgp4)), toHex(b));
  const fresh = encode({ ...r.msg, layout: undefined }, ebgp4);
  const re = ok(decode(fresh, ebgp4));
  assert.equal(re.msg.attrs.unknown![0].flags, 0xe0);
});

Deno.test("UPDATE: RFC 7606 §4 attribute overrunning the attribute field → treat-as-withdraw", () => {
  const b = upd([...MANDATORY, [0x80, 4, 4, 0, 0]]);
  const r = ok(decode(b, ebgp4));
  assert.equal(r.msg.treatAsWithdraw, true);
  const b2 = upd([...MANDATORY, [0x80, 4]]);
  assert.equal(ok(decode(b2, ebgp4)).msg.treatAsWithdraw, true);
});

Deno.test("UPDATE: RFC 7606 §5.3 bad NLRI / withdrawn / MP NLRI → session reset", () => {
  reset(decode(upd(MANDATORY, [33, 10, 0, 0, 0, 0]), ebgp4), 3, 10);
  reset(decode(upd(MANDATORY, [24, 10, 0]), ebgp4), 3, 10);
  reset(decode(upd([], [], [40, 1, 2, 3, 4, 5]), ebgp4), 3, 10);
  const mp = [0x80, 14, 0, 0, 2, 1, 16, ...new Array(16).fill(1), 0, 129, ...new Array(17).fill(0)];
  mp[2] = mp.length - 3;
  reset(decode(upd([mp, ORIGIN, ASPATH], []), ebgp4), 3, 9);
  const badNh = [0x80, 14, 8, 0, 2, 1, 4, 10, 0, 0, 1, 0];
  reset(decode(upd([badNh, ORIGIN, ASPATH], []), ebgp4), 3, 9);
  reset(decode(upd([[0x80, 15, 2, 0, 2]], []), ebgp4), 3, 9);
  // Lengths of the UPDATE's own fields (RFC 4271 §6.3).
  const b = upd(MANDATORY);
  b[19] = 0xff;
  reset(decode(b, ebgp4), 3, 1);
});

Deno.test("UPDATE: the strongest handling wins (RFC 7606 §3)", () => {
  const badAtomic = [0x40, 6, 1, 0];
  const badOrigin = [0x40, 1, 1, 9];
  let r = ok(decode(upd([badOrigin, ASPATH, NEXTHOP, badAtomic]), ebgp4));
  assert.equal(r.msg.treatAsWithdraw, true);
  assert.deepEqual(r.msg.discarded, [6]);
  assert.equal(r.errors.length, 2);
  reset(decode(upd([badOrigin, ASPATH, NEXTHOP, badAtomic, [0x40, 99, 0]]), ebgp4), 3, 2);
  r = ok(decode(upd([...MANDATORY, badAtomic]), ebgp4));
  assert.equal(r.msg.treatAsWithdraw, undefined);
});

Deno.test("UPDATE: RFC 6793 AS4_PATH/AS4_AGGREGATOR merge from a 2-octet speaker", () => {
  const asPath2 = [0x40, 2, 8, 2, 3, 0, 100, 0x5b, 0xa0, 0x5b, 0xa0]; // [100, AS_TRANS, AS_TRANS]
  const as4 = [0xc0, 17, 10, 2, 2, 0xfa, 0x56, 0xea, 0x01, 0xfa, 0x56, 0xea, 0x02]; // [4200000001, 4200000002]
  const agg = [0xc0, 7, 6, 0x5b, 0xa0, 10, 0, 0, 1];
  const as4agg = [0xc0, 18, 8, 0xfa, 0x56, 0xea, 0x03, 10, 0, 0, 1];
  const nh = NEXTHOP;
  let r = ok(decode(upd([ORIGIN, asPath2, nh, agg, as4, as4agg]), ebgp2));
  assert.deepEqual(r.msg.attrs.asPath, [{ type: 2, asns: [100, 4200000001, 4200000002] }]);
  assert.deepEqual(r.msg.attrs.aggregator, { asn: 4200000003, address: "10.0.0.1" });
  assert.equal(r.msg.discarded, undefined);
  // Split again on send: AS_TRANS in AS_PATH, and AS4_PATH with the whole path (RFC 6793 §4.2.2),
  // which decodes back to the same message.
  const again = encode(r.msg, ebgp2);
  assert.ok(toHex(again).includes("c0110e020300000064fa56ea01fa56ea02"));
  assert.deepStrictEqual(ok(decode(again, ebgp2)).msg, r.msg);
  // AGGREGATOR with a real 2-octet AS: AS4 attributes are ignored (RFC 6793 §4.2.3).
  const agg100 = [0xc0, 7, 6, 0, 100, 10, 0, 0, 1];
  r = ok(decode(upd([ORIGIN, asPath2, nh, agg100, as4]), ebgp2));
  assert.deepEqual(r.msg.attrs.asPath, [{ type: 2, asns: [100, 23456, 23456] }]);
  assert.deepEqual(r.msg.discarded, [17]);
  // AS4_PATH longer than AS_PATH: ignored.
  const short = [0x40, 2, 4, 2, 1, 0x5b, 0xa0];
  r = ok(decode(upd([ORIGIN, short, nh, as4]), ebgp2));
  assert.deepEqual(r.msg.attrs.asPath, [{ type: 2, asns: [23456] }]);
  assert.deepEqual(r.msg.discarded, [17]);
  // Malformed AS4_PATH: attribute discard (RFC 6793 §6).
  r = ok(decode(upd([ORIGIN, asPath2, nh, [0xc0, 17, 2, 2, 0]]), ebgp2));
  assert.deepEqual(r.msg.discarded, [17]);
  assert.equal(r.msg.treatAsWithdraw, undefined);
  // From a 4-octet speaker AS4_PATH is discarded.
  r = ok(decode(upd([...MANDATORY, as4]), ebgp4));
  assert.deepEqual(r.msg.discarded, [17]);
  assert.deepEqual(r.msg.attrs.asPath, [{ type: 2, asns: [64513] }]);
});

Deno.test("UPDATE encode: extended length above 255 octets, AS_TRANS split, size limits", () => {
  const communities = Array.from({ length: 70 }, (_, i) => i + 1);
  const m: UpdateMessage = {
    type: 2,
    withdrawn: [],
    nlri: [{ afi: 1, addr: "10.1.2.0", len: 24 }],
    attrs: {
      origin: 0,
      asPath: [{ type: 2, asns: [4200000001, 100] }],
      nextHop: "10.0.0.1",
      communities,
      aggregator: { asn: 4200000001, address: "10.0.0.1" },
    },
  };
  const b = encode(m, ebgp2);
  const r = ok(decode(b, ebgp2));
  assert.deepStrictEqual(r.msg, m);
  // The COMMUNITIES attribute uses a 2-octet length: flags 0xd0.
  assert.ok(toHex(b).includes("d0080118"));
  // AS_PATH on the wire has AS_TRANS; AS4_PATH and AS4_AGGREGATOR carry the real ASNs.
  assert.ok(toHex(b).includes("40020602025ba00064"));
  // A received short attribute with the extended-length bit re-encodes byte-exact (layout).
  const ext = upd([ORIGIN, ASPATH, NEXTHOP, [0x90, 4, 0, 4, 0, 0, 0, 9]]);
  const e = ok(decode(ext, ebgp4));
  assert.ok(e.msg.layout);
  assert.equal(toHex(encode(e.msg, ebgp4)), toHex(ext));
  // Too big for 4096 without extended messages; fine with them.
  const many: UpdateMessage = {
    ...m,
    nlri: Array.from(
      { length: 1200 },
      (_, i) => ({ afi: 1 as const, addr: `10.${i >> 8}.${i & 255}.0`, len: 24 }),
    ),
  };
  assert.throws(() => encode(many, ebgp4), RangeError);
  assert.ok(encode(many, { ...ebgp4, extendedMessages: true }).length > 4096);
});

Deno.test("UPDATE: attribute cache shares frozen results and keys on session flags", async () => {
  const { AttributeCache } = await import("./attr_cache.ts");
  const cache = new AttributeCache();
  const b = upd([...MANDATORY, [0x40, 5, 4, 0, 0, 0, 100]]);
  const a1 = ok(decode(b, ibgp4, { attrCache: cache })).msg.attrs;
  const a2 =
    ok(decode(upd([...MANDATORY, [0x40, 5, 4, 0, 0, 0, 100]], [16, 10, 9]), ibgp4, { attrCache: cache })).msg
      .attrs;
  assert.equal(a1, a2);
  assert.ok(Object.isFrozen(a1) && Object.isFrozen(a1.asPath));
  assert.equal(a1.localPref, 100);
  // Same bytes from an external peer decode differently (LOCAL_PREF disregarded).
  const a3 = ok(decode(b, ebgp4, { attrCache: cache })).msg.attrs;
  assert.equal(a3.localPref, undefined);
  assert.equal(cache.hits, 1);
});
