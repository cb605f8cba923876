// Unit tests of the decision process, propagation rules, policies and RIB bookkeeping.
// Addresses: peers 192.0.2.x (IPv4), 2001:db8::x (IPv6), prefixes from 198.51.100.0/24 and 10.2xx/16.
import assert from "node:assert/strict";
import { AFI, AsPathSegmentType, WellKnownCommunity } from "./codec/types.ts";
import { asPathLength, explain, selectBest, type SourceFacts } from "./decide.ts";
import { applyPolicy } from "./policy.ts";
import { parsePrefix, prefixContains } from "./prefix.ts";
import type { RibAttrs } from "./propagate.ts";
import { type BestPathChange, Rib, ribKeyText, type Target } from "./rib.ts";

const seq = (...asns: number[]) => [{ type: AsPathSegmentType.AsSequence, asns }];
const src = (o: Partial<SourceFacts>): SourceFacts => ({
  local: false,
  ebgp: true,
  asn: 65001,
  routerId: "192.0.2.1",
  address: "192.0.2.1",
  rrClient: false,
  ...o,
});
const P = (s: string) => parsePrefix(s)!;

Deno.test("decide: each RFC step decides in order", () => {
  const base = { origin: 0 as const, asPath: seq(65001), nextHop: "192.0.2.1" };
  const a = { attrs: { ...base, localPref: 200 }, src: src({ ebgp: false }) };
  const b = { attrs: { ...base }, src: src({}) };
  assert.deepEqual(explain(a, b), { winner: 0, step: "RFC 4271 §9.1.1 highest LOCAL_PREF" });
  const c = { attrs: { ...base, asPath: seq(65001, 65002) }, src: src({}) };
  assert.equal(explain(b, c).step, "RFC 4271 §9.1.2.2 a) shortest AS_PATH");
  const d = { attrs: { ...base, origin: 2 as const }, src: src({}) };
  assert.equal(explain(b, d).step, "RFC 4271 §9.1.2.2 b) lowest ORIGIN");
  const e = { attrs: { ...base, med: 10 }, src: src({}) };
  assert.deepEqual(explain(e, b), { winner: 1, step: "RFC 4271 §9.1.2.2 c) lowest MED per neighbour AS" });
  // MED from different neighbour ASes is not compared: decided later (router ID).
  const f = {
    attrs: { ...base, asPath: seq(65009), med: 0 },
    src: src({ routerId: "192.0.2.9", address: "192.0.2.9" }),
  };
  assert.equal(
    explain(e, f).step,
    "RFC 4271 §9.1.2.2 f) lowest BGP identifier (ORIGINATOR_ID per RFC 4456 §9)",
  );
  const g = { attrs: { ...base }, src: src({ ebgp: false, asn: 65000 }) };
  assert.equal(explain(b, g).step, "RFC 4271 §9.1.2.2 d) eBGP over iBGP");
  const h = { attrs: { ...base, clusterList: ["1.1.1.1"] }, src: src({ address: "192.0.2.2" }) };
  assert.equal(explain(b, h).step, "RFC 4456 §9 shortest CLUSTER_LIST");
  const i = { attrs: { ...base }, src: src({ address: "192.0.2.7" }) };
  assert.deepEqual(explain(i, b), { winner: 1, step: "RFC 4271 §9.1.2.2 g) lowest peer address" });
  assert.equal(selectBest([c, d, b, i]), b);
  assert.equal(asPathLength([{ type: AsPathSegmentType.AsSet, asns: [1, 2, 3] }, ...seq(4, 5)]), 3);
});

Deno.test("policy: prefix lists with ge/le, communities, prepend, reject", () => {
  const pol = {
    statements: [
      {
        match: { prefixes: [{ prefix: P("10.200.0.0/16"), ge: 24, le: 28 }] },
        actions: { addCommunities: [1], med: 5 },
      },
      { match: { communities: [WellKnownCommunity.NoExport] }, actions: { result: "reject" as const } },
      { actions: { asPathPrepend: { asn: 65000, count: 2 }, localPref: 300 } },
    ],
  };
  const attrs = { origin: 0 as const, asPath: seq(65001) };
  const r = applyPolicy(pol, P("10.200.3.0/24"), attrs, "x");
  assert.ok(r.accept);
  assert.deepEqual(r.attrs.communities, [1]);
  assert.equal(r.attrs.med, 5);
  assert.deepEqual(r.attrs.asPath, seq(65000, 65000, 65001));
  assert.equal(r.attrs.localPref, 300);
  const r2 = applyPolicy(pol, P("10.200.0.0/16"), attrs, "x");
  assert.ok(r2.accept && r2.attrs.med === undefined, "/16 is outside ge 24");
  assert.equal(
    applyPolicy(pol, P("10.201.0.0/24"), { communities: [WellKnownCommunity.NoExport] }, "x").accept,
    false,
  );
  assert.ok(prefixContains(P("2001:db8::/32"), P("2001:db8:1::/48")));
  assert.ok(!prefixContains(P("2001:db8::/32"), P("2001:db9::/48")));
  // IPv4 (compared as numbers): every length edge, and an outer literal with host bits.
  const v4 = (o: string, i: string) => prefixContains({ afi: 1, ...split(o) }, { afi: 1, ...split(i) });
  assert.ok(v4("0.0.0.0/0", "255.255.255.255/32"));
  assert.ok(v4("10.200.0.0/16", "10.200.255.255/32"));
  assert.ok(!v4("10.200.0.0/16", "10.201.0.0/32"));
  assert.ok(!v4("10.200.0.0/16", "10.200.0.0/15"), "a longer outer never covers a shorter inner");
  assert.ok(v4("10.0.0.9/32", "10.0.0.9/32"));
  assert.ok(!v4("10.0.0.9/32", "10.0.0.8/32"));
  assert.ok(v4("10.0.0.9/24", "10.0.0.200/32"), "host bits of the outer are ignored");
  assert.ok(v4("128.0.0.0/1", "200.1.1.1/32"));
  assert.ok(!v4("128.0.0.0/1", "127.1.1.1/32"));
  assert.ok(!prefixContains(P("10.0.0.0/8"), P("2001:db8::/32")), "families differ");
  assert.equal(P("10.200.3.77/24").addr, "10.200.3.0");
  assert.equal(P("2001:DB8:0:0::1/128").addr, "2001:db8::1");
});

function split(p: string): { addr: string; len: number } {
  const [addr, len] = p.split("/");
  return { addr, len: Number(len) };
}

function setup() {
  const rib = new Rib({ asn: 65000, routerId: "192.0.2.100", clusterId: "192.0.2.100" });
  const ebgpIn = rib.newSource(src({ asn: 65001, address: "192.0.2.1", routerId: "192.0.2.1" }));
  const client1 = rib.newSource(
    src({ ebgp: false, asn: 65000, address: "192.0.2.11", routerId: "192.0.2.11", rrClient: true }),
  );
  const nonClient = rib.newSource(
    src({ ebgp: false, asn: 65000, address: "192.0.2.21", routerId: "192.0.2.21" }),
  );
  const tgt = (address: string, o: Partial<Target>) =>
    rib.newTarget(
      {
        address,
        asn: 65000,
        ebgp: false,
        rrClient: false,
        nextHopSelf: false,
        selfV4: "192.0.2.100",
        selfV6: "2001:db8::100",
        ...o,
      },
      [AFI.IPv4, AFI.IPv6],
    );
  const tEbgp = tgt("192.0.2.2", { asn: 65002, ebgp: true });
  const tClient1 = tgt("192.0.2.11", { rrClient: true });
  const tClient2 = tgt("192.0.2.12", { rrClient: true });
  const tNonClient = tgt("192.0.2.21", {});
  for (const t of [tEbgp, tClient1, tClient2, tNonClient]) rib.activate(t);
  rib.flush();
  return { rib, ebgpIn, client1, nonClient, tEbgp, tClient1, tClient2, tNonClient };
}

const learned = (nh: string, o: Partial<RibAttrs> = {}): RibAttrs => ({
  origin: 0,
  asPath: seq(65001),
  nextHop: nh,
  ...o,
});

Deno.test("rib: eBGP-learned route goes to everyone with the right rewrites", () => {
  const s = setup();
  s.rib.announce(s.ebgpIn, [P("198.51.100.0/24")], learned("192.0.2.1", { med: 7, localPref: 999 }));
  const out = s.rib.flush();
  const ebgp = out.get(s.tEbgp)![0].announce[0].attrs;
  assert.deepEqual(ebgp.asPath, seq(65000, 65001));
  assert.equal(ebgp.nextHop, "192.0.2.100");
  assert.equal(ebgp.med, undefined, "MED is not propagated across ASes");
  assert.equal(ebgp.localPref, undefined);
  const ibgp = out.get(s.tClient1)![0].announce[0].attrs;
  assert.equal(ibgp.localPref, 100, "received LOCAL_PREF from eBGP ignored, default set for iBGP");
  assert.equal(ibgp.nextHop, "192.0.2.1", "next hop unchanged to iBGP");
  assert.equal(ibgp.med, 7);
  assert.ok(out.get(s.tNonClient));
});

Deno.test("rib: route reflection rules, ORIGINATOR_ID and CLUSTER_LIST", () => {
  const s = setup();
  s.rib.announce(s.client1, [P("10.201.1.0/24")], learned("192.0.2.11", { asPath: [] }));
  let out = s.rib.flush();
  assert.equal(out.get(s.tClient1), undefined, "never back to the source");
  const refl = out.get(s.tClient2)![0].announce[0].attrs;
  assert.equal(refl.originatorId, "192.0.2.11");
  assert.deepEqual(refl.clusterList, ["192.0.2.100"]);
  assert.ok(out.get(s.tNonClient), "client route reflected to non-clients");
  s.rib.announce(s.nonClient, [P("10.201.2.0/24")], learned("192.0.2.21", { asPath: [] }));
  out = s.rib.flush();
  assert.ok(out.get(s.tClient2), "non-client route reflected to clients");
  assert.equal(out.get(s.tNonClient), undefined);
  // Loop detection: our cluster ID in CLUSTER_LIST, our router ID as ORIGINATOR_ID.
  assert.equal(
    s.rib.announce(s.nonClient, [P("10.201.3.0/24")], learned("x", { clusterList: ["192.0.2.100"] })),
    0,
  );
  assert.equal(
    s.rib.announce(s.nonClient, [P("10.201.3.0/24")], learned("x", { originatorId: "192.0.2.100" })),
    0,
  );
  assert.equal(
    s.rib.announce(s.ebgpIn, [P("10.201.3.0/24")], learned("x", { asPath: seq(65001, 65000) })),
    0,
  );
  assert.equal(s.rib.size, 2);
});

Deno.test("rib: well-known communities", () => {
  const s = setup();
  s.rib.announce(
    s.ebgpIn,
    [P("10.202.1.0/24")],
    learned("192.0.2.1", { communities: [WellKnownCommunity.NoExport] }),
  );
  s.rib.announce(
    s.ebgpIn,
    [P("10.202.2.0/24")],
    learned("192.0.2.1", { communities: [WellKnownCommunity.NoAdvertise] }),
  );
  const out = s.rib.flush();
  assert.equal(out.get(s.tEbgp), undefined);
  const toClient = out.get(s.tClient1)![0].announce.flatMap((a) => a.prefixes.map((p) => p.addr));
  assert.deepEqual(toClient, ["10.202.1.0"]);
});

Deno.test("rib: withdraw, best-path events, grouping by attribute set, stale sweep", () => {
  const s = setup();
  const events: string[] = [];
  s.rib.onBestPathChange((ev) => events.push(`${ev.prefix.addr}:${ev.best?.source ?? "none"}`));
  const ps = Array.from({ length: 1000 }, (_, i) => P(`10.210.${i >> 2}.${(i & 3) * 64}/26`));
  s.rib.announce(s.ebgpIn, ps, learned("192.0.2.1"));
  const out = s.rib.flush();
  assert.equal(out.get(s.tEbgp)![0].announce.length, 1, "one attribute set → one group");
  assert.equal(out.get(s.tEbgp)![0].announce[0].prefixes.length, 1000);
  assert.equal(events.length, 1000);
  assert.equal(s.rib.attrs.size <= 6, true, `interned sets: ${s.rib.attrs.size}`);
  s.rib.markStale(s.ebgpIn);
  s.rib.announce(s.ebgpIn, ps.slice(0, 10), learned("192.0.2.1"));
  assert.equal(s.rib.sweepStale(s.ebgpIn), 990);
  const out2 = s.rib.flush();
  assert.equal(out2.get(s.tEbgp)![0].withdraw.length, 990);
  s.rib.dropSource(s.ebgpIn);
  s.rib.flush();
  assert.equal(s.rib.size, 0);
  for (const t of [s.tEbgp, s.tClient1, s.tClient2, s.tNonClient]) s.rib.deactivate(t);
  assert.equal(s.rib.attrs.size, 0, "all interned sets released");
});

Deno.test("rib: a best-path event is the change as it was: key, peer next hop, prefix and route read late", () => {
  const s = setup();
  const events: BestPathChange[] = [];
  s.rib.onBestPathChange((ev) => events.push(ev));
  s.rib.announce(s.ebgpIn, [P("10.211.0.0/24"), P("2001:db8:211::/48")], learned("192.0.2.1"));
  s.rib.flush();
  assert.deepEqual(events.map((e) => ribKeyText(e.key)).sort(), ["10.211.0.0/24", "2001:db8:211::/48"]);
  assert.deepEqual(events.map((e) => e.peerNextHop), ["192.0.2.1", "192.0.2.1"]);
  assert.equal(typeof events.find((e) => e.prefix.afi === AFI.IPv4)!.key, "number", "IPv4 keys are numbers");
  // Marked stale after the event: a late read still shows the path as it was when it changed.
  s.rib.markStale(s.ebgpIn);
  assert.deepEqual(events.map((e) => e.best?.stale), [false, false]);
  assert.equal(events[0].best, events[0].best, "built once");
  s.rib.withdraw(s.ebgpIn, [P("10.211.0.0/24")]);
  s.rib.flush();
  const gone = events.at(-1)!;
  assert.deepEqual([ribKeyText(gone.key), gone.peerNextHop, gone.best], ["10.211.0.0/24", null, null]);
  assert.deepEqual(gone.prefix, { afi: AFI.IPv4, addr: "10.211.0.0", len: 24 });
});
