/**
 * End-to-end: BFD through the routing controller. One node runs the agent (`main.ts router`); a
 * BIRD client peers with it through the `kube-router.io/peers` annotation, whose per-peer `bfd:`
 * block turns BFD on (100 ms × 3). The BGP hold time is 90 s on both sides, so only BFD can take
 * the session down fast: dropping every packet on BIRD's interface with nft (in BIRD's namespace)
 * must make the agent's speaker log "bfd down, taking the session down" within ~1 s, and
 * removing the nft table must bring BFD Up and BGP Established again on both sides.
 *
 * Address conventions (the lab's): subnet a = 10.250.0.0/24 (node-1 .1, BIRD client from .100),
 * pod CIDR 10.251.1.0/24. Namespaces are named `bgf-<id>-<role>`.
 */
import assert from "node:assert/strict";
import { bridgeApiInto } from "../fixtures/api_bridge.ts";
import { type ApiServer, startApiServer } from "../fixtures/apiserver.ts";
import { createNodeObject } from "../fixtures/cluster.ts";
import { createLab } from "../fixtures/lab.ts";
import type { ServerProcess } from "../fixtures/process.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const BIRD_ASN = 64600;

async function waitUntil(
  what: string,
  ms: number,
  check: () => Promise<boolean>,
  everyMs = 100,
): Promise<number> {
  const t0 = Date.now();
  let last: unknown;
  while (Date.now() - t0 < ms) {
    try {
      if (await check()) return Date.now() - t0;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(
    `timed out after ${ms} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ""}`,
  );
}

Deno.test({
  name:
    "router e2e: annotation bfd block -> BFD with BIRD; a cut link drops BGP in ~1 s (hold time 90 s), and back",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const api: ApiServer = await startApiServer();
    const lab = await createLab({
      prefix: "bgf",
      nodes: [{ name: "node-1", subnet: "a" }],
      subnets: { a: "10.250.0.0/24" },
      staticPodRoutes: false,
    });
    const tmp = await Deno.makeTempDir({ prefix: "kr-bgf-e2e-" });
    const bridges: Array<{ close(): Promise<void> }> = [];
    let agent: ServerProcess | undefined;
    try {
      const bird = await lab.addClient("bird", { subnet: "a" });
      const node = lab.node("node-1");
      await createNodeObject(api, {
        name: node.name,
        ip: node.ip,
        podCidr: node.podCidr,
        annotations: {
          "kube-router.io/peers": `- remoteip: ${bird.ip}
  remoteasn: ${BIRD_ASN}
  bfd:
    enabled: true
    desired_min_tx_interval: 100
    required_min_rx_interval: 100
    detection_multiplier: 3
`,
        },
      });
      const ctl = `${tmp}/bird.ctl`;
      await Deno.writeTextFile(
        `${tmp}/bird.conf`,
        `router id ${bird.ip};
log stderr all;
protocol device { scan time 2; }
protocol bfd {
  interface "*" { min rx interval 100 ms; min tx interval 100 ms; multiplier 3; };
}
protocol bgp node1 {
  local ${bird.ip} as ${BIRD_ASN};
  neighbor ${node.ip} as 64512;
  hold time 90;
  bfd on;
  connect retry time 1;
  error wait time 1, 3;
  ipv4 { import all; export none; };
}
`,
      );
      await lab.spawn("bird", ["bird", "-f", "-c", `${tmp}/bird.conf`, "-s", ctl, "-P", `${tmp}/bird.pid`], {
        name: "bird",
      });
      const birdc = async (...args: string[]) =>
        (await lab.exec("bird", ["birdc", "-s", ctl, ...args])).stdout;

      const b = await bridgeApiInto(node.netns, api, { dir: tmp });
      bridges.push(b);
      agent = await lab.spawn("node-1", [
        "env",
        `KUBE_ROUTER_CNI_CONF_FILE=${tmp}/node-1-cni/10-kuberouter.conf`,
        Deno.execPath(),
        "run",
        "-A",
        MAIN,
        "router",
        `--kubeconfig=${b.kubeconfigPath}`,
        `--hostname-override=${node.name}`,
        "--routes-sync-period=10s",
        "--v=2",
      ], { name: "agent-node-1" });
      const log = async () => await Deno.readTextFile(`${lab.logDir}/agent-node-1.log`).catch(() => "");

      const upMs = await waitUntil(
        "BIRD: BGP Established and BFD Up with the node",
        60_000,
        async () =>
          /Established/.test(await birdc("show", "protocols", "node1")) &&
          new RegExp(`${node.ip.replaceAll(".", "\\.")}\\s+\\S+\\s+Up`).test(
            await birdc("show", "bfd", "sessions"),
          ),
      );
      console.log(`BGP Established + BFD Up (seen from BIRD) ${upMs} ms after the agent started`);
      assert.match(await log(), /bfd session state.*"to":"Up"|bfd session state[^\n]*Up/);

      // Only BFD can be fast here: the negotiated hold time is 90 s.
      assert.match(await log(), /bgp session established[^\n]*holdTime\W+90\b/);

      // Cut BIRD's link: every packet dropped in both directions, the interface stays up.
      const before = (await log()).length;
      const cutAt = Date.now();
      await lab.exec("bird", ["nft", "-f", "-"], {
        stdin: `table inet bgfcut {
  chain in { type filter hook input priority -300; policy accept; iifname "eth0" drop; }
  chain out { type filter hook output priority -300; policy accept; oifname "eth0" drop; }
}
`,
      });
      await waitUntil(
        "the agent to take the BGP session down through BFD",
        10_000,
        async () => /bfd down, taking the session down/.test((await log()).slice(before)),
        50,
      );
      const downMs = Date.now() - cutAt; // ±50 ms polling
      console.log(`agent took BGP down through BFD ${downMs} ms after the cut (hold time 90 s)`);
      assert.ok(downMs < 2000, `${downMs} ms`);

      // Restore: both sides back.
      const restoredAt = Date.now();
      await lab.exec("bird", ["nft", "delete", "table", "inet", "bgfcut"]);
      const backMs = await waitUntil(
        "BIRD: BGP Established and BFD Up again",
        30_000,
        async () =>
          /Established/.test(await birdc("show", "protocols", "node1")) &&
          new RegExp(`${node.ip.replaceAll(".", "\\.")}\\s+\\S+\\s+Up`).test(
            await birdc("show", "bfd", "sessions"),
          ),
      );
      console.log(
        `BGP Established + BFD Up again ${Date.now() - restoredAt} ms after the restore (${backMs})`,
      );
      assert.match((await log()).slice(before), /bgp session established/);
    } catch (e) {
      if (agent) console.log(`--- agent log tail:\n${await agent.logTail(40)}`);
      throw e;
    } finally {
      await agent?.stop("SIGTERM", 2000).catch(() => {});
      for (const b of bridges) await b.close();
      await lab.teardown();
      await api.stop();
      await Deno.remove(tmp, { recursive: true }).catch(() => {});
    }
  },
});
