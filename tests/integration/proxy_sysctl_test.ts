// Integration: the proxy's start-up sysctls and the node-address re-read, in a lab node namespace.
// sysctl runs for real inside the namespace (net.* keys are per namespace). This kernel has no
// IPVS, so /proc/sys/net/ipv4/vs is absent and the IPVS keys must be skipped with one warning;
// ipvsadm runs against the IPVS model as in proxy_ipvs_test.ts.
//
// Addresses: lab node-1 10.250.0.1 on eth0 (pod CIDR default 10.251.1.0/24, no pods), ClusterIP
// 10.96.0.30, an address added later 192.0.2.77/32.
import assert from "node:assert/strict";
import { defaultOptions } from "../../options/mod.ts";
import type { ControllerContext } from "../../controllers/controller.ts";
import { createProxyController, proxyCleanup } from "../../controllers/proxy/mod.ts";
import { ep, procFsLimitedTo, slice, snapshot, svc } from "../../controllers/proxy/testing.ts";
import { CommandRunner, type ExecOptions, type ExecResult, type Runner } from "../../kernel/exec.ts";
import { IpvsModelRunner } from "../../kernel/ipvs/model_runner.ts";
import { logger } from "../../observe/log.ts";
import { MetricsRegistry } from "../../observe/metrics.ts";
import type { ClusterSnapshot, NodeInfo } from "../../watch/types.ts";
import { createLab } from "../fixtures/lab.ts";

/** Records every command line. */
class Recording implements Runner {
  commands: string[] = [];
  constructor(private readonly inner: Runner) {}
  run(argv: readonly string[], options?: ExecOptions): Promise<ExecResult> {
    this.commands.push(argv.join(" "));
    return this.inner.run(argv, options);
  }
}

Deno.test({
  name: "start-up sysctls in one write (rp_filter only 1→2, arp_*, IPVS keys skipped without net/ipv4/vs); " +
    "node addresses re-read when the Node object changes",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using lab = await createLab({ prefix: "pxf", nodes: [{ name: "node-1" }] });
    const node = lab.node("node-1");
    const sh = (cmd: string) => lab.exec("node-1", ["sh", "-c", cmd]);
    const get = async (keys: string[]) => (await sh(`sysctl -n ${keys.join(" ")}`)).stdout.trim().split("\n");
    // default.rp_filter=1 first so kube-dummy-if, created by the sync, starts at 1 as well.
    await sh([
      "sysctl -q -w net.ipv4.conf.default.rp_filter=1",
      "sysctl -q -w net.ipv4.conf.all.rp_filter=1",
      "sysctl -q -w net.ipv4.conf.eth0.rp_filter=1",
      "sysctl -q -w net.ipv4.conf.kube-bridge.rp_filter=0",
      "sysctl -q -w net.ipv4.conf.all.arp_ignore=0",
      "sysctl -q -w net.ipv4.conf.all.arp_announce=0",
    ].join(" && "));
    assert.equal((await sh("test -e /proc/sys/net/ipv4/vs && echo yes || echo no")).stdout.trim(), "no");

    const runner = new Recording(new IpvsModelRunner(new CommandRunner(node.netns)));
    const warnings: string[] = [];
    const base = logger("proxy-sysctl-test");
    const ctx: ControllerContext = {
      options: { ...defaultOptions(), serviceProxyMode: "ipvs" },
      runner,
      nodeName: "node-1",
      log: new Proxy(base, {
        get: (t, prop) =>
          prop === "warn" ? (m: unknown) => warnings.push(String(m)) : Reflect.get(t, prop).bind(t),
      }),
      metrics: new MetricsRegistry(),
      dryRun: false,
    };
    const nodeObj = (labels: Record<string, string>): NodeInfo => ({
      name: "node-1",
      labels,
      annotations: {},
      podCIDRs: [],
      internalIPs: [node.ip],
      externalIPs: [],
      providerID: "",
    });
    const snap = (revision: number, n: NodeInfo): ClusterSnapshot => ({
      ...snapshot({
        revision,
        services: [svc("web", { clusterIPs: ["10.96.0.30"] })],
        slices: [slice("web", [ep("10.251.1.5", "node-1")])],
      }),
      nodes: new Map([["node-1", n]]),
    });
    const procfs = await procFsLimitedTo([]);
    const proxy = createProxyController(ctx, { healthChecks: false, iptablesBackend: "nft", procfs });
    try {
      const n1 = nodeObj({});
      await proxy.sync(snap(1, n1));
      const writes = runner.commands.filter((c) => c.startsWith("sysctl") && c.includes(" -w "));
      assert.equal(writes.length, 1, writes.join("\n"));
      assert.deepEqual(
        await get([
          "net.ipv4.conf.all.rp_filter",
          "net.ipv4.conf.eth0.rp_filter",
          "net.ipv4.conf.kube-dummy-if.rp_filter",
          "net.ipv4.conf.kube-bridge.rp_filter",
          "net.ipv4.conf.all.arp_ignore",
          "net.ipv4.conf.all.arp_announce",
        ]),
        ["2", "2", "2", "0", "1", "2"],
        "rp_filter 1→2 on all, node link and kube-dummy-if; kube-bridge's 0 left alone; arp_ignore 1, arp_announce 2",
      );
      assert.equal(warnings.filter((w) => /net\/ipv4\/vs is absent/.test(w)).length, 1, warnings.join("\n"));

      // Unchanged snapshot: nothing at all, sysctls included.
      runner.commands = [];
      await proxy.sync(snap(2, n1));
      assert.deepEqual(runner.commands, []);

      // A new address on the node: not seen on an endpoint-only sync (no process per sync) ...
      await sh("ip addr add 192.0.2.77/32 dev eth0");
      await proxy.sync(snap(3, n1));
      assert.ok(!proxy.applied!.sets.localIps[4].includes("192.0.2.77"));
      // ... but read as soon as the Node object changes (one `ip -j addr`), before the periodic resync.
      runner.commands = [];
      await proxy.sync(snap(4, nodeObj({ "example.com/changed": "1" })));
      assert.ok(proxy.applied!.sets.localIps[4].includes("192.0.2.77"), JSON.stringify(proxy.applied!.sets));
      assert.ok(runner.commands.includes("ip -j addr show"), runner.commands.join("\n"));
      assert.match((await sh("ipset list kube-router-local-ips")).stdout, /192\.0\.2\.77/);
    } finally {
      await proxy.stop();
    }
    await proxyCleanup(ctx);
  },
});

Deno.test({
  name: "nftables mode: arp_* and rp_filter set, no IPVS keys and no IPVS warning",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using lab = await createLab({ prefix: "pxf", nodes: [{ name: "node-1" }] });
    const node = lab.node("node-1");
    const sh = (cmd: string) => lab.exec("node-1", ["sh", "-c", cmd]);
    await sh("sysctl -q -w net.ipv4.conf.all.rp_filter=1 net.ipv4.conf.all.arp_ignore=0");
    const runner = new Recording(new CommandRunner(node.netns));
    const warnings: string[] = [];
    const base = logger("proxy-sysctl-test");
    const ctx: ControllerContext = {
      options: { ...defaultOptions(), serviceProxyMode: "nftables" },
      runner,
      nodeName: "node-1",
      log: new Proxy(base, {
        get: (t, prop) =>
          prop === "warn" ? (m: unknown) => warnings.push(String(m)) : Reflect.get(t, prop).bind(t),
      }),
      metrics: new MetricsRegistry(),
      dryRun: false,
    };
    const proxy = createProxyController(ctx, { healthChecks: false });
    try {
      await proxy.sync(snapshot({ services: [svc("web", { clusterIPs: ["10.96.0.30"] })] }));
      assert.deepEqual(
        (await sh("sysctl -n net.ipv4.conf.all.rp_filter net.ipv4.conf.all.arp_ignore")).stdout.trim().split(
          "\n",
        ),
        ["2", "1"],
      );
      assert.ok(!runner.commands.some((c) => c.includes("net.ipv4.vs.")), runner.commands.join("\n"));
      assert.ok(!warnings.some((w) => /ipv4\/vs/.test(w)), warnings.join("\n"));
    } finally {
      await proxy.stop();
    }
    await proxyCleanup(ctx);
  },
});

Deno.test({
  name:
    "node addresses: a new address on a node link is seen through ip monitor, without a Node change or resync",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using lab = await createLab({ prefix: "pxf", nodes: [{ name: "node-1" }] });
    const node = lab.node("node-1");
    const sh = (cmd: string) => lab.exec("node-1", ["sh", "-c", cmd]);
    const runner = new Recording(new CommandRunner(node.netns));
    const ctx: ControllerContext = {
      options: { ...defaultOptions(), serviceProxyMode: "nftables", nodeportBindonAllIp: true },
      runner,
      nodeName: "node-1",
      log: logger("proxy-addr-test"),
      metrics: new MetricsRegistry(),
      dryRun: false,
    };
    const proxy = createProxyController(ctx, { healthChecks: false, monitorNetns: node.netns });
    const ac = new AbortController();
    try {
      await proxy.start(ac.signal);
      const snap: ClusterSnapshot = {
        ...snapshot({
          services: [
            svc("web", {
              type: "NodePort",
              clusterIPs: ["10.96.0.30"],
              ports: [{ port: 80, nodePort: 30080 }],
            }),
          ],
        }),
        nodes: new Map([["node-1", {
          name: "node-1",
          labels: {},
          annotations: {},
          podCIDRs: [],
          internalIPs: [node.ip],
          externalIPs: [],
          providerID: "",
        }]]),
      };
      await proxy.sync(snap);
      assert.deepEqual(proxy.applied!.nodePortIps[4], [node.ip]);
      await new Promise((r) => setTimeout(r, 300)); // events of our own first sync settle
      runner.commands = [];
      // An address on a skipped link (kube-bridge) triggers nothing; one on eth0 triggers a re-read.
      await sh("ip addr add 192.0.2.78/32 dev kube-bridge");
      await new Promise((r) => setTimeout(r, 600));
      assert.equal(runner.commands.length, 0, runner.commands.join("\n"));
      await sh("ip addr add 192.0.2.77/32 dev eth0");
      for (let i = 0; i < 30 && !proxy.applied!.nodePortIps[4].includes("192.0.2.77"); i++) {
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.deepEqual(proxy.applied!.nodePortIps[4], [node.ip, "192.0.2.77"].sort());
      assert.ok(runner.commands.includes("ip -j addr show"), runner.commands.join("\n"));
      // Removed again: seen the same way.
      await sh("ip addr del 192.0.2.77/32 dev eth0");
      for (let i = 0; i < 30 && proxy.applied!.nodePortIps[4].includes("192.0.2.77"); i++) {
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.deepEqual(proxy.applied!.nodePortIps[4], [node.ip]);
    } finally {
      ac.abort();
      await proxy.stop();
    }
    await proxyCleanup(ctx);
  },
});
