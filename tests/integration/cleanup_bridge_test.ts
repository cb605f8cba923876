/**
 * `kube-router cleanup` on a node whose kube-bridge existed before the agent: the real CNI
 * `bridge` plugin (Debian's containernetworking-plugins) made it and attached two pods. The
 * agent (the real main.ts, `router`) changes its MTU (auto-MTU) and writes its CNI file; then
 * - `cleanup --run-router=false --run-service-proxy=false` touches neither the bridge nor the file;
 * - `cleanup` (started WITHOUT the agent's --cni-conf-file, as an operator would) restores the
 *   bridge exactly (addresses, MTU, routes), the pods keep their gateway, and only the CNI file
 *   the agent was told to write is removed (a marked sibling `.conflist` stays).
 *
 * Addresses: node 192.0.2.11/24 on a veth inside the node namespace; pods 10.244.1.0/24 from
 * host-local. Every name is `krcb-<random>`; everything is removed.
 */
import assert from "node:assert/strict";
import { CommandRunner } from "../../kernel/exec.ts";
import { runAgent, spawnAgent } from "../fixtures/agent.ts";

const CNI_BIN = "/usr/lib/cni";
const sh = new CommandRunner();

const MANIFEST = `apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: Node
    metadata: { name: node-1 }
    spec: { podCIDR: 10.244.1.0/24, podCIDRs: [10.244.1.0/24] }
    status: { addresses: [{ type: InternalIP, address: 192.0.2.11 }] }
  - apiVersion: v1
    kind: Node
    metadata: { name: node-2 }
    spec: { podCIDR: 10.244.2.0/24, podCIDRs: [10.244.2.0/24] }
    status: { addresses: [{ type: InternalIP, address: 192.0.2.12 }] }
`;

async function kr(ns: string, args: string[]) {
  const out = await runAgent(args, { netns: ns, env: { KUBE_ROUTER_CNI_CONF_FILE: "" } });
  return { code: out.code, stderr: out.stderr };
}

/** Runs the real CNI bridge plugin (ADD) for a pod namespace, inside the node namespace. */
async function cniAdd(node: string, pod: string, conf: string) {
  const c = new Deno.Command("ip", {
    args: ["netns", "exec", node, `${CNI_BIN}/bridge`],
    env: {
      CNI_COMMAND: "ADD",
      CNI_CONTAINERID: pod,
      CNI_NETNS: `/var/run/netns/${pod}`,
      CNI_IFNAME: "eth0",
      CNI_PATH: CNI_BIN,
    },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = c.stdin.getWriter();
  await w.write(new TextEncoder().encode(conf));
  await w.close();
  const out = await c.output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr));
}

/** What a pod relies on: the bridge's addresses, MTU, routes. */
async function bridgeState(ns: string) {
  const link = JSON.parse(
    (await sh.run(["ip", "-j", "-d", "addr", "show", "dev", "kube-bridge"], { netns: ns }))
      .stdout,
  )[0];
  const routes = (await sh.run(["ip", "route", "show", "dev", "kube-bridge"], { netns: ns })).stdout.trim();
  return {
    mtu: link.mtu as number,
    up: (link.flags as string[]).includes("UP"),
    alias: (link.ifalias ?? "") as string,
    addrs: (link.addr_info as Array<{ local: string; prefixlen: number; scope: string }>)
      .filter((a) => a.scope === "global").map((a) => `${a.local}/${a.prefixlen}`).sort(),
    routes,
  };
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

Deno.test({
  name:
    "cleanup: a kube-bridge made by the CNI plugin with pods attached is restored; only the agent's CNI file goes; with no pod left it is deleted",
  // tests/run.sh installs Debian's containernetworking-plugins; a bare `deno test` without it skips.
  ignore: !(await exists(`${CNI_BIN}/bridge`)),
  sanitizeResources: false,
  async fn() {
    const id = crypto.randomUUID().slice(0, 6);
    const node = `krcb-${id}-n`, pods = [`krcb-${id}-a`, `krcb-${id}-b`], peer = `krcb-${id}-p`;
    const tmp = await Deno.makeTempDir({ prefix: "krcb-" });
    try {
      for (const ns of [node, peer, ...pods]) {
        await sh.run(["ip", "netns", "add", ns]);
        await sh.run(["ip", "-n", ns, "link", "set", "lo", "up"]);
      }
      // The node's uplink (MTU 1500): auto-MTU derives the pod MTU from it.
      await sh.run([
        "ip",
        "-n",
        node,
        "link",
        "add",
        "eth0",
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "netns",
        peer,
      ]);
      await sh.run(["ip", "-n", node, "addr", "add", "192.0.2.11/24", "dev", "eth0"]);
      await sh.run(["ip", "-n", node, "link", "set", "eth0", "up"]);
      await sh.run(["ip", "-n", peer, "link", "set", "eth0", "up"]);

      // The CNI plugin, before any agent, makes kube-bridge (gateway 10.244.1.1/24) and attaches pods.
      const conf = JSON.stringify({
        cniVersion: "0.4.0",
        name: "pre-existing",
        type: "bridge",
        bridge: "kube-bridge",
        isGateway: true,
        isDefaultGateway: true,
        ipam: { type: "host-local", subnet: "10.244.1.0/24", dataDir: `${tmp}/ipam` },
      });
      for (const p of pods) await cniAdd(node, p, conf);
      const before = await bridgeState(node);
      assert.equal(before.mtu, 1500);
      assert.deepEqual(before.addrs, ["10.244.1.1/24"]);
      const podRoutes = (await sh.run(["ip", "route", "show"], { netns: pods[0] })).stdout;
      assert.match(podRoutes, /default via 10\.244\.1\.1 dev eth0/);

      const manifest = `${tmp}/cluster.yaml`;
      await Deno.writeTextFile(manifest, MANIFEST);
      const cni = `${tmp}/net.d/10-kuberouter.conf`;
      const agent = spawnAgent(
        [
          "router",
          `--manifests=${manifest}`,
          "--hostname-override=node-1",
          `--cni-conf-file=${cni}`,
          "--health-port=0",
          "--enable-ibgp=false",
          "--gobgp-admin-port=0",
        ],
        { netns: node },
      );
      let during: Awaited<ReturnType<typeof bridgeState>> | undefined;
      try {
        for (let i = 0; i < 150; i++) {
          during = await bridgeState(node);
          if (during.mtu === 1480 && await exists(cni)) break;
          await new Promise((r) => setTimeout(r, 100));
        }
      } finally {
        agent.kill("SIGTERM");
      }
      const out = await agent.output();
      const log = new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 0, log);
      assert.equal(during?.mtu, 1480, `the agent never set the pod MTU: ${log}`);
      assert.match(during!.alias, /^kube-router:v1;origin=found;mtu=1500;up=1;added=;cni=/);
      assert.deepEqual(during!.addrs, ["10.244.1.1/24"], "the CNI plugin's gateway is kept as it is");

      // A marked file at another path (the sibling the old cleanup also tried): not the agent's.
      // Written after the agent stopped, since the agent edits an existing sibling .conflist.
      const decoy = `${tmp}/net.d/10-kuberouter.conflist`;
      await Deno.writeTextFile(
        decoy,
        JSON.stringify({ name: "other", kubeRouterManaged: true, plugins: [] }),
      );

      // Cleanup told not to run the router: bridge and CNI file untouched.
      const partial = await kr(node, ["cleanup", "--run-router=false", "--run-service-proxy=false"]);
      assert.equal(partial.code, 0, partial.stderr);
      assert.doesNotMatch(partial.stderr, /router cleanup|router: removed/);
      assert.deepEqual(await bridgeState(node), during);
      assert.ok(await exists(cni), "--run-router=false removed the router's CNI file");

      // Full cleanup, without the agent's --cni-conf-file: the record on the bridge names it.
      const full = await kr(node, ["cleanup"]);
      assert.equal(full.code, 0, full.stderr);
      assert.match(full.stderr, /kube-bridge: found before kube-router: restored/);
      assert.deepEqual(await bridgeState(node), before, "the bridge is as the CNI plugin left it");
      assert.ok(!(await exists(cni)), "the CNI file the agent wrote is removed");
      assert.ok(await exists(decoy), "a marked file at another path is not the agent's");

      // The pods keep their gateway and reach each other through the bridge.
      const podB =
        JSON.parse((await sh.run(["ip", "-j", "addr", "show", "dev", "eth0"], { netns: pods[1] })).stdout)[0]
          .addr_info.find((a: { family: string }) => a.family === "inet").local;
      assert.match(
        (await sh.run(["ip", "route", "show"], { netns: pods[0] })).stdout,
        /default via 10\.244\.1\.1/,
      );
      for (const dst of ["10.244.1.1", podB]) {
        const ping = await sh.run(["ping", "-c", "1", "-W", "2", dst], {
          netns: pods[0],
          okCodes: [0, 1, 2],
        });
        assert.equal(ping.code, 0, `pod cannot reach ${dst} after cleanup: ${ping.stdout}`);
      }

      // Once no pod is attached, the bridge the plugin made from kube-router's config is not
      // left behind: its gateway route would shadow the node's next network (the real cluster
      // found this when switching from the agent to kube-proxy).
      for (const p of pods) await sh.run(["ip", "netns", "del", p]);
      for (let i = 0; i < 50; i++) {
        const ports =
          (await sh.run(["ip", "-o", "link", "show", "master", "kube-bridge"], { netns: node })).stdout;
        if (ports.trim() === "") break;
        await new Promise((r) => setTimeout(r, 100));
      }
      const again = await kr(node, ["cleanup"]);
      assert.equal(again.code, 0, again.stderr);
      assert.match(
        again.stderr,
        /kube-bridge: no kube-router record, only a pod gateway and no port attached: deleted/,
      );
      const left = await sh.run(["ip", "link", "show", "kube-bridge"], { netns: node, okCodes: [0, 1] });
      assert.notEqual(left.code, 0, "kube-bridge is still there with no pod on it");
      assert.doesNotMatch(
        (await sh.run(["ip", "route", "show"], { netns: node })).stdout,
        /10\.244\.1\.0\/24/,
      );
    } finally {
      for (const ns of [node, peer, ...pods]) {
        await sh.run(["ip", "netns", "del", ns], { okCodes: [0, 1, 255] });
      }
      await Deno.remove(tmp, { recursive: true }).catch(() => {});
    }
  },
});
