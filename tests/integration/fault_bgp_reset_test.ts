/**
 * A BGP peer (BIRD 2, graceful-restart capable, restart time 4 s) dies (`kill -9`) in the middle
 * of sending its full table to the agent (the real main.ts `router`), with routes already in the
 * agent's kernel. The stream is slowed by a token bucket on BIRD's link so the reset lands
 * mid-stream, which the agent's own admin API confirms (prefixes received < table size).
 * - BIRD comes back with a different table: once it is re-sent, the kernel holds exactly the new
 *   table (every stale route of the old one is gone);
 * - BIRD dies mid-stream again and stays down: after its restart time, no route learned from it
 *   is left in the kernel.
 *
 * Lab (tests/fixtures/bgp_peers.ts): agent "us" 10.240.0.1 (AS 64512), BIRD "bird" 10.240.0.2
 * (AS 64600); BIRD's tables are blackhole statics in 10.160.0.0/12, exported with next hop self.
 */
import assert from "node:assert/strict";
import { CommandRunner } from "../../kernel/exec.ts";
import { BgpLab, sleep, waitFor } from "../fixtures/bgp_peers.ts";
import { agentArgv } from "../fixtures/agent.ts";

const root = new CommandRunner();
const RESTART_S = 4;
const N = 12_000;
const ADMIN = 50071;

/** `count` /24s from `start` (the i-th is 10.(160 + i/256 mod …).(i%256).0/24). */
function table(start: number, count: number): string[] {
  return Array.from({ length: count }, (_, k) => {
    const i = start + k;
    return `10.${160 + Math.floor(i / 256)}.${i % 256}.0/24`;
  });
}

function birdConf(routes: string[], log: string): string {
  return `router id 10.240.0.2;
log "${log}" all;
protocol device {}
protocol static st4 { ipv4;
${routes.map((r) => `  route ${r} blackhole;`).join("\n")}
}
protocol bgp agent {
  local 10.240.0.2 as 64600;
  neighbor 10.240.0.1 as 64512;
  hold time 30;
  connect retry time 1;
  error wait time 1, 2;
  graceful restart on;
  graceful restart time ${RESTART_S};
  ipv4 { import none; export where source = RTS_STATIC; next hop self; };
}
`;
}

async function kernelRoutes(lab: BgpLab): Promise<Set<string>> {
  const out = await lab.exec("us", ["ip", "-4", "route", "show", "proto", "17", "table", "main"]);
  return new Set(out.split("\n").map((l) => l.split(" ")[0]).filter(Boolean));
}

async function received(lab: BgpLab): Promise<{ state: string; prefixes: number } | undefined> {
  const out = await lab.exec("us", ["curl", "-s", "-m", "1", `http://127.0.0.1:${ADMIN}/peers`], [0, 7, 28]);
  if (!out) return undefined;
  const p = (JSON.parse(out) as Array<{ address: string; state: string; prefixesReceived: number }>)
    .find((x) => x.address === "10.240.0.2");
  return p && { state: p.state, prefixes: p.prefixesReceived };
}

Deno.test({
  name:
    "fault: BIRD reset mid full-table stream: restarted peer's new table replaces the stale one; a gone peer's routes leave after its restart time",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using lab = await BgpLab.create(["us", "bird"]);
    // ~200 kbit/s out of BIRD (a 12k-prefix table is ~50 kB): a 12k-prefix table takes seconds to send, so the kill lands mid-stream.
    await lab.exec("bird", [
      "tc",
      "qdisc",
      "add",
      "dev",
      "eth0",
      "root",
      "tbf",
      "rate",
      "200kbit",
      "burst",
      "16kbit",
      "latency",
      "500ms",
    ]);
    const manifest = `${lab.dir}/cluster.yaml`;
    await Deno.writeTextFile(
      manifest,
      `apiVersion: v1
kind: Node
metadata: { name: node-1 }
spec: { podCIDR: 10.244.1.0/24 }
status: { addresses: [{ type: InternalIP, address: 10.240.0.1 }] }
`,
    );
    const agent = lab.spawn(
      "us",
      agentArgv([
        "router",
        `--manifests=${manifest}`,
        "--hostname-override=node-1",
        "--health-port=0",
        `--gobgp-admin-port=${ADMIN}`,
        "--enable-ibgp=false",
        "--enable-overlay=false",
        "--enable-cni=false",
        "--peer-router-ips=10.240.0.2",
        "--peer-router-asns=64600",
        "--bgp-graceful-restart",
        "-v=2",
      ]),
      "agent.log",
    );
    try {
      const t1 = table(0, N);
      const t2 = table(N / 2, N); // half of t1, half new
      const birdLog = `${lab.dir}/bird.log`;

      /** Starts BIRD with `routes` and kills it once the agent has received 10–90 % of them. */
      const startAndResetMidStream = async (routes: string[]) => {
        const bird = await lab.bird("bird", birdConf(routes, birdLog));
        let seen = 0;
        await waitFor(
          "the agent to be mid-stream",
          async () => {
            const r = await received(lab);
            seen = r?.state === "Established" ? r.prefixes : 0;
            // Mid-stream, with part of the table already in the kernel.
            return seen >= 0.1 * routes.length && (await kernelRoutes(lab)).size > 0;
          },
          60_000,
          20,
        );
        // A reset, not a close: a killed process's kernel would still send the rest of the table
        // from the socket buffer, then FIN. So BIRD is frozen, its socket aborted (RST to the
        // agent, unsent UPDATEs discarded), then killed.
        const pids = (await root.run(["ip", "netns", "pids", lab.node("bird").ns])).stdout.split("\n")
          .filter((p) => p && Deno.readTextFileSync(`/proc/${p}/comm`).trim() === "bird").map(Number);
        for (const pid of pids) Deno.kill(pid, "SIGSTOP");
        await lab.exec("bird", ["ss", "-K", "dst", "10.240.0.1"]);
        const at = Date.now();
        await bird.stop(); // SIGKILL
        assert.ok(seen < 0.9 * routes.length, `not mid-stream: ${seen}/${routes.length} received`);
        return { at, seen };
      };

      // 1. First table, reset mid-stream; the agent's kernel already holds part of it.
      const r1 = await startAndResetMidStream(t1);
      const held = await kernelRoutes(lab);
      assert.ok(held.size > 0, "no route reached the kernel before the reset");

      // 2. BIRD returns (within its restart time) with a different table.
      await sleep(500);
      const bird2 = await lab.bird("bird", birdConf(t2, birdLog));
      const want = new Set(t2);
      let k = new Set<string>();
      await waitFor(
        "the kernel to hold exactly the new table",
        async () => {
          k = await kernelRoutes(lab);
          return k.size === want.size && [...want].every((p) => k.has(p));
        },
        90_000,
        250,
      ).catch((e) => {
        const stale = [...k].filter((p) => !want.has(p));
        throw new Error(`${e.message}: ${k.size} routes, ${stale.length} stale (e.g. ${stale.slice(0, 3)})`);
      });
      await bird2.stop();
      // Let the agent notice (stale marking) before the next start, as a real restart would.
      await sleep(300);

      // 3. Reset mid-stream again, and BIRD stays down: its routes go after the restart time.
      const r2 = await startAndResetMidStream(t1);
      const deadline = r2.at + RESTART_S * 1000 + 3_000;
      await waitFor(
        "every route of the gone peer to leave the kernel",
        async () => {
          k = await kernelRoutes(lab);
          return k.size === 0;
        },
        Math.max(1, deadline - Date.now()) + 5_000,
        250,
      ).catch((e) => {
        throw new Error(`${e.message}: ${k.size} routes left ${Date.now() - r2.at} ms after the reset`);
      });
      const goneAfter = Date.now() - r2.at;
      assert.ok(goneAfter <= RESTART_S * 1000 + 3_000, `routes left only ${goneAfter} ms after the reset`);
      const events = lab.log("agent.log").split("\n").filter((l) =>
        /stale|session down|restart timer/.test(l)
      );
      console.log(events.map((l) => l.slice(0, 200)).join("\n"));
      assert.ok(events.some((l) => /ECONNRESET/.test(l)), "the agent never saw a reset");
      console.log(
        `reset 1 after ${r1.seen}/${N} prefixes (${held.size} in the kernel); ` +
          `reset 2 after ${r2.seen}/${N}; gone-peer routes left the kernel ${goneAfter} ms after the reset`,
      );
    } finally {
      try {
        agent.kill("SIGTERM");
      } catch { /* gone */ }
      await agent.status;
      lab.forget(agent);
    }
  },
});
