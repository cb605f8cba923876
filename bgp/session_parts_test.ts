// Unit tests of the session's pure helpers: UPDATE packing and End-of-RIB (pack.ts), OPEN
// building and negotiation (negotiate.ts), configuration validation (config.ts).
// Addresses: 192.0.2.0/24, 2001:db8::/32, prefixes from 10.2xx.0.0/16.
import assert from "node:assert/strict";
import { decode, encode } from "./codec/mod.ts";
import { AFI, type CodecContext, MessageType, type OpenMessage, type UpdateMessage } from "./codec/types.ts";
import { validatePeerConfig, validateSpeakerConfig } from "./config.ts";
import { AS_TRANS, buildOpen, negotiate } from "./negotiate.ts";
import { endOfRib, isEndOfRib, packBatch } from "./pack.ts";
import { parsePrefix } from "./prefix.ts";

const ctx: CodecContext = {
  fourOctetAs: true,
  extendedMessages: false,
  families: [{ afi: 1, safi: 1 }, { afi: 2, safi: 1 }],
  ebgp: true,
};
const enc = (m: UpdateMessage) => encode(m, ctx);

Deno.test("pack: 5,000 IPv4 prefixes of one attribute set fill UPDATEs up to 4096 octets and decode back", () => {
  const prefixes = Array.from(
    { length: 5000 },
    (_, i) => parsePrefix(`10.${200 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}/32`)!,
  );
  const attrs = {
    origin: 0 as const,
    asPath: [{ type: 2 as const, asns: [65001, 65002] }],
    nextHop: "192.0.2.1",
    communities: [1, 2, 3],
  };
  const msgs = packBatch(
    { afi: AFI.IPv4, announce: [{ attrs, prefixes }], withdraw: prefixes.slice(0, 1000) },
    enc,
    4096,
  );
  let announced = 0, withdrawn = 0;
  for (const m of msgs) {
    assert.ok(m.length <= 4096, `message of ${m.length} octets`);
    const d = decode(m, ctx);
    assert.ok(d.ok && d.msg.type === MessageType.Update);
    announced += d.msg.nlri.length;
    withdrawn += d.msg.withdrawn.length;
    if (d.msg.nlri.length) assert.equal(d.msg.attrs.nextHop, "192.0.2.1");
  }
  assert.equal(announced, 5000);
  assert.equal(withdrawn, 1000);
  // Full packing: 5,000 × 5 octets need at least 7 messages of ~4 kB; we use at most one more.
  assert.ok(msgs.length <= Math.ceil(5000 * 5 / 4000) + 1 + 2, `${msgs.length} messages`);
});

Deno.test("pack: IPv6 goes in MP_REACH with global and link-local next hops, withdraws in MP_UNREACH", () => {
  const prefixes = Array.from({ length: 2000 }, (_, i) => parsePrefix(`2001:db8:${i.toString(16)}::/48`)!);
  const attrs = { origin: 0 as const, asPath: [], nextHop: "2001:db8::1", nextHopLinkLocal: "fe80::1" };
  const msgs = packBatch(
    { afi: AFI.IPv6, announce: [{ attrs, prefixes }], withdraw: prefixes.slice(0, 10) },
    enc,
    4096,
  );
  let n = 0, w = 0;
  for (const m of msgs) {
    assert.ok(m.length <= 4096);
    const d = decode(m, ctx);
    assert.ok(d.ok && d.msg.type === MessageType.Update);
    if (d.msg.mpReach) {
      assert.deepEqual(d.msg.mpReach.nextHops, ["2001:db8::1", "fe80::1"]);
      n += d.msg.mpReach.nlri.length;
    }
    w += d.msg.mpUnreach?.withdrawn.length ?? 0;
  }
  assert.equal(n, 2000);
  assert.equal(w, 10);
});

Deno.test("pack: End-of-RIB markers round-trip and are recognised", () => {
  for (const afi of [AFI.IPv4, AFI.IPv6]) {
    const d = decode(encode(endOfRib(afi), ctx), ctx);
    assert.ok(d.ok && d.msg.type === MessageType.Update);
    assert.equal(isEndOfRib(d.msg), afi);
  }
  const notEor: UpdateMessage = {
    type: MessageType.Update,
    withdrawn: [parsePrefix("10.200.0.0/24")!],
    attrs: {},
    nlri: [],
  };
  assert.equal(isEndOfRib(notEor), null);
});

const local = {
  asn: 4200000001,
  routerId: "192.0.2.1",
  holdTime: 90,
  families: [{ afi: 1 as const, safi: 1 as const }],
};

Deno.test("negotiate: 4-octet ASN goes as AS_TRANS plus capability; peer AS checked; families intersected", () => {
  const ours = buildOpen({
    ...local,
    gracefulRestart: { restartTime: 120, restarting: true, forwardingPreserved: true },
  });
  assert.equal(ours.myAs, AS_TRANS);
  assert.ok(ours.capabilities.some((c) => c.kind === "four-octet-as" && c.asn === 4200000001));
  const gr = ours.capabilities.find((c) => c.kind === "graceful-restart");
  assert.ok(gr && gr.kind === "graceful-restart" && gr.restarting && gr.families[0].forwardingPreserved);
  const theirs: OpenMessage = {
    type: MessageType.Open,
    version: 4,
    myAs: AS_TRANS,
    holdTime: 30,
    routerId: "192.0.2.2",
    capabilities: [
      { code: 65, kind: "four-octet-as", asn: 4200000002 },
      { code: 1, kind: "multiprotocol", afi: 1, safi: 1 },
      { code: 1, kind: "multiprotocol", afi: 2, safi: 1 },
      { code: 2, kind: "route-refresh" },
    ],
  };
  const ok = negotiate(theirs, local, 4200000002);
  assert.ok(ok.ok);
  assert.equal(ok.n.holdTime, 30);
  assert.equal(ok.n.fourOctetAs, true);
  assert.deepEqual(ok.n.families, [{ afi: 1, safi: 1 }]);
  assert.equal(ok.n.routeRefresh, true);
  assert.equal(ok.n.ctx.ebgp, true);
  const bad = negotiate(theirs, local, 65000);
  assert.ok(!bad.ok);
  assert.deepEqual([bad.notify.code, bad.notify.subcode], [2, 2]);
  // No MP capability at all: IPv4 unicast only (RFC 4760 §8).
  const plain = negotiate(
    { ...theirs, capabilities: [{ code: 65, kind: "four-octet-as", asn: 4200000002 }] },
    {
      ...local,
      families: [{ afi: 1, safi: 1 }, { afi: 2, safi: 1 }],
    },
    4200000002,
  );
  assert.ok(plain.ok);
  assert.deepEqual(plain.n.families, [{ afi: 1, safi: 1 }]);
  // iBGP with our own router ID: Bad BGP Identifier.
  const same = negotiate(
    {
      ...theirs,
      routerId: "192.0.2.1",
      capabilities: [{ code: 65, kind: "four-octet-as", asn: 4200000001 }],
    },
    local,
    4200000001,
  );
  assert.ok(!same.ok);
  assert.equal(same.notify.subcode, 3);
});

Deno.test("config: every problem reported at once, naming the field and the bad value", () => {
  const s = validateSpeakerConfig({ asn: 0, routerId: "x", listen: { addresses: ["nope"], port: 70000 } });
  assert.equal(s.length, 4);
  assert.match(s.join("\n"), /asn 0/);
  assert.match(s.join("\n"), /"nope"/);
  const p = validatePeerConfig({
    address: "192.0.2.9",
    asn: 65001,
    holdTime: 2,
    multihopTtl: 300,
    families: [{ afi: 3 as 1, safi: 1 }],
  });
  assert.equal(p.length, 3);
  assert.match(p[0], /holdTime 2 must be 0 or 3\.\.65535/);
  assert.deepEqual(validatePeerConfig({ address: "2001:db8::1", asn: 65001, holdTime: 0 }), []);
});
