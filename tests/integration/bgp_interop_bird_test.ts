// Interop with BIRD 2: our speaker (child process in namespace "us") against BIRD daemons in
// their own namespaces, checked through `birdc`.
//
// Addresses (see tests/fixtures/bgp_peers.ts): node i has 10.240.0.(i+1)/24 and
// 2001:db8:240::(i+1)/64 on one bridge. Our AS 65001; eBGP BIRD AS 65002; iBGP BIRDs AS 65001.
// Prefixes: ours 10.241.x.0/24 and 2001:db8:2xxx::/48; BIRD's 198.51.100.0/24, 10.242.x.0/24,
// 10.243.x.0/24, 2001:db8:1000::/48, 2001:db8:3000::/48.

import assert from "node:assert/strict";
import {
  type BgpLab,
  type BgpNode,
  type Bird,
  sleep,
  type SpeakerProc,
  waitFor,
  withSpeakerLab,
} from "../fixtures/bgp_peers.ts";

const V4 = { afi: 1, safi: 1 };
const V6 = { afi: 2, safi: 1 };
const opts = { sanitizeOps: false, sanitizeResources: false };

function birdConf(
  me: BgpNode,
  o: {
    asn: number;
    peers: Array<
      { name: string; address: string; asn: number; v4nh?: string; v6nh?: string; extra?: string }
    >;
    static4?: string[];
    static6?: string[];
    gr?: boolean;
    rrClient?: boolean;
  },
  logFile: string,
): string {
  const s4 = (o.static4 ?? []).map((p) => `  route ${p} blackhole;`).join("\n");
  const s6 = (o.static6 ?? []).map((p) => `  route ${p} blackhole;`).join("\n");
  const peers = o.peers.map((p) => {
    const ibgp = p.asn === o.asn;
    const local = p.address.includes(":") ? me.v6 : me.v4;
    return `protocol bgp ${p.name} {
  local ${local} as ${o.asn};
  neighbor ${p.address} as ${p.asn};
  hold time 30;
  connect retry time 2;
  error wait time 1, 5;
  ${o.gr ? "graceful restart on;" : ""}
  ${ibgp ? "direct;" : ""}
  ${p.extra ?? ""}
  ipv4 { import all; export where source ~ [RTS_STATIC, RTS_BGP]; ${
      p.v4nh ? `next hop address ${p.v4nh};` : ""
    } };
  ipv6 { import all; export where source ~ [RTS_STATIC, RTS_BGP]; ${
      p.v6nh ? `next hop address ${p.v6nh};` : ""
    } };
}`;
  }).join("\n");
  return `router id ${me.v4};
log "${logFile}" all;
protocol device {}
protocol direct { ipv4; ipv6; interface "eth0"; }
protocol static st4 { ipv4;
${s4}
}
protocol static st6 { ipv6;
${s6}
}
${peers}
`;
}

async function hasRoute(bird: Bird, prefix: string, needle = prefix): Promise<string | false> {
  const out = await bird.route(prefix, prefix.includes(":") ? "master6" : "master4");
  return out.includes(needle) ? out : false;
}

async function noRoute(bird: Bird, prefix: string): Promise<boolean> {
  const out = await bird.route(prefix, prefix.includes(":") ? "master6" : "master4");
  return !out.includes(prefix);
}

function withLab(names: string[], fn: (lab: BgpLab, sp: SpeakerProc) => Promise<void>): Promise<void> {
  return withSpeakerLab(names, (n) => `bird-${n}.log`, fn);
}

Deno.test({
  name: "bgp interop BIRD: eBGP and iBGP, IPv4+IPv6 both ways, withdraw, attribute change, route refresh",
  ...opts,
  fn: () =>
    withLab(["us", "ebgp", "ibgp"], async (lab, sp) => {
      const us = lab.node("us"), e = lab.node("ebgp"), i = lab.node("ibgp");
      const eb = await lab.bird(
        "ebgp",
        birdConf(e, {
          asn: 65002,
          peers: [{ name: "ours", address: us.v4, asn: 65001, v6nh: e.v6 }],
          static4: ["198.51.100.0/24"],
          static6: ["2001:db8:1000::/48"],
        }, `${lab.dir}/bird-ebgp.log`),
      );
      // The iBGP session runs over IPv6 and carries both families (IPv4 next hop given explicitly).
      const ib = await lab.bird(
        "ibgp",
        birdConf(i, {
          asn: 65001,
          peers: [{ name: "ours", address: us.v6, asn: 65001, v4nh: i.v4 }],
          static4: ["10.242.0.0/24"],
          static6: ["2001:db8:3000::/48"],
        }, `${lab.dir}/bird-ibgp.log`),
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
      await sp.call("addPeer", {
        address: i.v6,
        asn: 65001,
        families: [V4, V6],
        nextHopIpv4: us.v4,
        connectRetry: 1,
      });
      await sp.call("start");
      await sp.call("originate", "10.241.1.0/24", { communities: [65001 * 65536 + 7] });
      await sp.call("originate", "2001:db8:2001::/48", {});
      await waitFor("eBGP Established", async () => (await sp.peerState(e.v4)) === "Established");
      await waitFor("iBGP Established", async () => (await sp.peerState(i.v6)) === "Established");
      assert.match(await eb.protoState("ours"), /Established/);

      // Ours → both BIRDs.
      const r1 = await waitFor("eBGP BIRD learns 10.241.1.0/24", () => hasRoute(eb, "10.241.1.0/24"));
      assert.match(r1, /BGP\.as_path: 65001\n/);
      assert.match(r1, /BGP\.next_hop: 10\.240\.0\.1/);
      assert.match(r1, /BGP\.community: \(65001,7\)/);
      const r1i = await waitFor("iBGP BIRD learns 10.241.1.0/24", () => hasRoute(ib, "10.241.1.0/24"));
      assert.match(r1i, /BGP\.as_path: \n|BGP\.as_path:\s*$/m);
      assert.match(r1i, /BGP\.local_pref: 100/);
      assert.match(r1i, /BGP\.next_hop: 10\.240\.0\.1/);
      const r6 = await waitFor(
        "eBGP BIRD learns 2001:db8:2001::/48",
        () => hasRoute(eb, "2001:db8:2001::/48"),
      );
      assert.match(r6, /BGP\.next_hop: 2001:db8:240::1/);
      await waitFor("iBGP BIRD learns 2001:db8:2001::/48", () => hasRoute(ib, "2001:db8:2001::/48"));

      // BIRDs → us, and propagated between them through us.
      await waitFor("we learn all four BIRD prefixes", async () => {
        const rib = await sp.call<Array<{ prefix: { addr: string } }>>("locRib");
        const have = new Set(rib.map((r) => r.prefix.addr));
        return ["198.51.100.0", "2001:db8:1000::", "10.242.0.0", "2001:db8:3000::"].every((a) => have.has(a));
      });
      const best = await sp.call("bestRoute", "198.51.100.0/24");
      assert.equal(best.nextHop, e.v4);
      assert.deepEqual(best.attrs.asPath, [{ type: 2, asns: [65002] }]);
      const best6 = await sp.call("bestRoute", "2001:db8:3000::/48");
      assert.equal(best6.source, "2001:db8:240::3");
      assert.equal(best6.attrs.localPref, 100);
      // eBGP-learned → iBGP BIRD: next hop unchanged, AS_PATH unchanged.
      const x = await waitFor(
        "iBGP BIRD learns 198.51.100.0/24 via us",
        () => hasRoute(ib, "198.51.100.0/24"),
      );
      assert.match(x, /BGP\.as_path: 65002/);
      assert.match(x, /BGP\.next_hop: 10\.240\.0\.2/);
      // iBGP-learned → eBGP BIRD: our AS prepended, next hop self.
      const y = await waitFor("eBGP BIRD learns 10.242.0.0/24 via us", () => hasRoute(eb, "10.242.0.0/24"));
      assert.match(y, /BGP\.as_path: 65001\n/);
      assert.match(y, /BGP\.next_hop: 10\.240\.0\.1/);
      await waitFor("eBGP BIRD learns 2001:db8:3000::/48 via us", () => hasRoute(eb, "2001:db8:3000::/48"));

      // Attribute change: new community and MED reach both (MED is ours, so it crosses to eBGP).
      await sp.call("originate", "10.241.1.0/24", { communities: [65001 * 65536 + 9], med: 30 });
      const c = await waitFor(
        "eBGP BIRD sees the new community",
        () => hasRoute(eb, "10.241.1.0/24", "(65001,9)"),
      );
      assert.doesNotMatch(c, /\(65001,7\)/);
      assert.match(c, /BGP\.med: 30/);
      await waitFor("iBGP BIRD sees MED 30", () => hasRoute(ib, "10.241.1.0/24", "BGP.med: 30"));

      // Withdraw.
      await sp.call("withdraw", "10.241.1.0/24");
      await sp.call("withdraw", "2001:db8:2001::/48");
      await waitFor("eBGP BIRD drops 10.241.1.0/24", () => noRoute(eb, "10.241.1.0/24"));
      await waitFor("iBGP BIRD drops 10.241.1.0/24", () => noRoute(ib, "10.241.1.0/24"));
      await waitFor("eBGP BIRD drops 2001:db8:2001::/48", () => noRoute(eb, "2001:db8:2001::/48"));
      // BIRD withdraws too.
      await eb.configure(birdConf(e, {
        asn: 65002,
        peers: [{ name: "ours", address: us.v4, asn: 65001, v6nh: e.v6 }],
        static4: [],
        static6: ["2001:db8:1000::/48"],
      }, `${lab.dir}/bird-ebgp.log`));
      await waitFor(
        "we drop 198.51.100.0/24",
        async () => (await sp.call("bestRoute", "198.51.100.0/24")) === null,
      );
      await waitFor("iBGP BIRD drops 198.51.100.0/24", () => noRoute(ib, "198.51.100.0/24"));

      // Route refresh, their request: BIRD `reload in` sends ROUTE-REFRESH, we resend Adj-RIB-Out.
      await sp.call("originate", "10.241.3.0/24", {});
      await waitFor("eBGP BIRD learns 10.241.3.0/24", () => hasRoute(eb, "10.241.3.0/24"));
      const before =
        (await sp.call<Array<{ address: string; updatesOut: number; updatesIn: number }>>("peers"))
          .find((p) => p.address === e.v4)!;
      await eb.birdc("reload", "in", "ours");
      await waitFor("we answered the ROUTE-REFRESH with updates", async () => {
        const now = (await sp.call<Array<{ address: string; updatesOut: number }>>("peers")).find((p) =>
          p.address === e.v4
        )!;
        return now.updatesOut > before.updatesOut;
      });
      assert.ok(await hasRoute(eb, "10.241.3.0/24"));
      // Route refresh, our request: BIRD resends its table.
      assert.equal(await sp.call("refresh", e.v4), true);
      await waitFor("BIRD answered our ROUTE-REFRESH", async () => {
        const now = (await sp.call<Array<{ address: string; updatesIn: number }>>("peers")).find((p) =>
          p.address === e.v4
        )!;
        return now.updatesIn > before.updatesIn;
      });
      assert.ok(await sp.call("bestRoute", "2001:db8:1000::/48"));
      // Nothing reset along the way.
      assert.equal(await sp.peerState(e.v4), "Established");
      assert.equal(await sp.peerState(i.v6), "Established");
    }),
});

Deno.test({
  name: "bgp interop BIRD: graceful restart, our speaker restarting and helping",
  ...opts,
  fn: () =>
    withLab(["us", "bird"], async (lab, sp0) => {
      const us = lab.node("us"), b = lab.node("bird");
      const conf = (static4: string[]) =>
        birdConf(b, {
          asn: 65002,
          gr: true,
          peers: [{ name: "ours", address: us.v4, asn: 65001, v6nh: b.v6 }],
          static4,
        }, `${lab.dir}/bird-bird.log`);
      const bird = await lab.bird("bird", conf(["198.51.100.0/24"]));
      const speakerCfg = (restarting: boolean) => ({
        asn: 65001,
        routerId: us.v4,
        listen: { addresses: [us.v4], port: 179 },
        gracefulRestart: { restartTime: 60, deferralTime: 30, restarting },
      });
      const peer = { address: b.v4, asn: 65002, connectRetry: 1, gracefulRestart: true };
      await sp0.call("create", speakerCfg(false));
      await sp0.call("addPeer", peer);
      await sp0.call("start");
      await sp0.call("originate", "10.241.5.0/24", {});
      await sp0.call("originate", "10.241.6.0/24", {});
      await waitFor("BIRD learns both prefixes", async () =>
        (await hasRoute(bird, "10.241.5.0/24")) && (await hasRoute(bird, "10.241.6.0/24")));
      await waitFor("we learn BIRD's prefix", async () =>
        (await sp0.call("bestRoute", "198.51.100.0/24")) !== null);

      // Our side restarts: the process dies without a NOTIFICATION.
      await sp0.kill();
      await waitFor("BIRD sees the session go down", async () =>
        !(await bird.protoState("ours")).includes("Established"));
      const stale = await bird.route("10.241.5.0/24");
      assert.match(stale, /10\.241\.5\.0\/24/, "BIRD keeps our route while we restart (RFC 4724 helper)");
      assert.ok(await hasRoute(bird, "10.241.6.0/24"));

      // The restarted speaker (R bit) only has 10.241.5.0/24 now: after our End-of-RIB BIRD must
      // keep .5 and flush the stale .6.
      const sp = lab.speaker("us");
      try {
        await sp.call("create", speakerCfg(true));
        await sp.call("addPeer", peer);
        await sp.call("originate", "10.241.5.0/24", { communities: [65001 * 65536 + 5] });
        await sp.call("start");
        await waitFor("session back", async () =>
          (await sp.peerState(b.v4)) === "Established");
        await waitFor("BIRD flushes the stale 10.241.6.0/24 after our End-of-RIB", () =>
          noRoute(bird, "10.241.6.0/24"));
        const fresh = await waitFor("BIRD has the refreshed 10.241.5.0/24", () =>
          hasRoute(bird, "10.241.5.0/24", "(65001,5)"));
        assert.match(fresh, /BGP\.community: \(65001,5\)/);

        // Helper side: BIRD dies; we keep its route as stale, then BIRD comes back without it.
        await waitFor("we learn BIRD's prefix again", async () =>
          (await sp.call("bestRoute", "198.51.100.0/24")) !== null);
        await bird.stop();
        await waitFor("we see BIRD's session drop", async () =>
          (await sp.peerState(b.v4)) !== "Established");
        const kept = await sp.call("bestRoute", "198.51.100.0/24");
        assert.ok(kept, "route kept during the peer's restart");
        assert.equal(kept.stale, true);
        Deno.writeTextFileSync(bird.confPath, conf(["198.51.100.128/25"]));
        await bird.start();
        await waitFor("session back after BIRD restart", async () =>
          (await sp.peerState(b.v4)) === "Established");
        await waitFor("the new BIRD route arrives", async () =>
          (await sp.call("bestRoute", "198.51.100.128/25")) !== null);
        await waitFor(
          "stale 198.51.100.0/24 flushed at BIRD's End-of-RIB",
          async () =>
            (await sp.call("bestRoute", "198.51.100.0/24")) === null,
        );
      } finally {
        await sp.stop();
      }
    }),
});

Deno.test({
  name: "bgp interop BIRD: our speaker as route reflector for two BIRD clients",
  ...opts,
  fn: () =>
    withLab(["us", "c1", "c2"], async (lab, sp) => {
      const us = lab.node("us"), c1 = lab.node("c1"), c2 = lab.node("c2");
      const mk = (me: BgpNode, p: string) =>
        birdConf(me, {
          asn: 65001,
          peers: [{ name: "rrs", address: us.v4, asn: 65001 }],
          static4: [p],
        }, `${lab.dir}/bird-${me.name}.log`);
      const b1 = await lab.bird("c1", mk(c1, "10.243.1.0/24"));
      const b2 = await lab.bird("c2", mk(c2, "10.243.2.0/24"));
      await sp.call("create", {
        asn: 65001,
        routerId: "192.0.2.1",
        clusterId: "192.0.2.99",
        listen: { addresses: [us.v4], port: 179 },
      });
      for (const c of [c1, c2]) {
        await sp.call("addPeer", { address: c.v4, asn: 65001, routeReflectorClient: true, connectRetry: 1 });
      }
      await sp.call("start");
      const r2 = await waitFor("c2 learns c1's prefix", () => hasRoute(b2, "10.243.1.0/24"));
      assert.match(r2, new RegExp(`BGP\\.originator_id: ${c1.v4.replaceAll(".", "\\.")}`));
      assert.match(r2, /BGP\.cluster_list: 192\.0\.2\.99/);
      assert.match(r2, new RegExp(`BGP\\.next_hop: ${c1.v4.replaceAll(".", "\\.")}`));
      const r1 = await waitFor("c1 learns c2's prefix", () => hasRoute(b1, "10.243.2.0/24"));
      assert.match(r1, new RegExp(`BGP\\.originator_id: ${c2.v4.replaceAll(".", "\\.")}`));
      assert.match(r1, /BGP\.cluster_list: 192\.0\.2\.99/);
      // A client never gets its own route back (ORIGINATOR_ID would make it drop it anyway).
      await sleep(500);
      const own = await b1.route("10.243.1.0/24");
      assert.doesNotMatch(own, /\[rrs /, "c1 must not learn its own prefix from the reflector");
    }),
});

Deno.test({
  name: "bgp interop BIRD: 4-octet AS (RFC 6793): our AS 4200000001 with a 4-octet and a 2-octet AS peer",
  ...opts,
  fn: () =>
    withLab(["us", "as4", "as2"], async (lab, sp) => {
      const us = lab.node("us"), a4 = lab.node("as4"), a2 = lab.node("as2");
      // (A BIRD with `enable as4 off` cannot be configured against a 4-octet neighbour, so the
      // AS_TRANS/AS4_PATH path to old speakers is covered by the codec's tests, not here.)
      const conf = (me: BgpNode, asn: number, p: string) =>
        `router id ${me.v4};
log "${lab.dir}/bird-${me.name}.log" all;
protocol device {}
protocol static st4 { ipv4; route ${p} blackhole; }
protocol bgp ours {
  local ${me.v4} as ${asn}; neighbor ${us.v4} as 4200000001; hold time 30; connect retry time 2;
  ipv4 { import all; export all; };
}
`;
      const b4 = await lab.bird("as4", conf(a4, 4200000002, "10.245.4.0/24"));
      const b2 = await lab.bird("as2", conf(a2, 65002, "10.245.2.0/24"));
      await sp.call("create", {
        asn: 4200000001,
        routerId: us.v4,
        listen: { addresses: [us.v4], port: 179 },
      });
      await sp.call("addPeer", { address: a4.v4, asn: 4200000002, connectRetry: 1 });
      await sp.call("addPeer", { address: a2.v4, asn: 65002, connectRetry: 1 });
      await sp.call("start");
      await sp.call("originate", "10.241.8.0/24", {});
      await waitFor(
        "both sessions up",
        async () =>
          (await sp.peerState(a4.v4)) === "Established" && (await sp.peerState(a2.v4)) === "Established",
      );
      const r4 = await waitFor("4-octet BIRD learns our prefix", () => hasRoute(b4, "10.241.8.0/24"));
      assert.match(r4, /BGP\.as_path: 4200000001\n/);
      const via = await waitFor(
        "2-octet-AS BIRD learns the 4-octet BIRD's prefix",
        () => hasRoute(b2, "10.245.4.0/24"),
      );
      assert.match(via, /BGP\.as_path: 4200000001 4200000002\n/);
      const back = await waitFor(
        "4-octet BIRD learns the 2-octet-AS BIRD's prefix",
        () => hasRoute(b4, "10.245.2.0/24"),
      );
      assert.match(back, /BGP\.as_path: 4200000001 65002\n/);
      const ours = await sp.call("bestRoute", "10.245.4.0/24");
      assert.deepEqual(ours.attrs.asPath, [{ type: 2, asns: [4200000002] }]);
    }),
});

Deno.test({
  name: "bgp interop BIRD: import/export policies, run-time updatePeer and removePeer",
  ...opts,
  fn: () =>
    withLab(["us", "b1", "b2"], async (lab, sp) => {
      const us = lab.node("us"), n1 = lab.node("b1"), n2 = lab.node("b2");
      const mk = (me: BgpNode, asn: number, p: string[]) =>
        birdConf(
          me,
          { asn, peers: [{ name: "ours", address: us.v4, asn: 65001 }], static4: p },
          `${lab.dir}/bird-${me.name}.log`,
        );
      const b1 = await lab.bird("b1", mk(n1, 65002, ["10.246.1.0/24", "10.246.2.0/25", "198.51.100.0/24"]));
      const b2 = await lab.bird("b2", mk(n2, 65003, []));
      const P = (s: string) => {
        const [addr, len] = s.split("/");
        return { afi: 1, addr, len: Number(len) };
      };
      // Import from b1: reject 10.246.0.0/16 le 24 except what ge/le lets through; raise LOCAL_PREF.
      const importPolicy = {
        statements: [
          {
            match: { prefixes: [{ prefix: P("10.246.0.0/16"), ge: 16, le: 24 }] },
            actions: { result: "reject" },
          },
          { actions: { localPref: 250, addLargeCommunities: [{ global: 65001, local1: 1, local2: 2 }] } },
        ],
      };
      const exportPolicy = (comm: number) => ({
        statements: [{
          match: { prefixes: [{ prefix: P("10.0.0.0/8"), le: 32 }] },
          actions: {
            asPathPrepend: { asn: 65001, count: 2 },
            addCommunities: [comm],
            med: 77,
            result: "accept",
          },
        }],
      });
      await sp.call("create", { asn: 65001, routerId: us.v4, listen: { addresses: [us.v4], port: 179 } });
      await sp.call("addPeer", { address: n1.v4, asn: 65002, connectRetry: 1, importPolicy });
      await sp.call("addPeer", {
        address: n2.v4,
        asn: 65003,
        connectRetry: 1,
        exportPolicy: exportPolicy(65001 * 65536 + 1),
      });
      await sp.call("start");
      await sp.call("originate", "10.241.7.0/24", {});
      await waitFor("we accept 10.246.2.0/25 (longer than le 24)", async () =>
        (await sp.call("bestRoute", "10.246.2.0/25")) !== null);
      await waitFor("we accept 198.51.100.0/24", async () =>
        (await sp.call("bestRoute", "198.51.100.0/24")) !== null);
      assert.equal(await sp.call("bestRoute", "10.246.1.0/24"), null, "import policy rejects 10.246.1.0/24");
      const acc = await sp.call("bestRoute", "198.51.100.0/24");
      assert.equal(acc.attrs.localPref, 250);
      assert.deepEqual(acc.attrs.largeCommunities, [{ global: 65001, local1: 1, local2: 2 }]);
      const st =
        (await sp.call<Array<{ address: string; prefixesReceived: number; prefixesAccepted: number }>>(
          "peers",
        ))
          .find((p) =>
            p.address === n1.v4
          )!;
      assert.equal(st.prefixesAccepted, 2);
      assert.equal(st.prefixesReceived, 3);

      // Export policy towards b2: prepend twice, add a community, set MED, only for 10/8.
      const r = await waitFor("b2 learns 10.241.7.0/24", () => hasRoute(b2, "10.241.7.0/24"));
      assert.match(r, /BGP\.as_path: 65001 65001 65001\n/);
      assert.match(r, /BGP\.community: \(65001,1\)/);
      assert.match(r, /BGP\.med: 77/);
      const plain = await waitFor("b2 learns 198.51.100.0/24 unchanged by the policy", () =>
        hasRoute(b2, "198.51.100.0/24"));
      assert.match(plain, /BGP\.as_path: 65001 65002\n/);
      assert.doesNotMatch(plain, /BGP\.med/);

      // Change the export policy at run time: only the difference is sent, the session stays up.
      await sp.call("updatePeer", {
        address: n2.v4,
        asn: 65003,
        connectRetry: 1,
        exportPolicy: exportPolicy(65001 * 65536 + 2),
      });
      await waitFor("b2 sees the new community", () =>
        hasRoute(b2, "10.241.7.0/24", "(65001,2)"));
      assert.equal(await sp.peerState(n2.v4), "Established");

      // Remove b1: its routes disappear from b2, b1 gets Cease.
      await sp.call("removePeer", n1.v4);
      await waitFor("b2 drops b1's routes", () =>
        noRoute(b2, "198.51.100.0/24"));
      await waitFor(
        "b1's session is down",
        async () => !(await b1.protoState("ours")).includes("Established"),
      );
      assert.equal((await sp.call<unknown[]>("peers")).length, 1);
    }),
});

Deno.test({
  name: "bgp interop BIRD: eBGP over IPv6 carries our link-local next hop (RFC 2545)",
  ...opts,
  fn: () =>
    withLab(["us", "v6"], async (lab, sp) => {
      const us = lab.node("us"), b = lab.node("v6");
      const bird = await lab.bird(
        "v6",
        birdConf(b, {
          asn: 65002,
          peers: [{ name: "ours", address: us.v6, asn: 65001 }],
          static6: ["2001:db8:1006::/48"],
        }, `${lab.dir}/bird-v6.log`),
      );
      await sp.call("create", { asn: 65001, routerId: us.v4, listen: { addresses: [us.v6], port: 179 } });
      await sp.call("addPeer", { address: b.v6, asn: 65002, families: [V6], connectRetry: 1 });
      await sp.call("start");
      await sp.call("originate", "2001:db8:2006::/48", {});
      const r = await waitFor("BIRD learns 2001:db8:2006::/48", () => hasRoute(bird, "2001:db8:2006::/48"));
      assert.match(r, /BGP\.next_hop: 2001:db8:240::1 fe80::/);
      const back = await waitFor("we learn BIRD's prefix", async () =>
        await sp.call<{ nextHop: string; nextHopLinkLocal?: string }>("bestRoute", "2001:db8:1006::/48"));
      assert.equal(back.nextHop, "2001:db8:240::2");
      assert.match(back.nextHopLinkLocal ?? "", /^fe80::/, "BIRD's link-local next hop is kept");
      assert.doesNotMatch(lab.log("bird-v6.log"), /Missing link-local address/);
    }),
});
