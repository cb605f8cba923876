/**
 * BFD owned by the speaker (RFC 5882): a peer configured with `bfd: { enabled: true }` gets a BFD
 * session from `BgpSpeaker` itself (`bgp_bfd_speaker_owned_agent.ts` does no wiring). Against
 * BIRD 2 with `protocol bfd` and `bfd on` in its BGP protocol, hold time 90 s:
 * - BGP Established and BFD Up on both sides;
 * - dropping every packet on the peer's link with nft (inside the peer's namespace) takes our
 *   BGP session out of Established within ~1 s (BFD detection 3 × 100 ms), not 90 s;
 * - while BFD stays down the session is held down (no re-establishment over a dead path);
 * - removing the nft table brings BFD Up and BGP Established again on both sides;
 * - disabling BFD with `updatePeer` removes the BFD session without resetting BGP.
 *
 * Namespaces `bgf-a-*` (ours) and `bgf-b-*` (BIRD). Addresses: a(eth0) 10.238.0.1/24 (AS 65001)
 * ⇄ b(eth0) 10.238.0.2/24 (AS 65002).
 */
import assert from "node:assert/strict";
import { type Agent, type AgentEvent, Lab, waitFor } from "./bgp_md5_lab.ts";
import { CommandRunner } from "../../kernel/exec.ts";

const OPTS = { sanitizeOps: false, sanitizeResources: false };
const runner = new CommandRunner();

/** The shared lab, with namespaces named `bgf-<tag>-<id>` (this file's prefix). */
class BgfLab extends Lab {
  override async ns(tag: string): Promise<string> {
    const name = `bgf-${tag}-${this.id}`;
    await runner.run(["ip", "netns", "add", name]);
    this.registerCleanup(async () => {
      await runner.run(["ip", "netns", "del", name]).catch(() => {});
    });
    await runner.run(["ip", "-n", name, "link", "set", "lo", "up"]);
    return name;
  }
}

interface PeerSt {
  state: string;
  bfd?: string;
  lastError?: string;
}

async function status(agent: Agent): Promise<{ peers: PeerSt[]; bfd: Array<{ state: string }>; at: number }> {
  const seen = agent.events.length;
  await agent.send("status");
  const ev = await agent.waitEvent((e) => e.event === "status" && agent.events.indexOf(e) >= seen, "status");
  return ev as unknown as { peers: PeerSt[]; bfd: Array<{ state: string }>; at: number };
}

const PEER = {
  address: "10.238.0.2",
  asn: 65002,
  localAddress: "10.238.0.1",
  holdTime: 90,
  connectRetry: 1,
  bfd: { enabled: true, desiredMinTxMs: 100, requiredMinRxMs: 100, detectMultiplier: 3 },
};

Deno.test(
  "bfd/speaker-owned: BFD Down takes BGP down in ~1 s with a 90 s hold time, and back",
  OPTS,
  async () => {
    const lab = new BgfLab();
    try {
      const a = await lab.ns("a");
      const b = await lab.ns("b");
      await lab.link(a, "eth0", ["10.238.0.1/24"], b, "eth0", ["10.238.0.2/24"]);
      const birdc = await lab.bird(
        b,
        "bird",
        `router id 10.238.0.2;
log stderr all;
protocol device { }
protocol bfd {
  interface "eth0" { min rx interval 100 ms; min tx interval 100 ms; multiplier 3; };
}
protocol bgp ours {
  local 10.238.0.2 as 65002;
  neighbor 10.238.0.1 as 65001;
  hold time 90;
  bfd on;
  connect retry time 1;
  error wait time 1, 3;
  ipv4 { import all; export none; };
}
`,
      );
      const agent = lab.agent(a, {
        speaker: { asn: 65001, routerId: "10.238.0.1", listen: { addresses: ["10.238.0.1"], port: 179 } },
        peer: PEER,
      }, "bgp_bfd_speaker_owned_agent.ts");
      await waitFor("our side: BGP Established and BFD Up", async () => {
        const s = await status(agent);
        return s.peers[0]?.state === "Established" && s.peers[0]?.bfd === "Up" && s.bfd[0]?.state === "Up";
      }, 30000);
      await waitFor(
        "BIRD: BGP Established and BFD Up",
        async () =>
          /Established/.test(await birdc("show protocols ours")) &&
          /10\.238\.0\.1\s+eth0\s+Up/.test(await birdc("show bfd sessions")),
      );

      // Cut: drop everything on BIRD's link, in both directions (the interface stays up).
      const seen = agent.events.length;
      const cutAt = Date.now();
      await runner.run(["nft", "-f", "-"], {
        netns: b,
        stdin: `table inet bgfcut {
  chain in { type filter hook input priority -300; policy accept; iifname "eth0" drop; }
  chain out { type filter hook output priority -300; policy accept; oifname "eth0" drop; }
}
`,
      });
      const downEv = await agent.waitEvent(
        (e: AgentEvent) => agent.events.indexOf(e) >= seen && e.event === "bgp" && e.state !== "Established",
        "BGP leaving Established",
        10000,
      );
      const tookMs = (downEv.at as number) - cutAt;
      console.log(
        `BGP ${downEv.state} (BFD ${downEv.bfd}) ${tookMs} ms after the cut; lastError ${downEv.lastError}`,
      );
      assert.ok(tookMs < 1500, `BGP left Established ${tookMs} ms after the cut (BFD detection is 300 ms)`);
      assert.match(String(downEv.lastError ?? ""), /BFD/);

      // Held down while BFD is down: 3 s of cut link, never Established (BIRD keeps retrying).
      await new Promise((r) => setTimeout(r, 3000));
      const held = await status(agent);
      assert.notEqual(held.peers[0].state, "Established");
      assert.notEqual(held.peers[0].bfd, "Up");

      // Restore: BFD Up, then BGP Established again on both sides.
      const restoredAt = Date.now();
      await runner.run(["nft", "delete", "table", "inet", "bgfcut"], { netns: b });
      await waitFor(
        "our side: BGP Established and BFD Up again",
        async () => {
          const s = await status(agent);
          return s.peers[0]?.state === "Established" && s.peers[0]?.bfd === "Up";
        },
        30000,
        50,
      );
      console.log(`BGP Established and BFD Up ${Date.now() - restoredAt} ms after the link was restored`);
      await waitFor(
        "BIRD: BGP Established and BFD Up again",
        async () =>
          /Established/.test(await birdc("show protocols ours")) &&
          /10\.238\.0\.1\s+eth0\s+Up/.test(await birdc("show bfd sessions")),
        30000,
      );

      // Disabling BFD in place: our BFD session goes (AdminDown to BIRD) and WE do not reset BGP.
      // BIRD 2.0.12 itself drops its BGP session on our AdminDown (Cease/0, although RFC 5882 §3.2
      // says AdminDown is not a path failure); the session then re-establishes without BFD.
      const before = agent.events.length;
      await agent.send(`update ${JSON.stringify({ ...PEER, bfd: { enabled: false } })}`);
      await waitFor("BFD session removed", async () => (await status(agent)).bfd.length === 0, 5000, 50);
      await waitFor(
        "BGP Established without BFD",
        async () => {
          const s = await status(agent);
          return s.peers[0]?.state === "Established" && s.peers[0]?.bfd === undefined;
        },
        15000,
        50,
      );
      const drops = agent.events.slice(before).filter((e) => e.event === "bgp" && e.state !== "Established");
      // The reset, if any, came from BIRD (later retries may fail while BIRD waits to retry).
      if (drops.length) {
        assert.match(
          String(drops[0].lastError),
          /received NOTIFICATION|closed by peer/,
          `first drop not caused by BIRD: ${JSON.stringify(drops)}`,
        );
      }
      console.log(
        `after disabling BFD: ${
          drops.length
            ? `BIRD reset the session (its choice): ${JSON.stringify(drops.map((d) => d.lastError))}`
            : "no reset"
        }`,
      );
    } finally {
      await lab.close();
    }
  },
);
