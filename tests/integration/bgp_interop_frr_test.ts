// Interop with FRR (zebra + bgpd): our speaker (child process in namespace "us") against FRR in
// its own namespaces, checked through `vtysh -c "show bgp ... json"`.
//
// Addresses (see tests/fixtures/bgp_peers.ts): node i has 10.240.0.(i+1)/24 and
// 2001:db8:240::(i+1)/64. Our AS 65001; eBGP FRR AS 65002 (session over IPv4, both families);
// iBGP FRR AS 65001 (session over IPv6, IPv6 unicast). Prefixes: ours 10.241.x.0/24 and
// 2001:db8:2xxx::/48; FRR's 198.51.100.0/24, 2001:db8:1000::/48, 2001:db8:3000::/48.

import assert from "node:assert/strict";
import {
  type BgpLab,
  type BgpNode,
  type Frr,
  type SpeakerProc,
  waitFor,
  withSpeakerLab,
} from "../fixtures/bgp_peers.ts";

const V4 = { afi: 1, safi: 1 };
const V6 = { afi: 2, safi: 1 };
const opts = { sanitizeOps: false, sanitizeResources: false };

function frrConf(
  me: BgpNode,
  asn: number,
  peer: { address: string; asn: number },
  nets: { v4?: string[]; v6?: string[] },
  o: { gr?: boolean; v4family?: boolean } = {},
): string {
  const v4 = o.v4family !== false;
  return `frr defaults traditional
hostname ${me.name}
!
router bgp ${asn}
 bgp router-id ${me.v4}
 no bgp ebgp-requires-policy
 no bgp network import-check
 ${o.gr ? "bgp graceful-restart" : ""}
 neighbor ${peer.address} remote-as ${peer.asn}
 neighbor ${peer.address} timers connect 1
 neighbor ${peer.address} timers 10 30
 !
 address-family ipv4 unicast
${(nets.v4 ?? []).map((n) => `  network ${n}`).join("\n")}
  ${v4 ? "" : "no "}neighbor ${peer.address} activate
 exit-address-family
 !
 address-family ipv6 unicast
${(nets.v6 ?? []).map((n) => `  network ${n}`).join("\n")}
  neighbor ${peer.address} activate
 exit-address-family
!
`;
}

interface FrrPath {
  aspath?: { string: string };
  community?: { string: string };
  med?: number;
  metric?: number;
  locPrf?: number;
  localpref?: number;
  stale?: boolean;
  nexthops?: Array<{ ip: string; scope?: string }>;
  bestpath?: { overall: boolean };
}

async function frrPath(f: Frr, prefix: string): Promise<FrrPath | undefined> {
  const fam = prefix.includes(":") ? "ipv6" : "ipv4";
  const j = await f.json(`show bgp ${fam} unicast ${prefix} json`) as { paths?: FrrPath[]; prefix?: string };
  if (!j.paths?.length || j.prefix !== prefix) return undefined;
  return j.paths.find((p) => p.bestpath?.overall) ?? j.paths[0];
}

const med = (p: FrrPath) => p.med ?? p.metric;

async function counters(sp: SpeakerProc, address: string) {
  return (await sp.call<Array<{ address: string; updatesIn: number; updatesOut: number }>>("peers")).find((
    p,
  ) => p.address === address)!;
}

function withLab(names: string[], fn: (lab: BgpLab, sp: SpeakerProc) => Promise<void>): Promise<void> {
  return withSpeakerLab(names, (n) => `frr-${n}/bgpd-debug.log`, fn);
}

Deno.test({
  name: "bgp interop FRR: eBGP and iBGP, IPv4+IPv6 both ways, withdraw, attribute change, route refresh",
  ...opts,
  fn: () =>
    withLab(["us", "ebgp", "ibgp"], async (lab, sp) => {
      const us = lab.node("us"), e = lab.node("ebgp"), i = lab.node("ibgp");
      const fe = await lab.frr(
        "ebgp",
        frrConf(e, 65002, { address: us.v4, asn: 65001 }, {
          v4: ["198.51.100.0/24"],
          v6: ["2001:db8:1000::/48"],
        }),
      );
      const fi = await lab.frr(
        "ibgp",
        frrConf(i, 65001, { address: us.v6, asn: 65001 }, { v6: ["2001:db8:3000::/48"] }, {
          v4family: false,
        }),
      );
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
      await sp.call("addPeer", { address: i.v6, asn: 65001, families: [V6], connectRetry: 1 });
      await sp.call("start");
      await sp.call("originate", "10.241.1.0/24", { communities: [65001 * 65536 + 7], med: 5 });
      await sp.call("originate", "2001:db8:2001::/48", {});
      await waitFor("eBGP Established", async () => (await sp.peerState(e.v4)) === "Established");
      await waitFor("iBGP Established", async () => (await sp.peerState(i.v6)) === "Established");

      const p1 = await waitFor("eBGP FRR learns 10.241.1.0/24", () => frrPath(fe, "10.241.1.0/24"));
      assert.equal(p1.aspath?.string, "65001");
      assert.equal(p1.community?.string, "65001:7");
      assert.equal(med(p1), 5);
      assert.equal(p1.nexthops?.[0].ip, us.v4);
      const p6 = await waitFor("eBGP FRR learns 2001:db8:2001::/48", () => frrPath(fe, "2001:db8:2001::/48"));
      assert.equal(p6.nexthops?.[0].ip, us.v6);
      const p6i = await waitFor(
        "iBGP FRR learns 2001:db8:2001::/48",
        () => frrPath(fi, "2001:db8:2001::/48"),
      );
      assert.equal(p6i.locPrf ?? p6i.localpref, 100);

      await waitFor("we learn FRR's prefixes", async () => {
        const r = await sp.call<Array<{ prefix: { addr: string } }>>("locRib");
        const have = new Set(r.map((x) => x.prefix.addr));
        return ["198.51.100.0", "2001:db8:1000::", "2001:db8:3000::"].every((a) => have.has(a));
      });
      const b6 = await sp.call("bestRoute", "2001:db8:1000::/48");
      assert.deepEqual(b6.attrs.asPath, [{ type: 2, asns: [65002] }]);
      // eBGP-learned IPv6 → iBGP FRR (next hop unchanged), iBGP-learned → eBGP FRR (AS prepended).
      const x = await waitFor(
        "iBGP FRR learns 2001:db8:1000::/48 via us",
        () => frrPath(fi, "2001:db8:1000::/48"),
      );
      assert.equal(x.aspath?.string, "65002");
      const y = await waitFor(
        "eBGP FRR learns 2001:db8:3000::/48 via us",
        () => frrPath(fe, "2001:db8:3000::/48"),
      );
      assert.equal(y.aspath?.string, "65001");
      assert.equal(y.nexthops?.[0].ip, us.v6);

      // Attribute change; then NO_EXPORT, which must keep the route away from the eBGP peer.
      await sp.call("originate", "10.241.1.0/24", { communities: [65001 * 65536 + 9], med: 30 });
      await waitFor("eBGP FRR sees the new community and MED", async () => {
        const p = await frrPath(fe, "10.241.1.0/24");
        return p && p.community?.string === "65001:9" && med(p) === 30;
      });
      await sp.call("originate", "10.241.1.0/24", { communities: [65001 * 65536 + 9, 0xffffff01], med: 30 });
      await waitFor("eBGP FRR loses the NO_EXPORT route", async () => !(await frrPath(fe, "10.241.1.0/24")));
      await sp.call("originate", "10.241.1.0/24", { communities: [65001 * 65536 + 9], med: 30 });
      await waitFor("eBGP FRR has it again", () => frrPath(fe, "10.241.1.0/24"));
      await fe.vtysh(
        "configure terminal",
        "route-map SETMED permit 10",
        "set metric 44",
        "set community 65002:44",
        "exit",
        "router bgp 65002",
        "address-family ipv4 unicast",
        `neighbor ${us.v4} route-map SETMED out`,
      );
      await fe.vtysh(`clear bgp ipv4 unicast ${us.v4} soft out`);
      await waitFor("we see FRR's MED 44 and community 65002:44", async () => {
        const r = await sp.call("bestRoute", "198.51.100.0/24");
        return r && r.attrs.med === 44 && r.attrs.communities?.includes(65002 * 65536 + 44);
      });

      // Withdraw both ways.
      await sp.call("withdraw", "10.241.1.0/24");
      await sp.call("withdraw", "2001:db8:2001::/48");
      await waitFor("eBGP FRR drops 10.241.1.0/24", async () => !(await frrPath(fe, "10.241.1.0/24")));
      await waitFor(
        "iBGP FRR drops 2001:db8:2001::/48",
        async () => !(await frrPath(fi, "2001:db8:2001::/48")),
      );
      await fe.vtysh(
        "configure terminal",
        "router bgp 65002",
        "address-family ipv6 unicast",
        "no network 2001:db8:1000::/48",
      );
      await waitFor(
        "we drop 2001:db8:1000::/48",
        async () => (await sp.call("bestRoute", "2001:db8:1000::/48")) === null,
      );
      await waitFor(
        "iBGP FRR drops 2001:db8:1000::/48",
        async () => !(await frrPath(fi, "2001:db8:1000::/48")),
      );

      // Route refresh both ways: FRR `soft in` sends ROUTE-REFRESH (no soft-reconfiguration inbound).
      await sp.call("originate", "10.241.3.0/24", {});
      await waitFor("eBGP FRR learns 10.241.3.0/24", () => frrPath(fe, "10.241.3.0/24"));
      const before = await counters(sp, e.v4);
      await fe.vtysh(`clear bgp ipv4 unicast ${us.v4} soft in`);
      await waitFor(
        "we answered FRR's ROUTE-REFRESH",
        async () => (await counters(sp, e.v4)).updatesOut > before.updatesOut,
      );
      assert.equal(await sp.call("refresh", e.v4), true);
      await waitFor(
        "FRR answered our ROUTE-REFRESH",
        async () => (await counters(sp, e.v4)).updatesIn > before.updatesIn,
      );
      assert.equal(await sp.peerState(e.v4), "Established");
      assert.equal(await sp.peerState(i.v6), "Established");
    }),
});

Deno.test({
  name: "bgp interop FRR: graceful restart of our speaker keeps routes stale on FRR, then refreshes",
  ...opts,
  fn: () =>
    withLab(["us", "f"], async (lab, sp0) => {
      const us = lab.node("us"), f = lab.node("f");
      const frr = await lab.frr("f", frrConf(f, 65002, { address: us.v4, asn: 65001 }, {}, { gr: true }));
      const cfg = (restarting: boolean) => ({
        asn: 65001,
        routerId: us.v4,
        listen: { addresses: [us.v4], port: 179 },
        gracefulRestart: { restartTime: 60, deferralTime: 30, restarting },
      });
      const peer = { address: f.v4, asn: 65002, connectRetry: 1 };
      await sp0.call("create", cfg(false));
      await sp0.call("addPeer", peer);
      await sp0.call("start");
      await sp0.call("originate", "10.241.5.0/24", {});
      await sp0.call("originate", "10.241.6.0/24", {});
      await waitFor("FRR learns both", async () =>
        (await frrPath(frr, "10.241.5.0/24")) && (await frrPath(frr, "10.241.6.0/24")));
      await sp0.kill();
      const stale = await waitFor("FRR marks our routes stale", async () => {
        const p = await frrPath(frr, "10.241.5.0/24");
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
          (await sp.peerState(f.v4)) === "Established");
        await waitFor("FRR flushes stale 10.241.6.0/24 at our End-of-RIB", async () =>
          !(await frrPath(frr, "10.241.6.0/24")));
        const fresh = await waitFor("FRR has a fresh 10.241.5.0/24", async () => {
          const p = await frrPath(frr, "10.241.5.0/24");
          return p && !p.stale ? p : undefined;
        });
        assert.equal(fresh.community?.string, "65001:5");
      } finally {
        await sp.stop();
      }
    }),
});
