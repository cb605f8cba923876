// Interop with gobgpd: our speaker (child process in namespace "us") against gobgpd daemons in
// their own namespaces, checked through `gobgp global rib -j` / `gobgp neighbor -j`.
//
// Addresses (see tests/fixtures/bgp_peers.ts): node i has 10.240.0.(i+1)/24 and
// 2001:db8:240::(i+1)/64. Our AS 65001; eBGP gobgpd AS 65002 (session over IPv4); iBGP gobgpd
// AS 65001 (session over IPv6). Prefixes: ours 10.241.x.0/24 and 2001:db8:2xxx::/48; gobgpd's
// 198.51.100.0/24, 10.242.0.0/24, 2001:db8:1000::/48, 2001:db8:3000::/48.

import assert from "node:assert/strict";
import {
  type BgpLab,
  type BgpNode,
  type Gobgp,
  type SpeakerProc,
  waitFor,
  withSpeakerLab,
} from "../fixtures/bgp_peers.ts";

const V4 = { afi: 1, safi: 1 };
const V6 = { afi: 2, safi: 1 };
const opts = { sanitizeOps: false, sanitizeResources: false };

function gobgpConf(me: BgpNode, asn: number, peer: { address: string; asn: number }, gr = false): string {
  return `[global.config]
  as = ${asn}
  router-id = "${me.v4}"
  local-address-list = ["${me.v4}", "${me.v6}"]
[[neighbors]]
  [neighbors.config]
    neighbor-address = "${peer.address}"
    peer-as = ${peer.asn}
  [neighbors.timers.config]
    connect-retry = 1
    hold-time = 30
    keepalive-interval = 10
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
${gr ? "    [neighbors.afi-safis.mp-graceful-restart.config]\n      enabled = true" : ""}
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv6-unicast"
${gr ? "    [neighbors.afi-safis.mp-graceful-restart.config]\n      enabled = true" : ""}
${gr ? "  [neighbors.graceful-restart.config]\n    enabled = true\n    restart-time = 60" : ""}
`;
}

interface GobgpPath {
  best: boolean;
  stale: boolean;
  "neighbor-ip"?: string;
  attrs: Array<{ type: number; [k: string]: unknown }>;
}

async function rib(g: Gobgp, afi: "ipv4" | "ipv6"): Promise<Record<string, GobgpPath[]>> {
  const out = await g.cli("global", "rib", "-a", afi, "-j");
  return out.trim() ? JSON.parse(out) : {};
}

async function path(g: Gobgp, prefix: string): Promise<GobgpPath | undefined> {
  const r = await rib(g, prefix.includes(":") ? "ipv6" : "ipv4");
  return r[prefix]?.find((p) => p.best) ?? r[prefix]?.[0];
}

const attr = (p: GobgpPath, type: number) => p.attrs.find((a) => a.type === type);
const asns = (p: GobgpPath) => (attr(p, 2)?.as_paths as Array<{ asns: number[] }>)[0].asns;

async function peerCounters(sp: SpeakerProc, address: string) {
  return (await sp.call<Array<{ address: string; updatesIn: number; updatesOut: number }>>("peers")).find((
    p,
  ) => p.address === address)!;
}

function withLab(names: string[], fn: (lab: BgpLab, sp: SpeakerProc) => Promise<void>): Promise<void> {
  return withSpeakerLab(names, (n) => `gobgpd-${n}.log`, fn);
}

Deno.test({
  name: "bgp interop gobgpd: eBGP and iBGP, IPv4+IPv6 both ways, withdraw, attribute change, route refresh",
  ...opts,
  fn: () =>
    withLab(["us", "ebgp", "ibgp"], async (lab, sp) => {
      const us = lab.node("us"), e = lab.node("ebgp"), i = lab.node("ibgp");
      const ge = await lab.gobgp("ebgp", gobgpConf(e, 65002, { address: us.v4, asn: 65001 }));
      const gi = await lab.gobgp("ibgp", gobgpConf(i, 65001, { address: us.v6, asn: 65001 }));
      await sp.call("create", {
        asn: 65001,
        routerId: us.v4,
        listen: { addresses: [us.v4, us.v6], port: 179 },
      });
      await sp.call("addPeer", {
        address: e.v4,
        asn: 65002,
        families: [V4, V6],
        nextHopIpv6: us.v6,
        connectRetry: 1,
      });
      await sp.call("addPeer", {
        address: i.v6,
        asn: 65001,
        families: [V4, V6],
        nextHopIpv4: us.v4,
        connectRetry: 1,
      });
      await sp.call("start");
      await sp.call("originate", "10.241.1.0/24", { communities: [65001 * 65536 + 7], med: 5 });
      await sp.call("originate", "2001:db8:2001::/48", {});
      await ge.cli("global", "rib", "add", "198.51.100.0/24", "community", "65002:5", "-a", "ipv4");
      await ge.cli("global", "rib", "add", "2001:db8:1000::/48", "nexthop", e.v6, "-a", "ipv6");
      await gi.cli("global", "rib", "add", "10.242.0.0/24", "nexthop", i.v4, "-a", "ipv4");
      await gi.cli("global", "rib", "add", "2001:db8:3000::/48", "nexthop", i.v6, "-a", "ipv6");
      await waitFor("eBGP Established", async () => (await sp.peerState(e.v4)) === "Established");
      await waitFor("iBGP Established", async () => (await sp.peerState(i.v6)) === "Established");

      // Ours → gobgpd, with the eBGP/iBGP rewrites.
      const p1 = await waitFor("eBGP gobgpd learns 10.241.1.0/24", () => path(ge, "10.241.1.0/24"));
      assert.deepEqual(asns(p1), [65001]);
      assert.equal(attr(p1, 3)?.nexthop, us.v4);
      assert.deepEqual(attr(p1, 8)?.communities, [65001 * 65536 + 7]);
      assert.equal(attr(p1, 4)?.metric, 5, "our own MED goes to eBGP");
      assert.equal(attr(p1, 5), undefined, "no LOCAL_PREF to eBGP");
      const p1i = await waitFor("iBGP gobgpd learns 10.241.1.0/24", () => path(gi, "10.241.1.0/24"));
      assert.equal(attr(p1i, 5)?.value, 100, "LOCAL_PREF to iBGP");
      assert.equal(attr(p1i, 3)?.nexthop, us.v4);
      const p6 = await waitFor("eBGP gobgpd learns 2001:db8:2001::/48", () => path(ge, "2001:db8:2001::/48"));
      assert.equal(attr(p6, 14)?.nexthop, us.v6);
      await waitFor("iBGP gobgpd learns 2001:db8:2001::/48", () => path(gi, "2001:db8:2001::/48"));

      // gobgpd → us → the other gobgpd.
      await waitFor("we learn gobgpd's four prefixes", async () => {
        const r = await sp.call<Array<{ prefix: { addr: string } }>>("locRib");
        const have = new Set(r.map((x) => x.prefix.addr));
        return ["198.51.100.0", "2001:db8:1000::", "10.242.0.0", "2001:db8:3000::"].every((a) => have.has(a));
      });
      const b = await sp.call("bestRoute", "198.51.100.0/24");
      assert.deepEqual(b.attrs.communities, [65002 * 65536 + 5]);
      const x = await waitFor("iBGP gobgpd learns 198.51.100.0/24 via us", () => path(gi, "198.51.100.0/24"));
      assert.equal(attr(x, 3)?.nexthop, e.v4, "next hop unchanged into iBGP");
      const y = await waitFor("eBGP gobgpd learns 10.242.0.0/24 via us", () => path(ge, "10.242.0.0/24"));
      assert.equal(attr(y, 3)?.nexthop, us.v4, "next hop self to eBGP");
      assert.deepEqual(asns(y), [65001]);
      const y6 = await waitFor("eBGP gobgpd learns 2001:db8:3000::/48 via us", () =>
        path(ge, "2001:db8:3000::/48"));
      assert.equal(attr(y6, 14)?.nexthop, us.v6);

      // Attribute change both ways.
      await sp.call("originate", "10.241.1.0/24", { communities: [65001 * 65536 + 9], med: 30 });
      await waitFor("eBGP gobgpd sees community 65001:9 and MED 30", async () => {
        const p = await path(ge, "10.241.1.0/24");
        return p && JSON.stringify(attr(p, 8)?.communities) === JSON.stringify([65001 * 65536 + 9]) &&
          attr(p, 4)?.metric === 30;
      });
      await ge.cli(
        "global",
        "rib",
        "add",
        "198.51.100.0/24",
        "community",
        "65002:6",
        "med",
        "77",
        "-a",
        "ipv4",
      );
      await waitFor("we see gobgpd's new community and MED", async () => {
        const r = await sp.call("bestRoute", "198.51.100.0/24");
        return r && r.attrs.med === 77 && r.attrs.communities?.[0] === 65002 * 65536 + 6;
      });
      // A MED learned from AS 65002 is not passed to... (only eBGP peer here), but it is kept to iBGP.
      await waitFor("iBGP gobgpd sees MED 77", async () =>
        attr((await path(gi, "198.51.100.0/24"))!, 4)?.metric === 77);

      // Withdraw both ways.
      await sp.call("withdraw", "10.241.1.0/24");
      await sp.call("withdraw", "2001:db8:2001::/48");
      await waitFor("eBGP gobgpd drops 10.241.1.0/24", async () =>
        !(await path(ge, "10.241.1.0/24")));
      await waitFor("iBGP gobgpd drops 2001:db8:2001::/48", async () =>
        !(await path(gi, "2001:db8:2001::/48")));
      await ge.cli("global", "rib", "del", "198.51.100.0/24", "-a", "ipv4");
      await waitFor("we drop 198.51.100.0/24", async () =>
        (await sp.call("bestRoute", "198.51.100.0/24")) === null);
      await waitFor("iBGP gobgpd drops 198.51.100.0/24", async () =>
        !(await path(gi, "198.51.100.0/24")));

      // Route refresh: we ask, gobgpd resends. (gobgpd 3.x's `softresetin` re-filters its own
      // Adj-RIB-In and sends no ROUTE-REFRESH, so the other direction is proven with BIRD and FRR.)
      await sp.call("originate", "10.241.3.0/24", {});
      await waitFor("eBGP gobgpd learns 10.241.3.0/24", () =>
        path(ge, "10.241.3.0/24"));
      const before = await peerCounters(sp, e.v4);
      assert.equal(await sp.call("refresh", e.v4), true);
      await waitFor(
        "gobgpd answered our ROUTE-REFRESH",
        async () =>
          (await peerCounters(sp, e.v4)).updatesIn > before.updatesIn,
      );
      assert.equal(await sp.peerState(e.v4), "Established");
      assert.equal(await sp.peerState(i.v6), "Established");
    }),
});

Deno.test({
  name: "bgp interop gobgpd: graceful restart of our speaker keeps routes stale on gobgpd, then refreshes",
  ...opts,
  fn: () =>
    withLab(["us", "g"], async (lab, sp0) => {
      const us = lab.node("us"), g = lab.node("g");
      const gb = await lab.gobgp("g", gobgpConf(g, 65002, { address: us.v4, asn: 65001 }, true));
      const cfg = (restarting: boolean) => ({
        asn: 65001,
        routerId: us.v4,
        listen: { addresses: [us.v4], port: 179 },
        gracefulRestart: { restartTime: 60, deferralTime: 30, restarting },
      });
      const peer = { address: g.v4, asn: 65002, families: [V4, V6], nextHopIpv6: us.v6, connectRetry: 1 };
      await sp0.call("create", cfg(false));
      await sp0.call("addPeer", peer);
      await sp0.call("start");
      await sp0.call("originate", "10.241.5.0/24", {});
      await sp0.call("originate", "10.241.6.0/24", {});
      await waitFor("gobgpd learns both", async () =>
        (await path(gb, "10.241.5.0/24")) && (await path(gb, "10.241.6.0/24")));
      await sp0.kill();
      const stale = await waitFor("gobgpd marks our routes stale", async () => {
        const p = await path(gb, "10.241.5.0/24");
        return p?.stale ? p : undefined;
      });
      assert.equal(stale.stale, true);
      const sp = lab.speaker("us");
      try {
        await sp.call("create", cfg(true));
        await sp.call("addPeer", peer);
        await sp.call("originate", "10.241.5.0/24", { communities: [65001 * 65536 + 5] });
        await sp.call("start");
        await waitFor("session back", async () =>
          (await sp.peerState(g.v4)) === "Established");
        await waitFor("gobgpd flushes stale 10.241.6.0/24 at our End-of-RIB", async () =>
          !(await path(gb, "10.241.6.0/24")));
        const fresh = await waitFor("gobgpd has a fresh 10.241.5.0/24", async () => {
          const p = await path(gb, "10.241.5.0/24");
          return p && !p.stale ? p : undefined;
        });
        assert.deepEqual(attr(fresh, 8)?.communities, [65001 * 65536 + 5]);
      } finally {
        await sp.stop();
      }
    }),
});
