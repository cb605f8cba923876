// TCP MD5 (RFC 2385) between our speaker and FRR's bgpd (`neighbor X password Y`): with the same
// password the session is Established and FRR learns our prefix; with a different one FRR's
// kernel drops our signed segments (MD5 failure counter) and no session comes up.
//
// Addresses (tests/fixtures/bgp_peers.ts): node i has 10.240.0.(i+1)/24. Our AS 65001 in "us",
// FRR AS 65002 in "frr". Our prefix 10.241.9.0/24.

import assert from "node:assert/strict";
import { BgpLab, sleep, waitFor } from "../fixtures/bgp_peers.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

function frrConf(routerId: string, peer: string, password: string): string {
  return `frr defaults traditional
hostname frr
!
router bgp 65002
 bgp router-id ${routerId}
 no bgp ebgp-requires-policy
 neighbor ${peer} remote-as 65001
 neighbor ${peer} password ${password}
 neighbor ${peer} timers connect 1
 neighbor ${peer} timers 10 30
!
`;
}

async function md5Failures(lab: BgpLab, node: string): Promise<number> {
  const out = await lab.exec(node, ["nstat", "-az", "TcpExtTCPMD5Failure"], [0]);
  return Number(/TcpExtTCPMD5Failure\s+(\d+)/.exec(out)?.[1] ?? 0);
}

for (
  const [title, frrPassword, expectUp] of [
    ["the same password: Established, routes exchanged", "s3cret-md5", true],
    ["a different password: no session, segments dropped by the kernel", "other-secret", false],
  ] as const
) {
  Deno.test({
    name: `bgp md5 FRR: ${title}`,
    ...opts,
    fn: async () => {
      const lab = await BgpLab.create(["us", "frr"]);
      const sp = lab.speaker("us");
      try {
        const us = lab.node("us"), f = lab.node("frr");
        const frr = await lab.frr("frr", frrConf(f.v4, us.v4, frrPassword));
        await sp.call("create", { asn: 65001, routerId: us.v4, listen: { addresses: [us.v4], port: 179 } });
        await sp.call("addPeer", { address: f.v4, asn: 65002, password: "s3cret-md5", connectRetry: 1 });
        await sp.call("start");
        await sp.call("originate", "10.241.9.0/24", {});
        if (expectUp) {
          await waitFor("Established with MD5", async () => (await sp.peerState(f.v4)) === "Established");
          await waitFor("FRR learns our prefix", async () => {
            const j = await frr.json("show bgp ipv4 unicast 10.241.9.0/24 json") as { paths?: unknown[] };
            return (j.paths?.length ?? 0) > 0;
          });
        } else {
          await waitFor(
            "FRR's kernel rejects our signatures",
            async () => (await md5Failures(lab, "frr")) > 0,
          );
          await sleep(4000);
          assert.notEqual(await sp.peerState(f.v4), "Established");
          const j = await frr.json("show bgp summary json") as {
            ipv4Unicast?: { peers?: Record<string, { state: string }> };
          };
          assert.notEqual(j.ipv4Unicast?.peers?.[us.v4]?.state, "Established");
        }
      } finally {
        await sp.stop();
        await lab.close();
      }
    },
  });
}
