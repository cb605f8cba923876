/**
 * BFD interop: our BfdManager (the agent script bgp_bfd_agent.ts, in namespace `bgt-a-*`)
 * against BIRD 2's `protocol bfd` and FRR 8's `bfdd`, both in `bgt-b-*`. The sessions come Up
 * on both sides (checked with `birdc show bfd sessions` / `vtysh show bfd peers json`); cutting
 * the peer's link (`ip link set eth0 down` in its namespace) is detected by us as Down with
 * diag 1 within the detection time (3 × 100 ms); restoring it brings the session back Up.
 *
 * Addresses: a(eth0) 10.234.0.1/24, 2001:db8:234::1/64 ⇄ b(eth0) 10.234.0.2/24 (BIRD),
 * 2001:db8:234::2/64 (BIRD), 10.234.0.3/24 (FRR bfdd). Timers 100 ms tx/rx, multiplier 3.
 */
import assert from "node:assert/strict";
import { type Agent, Lab, waitFor } from "./bgp_md5_lab.ts";

const OPTS = { sanitizeOps: false, sanitizeResources: false };
const TIMING = { desiredMinTxMs: 100, requiredMinRxMs: 100, detectMultiplier: 3 };
const DETECT_MS = 300;
/** Allowance for process scheduling on a shared 2-core machine (the `ip` fork, timers). */
const SLACK_MS = 250;

async function setup(lab: Lab) {
  const a = await lab.ns("a");
  const b = await lab.ns("b");
  await lab.link(a, "eth0", ["10.234.0.1/24", "2001:db8:234::1/64"], b, "eth0", [
    "10.234.0.2/24",
    "2001:db8:234::2/64",
    "10.234.0.3/24",
  ]);
  // Linux flushes IPv6 addresses when a link goes admin-down unless told to keep them.
  await lab.exec(b, ["sysctl", "-qw", "net.ipv6.conf.eth0.keep_addr_on_down=1"]);
  return { a, b };
}

function lastState(agent: Agent, peer: string): string | undefined {
  return agent.events.filter((e) => e.event === "state" && e.peer === peer).at(-1)?.to as string | undefined;
}

/** Cuts b's link and returns how long our side took to declare `peer` Down (ms), checking diag 1. */
async function cutAndMeasure(lab: Lab, b: string, agent: Agent, peers: string[]): Promise<number[]> {
  const seen = agent.events.length;
  const cutAt = Date.now();
  await lab.exec(b, ["ip", "link", "set", "eth0", "down"]);
  const out: number[] = [];
  for (const peer of peers) {
    const down = await agent.waitEvent(
      (e) => agent.events.indexOf(e) >= seen && e.event === "state" && e.peer === peer && e.to === "Down",
      `Down for ${peer}`,
      5000,
    );
    assert.equal(down.diag, 1, "diag 1: control detection time expired");
    out.push((down.at as number) - cutAt);
  }
  return out;
}

Deno.test(
  "bfd/bird: IPv4 and IPv6 sessions Up on both sides; link cut detected within detection time",
  OPTS,
  async () => {
    const lab = new Lab();
    try {
      const { a, b } = await setup(lab);
      const birdc = await lab.bird(
        b,
        "bird",
        `router id 10.234.0.2;
log stderr all;
protocol device { }
protocol bfd {
  interface "eth0" { min rx interval 100 ms; min tx interval 100 ms; multiplier 3; };
  neighbor 10.234.0.1 local 10.234.0.2;
  neighbor 2001:db8:234::1 local 2001:db8:234::2;
}
`,
      );
      const agent = lab.agent(a, {
        peers: [
          { peer: "10.234.0.2", localAddress: "10.234.0.1", ...TIMING },
          { peer: "2001:db8:234::2", localAddress: "2001:db8:234::1", ...TIMING },
        ],
      }, "bgp_bfd_agent.ts");
      const peers = ["10.234.0.2", "2001:db8:234::2"];
      await waitFor("our sessions Up", () => peers.every((p) => lastState(agent, p) === "Up"));
      const birdUp = async () => {
        const out = await birdc("show bfd sessions");
        return /10\.234\.0\.1\s+eth0\s+Up\s+\S+\s+0\.100\s+0\.300/.test(out) &&
          /2001:db8:234::1\s+eth0\s+Up\s+\S+\s+0\.100\s+0\.300/.test(out);
      };
      await waitFor("BIRD shows both sessions Up at 100 ms", birdUp);

      const took = await cutAndMeasure(lab, b, agent, peers);
      console.log(`BIRD link cut detected after ${took.join(" ms, ")} ms (detection time ${DETECT_MS} ms)`);
      for (const t of took) assert.ok(t <= DETECT_MS + SLACK_MS, `detected after ${t} ms`);

      await lab.exec(b, ["ip", "link", "set", "eth0", "up"]);
      await waitFor(
        "our sessions Up again",
        () => peers.every((p) => lastState(agent, p) === "Up"),
        20000,
      );
      await waitFor("BIRD shows both sessions Up again", birdUp, 20000);
    } finally {
      await lab.close();
    }
  },
);

Deno.test(
  "bfd/frr: bfdd session Up on both sides; link cut detected; remove() tells bfdd AdminDown",
  OPTS,
  async () => {
    const lab = new Lab();
    try {
      const { a, b } = await setup(lab);
      const frrDir = (await lab.exec(b, ["sh", "-c", "dirname $(dpkg -L frr | grep -m1 '/bfdd$')"])).trim();
      const d = `${lab.dir}/frr`;
      Deno.mkdirSync(d);
      Deno.chmodSync(d, 0o777);
      Deno.writeTextFileSync(
        `${d}/bfdd.conf`,
        `frr defaults traditional
hostname bgt-bfdd
!
bfd
 peer 10.234.0.1 local-address 10.234.0.3
  receive-interval 100
  transmit-interval 100
  detect-multiplier 3
 !
!
`,
      );
      Deno.chmodSync(`${d}/bfdd.conf`, 0o644);
      lab.spawn(b, [
        `${frrDir}/bfdd`,
        "-f",
        `${d}/bfdd.conf`,
        "-i",
        `${d}/bfdd.pid`,
        "-z",
        `${d}/zserv.api`,
        "--vty_socket",
        d,
        "--bfdctl",
        `${d}/bfdd.sock`,
        "-P",
        "0",
        "--log",
        `file:${d}/bfdd.log`,
      ]);
      const peers = async () => {
        const out = await lab.exec(b, ["vtysh", "--vty_socket", d, "-c", "show bfd peers json"]);
        return JSON.parse(out) as Array<Record<string, unknown>>;
      };
      await waitFor("bfdd answers", async () => (await peers()).length === 1);

      const agent = lab.agent(a, {
        peers: [{ peer: "10.234.0.3", localAddress: "10.234.0.1", ...TIMING }],
      }, "bgp_bfd_agent.ts");
      await waitFor("our session Up", () => lastState(agent, "10.234.0.3") === "Up");
      await agent.send("status");
      const status = await agent.waitEvent((e) => e.event === "status", "status");
      const ours = (status.sessions as Array<{ localDiscr: number; remoteDiscr: number }>)[0];
      const frrPeer = await waitFor("bfdd shows the session up", async () => {
        const p = (await peers())[0];
        return p.status === "up" ? p : undefined;
      });
      assert.equal(frrPeer["remote-id"], ours.localDiscr, "bfdd knows our discriminator");
      assert.equal(frrPeer.id, ours.remoteDiscr, "we know bfdd's discriminator");
      assert.equal(frrPeer["remote-transmit-interval"], 100);
      assert.equal(frrPeer["remote-receive-interval"], 100);

      const [took] = await cutAndMeasure(lab, b, agent, ["10.234.0.3"]);
      console.log(`bfdd link cut detected after ${took} ms (detection time ${DETECT_MS} ms)`);
      assert.ok(took <= DETECT_MS + SLACK_MS, `detected after ${took} ms`);
      await lab.exec(b, ["ip", "link", "set", "eth0", "up"]);
      await waitFor("our session Up again", () => lastState(agent, "10.234.0.3") === "Up", 20000);
      await waitFor("bfdd up again", async () => (await peers())[0].status === "up", 20000);

      // Removing the session sends AdminDown: bfdd goes down with the remote diagnostic saying so.
      await agent.send("remove 10.234.0.3");
      const p = await waitFor("bfdd sees AdminDown", async () => {
        const x = (await peers())[0];
        return x.status === "down" ? x : undefined;
      }, 5000);
      assert.match(String(p["remote-diagnostic"]), /administratively down/);
    } finally {
      await lab.close();
    }
  },
);
