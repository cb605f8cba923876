// Integration: the proxy controller in IPVS mode inside a lab node namespace. Everything runs for
// real (ip -batch on kube-dummy-if, ipset restore, iptables-restore --noflush, packets through the
// KUBE-ROUTER-SERVICES chain) EXCEPT ipvsadm: this kernel has no IPVS, so ipvsadm commands are
// executed against the IPVS MODEL (kernel/ipvs/model.ts), which reads and writes the same -Sn / -R
// text formats. Rules needing xt_ipvs (`-m ipvs`, SNAT/hairpin) are not loadable here, so this
// test's snapshot has no pod CIDR, no NodePort and no hairpin (those rules are golden-tested).
//
// Address conventions: lab node-1 10.250.0.1 (pod CIDR 10.251.1.0/24 with pod "cl"), VIPs
// 10.96.0.0/16, external IPs 198.51.100.0/24, foreign IPVS service 192.0.2.250, excluded 192.0.2.240/28.
import assert from "node:assert/strict";
import { defaultOptions } from "../../options/mod.ts";
import type { ControllerContext } from "../../controllers/controller.ts";
import { createProxyController, proxyCleanup } from "../../controllers/proxy/mod.ts";
import { ep, procFsLimitedTo, slice, snapshot, svc } from "../../controllers/proxy/testing.ts";
import { CommandRunner } from "../../kernel/exec.ts";
import { parseSave, renderSave } from "../../kernel/ipvs/mod.ts";
import { IpvsModelRunner } from "../../kernel/ipvs/model_runner.ts";
import { logger } from "../../observe/log.ts";
import { MetricsRegistry } from "../../observe/metrics.ts";
import type { ClusterSnapshot } from "../../watch/types.ts";
import { createLab } from "../fixtures/lab.ts";

Deno.test({
  name:
    "IPVS mode: dummy-if VIPs, ipsets, iptables chain with real packets, ipvsadm batches (model), cleanup keeps foreign state",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using lab = await createLab({ prefix: "px", nodes: [{ name: "node-1" }] });
    await lab.addPod("node-1", { name: "cl" });
    const node = lab.node("node-1");
    // The node itself listens on :80, standing in for "the IPVS service answered".
    await lab.serve("node-1", { tcp: [80] });
    const runner = new IpvsModelRunner(new CommandRunner(node.netns));
    const sh = (cmd: string) => lab.exec("node-1", ["sh", "-c", cmd]);

    // Foreign state that must survive everything.
    runner.model.restore([
      "-A -t 192.0.2.250:80 -s wrr",
      "-a -t 192.0.2.250:80 -r 192.0.2.251:80 -g -w 3",
      "-A -t 192.0.2.241:80 -s rr",
    ].join("\n"));
    await sh([
      "ipset create foreign-set hash:ip",
      "iptables -N FOREIGN-CHAIN",
      "iptables -A FOREIGN-CHAIN -j RETURN",
      "iptables -I INPUT -j FOREIGN-CHAIN",
      "ip addr add 192.0.2.99/32 dev eth0",
    ].join(" && "));

    const warnings: string[] = [];
    const log = logger("proxy-ipvs-test");
    const ctx: ControllerContext = {
      options: {
        ...defaultOptions(),
        serviceProxyMode: "ipvs",
        serviceExternalIpRange: ["198.51.100.0/24"],
        excludedCidrs: ["192.0.2.240/28"],
        serviceTcpTimeout: 900_000,
      },
      runner,
      nodeName: "node-1",
      log: new Proxy(log, {
        get: (target, prop) =>
          prop === "warn" ? (m: unknown) => warnings.push(String(m)) : Reflect.get(target, prop).bind(target),
      }),
      metrics: new MetricsRegistry(),
      dryRun: false,
    };
    const nodes = new Map([["node-1", {
      name: "node-1",
      labels: {},
      annotations: {},
      podCIDRs: [],
      internalIPs: [node.ip],
      externalIPs: [],
      providerID: "",
    }]]);
    const snap = (revision: number, withWeb = true): ClusterSnapshot => ({
      ...snapshot({
        revision,
        services: [
          ...(withWeb
            ? [
              svc("web", {
                clusterIPs: ["10.96.0.10"],
                sessionAffinity: "ClientIP" as const,
                sessionAffinityTimeout: 600,
              }),
            ]
            : []),
          svc("empty", { clusterIPs: ["10.96.0.15"] }),
          svc("dsr", {
            clusterIPs: ["10.96.0.20"],
            externalIPs: ["198.51.100.20"],
            annotations: { "kube-router.io/service.dsr": "tunnel", "kube-router.io/service.scheduler": "mh" },
          }),
        ],
        slices: [slice("web", [ep("10.251.1.5", "node-1")]), slice("dsr", [ep("10.251.1.7", "node-1")])],
      }),
      nodes,
    });
    // DSR's pod-namespace scan sees only this lab's namespaces (no test wanders into another's).
    const procfs = await procFsLimitedTo([lab.netnsOf("cl")]);
    const proxy = createProxyController(ctx, { healthChecks: false, iptablesBackend: "nft", procfs });
    try {
      await proxy.sync(snap(1));
      assert.ok(
        warnings.some((w) => w.includes("no dummy link type")),
        `bridge fallback warned: ${warnings}`,
      );
      const addrs = (await sh("ip -o addr show dev kube-dummy-if")).stdout;
      for (const vip of ["10.96.0.10", "10.96.0.15", "10.96.0.20"]) {
        assert.match(addrs, new RegExp(`${vip}/32`));
      }
      assert.doesNotMatch(addrs, /198\.51\.100\.20/, "DSR VIP is not on the dummy interface");
      const svip = (await sh("ipset list kube-router-svip")).stdout;
      assert.match(svip, /10\.96\.0\.10/);
      assert.match((await sh("ipset list kube-router-svip-prt")).stdout, /10\.96\.0\.10,tcp:80/);
      const save = (await sh("iptables-save")).stdout;
      assert.match(
        save,
        /-A INPUT -m set --match-set kube-router-svip dst -m comment --comment "kube-router proxy" -j KUBE-ROUTER-SERVICES/,
      );
      assert.match(
        save,
        /-A KUBE-ROUTER-DSR -d 198\.51\.100\.20\/32 -p tcp -m tcp --dport 80 -j MARK --set-xmark 0x[0-9a-f]+\/0xffffffff/,
      );

      // The IPVS table (model) holds our services next to the foreign ones.
      const t = parseSave(renderSave(runner.model.table));
      assert.deepEqual(
        [...t.keys()].sort(),
        [
          ...[...t.keys()].filter((k) => k.startsWith("fwm/")),
          "tcp/10.96.0.10:80",
          "tcp/10.96.0.15:80",
          "tcp/10.96.0.20:80",
          "tcp/192.0.2.241:80",
          "tcp/192.0.2.250:80",
        ].sort(),
      );
      assert.equal(t.get("tcp/10.96.0.10:80")!.service.persistence, 600);
      const fwm = [...t.values()].find((e) => e.service.fwmark)!;
      assert.equal(fwm.service.scheduler, "mh");
      assert.equal([...fwm.destinations.values()][0].forward, "tunnel");
      assert.deepEqual(runner.model.timeouts, { tcp: 900, tcpfin: 0, udp: 0 });

      // Real packets through KUBE-ROUTER-SERVICES.
      assert.equal((await lab.tcpProbe("cl", "10.96.0.10", 80)).server, "node-1", "service port accepted");
      assert.equal((await lab.tcpProbe("cl", "10.96.0.15", 80)).status, "refused", "no endpoints: rejected");
      assert.notEqual((await lab.tcpProbe("cl", "10.96.0.10", 22, 800)).status, "connected");

      // No change: no command at all.
      runner.commands = [];
      await proxy.sync(snap(2));
      assert.deepEqual(runner.commands, []);

      // A fresh controller (agent restart) re-reads the kernel: no duplicate jump, no IPVS change.
      runner.commands = [];
      const again = createProxyController(ctx, { healthChecks: false, iptablesBackend: "nft", procfs });
      await again.sync(snap(2));
      await again.stop();
      assert.ok(!runner.commands.includes("ipvsadm -R"), runner.commands.join("\n"));
      const jumps = (await sh("iptables-save")).stdout.split("\n").filter((l) =>
        l.includes("-j KUBE-ROUTER-SERVICES")
      );
      assert.equal(jumps.length, 1, jumps.join("\n"));

      // Service removed: one ipvsadm batch deletes ours only; foreign and excluded untouched.
      runner.commands = [];
      await proxy.sync(snap(3, false));
      assert.ok(runner.commands.filter((c) => c === "ipvsadm -R").length === 1, runner.commands.join("\n"));
      assert.ok(!runner.model.table.has("tcp/10.96.0.10:80"));
      assert.ok(runner.model.table.has("tcp/192.0.2.250:80") && runner.model.table.has("tcp/192.0.2.241:80"));
      assert.doesNotMatch((await sh("ip -o addr show dev kube-dummy-if")).stdout, /10\.96\.0\.10\//);
    } finally {
      await proxy.stop();
    }

    await proxyCleanup(ctx);
    assert.deepEqual(runner.model.services(), ["tcp/192.0.2.241:80", "tcp/192.0.2.250:80"]);
    const after = (await sh("iptables-save; ipset list -n; ip -o addr show; ip -o link show")).stdout;
    assert.doesNotMatch(after, /KUBE-ROUTER|kube-router-|kube-dummy-if/);
    assert.match(after, /-A INPUT -j FOREIGN-CHAIN/);
    assert.match(after, /foreign-set/);
    assert.match(after, /192\.0\.2\.99\/32/);
    await proxyCleanup(ctx); // idempotent
  },
});

Deno.test({
  name: "IPVS mode, dual stack: IPv6 VIP on kube-dummy-if, inet6: ipsets, ip6tables chain with real packets",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    // IPv6 twins of the lab addresses (node-1 2001:db8:250:0::1, pods 2001:db8:251:1::/64);
    // VIPs 2001:db8:96::10 (with endpoints) and 2001:db8:96::15 (none).
    await using lab = await createLab({ prefix: "px", nodes: [{ name: "node-1" }], ipv6: true });
    await lab.addPod("node-1", { name: "cl" });
    const node = lab.node("node-1");
    await lab.serve("node-1", { tcp: [80] });
    const runner = new IpvsModelRunner(new CommandRunner(node.netns));
    const sh = (cmd: string) => lab.exec("node-1", ["sh", "-c", cmd]);
    const ctx: ControllerContext = {
      options: { ...defaultOptions(), serviceProxyMode: "ipvs", enableIpv6: true },
      runner,
      nodeName: "node-1",
      log: logger("proxy-ipvs-test"),
      metrics: new MetricsRegistry(),
      dryRun: false,
    };
    const snap: ClusterSnapshot = {
      ...snapshot({
        services: [
          svc("web", { clusterIPs: ["10.96.0.10", "2001:db8:96::10"], ipFamilies: ["IPv4", "IPv6"] }),
          svc("empty", { clusterIPs: ["2001:db8:96::15"], ipFamilies: ["IPv6"] }),
        ],
        slices: [
          slice("web", [ep("10.251.1.5", "node-1")]),
          slice("web", [ep("2001:db8:251:1::5", "node-1")], { addressType: "IPv6", name: "web-v6" }),
        ],
      }),
      nodes: new Map([["node-1", {
        name: "node-1",
        labels: {},
        annotations: {},
        podCIDRs: [],
        internalIPs: [node.ip, node.ip6!],
        externalIPs: [],
        providerID: "",
      }]]),
    };
    const proxy = createProxyController(ctx, { healthChecks: false, iptablesBackend: "nft" });
    try {
      await proxy.sync(snap);
      assert.match((await sh("ip -o addr show dev kube-dummy-if")).stdout, /2001:db8:96::10\/128/);
      assert.match((await sh("ipset list inet6:kube-router-svip-prt")).stdout, /2001:db8:96::10,tcp:80/);
      assert.match(
        (await sh("ip6tables-save")).stdout,
        /-A INPUT -m set --match-set inet6:kube-router-svip dst -m comment --comment "kube-router proxy" -j KUBE-ROUTER-SERVICES/,
      );
      assert.ok(runner.model.table.has("tcp/[2001:db8:96::10]:80"));
      assert.equal((await lab.tcpProbe("cl", "2001:db8:96::10", 80)).server, "node-1");
      assert.equal((await lab.tcpProbe("cl", "2001:db8:96::15", 80)).status, "refused");
    } finally {
      await proxy.stop();
    }
    await proxyCleanup(ctx);
    assert.doesNotMatch((await sh("ip6tables-save; ipset list -n")).stdout, /KUBE-ROUTER|kube-router-/);
  },
});
