/**
 * End-to-end: the routing controller in a three-node lab with a real (private) API server.
 *
 * Address conventions (the lab's): subnet a = 10.250.0.0/24 (node-1 .1, node-2 .2, BIRD client
 * .100), subnet b = 10.250.1.0/24 (node-3 .1), lab router .254 on both; pod CIDRs 10.251.N.0/24
 * (gateway .1 on kube-bridge, pods from .2); service ClusterIP from 10.96.0.0/12. Node names
 * carry a random suffix. Namespaces are named `rt-<id>-<role>`.
 *
 * Each node runs the agent (`main.ts router --kubeconfig … --hostname-override node-N`) under
 * `ip netns exec`, reaching the API through `tests/fixtures/api_bridge.ts`. Nodes on subnet a
 * route directly; node-3 is reached over the VXLAN overlay (`--overlay-encap=vxlan`). BIRD (AS
 * 64600, on the lab's client) peers with every node (multihop for node-3) through the
 * `kube-router.io/peers` annotation.
 */
import assert from "node:assert/strict";
import { bridgeApiInto } from "../fixtures/api_bridge.ts";
import { type ApiServer, startApiServer } from "../fixtures/apiserver.ts";
import { createNodeObject } from "../fixtures/cluster.ts";
import { createLab, type Lab } from "../fixtures/lab.ts";
import type { ServerProcess } from "../fixtures/process.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const BIRD_ASN = 64600;

async function waitUntil(what: string, ms: number, check: () => Promise<boolean>): Promise<number> {
  const t0 = Date.now();
  let last: unknown;
  while (Date.now() - t0 < ms) {
    try {
      if (await check()) return Date.now() - t0;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(
    `timed out after ${ms} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ""}`,
  );
}

function birdConf(
  nodes: Array<{ name: string; ip: string; multihop: boolean; password?: string }>,
  birdIp: string,
): string {
  const peers = nodes.map((n) =>
    `protocol bgp ${n.name.replaceAll("-", "_")} from nodes { neighbor ${n.ip} as 64512;${
      n.multihop ? " multihop 4;" : ""
    }${n.password ? ` password "${n.password}";` : ""} }`
  ).join("\n");
  return `router id ${birdIp};
log stderr all;
protocol device { scan time 2; }
protocol kernel { ipv4 { import none; export none; }; }
template bgp nodes {
  local ${birdIp} as ${BIRD_ASN};
  hold time 9;
  connect retry time 1;
  ipv4 { import all; export none; };
}
${peers}
`;
}

async function birdRoutes(lab: Lab, ctl: string): Promise<string[]> {
  const out = await lab.exec("bird", ["birdc", "-s", ctl, "show", "route"]);
  return [...out.stdout.matchAll(/^(\d+\.\d+\.\d+\.\d+\/\d+)/gm)].map((m) => m[1]).sort();
}

async function ourRoutes(
  lab: Lab,
  node: string,
): Promise<Array<{ dst: string; dev?: string; gateway?: string }>> {
  const out = await lab.exec(node, ["ip", "-j", "route", "show", "proto", "17"]);
  return JSON.parse(out.stdout || "[]");
}

Deno.test({
  name:
    "router e2e: BGP pod routing across 3 nodes (VXLAN cross-subnet), BIRD peer, GR restart, live annotations",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const api: ApiServer = await startApiServer();
    const lab = await createLab({
      prefix: "rt",
      nodes: [{ name: "node-1", subnet: "a" }, { name: "node-2", subnet: "a" }, {
        name: "node-3",
        subnet: "b",
      }],
      subnets: { a: "10.250.0.0/24", b: "10.250.1.0/24" },
      staticPodRoutes: false,
    });
    const bridges: Array<{ close(): Promise<void> }> = [];
    const agents = new Map<string, ServerProcess>();
    const tmp = await Deno.makeTempDir({ prefix: "kr-rt-e2e-" });
    try {
      const bird = await lab.addClient("bird", { subnet: "a" });
      const nodes = [...lab.nodes.values()];
      const peersYaml = `- remoteip: ${bird.ip}\n  remoteasn: ${BIRD_ASN}\n`;
      // node-2's session to BIRD is TCP-MD5 protected; the annotation carries the password base64-encoded.
      const MD5 = "kr-md5-secret";
      const peersYamlMd5 = `${peersYaml}  password: ${btoa(MD5)}\n`;
      for (const n of nodes) {
        await createNodeObject(api, {
          name: n.name,
          ip: n.ip,
          podCidr: n.podCidr,
          // node-3 gets its external peer only later, at run time (step 3).
          annotations: n.name === "node-3"
            ? {}
            : { "kube-router.io/peers": n.name === "node-2" ? peersYamlMd5 : peersYaml },
        });
      }
      // Pods: one per node, serving TCP 8080.
      for (const n of nodes) {
        await lab.addPod(n.name, { name: `pod-${n.name}` });
        await lab.serve(`pod-${n.name}`, { tcp: [8080] });
      }
      // BIRD on the client.
      const ctl = `${tmp}/bird.ctl`;
      await Deno.writeTextFile(
        `${tmp}/bird.conf`,
        birdConf(
          nodes.map((n) => ({
            name: n.name,
            ip: n.ip,
            multihop: n.subnet !== "a",
            password: n.name === "node-2" ? MD5 : undefined,
          })),
          bird.ip,
        ),
      );
      await lab.spawn("bird", ["bird", "-f", "-c", `${tmp}/bird.conf`, "-s", ctl, "-P", `${tmp}/bird.pid`], {
        name: "bird",
      });

      const agentArgs = (n: string, kubeconfig: string) => [
        "env",
        `KUBE_ROUTER_CNI_CONF_FILE=${tmp}/${n}-cni/10-kuberouter.conf`,
        Deno.execPath(),
        "run",
        "-A",
        MAIN,
        // node-1 runs the LoadBalancer allocator too (`run` with only router + allocator).
        ...(n === "node-1"
          ? [
            "run",
            "--run-firewall=false",
            "--run-service-proxy=false",
            "--run-loadbalancer=true",
            "--loadbalancer-ip-range=198.51.100.0/29",
          ]
          : ["router"]),
        `--kubeconfig=${kubeconfig}`,
        "--advertise-loadbalancer-ip=true",
        `--hostname-override=${n}`,
        "--enable-overlay=true",
        "--overlay-encap=vxlan",
        "--peer-router-multihop-ttl=4",
        "--advertise-cluster-ip=true",
        "--bgp-graceful-restart=true",
        "--bgp-graceful-restart-time=30s",
        "--injected-routes-sync-period=2s",
        "--routes-sync-period=10s",
        "--gobgp-admin-port=50051",
        "--v=2",
      ];
      const kubeconfigs = new Map<string, string>();
      for (const n of nodes) {
        const b = await bridgeApiInto(n.netns, api, { dir: tmp });
        bridges.push(b);
        kubeconfigs.set(n.name, b.kubeconfigPath);
      }
      const startAgent = async (n: string) => {
        agents.set(
          n,
          await lab.spawn(n, agentArgs(n, kubeconfigs.get(n)!), { name: `agent-${n}-${Date.now()}` }),
        );
      };
      for (const n of nodes) await startAgent(n.name);

      // 1. Every node learns the other nodes' pod CIDRs, with proto 17; node-3 via kube-vxlan.
      const podCidrs = nodes.map((n) => n.podCidr).sort();
      const learnedAll = await waitUntil("every node to install the other pod CIDRs", 60_000, async () => {
        for (const n of nodes) {
          const dsts = (await ourRoutes(lab, n.name)).map((r) => r.dst);
          for (const c of podCidrs) if (c !== n.podCidr && !dsts.includes(c)) return false;
        }
        return true;
      });
      console.log(`routes learned by all nodes after ${learnedAll} ms`);
      if (learnedAll > 10_000) {
        // Slow convergence is not a failure, but say why (session set-up, back-off) for whoever looks.
        for (const [n, a] of agents) console.log(`--- slow start, agent ${n}:\n${await a.logTail(25)}`);
      }
      const r1 = await ourRoutes(lab, "node-1");
      assert.equal(r1.find((r) => r.dst === lab.node("node-2").podCidr)?.gateway, lab.node("node-2").ip);
      assert.equal(r1.find((r) => r.dst === lab.node("node-3").podCidr)?.dev, "kube-vxlan");
      const r3 = await ourRoutes(lab, "node-3");
      assert.equal(r3.find((r) => r.dst === lab.node("node-1").podCidr)?.dev, "kube-vxlan");

      // 2. Pods reach each other: ping and TCP, every pair.
      const pods = nodes.map((n) => lab.host(`pod-${n.name}`));
      for (const a of pods) {
        for (const b of pods) {
          if (a === b) continue;
          await lab.exec(a.name, ["ping", "-c", "1", "-W", "2", b.ip]);
          const p = await lab.tcpProbe(a.name, b.ip, 8080, 2000);
          assert.equal(p.status, "connected", `${a.name} → ${b.name} TCP: ${JSON.stringify(p)}`);
        }
      }

      // Pod egress: traffic leaving the cluster is masqueraded to the node IP (BIRD's client
      // has no route to pod CIDRs, so only a masqueraded flow can answer); pod-to-pod is not.
      await lab.serve("bird", { tcp: [9090] });
      for (const n of nodes) {
        const p = await lab.tcpProbe(`pod-${n.name}`, bird.ip, 9090, 2000);
        assert.equal(p.status, "connected", `egress from pod-${n.name}: ${JSON.stringify(p)}`);
        assert.equal(p.clientIp, n.ip, "egress is masqueraded to the node IP");
      }
      const pp = await lab.tcpProbe("pod-node-1", lab.host("pod-node-3").ip, 8080, 2000);
      assert.equal(pp.clientIp, lab.host("pod-node-1").ip, "pod-to-pod keeps the pod source address");

      // Drift: an operator deletes one of our routes; --injected-routes-sync-period (2 s) restores it.
      await lab.exec("node-1", ["ip", "route", "del", lab.node("node-2").podCidr, "proto", "17"]);
      const repaired = await waitUntil("node-1 to repair the deleted route", 15_000, async () => {
        return (await ourRoutes(lab, "node-1")).some((r) => r.dst === lab.node("node-2").podCidr);
      });
      console.log(`deleted route repaired after ${repaired} ms`);

      // 3. A peer added by annotation at run time: node-3 starts peering with BIRD without a
      //    restart. BIRD then learns every pod CIDR and the advertised ClusterIP, and loses the VIP
      //    when the service goes.
      assert.ok(!(await birdRoutes(lab, ctl)).includes(lab.node("node-3").podCidr), "node-3 not yet peered");
      await api.kubectl(["annotate", "node", "node-3", `kube-router.io/peers=${peersYaml}`, "--overwrite"]);
      await api.kubectl(["create", "namespace", "rt-e2e"], { okCodes: [0, 1] });
      await api.kubectl(["-n", "rt-e2e", "create", "service", "clusterip", "web", "--tcp=80:8080"]);
      const svc = JSON.parse(
        (await api.kubectl(["-n", "rt-e2e", "get", "service", "web", "-o", "json"])).stdout,
      );
      const vip = `${svc.spec.clusterIP}/32`;
      await waitUntil("BIRD to learn every pod CIDR and the ClusterIP", 30_000, async () => {
        const rs = await birdRoutes(lab, ctl);
        return podCidrs.every((c) => rs.includes(c)) && rs.includes(vip);
      });
      await api.kubectl(["-n", "rt-e2e", "delete", "service", "web"]);
      await waitUntil(
        "BIRD to lose the ClusterIP",
        30_000,
        async () => !(await birdRoutes(lab, ctl)).includes(vip),
      );
      // A LoadBalancer service: node-1's allocator assigns an address from the pool, every node
      // advertises it, BIRD learns it; gone with the service.
      await api.kubectl(["-n", "rt-e2e", "create", "service", "loadbalancer", "lb", "--tcp=80:8080"]);
      let lbIp = "";
      await waitUntil("the allocator to assign an LB IP", 40_000, async () => {
        const o = JSON.parse(
          (await api.kubectl(["-n", "rt-e2e", "get", "service", "lb", "-o", "json"])).stdout,
        );
        lbIp = o.status?.loadBalancer?.ingress?.[0]?.ip ?? "";
        return lbIp !== "";
      });
      assert.match(lbIp, /^198\.51\.100\.[1-6]$/);
      await waitUntil(
        "BIRD to learn the LB IP",
        30_000,
        async () => (await birdRoutes(lab, ctl)).includes(`${lbIp}/32`),
      );
      await api.kubectl(["-n", "rt-e2e", "delete", "service", "lb"]);
      await waitUntil(
        "BIRD to lose the LB IP",
        30_000,
        async () => !(await birdRoutes(lab, ctl)).includes(`${lbIp}/32`),
      );

      // 4. The operator view: `kube-router bgp peers --json` inside node-1's namespace.
      const cli = new URL("../../controllers/router/status_cli.ts", import.meta.url).pathname;
      const out = await lab.exec("node-1", [
        Deno.execPath(),
        "eval",
        `import { runBgpStatus } from "${cli}"; Deno.exit(await runBgpStatus(["peers", "--json"]));`,
      ]);
      const peersJson = JSON.parse(out.stdout) as Array<{ address: string; state: string }>;
      assert.deepEqual(
        peersJson.map((p) => `${p.address} ${p.state}`).sort(),
        [bird.ip, lab.node("node-2").ip, lab.node("node-3").ip].map((a) => `${a} Established`).sort(),
      );
      const table = await lab.exec("node-1", [
        Deno.execPath(),
        "eval",
        `import { runBgpStatus } from "${cli}"; Deno.exit(await runBgpStatus(["peers"]));`,
      ]);
      console.log(table.stdout);
      assert.match(table.stdout, /^PEER\s+ASN\s+STATE\s+UPTIME\s+RECEIVED\s+ACCEPTED\s+ADVERTISED/);

      // 5. Crash node-2's agent (SIGKILL) with graceful restart: traffic keeps flowing, then restart.
      await agents.get("node-2")!.stop("SIGKILL", 0);
      const from = "pod-node-1", to = lab.host("pod-node-2").ip;
      for (let i = 0; i < 8; i++) {
        const p = await lab.tcpProbe(from, to, 8080, 1500);
        assert.equal(
          p.status,
          "connected",
          `traffic during node-2 agent outage (probe ${i}): ${JSON.stringify(p)}`,
        );
        await new Promise((r) => setTimeout(r, 500));
      }
      assert.ok(
        (await ourRoutes(lab, "node-1")).some((r) => r.dst === lab.node("node-2").podCidr),
        "node-1 keeps node-2's route (GR helper)",
      );
      await startAgent("node-2");
      // Meanwhile node-2's kernel keeps the previous instance's routes (never withdrawn), and
      // node-2's new speaker relearns both pod CIDRs from their nodes.
      await waitUntil("node-2 to relearn routes after restart", 60_000, async () => {
        const rs = JSON.parse(
          (await lab.exec("node-2", ["curl", "-s", "http://127.0.0.1:50051/routes?table=loc"])).stdout ||
            "[]",
        ) as Array<{ prefix: string; source: string }>;
        const dsts = (await ourRoutes(lab, "node-2")).map((r) => r.dst);
        return ["node-1", "node-3"].every((n) =>
          rs.some((r) => r.prefix === lab.node(n).podCidr && r.source === lab.node(n).ip) &&
          dsts.includes(lab.node(n).podCidr)
        );
      });
      // node-1's copy of node-2's route is refreshed (no longer stale) once node-2 is back.
      await waitUntil("node-1 to refresh node-2's route", 30_000, async () => {
        const rs = JSON.parse(
          (await lab.exec("node-1", ["curl", "-s", "http://127.0.0.1:50051/routes?table=loc"])).stdout,
        ) as Array<{ prefix: string; stale: boolean; source: string }>;
        const r = rs.find((x) => x.prefix === lab.node("node-2").podCidr);
        return !!r && !r.stale && r.source === lab.node("node-2").ip;
      });
      for (const a of pods) {
        for (const b of pods) {
          if (a === b) continue;
          const p = await lab.tcpProbe(a.name, b.ip, 8080, 2000);
          assert.equal(p.status, "connected", `after restart ${a.name} → ${b.name}: ${JSON.stringify(p)}`);
        }
      }

      // Bad input at run time: a malformed second peer on node-1 is reported (object + field) and
      // skipped; the good peer stays up and routing goes on.
      await api.kubectl([
        "annotate",
        "node",
        "node-1",
        `kube-router.io/peers=${peersYaml}- remoteip: 300.1.1.1\n  remoteasn: 64601\n`,
        "--overwrite",
      ]);
      await waitUntil("node-1 to report the malformed peer", 20_000, async () => {
        const log = await agents.get("node-1")!.logTail(200);
        return log.includes('node/node-1: annotation kube-router.io/peers[1]: peer IP \\"300.1.1.1\\"') ||
          log.includes('node/node-1: annotation kube-router.io/peers[1]: peer IP "300.1.1.1"');
      });
      assert.ok(
        (await birdRoutes(lab, ctl)).includes(lab.node("node-1").podCidr),
        "node-1 still peers with BIRD",
      );
      assert.equal(
        (await lab.tcpProbe("pod-node-1", lab.host("pod-node-3").ip, 8080, 2000)).status,
        "connected",
      );

      // 6. Annotations at run time: node-1 becomes route reflector, node-2/3 clients; node-2 and
      //    node-3 drop their direct session, routes still flow through node-1.
      await api.kubectl(["annotate", "node", "node-1", "kube-router.io/rr.server=42", "--overwrite"]);
      await api.kubectl(["annotate", "node", "node-2", "kube-router.io/rr.client=42", "--overwrite"]);
      await api.kubectl(["annotate", "node", "node-3", "kube-router.io/rr.client=42", "--overwrite"]);
      await waitUntil("node-2 to peer only with node-1 among nodes", 30_000, async () => {
        const out = await lab.exec("node-2", [
          "ss",
          "-Htn",
          "state",
          "established",
          "( dport = :179 or sport = :179 )",
        ]);
        return !out.stdout.includes(lab.node("node-3").ip) && out.stdout.includes(lab.node("node-1").ip);
      });
      // Sessions re-form (node-1's speaker restarts for its new cluster id); traffic must flow
      // node-2 ↔ node-3 on routes reflected by node-1.
      const viaRr = await waitUntil("node-2 ↔ node-3 traffic via the route reflector", 45_000, async () => {
        for (const [a, b] of [["pod-node-2", "pod-node-3"], ["pod-node-3", "pod-node-2"]]) {
          const p = await lab.tcpProbe(a, lab.host(b).ip, 8080, 1000);
          if (p.status !== "connected") return false;
        }
        return true;
      });
      console.log(`route-reflector topology carrying traffic ${viaRr} ms after the annotations`);
      const n2peers = JSON.parse(
        (await lab.exec("node-2", ["curl", "-s", "http://127.0.0.1:50051/peers"])).stdout,
      ) as Array<{ address: string }>;
      assert.deepEqual(n2peers.map((p) => p.address).sort(), [bird.ip, lab.node("node-1").ip].sort());

      // 7. A node goes away: its agent stops (no GR on SIGTERM? GR keeps routes for restartTime),
      //    delete the Node; BIRD loses its pod CIDR once the session is gone.
      await agents.get("node-3")!.stop("SIGKILL", 0);
      await api.kubectl(["delete", "node", "node-3"]);
      await waitUntil("BIRD to lose node-3's pod CIDR", 45_000, async () => {
        return !(await birdRoutes(lab, ctl)).includes(lab.node("node-3").podCidr);
      });

      // 8. `kube-router cleanup` on node-2 (agent stopped first): our routes, overlay device,
      //    chains, sets and CNI file go; the lab's own bridge, addresses and routes stay.
      await agents.get("node-2")!.stop("SIGTERM", 5000);
      agents.delete("node-2");
      const before = (await lab.exec("node-2", ["ip", "-4", "-o", "addr", "show", "dev", "eth0"])).stdout;
      const cleanup = await lab.exec("node-2", [
        "env",
        `KUBE_ROUTER_CNI_CONF_FILE=${tmp}/node-2-cni/10-kuberouter.conf`,
        Deno.execPath(),
        "run",
        "-A",
        MAIN,
        "cleanup",
      ], { okCodes: [0, 1] });
      console.log(`cleanup on node-2 exited ${cleanup.code}`);
      assert.deepEqual(await ourRoutes(lab, "node-2"), []);
      const n2 = (name: string, argv: string[]) =>
        lab.exec(name, argv, { okCodes: [0, 1] }).then((r) => r.stdout);
      assert.doesNotMatch(await n2("node-2", ["ip", "link", "show"]), /kube-vxlan/);
      // The lab made kube-bridge and its gateway address before the agent started: cleanup
      // restores what it found instead of removing it (the pods keep their gateway).
      assert.match(
        await n2("node-2", ["ip", "-4", "addr", "show", "dev", "kube-bridge"]),
        /10\.251\.2\.1\//,
      );
      assert.doesNotMatch(await n2("node-2", ["ip", "rule", "show"]), /lookup 77/);
      assert.doesNotMatch(await n2("node-2", ["iptables-nft-save"]), /KUBE-ROUTER-(PODNET-FWD|POD-EGRESS)/);
      assert.doesNotMatch(await n2("node-2", ["ipset", "list", "-n"]), /kube-router-(pod-subnets|node-ips)/);
      assert.equal(
        (await lab.exec("node-2", ["ip", "-4", "-o", "addr", "show", "dev", "eth0"])).stdout,
        before,
      );
      await assert.rejects(
        Deno.stat(`${tmp}/node-2-cni/10-kuberouter.conf`),
        "the CNI file we created is gone",
      );
    } catch (e) {
      for (const [n, a] of agents) console.error(`--- agent ${n} log:\n${await a.logTail(40)}`);
      for (const n of lab.nodes.keys()) {
        for (
          const argv of [
            ["ip", "route", "show", "table", "all", "proto", "17"],
            ["ip", "neigh", "show", "dev", "kube-vxlan"],
            ["bridge", "fdb", "show", "dev", "kube-vxlan"],
            ["curl", "-s", "http://127.0.0.1:50051/routes?table=loc"],
            ["curl", "-s", "http://127.0.0.1:50051/peers"],
          ]
        ) {
          const r = await lab.exec(n, argv, { okCodes: [0, 1, 2, 7] }).catch((x) => ({ stdout: String(x) }));
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
