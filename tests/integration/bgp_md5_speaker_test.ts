/**
 * TCP MD5 through the `BgpSpeaker` API (a `password` on the peer), against BIRD 2: our speaker
 * runs in a child process in namespace "us" (tests/fixtures/bgp_peers.ts), BIRD in "bird".
 * With the same password the session is Established and BIRD learns our prefix; after
 * `updatePeer` with a different password (the listener's key is replaced at run time) it is not.
 *
 * Addresses (fixture convention): us 10.240.0.1/24, bird 10.240.0.2/24 on one bridge.
 * Our AS 65001, BIRD AS 65002. Our prefix 10.241.9.0/24.
 */
import assert from "node:assert/strict";
import { BgpLab, waitFor } from "../fixtures/bgp_peers.ts";
import { CommandRunner } from "../../kernel/exec.ts";

const OPTS = { sanitizeOps: false, sanitizeResources: false };

async function md5Failures(ns: string): Promise<number> {
  const out = (await new CommandRunner().run(["nstat", "-az", "TcpExtTCPMD5Failure"], { netns: ns })).stdout;
  return Number(/TcpExtTCPMD5Failure\s+(\d+)/.exec(out)?.[1] ?? 0);
}

Deno.test(
  "md5/speaker: BgpSpeaker peer with a password ⇄ BIRD; a changed password drops the session",
  OPTS,
  async () => {
    const lab = await BgpLab.create(["us", "bird"]);
    try {
      const us = lab.node("us"), b = lab.node("bird");
      const bird = await lab.bird(
        "bird",
        `router id ${b.v4};
log "${lab.dir}/bird-bird.log" all;
protocol device {}
protocol bgp ours {
  local ${b.v4} as 65002;
  neighbor ${us.v4} as 65001;
  password "speaker-pw";
  hold time 30;
  connect retry time 2;
  error wait time 1, 3;
  ipv4 { import all; export none; };
}
`,
      );
      const sp = lab.speaker("us");
      await sp.call("create", { asn: 65001, routerId: us.v4, listen: { addresses: [us.v4], port: 179 } });
      await sp.call("start");
      const peer = { address: b.v4, asn: 65002, password: "speaker-pw", holdTime: 30, connectRetry: 2 };
      await sp.call("addPeer", peer);
      await sp.call("originate", "10.241.9.0/24");
      await waitFor("our side Established", async () => (await sp.peerState(b.v4)) === "Established", 20000);
      await waitFor("BIRD Established", async () => (await bird.protoState("ours")).includes("Established"));
      await waitFor(
        "BIRD learned our prefix",
        async () => (await bird.route("10.241.9.0/24")).includes("10.241.9.0/24"),
      );

      const before = await md5Failures(b.ns);
      await sp.call("updatePeer", { ...peer, password: "other-pw" });
      await waitFor(
        "BIRD's kernel rejects our new signature",
        async () => (await md5Failures(b.ns)) > before,
        20000,
      );
      await new Promise((r) => setTimeout(r, 3000));
      assert.notEqual(await sp.peerState(b.v4), "Established");
      assert.ok(!(await bird.protoState("ours")).includes("Established"));
      await sp.stop();
    } finally {
      await lab.close();
    }
  },
);
