/**
 * The routing controller's apply layer against the real kernel in a throwaway namespace
 * `rt-ap-<random>` (the BGP speaker runs without listening sockets and without peers: this test
 * is about host state; BGP-learned routes are covered by tests/e2e/router_bgp_test.ts).
 *
 * Addresses: node network 10.212.0.0/24 on the namespace's bridge `rtu0` (this node .1,
 * node-2 .2), pod CIDRs 10.212.1.0/24 (ours) and 10.212.2.0/24 (node-2); foreign state uses
 * 10.212.9.0/24 and 198.51.100.0/24.
 */
import assert from "node:assert/strict";
import { BgpSpeaker } from "../../bgp/mod.ts";
import { defaultOptions } from "../../options/mod.ts";
import type { ControllerContext } from "../../controllers/controller.ts";
import { routerCleanupWith, RouterController } from "../../controllers/router/mod.ts";
import { CommandRunner, type ExecOptions, type ExecResult, type Runner } from "../../kernel/exec.ts";
import { logger } from "../../observe/log.ts";
import { MetricsRegistry } from "../../observe/metrics.ts";
import { emptySnapshot, type NodeInfo } from "../../watch/types.ts";

/** Counts commands that may change the kernel. */
class CountingRunner implements Runner {
  mutating: string[] = [];
  constructor(readonly inner: Runner) {}
  run(argv: readonly string[], o: ExecOptions = {}): Promise<ExecResult> {
    if (!o.readOnly) this.mutating.push(argv.join(" ") + (o.stdin ? `\n${o.stdin}` : ""));
    return this.inner.run(argv, o);
  }
}

function node(n: number): NodeInfo {
  return {
    name: `node-${n}`,
    labels: {},
    annotations: {},
    podCIDRs: [`10.212.${n}.0/24`],
    internalIPs: [`10.212.0.${n}`],
    externalIPs: [],
    providerID: "",
  };
}

Deno.test({
  name: "router apply: bridge, vxlan, sysctls, CNI, ipsets, chains; idempotent; cleanup removes only ours",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const ns = `rt-ap-${crypto.randomUUID().slice(0, 8)}`;
    const root = new CommandRunner();
    const tmp = await Deno.makeTempDir({ prefix: "kr-rt-apply-" });
    await root.run(["ip", "netns", "add", ns]);
    const run = new CommandRunner(ns);
    const sh = (cmd: string) => run.run(["sh", "-c", cmd]);
    try {
      await run.run(["ip", "-batch", "-"], {
        stdin: [
          "link set lo up",
          "link add name rtu0 type bridge",
          "link set rtu0 up",
          "addr add 10.212.0.1/24 dev rtu0",
          "link add name kube-bridge type bridge",
          "addr add 10.212.9.5/24 dev kube-bridge",
          "route add 198.51.100.0/24 via 10.212.0.9 proto static",
          "rule add from 10.212.9.0/24 lookup 100",
        ].join("\n") + "\n",
      });
      await sh(
        "iptables-nft -N FOREIGN && iptables-nft -A FORWARD -j FOREIGN && ipset create foreign hash:ip",
      );
      const cni = `${tmp}/net.d/10-kuberouter.conf`;
      const options = {
        ...defaultOptions(),
        enableIbgp: false,
        enableOverlay: true,
        overlayEncap: "vxlan",
        overlayType: "full",
        gobgpAdminPort: 0,
        injectedRoutesSyncPeriod: 0,
      };
      const counting = new CountingRunner(run);
      const ctx: ControllerContext = {
        options,
        runner: counting,
        nodeName: "node-1",
        log: logger("router-test"),
        metrics: new MetricsRegistry(),
        dryRun: false,
      };
      const c = new RouterController(ctx, {
        cniConfPath: cni,
        speakerFactory: (cfg) => new BgpSpeaker({ ...cfg, listen: false }),
      });
      const abort = new AbortController();
      await c.start(abort.signal);
      const snap = { ...emptySnapshot(), nodes: new Map([["node-1", node(1)], ["node-2", node(2)]]) };
      try {
        await c.sync(snap, abort.signal);
        // kube-bridge: up, gateway address, MTU 1500 - 50 (VXLAN).
        const br = JSON.parse((await run.run(["ip", "-j", "addr", "show", "dev", "kube-bridge"])).stdout)[0];
        assert.equal(br.mtu, 1450);
        assert.ok(br.flags.includes("UP"));
        assert.deepEqual(
          br.addr_info.filter((a: { family: string }) => a.family === "inet").map((a: { local: string }) =>
            a.local
          )
            .sort(),
          ["10.212.1.1", "10.212.9.5"],
        );
        const vx = JSON.parse((await run.run(["ip", "-j", "-d", "link", "show", "kube-vxlan"])).stdout)[0];
        assert.equal(vx.linkinfo.info_data.id, 4097);
        assert.equal(vx.linkinfo.info_data.local, "10.212.0.1");
        assert.equal(vx.address, "0e:6b:0a:d4:00:01");
        assert.match((await run.run(["ip", "rule", "show"])).stdout, /from 10\.212\.1\.0\/24 lookup 77/);
        assert.equal((await run.run(["sysctl", "-n", "net.ipv4.ip_forward"])).stdout.trim(), "1");
        const sets = (await run.run(["ipset", "save"])).stdout;
        assert.match(sets, /add kube-router-pod-subnets 10\.212\.1\.0\/24/);
        assert.match(sets, /add kube-router-pod-subnets 10\.212\.2\.0\/24/);
        assert.match(sets, /add kube-router-node-ips 10\.212\.0\.2/);
        const filter = (await run.run(["iptables-nft", "-S", "FORWARD"])).stdout.split("\n");
        assert.equal(filter[1], "-A FORWARD -j KUBE-ROUTER-PODNET-FWD", "our jump is first");
        assert.match(
          (await run.run(["iptables-nft", "-t", "nat", "-S", "KUBE-ROUTER-POD-EGRESS"])).stdout,
          /MASQUERADE/,
        );
        const conf = JSON.parse(await Deno.readTextFile(cni));
        assert.deepEqual(conf.ipam.ranges, [[{ subnet: "10.212.1.0/24" }]]);
        assert.equal(conf.mtu, 1450);
        assert.equal((await Deno.stat(cni)).mode! & 0o777, 0o644);

        // Upstream's metric names are exported.
        const metrics = ctx.metrics.render();
        assert.match(metrics, /kube_router_controller_routes_sync_time_count 1/);
        assert.match(metrics, /kube_router_host_routes_synced 0/);

        // A second sync with nothing changed runs no mutating command.
        counting.mutating = [];
        await c.sync(snap, abort.signal);
        assert.deepEqual(counting.mutating, []);

        // Node-2 goes away: its pod CIDR leaves the set, nothing else changes.
        await c.sync({ ...snap, nodes: new Map([["node-1", node(1)]]) }, abort.signal);
        assert.doesNotMatch((await run.run(["ipset", "save"])).stdout, /10\.212\.2\.0/);
      } finally {
        abort.abort();
        await c.stop();
      }

      // Cleanup: ours gone, foreign kept. Twice (idempotent).
      for (let i = 0; i < 2; i++) await routerCleanupWith(ctx, { cniConfPath: cni });
      const links = (await run.run(["ip", "-j", "link", "show"])).stdout;
      assert.doesNotMatch(links, /kube-vxlan/);
      const addrs = (await run.run(["ip", "-4", "-o", "addr", "show", "dev", "kube-bridge"])).stdout;
      assert.doesNotMatch(addrs, /10\.212\.1\.1/);
      assert.match(addrs, /10\.212\.9\.5/);
      // kube-bridge existed before the router: its MTU is back, and no record of ours is left.
      const brAfter =
        JSON.parse((await run.run(["ip", "-j", "-d", "link", "show", "kube-bridge"])).stdout)[0];
      assert.equal(brAfter.mtu, 1500);
      assert.equal(brAfter.ifalias, undefined);
      assert.doesNotMatch((await run.run(["ip", "rule", "show"])).stdout, /lookup 77/);
      assert.match((await run.run(["ip", "rule", "show"])).stdout, /lookup 100/);
      assert.match(
        (await run.run(["ip", "route", "show"])).stdout,
        /198\.51\.100\.0\/24 via 10\.212\.0\.9 dev rtu0 proto static/,
      );
      const save = (await run.run(["iptables-nft-save"])).stdout;
      assert.doesNotMatch(save, /KUBE-ROUTER/);
      assert.match(save, /-A FORWARD -j FOREIGN/);
      assert.equal((await run.run(["ipset", "list", "-n"])).stdout.trim(), "foreign");
      // The CNI file was created by us (marked), so it is gone too.
      await assert.rejects(Deno.stat(cni));
    } finally {
      await root.run(["ip", "netns", "del", ns], { okCodes: [0, 1] });
      await Deno.remove(tmp, { recursive: true }).catch(() => {});
    }
  },
});
