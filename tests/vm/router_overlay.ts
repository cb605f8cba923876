/**
 * The routing controller's IPIP and FoU overlays with real packets, run INSIDE the test VM
 * (Debian's kernel has ipip and fou; this machine's has neither); started by
 * tests/e2e/router_overlay_vm_test.ts. Nodes: n1 and n3 on subnet a (10.250.0.0/24), n2 on subnet
 * b (10.250.1.0/24, through the lab router); one pod each. n1 and n2 run the agent (`main.ts
 * router` from the bundle, in their node namespaces: the BGP speaker needs the node's namespace),
 * reaching the host's API server through tests/fixtures/api_bridge.ts; they peer with each other
 * (iBGP full mesh) and learn each other's pod CIDRs. n3 is a Node whose BGP speaker is BIRD (a
 * third agent would cost another Deno start under emulation; BIRD starts in milliseconds): it
 * announces n3's pod CIDR to n1, and n3's way back to n1's pods is set by hand (plain, then
 * through its own FoU tunnel). n3 is on n1's subnet, so it shows `--overlay-type` apart.
 *
 * Round 1, `--overlay-encap=ipip --overlay-type=subnet`: n1↔n2 (other subnet) through an ipip
 * tunnel, n1→n3 (same subnet) routed directly; kube-bridge's MTU = the tunnel's (1480); a
 * 1400-byte ping with DF passes; a 1500-byte one learns the tunnel's MTU (PMTU). Round 2 (agents
 * restarted), `--overlay-encap=fou --overlay-encap-port=5556 --overlay-type=full`: the ipip tunnels
 * become FoU (GUE) ones, n1→n3 goes through a tunnel too, kube-bridge follows the tunnel MTU (1468),
 * the FoU port is open, the same pings. Then n2 goes away (agent stopped, Node deleted): its tunnel
 * goes from n1. Then `cleanup` leaves no tunnel.
 */
import assert from "node:assert/strict";
import { bridgeApiInto } from "../fixtures/api_bridge.ts";
import { sharedApiServer } from "../fixtures/apiserver.ts";
import { createLab } from "../fixtures/lab.ts";
import type { ServerProcess } from "../fixtures/process.ts";
import { tunnelName } from "../../controllers/router/routes.ts";

// The agent: the bundle the host test built (what ships; one file loads much faster than the module
// graph over 9p under emulation), else main.ts.
const MAIN = Deno.env.get("KR_AGENT_BUNDLE") ?? new URL("../../main.ts", import.meta.url).pathname;

async function until(what: string, ms: number, check: () => Promise<boolean>): Promise<number> {
  const t0 = Date.now();
  let last: unknown;
  while (Date.now() - t0 < ms) {
    try {
      if (await check()) return Date.now() - t0;
    } catch (e) {
      last = e;
    }
    // Each check starts processes (~0.3 s of CPU each under emulation): poll gently.
    await new Promise((r) => setTimeout(r, 4000));
  }
  throw new Error(
    `timed out after ${ms} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ""}`,
  );
}

Deno.test({
  name: "router overlays (IPIP, FoU; subnet and full) with real packets on Debian's kernel",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const api = await sharedApiServer();
    const suffix = crypto.randomUUID().slice(0, 6);
    const nodeName = (n: string) => `ov-${n}-${suffix}`;
    await using lab = await createLab({
      prefix: "ov",
      nodes: [{ name: "n1", subnet: "a" }, { name: "n2", subnet: "b" }, { name: "n3", subnet: "a" }],
      subnets: { a: "10.250.0.0/24", b: "10.250.1.0/24" },
      staticPodRoutes: false,
    });
    const tmp = await Deno.makeTempDir({ prefix: "kr-ov-" });
    const bridges: Array<{ close(): Promise<void> }> = [];
    const agents = new Map<string, ServerProcess>();
    /** The nodes that run the agent (n3's speaker is BIRD). */
    const nodes = ["n1", "n2"] as const;
    const allNodes = ["n1", "n2", "n3"] as const;
    const ip = (n: string) => lab.host(n).ip;
    const pod = (n: string) => `p${n.slice(1)}`;
    try {
      const items: unknown[] = allNodes.map((n) => ({
        apiVersion: "v1",
        kind: "Node",
        metadata: { name: nodeName(n) },
        spec: { podCIDR: lab.node(n).podCidr, podCIDRs: [lab.node(n).podCidr] },
      }));
      await api.kubectl(["apply", "-f", "-"], {
        stdin: JSON.stringify({ apiVersion: "v1", kind: "List", items }),
      });
      for (const n of allNodes) {
        await api.request("PATCH", `/api/v1/nodes/${nodeName(n)}/status`, {
          status: { addresses: [{ type: "InternalIP", address: ip(n) }] },
        }, "application/strategic-merge-patch+json");
        await lab.addPod(n, { name: pod(n) });
      }
      await Promise.all(nodes.map((n) => lab.serve(pod(n), { tcp: [8080] })));
      // n3's BGP speaker: BIRD, iBGP with n1, announcing n3's pod CIDR (next hop n3).
      await Deno.writeTextFile(
        `${tmp}/bird-n3.conf`,
        `router id ${ip("n3")};
log stderr all;
protocol device { scan time 2; }
protocol direct { ipv4; interface "kube-bridge"; }
protocol bgp n1 {
  local ${ip("n3")} as 64512;
  neighbor ${ip("n1")} as 64512;
  connect retry time 1;
  ipv4 { import none; export where source = RTS_DEVICE; next hop self; };
}
`,
      );
      await lab.spawn("n3", [
        "bird",
        "-f",
        "-c",
        `${tmp}/bird-n3.conf`,
        "-s",
        `${tmp}/bird-n3.ctl`,
        "-P",
        `${tmp}/bird-n3.pid`,
      ], { name: "bird-n3" });
      await lab.exec("n3", ["ip", "route", "add", lab.node("n1").podCidr, "via", ip("n1")]);
      const kubeconfigs = new Map<string, string>();
      for (const n of nodes) {
        const b = await bridgeApiInto(lab.node(n).netns, api, { dir: tmp });
        bridges.push(b);
        kubeconfigs.set(n, b.kubeconfigPath);
      }
      const start = async (n: string, flags: string[]) => {
        agents.set(
          n,
          await lab.spawn(n, [
            "env",
            `KUBE_ROUTER_CNI_CONF_FILE=${tmp}/${n}-cni/10-kuberouter.conf`,
            Deno.execPath(),
            "run",
            "-A",
            MAIN,
            "router",
            `--kubeconfig=${kubeconfigs.get(n)}`,
            `--hostname-override=${nodeName(n)}`,
            "--enable-overlay=true",
            "--routes-sync-period=5s",
            "--injected-routes-sync-period=2s",
            "--v=2",
            ...flags,
          ], { name: `agent-${n}-${Date.now()}` }),
        );
      };
      const stopAll = async () => {
        for (const a of agents.values()) await a.stop("SIGTERM", 5000);
        agents.clear();
      };
      const routes = async (n: string) =>
        JSON.parse((await lab.exec(n, ["ip", "-j", "route", "show", "proto", "17"])).stdout || "[]") as Array<
          { dst: string; dev?: string; gateway?: string }
        >;
      const link = async (n: string, dev: string) => {
        const r = await lab.exec(n, ["ip", "-d", "-j", "link", "show", dev], { okCodes: [0, 1] });
        return r.code === 0 ? JSON.parse(r.stdout)[0] : undefined;
      };
      const learned = (n: string) =>
        routes(n).then((rs) => nodes.every((o) => o === n || rs.some((r) => r.dst === lab.node(o).podCidr)));
      /** Two pings of `size` bytes of payload with DF set, from a's pod to b's; may fail (PMTU probes). */
      const dfPing = (a: string, b: string, size: number) =>
        lab.exec(pod(a), [
          "ping",
          "-c",
          "2",
          "-i",
          "0.5",
          "-W",
          "8",
          "-M",
          "do",
          "-s",
          String(size),
          lab.host(pod(b)).ip,
        ], { okCodes: [0, 1, 2] });
      /** Pod-to-pod: TCP both ways, a 1400-byte packet with DF, and PMTU for a 1500-byte one. */
      const packets = async (a: string, b: string, tunnelMtu: number | undefined) => {
        const r = await lab.tcpProbe(pod(a), lab.host(pod(b)).ip, 8080, 15_000);
        assert.equal(r.status, "connected", `${pod(a)} → ${pod(b)}: ${JSON.stringify(r)}`);
        assert.equal(r.clientIp, lab.host(pod(a)).ip, "pod source kept");
        await lab.exec(pod(a), [
          "ping",
          "-c",
          "1",
          "-W",
          "15",
          "-M",
          "do",
          "-s",
          "1372",
          lab.host(pod(b)).ip,
        ]);
        if (tunnelMtu !== undefined) {
          // A packet 4 bytes over the tunnel's MTU first: the pod may still know a larger path MTU
          // from an earlier encapsulation (IPIP's 1480 before FoU's 1468) and would refuse a 1500-byte
          // packet itself, never reaching the tunnel. This one reaches it; the node answers
          // "fragmentation needed" with the tunnel's MTU.
          await dfPing(a, b, tunnelMtu - 28 + 4);
          // 1472 + 28 = 1500 bytes: the pod now knows the tunnel's MTU for that destination.
          const big = await dfPing(a, b, 1472);
          assert.match(big.stdout + big.stderr, new RegExp(`mtu ?= ?${tunnelMtu}`), big.stdout + big.stderr);
          const got = (await lab.exec(pod(a), ["ip", "route", "get", lab.host(pod(b)).ip])).stdout;
          assert.match(got, new RegExp(`mtu ${tunnelMtu}`), got);
        }
      };

      const mtuOf = async (n: string, dev: string) => (await link(n, dev))?.mtu as number | undefined;
      /** n1's pod to n3's pod (BIRD's node, no probe agent there): 1400 bytes with DF, both ways. */
      const pingN3 = async () => {
        await lab.exec("p1", ["ping", "-c", "1", "-W", "15", "-M", "do", "-s", "1372", lab.host("p3").ip]);
      };

      /** A step that, when it fails, prints what the agents and the kernel say before failing. */
      const step = (name: string, fn: () => Promise<void>) =>
        t.step(name, async () => {
          try {
            await fn();
          } catch (e) {
            // The error first: a suite cut off by the VM's deadline never prints its summary.
            console.error(`--- step "${name}" failed: ${(e as Error).stack ?? e}`);
            for (const [n, a] of agents) console.error(`--- agent ${n} log:\n${await a.logTail(30)}`);
            for (const n of allNodes) {
              const r = await lab.exec(n, ["sh", "-c", "ip -d link; ip route; ip fou show 2>&1"], {
                okCodes: [0, 1],
              })
                .catch((x) => ({ stdout: String(x) }));
              console.error(`--- ${n}:\n${r.stdout}`);
            }
            throw e;
          }
        });

      await step(
        "ipip, subnet: other subnet through an ipip tunnel, same subnet direct; MTU 1480, 1400 DF, PMTU",
        async () => {
          for (const n of nodes) await start(n, ["--overlay-encap=ipip", "--overlay-type=subnet"]);
          const ms = await until("every node learns the others' pod CIDRs", 420_000, async () => {
            for (const n of nodes) if (!(await learned(n))) return false;
            return true;
          });
          console.log(`ipip: routes learned after ${ms} ms`);
          const r1 = await routes("n1");
          assert.equal(r1.find((r) => r.dst === lab.node("n2").podCidr)?.dev, tunnelName(ip("n2")));
          const tun = await link("n1", tunnelName(ip("n2")));
          assert.equal(tun?.linkinfo?.info_kind, "ipip", JSON.stringify(tun));
          assert.equal(tun.linkinfo.info_data?.remote, ip("n2"));
          assert.equal(tun.mtu, 1480, "ipip: underlay 1500 − 20");
          for (const n of nodes) {
            assert.equal(await mtuOf(n, "kube-bridge"), 1480, `${n}: kube-bridge = tunnel MTU`);
          }
          await packets("n1", "n2", tun.mtu);
          await packets("n2", "n1", undefined);
          // subnet: n3 shares n1's subnet, so its pods are routed directly (no tunnel to n3).
          const to3 = await until(
            "n1 learns n3's pod CIDR from BIRD",
            60_000,
            async () => (await routes("n1")).some((r) => r.dst === lab.node("n3").podCidr),
          );
          console.log(`ipip: n3 learned after ${to3} ms`);
          const r3 = (await routes("n1")).find((r) => r.dst === lab.node("n3").podCidr)!;
          assert.equal(r3.gateway, ip("n3"), JSON.stringify(r3));
          assert.equal(r3.dev, "eth0", `subnet: same-subnet node direct: ${JSON.stringify(r3)}`);
          assert.equal(await link("n1", tunnelName(ip("n3"))), undefined, "no tunnel to n3");
          await pingN3();
        },
      );

      await step(
        "FoU (GUE, port 5556), full: ipip tunnels become FoU, same subnet tunnelled too; MTU 1468, 1400 DF, PMTU",
        async () => {
          await stopAll();
          for (const n of nodes) {
            await start(n, ["--overlay-encap=fou", "--overlay-encap-port=5556", "--overlay-type=full"]);
          }
          const ms = await until("n1 routes n2 through a FoU tunnel", 420_000, async () => {
            const r1 = await routes("n1");
            const l = await link("n1", tunnelName(ip("n2")));
            return r1.find((r) => r.dst === lab.node("n2").podCidr)?.dev === tunnelName(ip("n2")) &&
              l?.linkinfo?.info_data?.encap?.dport === 5556;
          });
          console.log(`fou: switched after ${ms} ms`);
          // n3's way back to n1's pods becomes its own FoU tunnel (what n3's agent would set up).
          await lab.exec("n3", [
            "sh",
            "-c",
            [
              "ip fou add port 5556 gue",
              `ip link add kr-back type ipip remote ${ip("n1")} local ${
                ip("n3")
              } ttl 225 encap gue encap-sport auto encap-dport 5556`,
              "ip link set kr-back up",
              `ip route replace ${lab.node("n1").podCidr} dev kr-back`,
            ].join(" && "),
          ]);
          await until("every node routes through its tunnels", 60_000, async () => {
            for (const n of nodes) {
              const rs = await routes(n);
              for (const o of nodes) {
                if (o !== n && rs.find((r) => r.dst === lab.node(o).podCidr)?.dev !== tunnelName(ip(o))) {
                  return false;
                }
              }
            }
            return true;
          });
          const fou = (await lab.exec("n2", ["ip", "fou", "show"])).stdout;
          assert.match(fou, /port 5556 gue/, fou);
          const tun = await link("n1", tunnelName(ip("n2")));
          assert.equal(tun.linkinfo.info_data.encap?.type, "gue", JSON.stringify(tun.linkinfo));
          assert.equal(tun.mtu, 1468, "FoU/GUE: underlay 1500 − 20 − 8 − 4");
          for (const n of nodes) {
            assert.equal(await mtuOf(n, "kube-bridge"), 1468, `${n}: kube-bridge = tunnel MTU`);
          }
          await packets("n1", "n2", tun.mtu);
          await packets("n2", "n1", undefined);
          // full: n3 (same subnet) goes through a FoU tunnel too.
          const r3 = (await routes("n1")).find((r) => r.dst === lab.node("n3").podCidr);
          assert.equal(
            r3?.dev,
            tunnelName(ip("n3")),
            `full: same-subnet node through a tunnel: ${JSON.stringify(r3)}`,
          );
          const tun3 = await link("n1", tunnelName(ip("n3")));
          assert.equal(tun3?.linkinfo?.info_data?.encap?.dport, 5556, JSON.stringify(tun3?.linkinfo));
          await pingN3();
          // The packets really were UDP to port 5556 on the underlay.
          const cnt =
            (await lab.exec("n2", ["sh", "-c", "cat /proc/net/snmp | grep '^Udp:' | tail -1"])).stdout;
          assert.ok(Number(cnt.trim().split(/\s+/)[1]) > 0, cnt);
          // Later syncs (every 2 s here) leave a right tunnel alone: the same link, not a new one.
          assert.equal(
            (await link("n1", tunnelName(ip("n2"))))?.ifindex,
            tun.ifindex,
            "tunnel not recreated",
          );
        },
      );

      await step("a node goes away: its tunnels and routes are removed on the others", async () => {
        await agents.get("n2")!.stop("SIGKILL", 0);
        agents.delete("n2");
        await api.kubectl(["delete", "node", nodeName("n2")]);
        await until("n1 drops n2's tunnel", 120_000, async () => {
          for (const n of ["n1"]) {
            if (await link(n, tunnelName(ip("n2")))) return false;
            if ((await routes(n)).some((r) => r.dst === lab.node("n2").podCidr)) return false;
          }
          return true;
        });
      });

      await step("cleanup leaves no tunnel, no route of ours", async () => {
        await stopAll();
        await lab.exec("n1", [
          "env",
          `KUBE_ROUTER_CNI_CONF_FILE=${tmp}/n1-cni/10-kuberouter.conf`,
          Deno.execPath(),
          "run",
          "-A",
          MAIN,
          "cleanup",
        ], { okCodes: [0, 1] });
        const links = (await lab.exec("n1", ["ip", "-o", "link"])).stdout;
        assert.doesNotMatch(links, /tun-[0-9a-f]{11}/);
        assert.deepEqual(await routes("n1"), []);
      });
    } catch (e) {
      for (const [n, a] of agents) console.error(`--- agent ${n} log:\n${await a.logTail(40)}`);
      throw e;
    } finally {
      for (const a of agents.values()) await a.stop("SIGTERM", 2000).catch(() => {});
      for (const b of bridges) await b.close();
      for (const n of nodes) await api.kubectl(["delete", "node", nodeName(n)], { okCodes: [0, 1] });
      await Deno.remove(tmp, { recursive: true }).catch(() => {});
    }
  },
});
