/**
 * BFD taking a BGP session down at once: our BgpSpeaker + BfdManager (bgp_bfd_speaker_agent.ts,
 * wired BFD Down → `peerDown`) in `bgt-a-*`, BIRD with `bfd on` on its BGP protocol in
 * `bgt-b-*`. The BGP hold time is 90 s, so without BFD a silent link would keep the session
 * Established for up to 90 s; with BFD at 100 ms × 3 our session must leave Established within
 * about a second of the link being cut.
 *
 * Addresses: a(eth0) 10.236.0.1/24 (ours, AS 65001) ⇄ b(eth0) 10.236.0.2/24 (BIRD, AS 65002).
 */
import assert from "node:assert/strict";
import { type Agent, Lab, waitFor } from "./bgp_md5_lab.ts";

const OPTS = { sanitizeOps: false, sanitizeResources: false };

async function status(
  agent: Agent,
): Promise<{ peers: Array<{ state: string }>; bfd: Array<{ state: string }> }> {
  const seen = agent.events.length;
  await agent.send("status");
  const ev = await agent.waitEvent((e) => e.event === "status" && agent.events.indexOf(e) >= seen, "status");
  return ev as unknown as { peers: Array<{ state: string }>; bfd: Array<{ state: string }> };
}

Deno.test(
  "bfd/speaker: a cut link takes the BGP session down through BFD long before the hold time",
  OPTS,
  async () => {
    const lab = new Lab();
    try {
      const a = await lab.ns("a");
      const b = await lab.ns("b");
      await lab.link(a, "eth0", ["10.236.0.1/24"], b, "eth0", ["10.236.0.2/24"]);
      const birdc = await lab.bird(
        b,
        "bird",
        `router id 10.236.0.2;
log stderr all;
protocol device { }
protocol bfd {
  interface "eth0" { min rx interval 100 ms; min tx interval 100 ms; multiplier 3; };
}
protocol bgp ours {
  local 10.236.0.2 as 65002;
  neighbor 10.236.0.1 as 65001;
  hold time 90;
  bfd on;
  connect retry time 2;
  error wait time 1, 3;
  ipv4 { import all; export none; };
}
`,
      );
      const agent = lab.agent(a, {
        speaker: { asn: 65001, routerId: "10.236.0.1", listen: { addresses: ["10.236.0.1"], port: 179 } },
        peer: { address: "10.236.0.2", asn: 65002, holdTime: 90, connectRetry: 2 },
        bfd: { localAddress: "10.236.0.1", desiredMinTxMs: 100, requiredMinRxMs: 100, detectMultiplier: 3 },
      }, "bgp_bfd_speaker_agent.ts");
      await waitFor("BGP Established and BFD Up on our side", async () => {
        const s = await status(agent);
        return s.peers[0]?.state === "Established" && s.bfd[0]?.state === "Up";
      }, 30000);
      await waitFor(
        "BIRD: BGP Established and BFD Up",
        async () =>
          /Established/.test(await birdc("show protocols ours")) &&
          /10\.236\.0\.1\s+eth0\s+Up/.test(await birdc("show bfd sessions")),
      );

      const cutAt = Date.now();
      await lab.exec(b, ["ip", "link", "set", "eth0", "down"]);
      const down = await agent.waitEvent(
        (e) => e.event === "bfd" && e.to === "Down",
        "BFD Down",
        5000,
      );
      const s = await status(agent);
      const bgpState = s.peers[0].state;
      const tookMs = (s as unknown as { at: number }).at - cutAt;
      console.log(
        `BFD Down after ${(down.at as number) - cutAt} ms; BGP state ${bgpState} ${tookMs} ms after the cut`,
      );
      assert.notEqual(bgpState, "Established", "BGP left Established through BFD, not the 90 s hold timer");
      assert.ok(tookMs < 2000, `within ${tookMs} ms`);

      await lab.exec(b, ["ip", "link", "set", "eth0", "up"]);
      await waitFor(
        "BGP Established again",
        async () => (await status(agent)).peers[0]?.state === "Established",
        30000,
      );
    } finally {
      await lab.close();
    }
  },
);
