/**
 * End-to-end, dual stack: three nodes (two subnets) running `main.ts router --enable-ipv6`, a real
 * (private) API server, iBGP sessions over IPv4 carrying both IPv4 and IPv6 unicast (MP-BGP with
 * an IPv6 next hop), IPv6 pod traffic between every pair of nodes: direct on the shared subnet,
 * and over the IPv4-underlay VXLAN overlay to the node on the other subnet.
 *
 * Address conventions (the lab's dual-stack twins): nodes 10.250.k.n and 2001:db8:250:k::n,
 * pod CIDRs 10.251.N.0/24 and 2001:db8:251:N::/64; namespaces `rt6-<id>-<role>`.
 */
import assert from "node:assert/strict";
import { bridgeApiInto } from "../fixtures/api_bridge.ts";
import { startApiServer } from "../fixtures/apiserver.ts";
import { createNodeObject } from "../fixtures/cluster.ts";
import { createLab, type Lab } from "../fixtures/lab.ts";
import type { ServerProcess } from "../fixtures/process.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

async function waitUntil(what: string, ms: number, check: () => Promise<boolean>): Promise<number> {
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    try {
      if (await check()) return Date.now() - t0;
    } catch { /* retry */ }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

async function routes6(
  lab: Lab,
  node: string,
): Promise<Array<{ dst: string; dev?: string; gateway?: string }>> {
  return JSON.parse(
    (await lab.exec(node, ["ip", "-6", "-j", "route", "show", "proto", "17"])).stdout || "[]",
  );
}

Deno.test({
  name: "router e2e dual stack: IPv6 pod routes over IPv4 sessions, direct and via VXLAN",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const api = await startApiServer();
    const lab = await createLab({
      prefix: "rt6",
      ipv6: true,
      nodes: [{ name: "node-1", subnet: "a" }, { name: "node-2", subnet: "a" }, {
        name: "node-3",
        subnet: "b",
      }],
      subnets: { a: "10.250.0.0/24", b: "10.250.1.0/24" },
      staticPodRoutes: false,
    });
    const bridges: Array<{ close(): Promise<void> }> = [];
    const agents = new Map<string, ServerProcess>();
    const tmp = await Deno.makeTempDir({ prefix: "kr-rt6-e2e-" });
    try {
      const nodes = [...lab.nodes.values()];
      for (const n of nodes) {
        await createNodeObject(api, {
          name: n.name,
          ip: n.ip,
          ip6: n.ip6,
          podCidr: n.podCidr,
          podCidr6: n.podCidr6,
        });
        await lab.addPod(n.name, { name: `pod-${n.name}` });
        await lab.serve(`pod-${n.name}`, { tcp: [8080] });
      }
      for (const n of nodes) {
        const b = await bridgeApiInto(n.netns, api, { dir: tmp });
        bridges.push(b);
        agents.set(
          n.name,
          await lab.spawn(n.name, [
            "env",
            `KUBE_ROUTER_CNI_CONF_FILE=${tmp}/${n.name}-cni/10-kuberouter.conf`,
            Deno.execPath(),
            "run",
            "-A",
            MAIN,
            "router",
            `--kubeconfig=${b.kubeconfigPath}`,
            `--hostname-override=${n.name}`,
            "--enable-ipv6=true",
            "--enable-overlay=true",
            "--overlay-encap=vxlan",
            "--injected-routes-sync-period=5s",
            "--v=2",
          ], { name: `agent6-${n.name}` }),
        );
      }
      const t = await waitUntil("IPv6 pod routes on every node", 60_000, async () => {
        for (const n of nodes) {
          const dsts = (await routes6(lab, n.name)).map((r) => r.dst);
          for (const o of nodes) if (o !== n && !dsts.includes(o.podCidr6!)) return false;
        }
        return true;
      });
      console.log(`IPv6 routes on every node after ${t} ms`);
      const r1 = await routes6(lab, "node-1");
      assert.equal(r1.find((r) => r.dst === lab.node("node-2").podCidr6)?.gateway, lab.node("node-2").ip6);
      assert.equal(r1.find((r) => r.dst === lab.node("node-3").podCidr6)?.dev, "kube-vxlan");
      // The IPv6 ipsets and chains exist too.
      assert.match(
        (await lab.exec("node-1", ["ipset", "list", "-n"])).stdout,
        /inet6:kube-router-pod-subnets/,
      );
      const pods = nodes.map((n) => lab.host(`pod-${n.name}`));
      for (const a of pods) {
        for (const b of pods) {
          if (a === b) continue;
          await waitUntil(`${a.name} → ${b.name} over IPv6`, 10_000, async () => {
            await lab.exec(a.name, ["ping", "-6", "-c", "1", "-W", "1", b.ip6!]);
            return true;
          });
          const p6 = await lab.tcpProbe(a.name, b.ip6!, 8080, 2000);
          assert.equal(p6.status, "connected", `${a.name} → ${b.name} TCP/IPv6: ${JSON.stringify(p6)}`);
          assert.equal(p6.clientIp, a.ip6, "pod-to-pod IPv6 keeps the pod source address");
          const p4 = await lab.tcpProbe(a.name, b.ip, 8080, 2000);
          assert.equal(p4.status, "connected", `${a.name} → ${b.name} TCP/IPv4: ${JSON.stringify(p4)}`);
        }
      }
    } catch (e) {
      for (const [n, a] of agents) console.error(`--- agent ${n} log:\n${await a.logTail(30)}`);
      for (const n of lab.nodes.keys()) {
        for (
          const argv of [["ip", "-6", "route", "show", "table", "all", "proto", "17"], [
            "ip",
            "neigh",
            "show",
            "dev",
            "kube-vxlan",
          ]]
        ) {
          const r = await lab.exec(n, argv, { okCodes: [0, 1, 2] }).catch((x) => ({ stdout: String(x) }));
          console.error(`--- ${n}: ${argv.join(" ")}\n${r.stdout}`);
        }
      }
      throw e;
    } finally {
      for (const a of agents.values()) await a.stop("SIGTERM", 2000).catch(() => {});
      for (const b of bridges) await b.close();
      await lab.teardown();
      await api.stop();
      await Deno.remove(tmp, { recursive: true }).catch(() => {});
    }
  },
});
