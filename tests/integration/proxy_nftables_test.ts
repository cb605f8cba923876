// Integration: the proxy controller in nftables mode, fed literal snapshots, programming a real
// kernel inside lab namespaces; every claim is checked with real packets.
//
// Address conventions (lab defaults): node network 10.250.0.0/24 (node-1 .1, node-2 .2, client
// .100), pod CIDRs 10.251.1.0/24 (node-1) and 10.251.2.0/24 (node-2), service VIPs 10.96.0.0/16,
// external IPs 198.51.100.0/24; the dual-stack test adds the lab's IPv6 twins (2001:db8:250::/64,
// 2001:db8:251:N::/64) and VIP 2001:db8:96::10. Namespaces are prefixed "px".
import assert from "node:assert/strict";
import { defaultOptions } from "../../options/mod.ts";
import type { ControllerContext } from "../../controllers/controller.ts";
import { createProxyController, proxyCleanup } from "../../controllers/proxy/mod.ts";
import { ep, slice, snapshot, svc } from "../../controllers/proxy/testing.ts";
import { CommandRunner, type ExecOptions, type ExecResult, type Runner } from "../../kernel/exec.ts";
import { MetricsRegistry } from "../../observe/metrics.ts";
import { logger } from "../../observe/log.ts";
import { createLab, type Lab } from "../fixtures/lab.ts";
import type { ClusterSnapshot, EndpointSliceInfo, NodeInfo, ServiceInfo } from "../../watch/types.ts";

/** Records every command (to assert "a sync with no change runs nothing"). */
class CountingRunner implements Runner {
  commands: string[] = [];
  constructor(private readonly inner: Runner) {}
  run(argv: readonly string[], options?: ExecOptions): Promise<ExecResult> {
    this.commands.push(argv.join(" "));
    return this.inner.run(argv, options);
  }
}

function nodeInfo(lab: Lab, name: string): NodeInfo {
  const n = lab.node(name);
  return {
    name,
    labels: {},
    annotations: {},
    podCIDRs: [n.podCidr],
    internalIPs: [n.ip],
    externalIPs: [],
    providerID: "",
  };
}

function withNodes(lab: Lab, s: ClusterSnapshot): ClusterSnapshot {
  return { ...s, nodes: new Map(["node-1", "node-2"].map((n) => [n, nodeInfo(lab, n)])) };
}

const opts = {
  ...defaultOptions(),
  serviceProxyMode: "nftables",
  serviceExternalIpRange: ["198.51.100.0/24"],
};

function ctxFor(node: string, runner: Runner, o: Partial<typeof opts> = {}): ControllerContext {
  return {
    options: { ...opts, ...o },
    runner,
    nodeName: node,
    log: logger("proxy-test"),
    metrics: new MetricsRegistry(),
    dryRun: false,
  };
}

async function servers(
  lab: Lab,
  from: string,
  ip: string,
  port: number,
  n: number,
  proto: "tcp" | "udp" = "tcp",
) {
  const res = await lab.probeMany(
    Array.from({ length: n }, () => ({ from, proto, ip, port, timeoutMs: 1500 })),
  );
  return res;
}

Deno.test({
  name:
    "nftables mode: ClusterIP, NodePort, externalIP, spread, affinity, ETP Local, hairpin, reject, incremental",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using lab = await createLab({ prefix: "px", nodes: [{ name: "node-1" }, { name: "node-2" }] });
    const [a1, a2, b1, cl] = await Promise.all([
      lab.addPod("node-1", { name: "a1" }),
      lab.addPod("node-1", { name: "a2" }),
      lab.addPod("node-2", { name: "b1" }),
      lab.addPod("node-1", { name: "cl" }),
    ]);
    const client = await lab.addClient("client");
    await lab.exec("client", ["ip", "route", "add", "198.51.100.0/24", "via", lab.node("node-1").ip]);
    for (const p of [a1, a2, b1]) await lab.serve(p.name, { tcp: [8080], udp: [5353] });
    // What CNI's "hairpinMode": true does: a frame may leave by the bridge port it came in on.
    for (const p of [a1, a2]) {
      await lab.exec("node-1", [
        "ip",
        "link",
        "set",
        "dev",
        p.hostVeth,
        "type",
        "bridge_slave",
        "hairpin",
        "on",
      ]);
    }

    const services: ServiceInfo[] = [
      svc("web", {
        type: "NodePort",
        clusterIPs: ["10.96.0.10"],
        externalIPs: ["198.51.100.10"],
        ports: [{ port: 80, nodePort: 30080 }],
      }),
      svc("sticky", {
        clusterIPs: ["10.96.0.11"],
        sessionAffinity: "ClientIP",
        sessionAffinityTimeout: 300,
      }),
      svc("local", {
        type: "NodePort",
        clusterIPs: ["10.96.0.12"],
        externalTrafficPolicy: "Local",
        ports: [{ port: 80, nodePort: 30082 }],
      }),
      svc("hp", { clusterIPs: ["10.96.0.13"], annotations: { "kube-router.io/service.hairpin": "" } }),
      svc("nohp", { clusterIPs: ["10.96.0.14"] }),
      svc("empty", { clusterIPs: ["10.96.0.15"] }),
    ];
    const webEps = [ep(a1.ip, "node-1"), ep(a2.ip, "node-1"), ep(b1.ip, "node-2")];
    const slices: EndpointSliceInfo[] = [
      slice("web", webEps),
      slice("sticky", webEps),
      slice("local", webEps),
      slice("hp", [ep(a1.ip, "node-1")]),
      slice("nohp", [ep(a2.ip, "node-1")]),
    ];
    const snap1 = withNodes(lab, snapshot({ services, slices }));

    const runner = new CountingRunner(new CommandRunner(lab.node("node-1").netns));
    const ctx = ctxFor("node-1", runner);
    const proxy = createProxyController(ctx, { healthChecks: false });
    try {
      await proxy.sync(snap1);

      // ClusterIP from a pod on the same node: every endpoint gets traffic; pod source kept.
      const r1 = await servers(lab, "cl", "10.96.0.10", 80, 30);
      assert.ok(
        r1.every((r) => r.status === "connected"),
        JSON.stringify(r1.filter((r) => r.status !== "connected")),
      );
      assert.deepEqual(
        new Set(r1.map((r) => r.server)),
        new Set(["a1", "a2", "b1"]),
        "spread over all endpoints",
      );
      assert.ok(
        r1.filter((r) => r.server === "b1").every((r) => r.clientIp === cl.ip),
        "ClusterIP keeps pod source",
      );

      // NodePort from an outside client: served, masqueraded to the node (policy Cluster).
      const r2 = await servers(lab, "client", lab.node("node-1").ip, 30080, 20);
      assert.ok(r2.every((r) => r.status === "connected"));
      assert.deepEqual(new Set(r2.map((r) => r.server)), new Set(["a1", "a2", "b1"]));
      assert.ok(r2.every((r) => r.clientIp !== client.ip), "external traffic is masqueraded");

      // externalIP from the outside client.
      const r3 = await servers(lab, "client", "198.51.100.10", 80, 10);
      assert.ok(r3.every((r) => r.status === "connected"), JSON.stringify(r3));

      // ClientIP affinity: one client, one endpoint.
      const r4 = await servers(lab, "cl", "10.96.0.11", 80, 15);
      assert.ok(r4.every((r) => r.status === "connected"));
      assert.equal(new Set(r4.map((r) => r.server)).size, 1, `affinity: ${r4.map((r) => r.server)}`);

      // externalTrafficPolicy Local: only node-1's endpoints, client source kept.
      const r5 = await servers(lab, "client", lab.node("node-1").ip, 30082, 20);
      assert.ok(r5.every((r) => r.status === "connected"));
      assert.deepEqual(new Set(r5.map((r) => r.server)), new Set(["a1", "a2"]));
      assert.ok(r5.every((r) => r.clientIp === client.ip), "client IP kept");

      // Hairpin: a1 reaches itself through the VIP only with the hairpin annotation.
      const hp = await lab.tcpProbe("a1", "10.96.0.13", 80, 1500);
      assert.equal(hp.status, "connected");
      assert.equal(hp.server, "a1");
      assert.notEqual(hp.clientIp, a1.ip, "hairpin is masqueraded");
      // Without the annotation nothing is masqueraded (the pod answers itself; upstream needs the annotation).
      const nohp = await lab.tcpProbe("a2", "10.96.0.14", 80, 1000);
      assert.ok(!(nohp.status === "connected" && nohp.clientIp !== a2.ip), JSON.stringify(nohp));

      // No endpoints: rejected (ICMP port unreachable → refused).
      for (let i = 0; i < 10; i++) {
        assert.equal((await lab.tcpProbe("cl", "10.96.0.15", 80)).status, "refused");
      }

      // A sync with no change runs no command at all.
      runner.commands = [];
      await proxy.sync({ ...snap1, revision: 2 });
      assert.deepEqual(runner.commands, []);

      // Endpoint change: one incremental transaction (no table replace), and traffic follows.
      const snap2 = withNodes(
        lab,
        snapshot({
          services,
          slices: slices.map((s) => s.serviceName === "web" ? slice("web", [ep(b1.ip, "node-2")]) : s),
          revision: 3,
        }),
      );
      runner.commands = [];
      await proxy.sync(snap2);
      assert.deepEqual(runner.commands, ["nft -f -"]);
      // What the kernel holds reads back as valid nft input (later transactions depend on it).
      const listed = (await lab.exec("node-1", ["nft", "list", "table", "ip", "kube-router-proxy"])).stdout;
      await lab.exec("node-1", ["nft", "-c", "-f", "-"], {
        stdin: `delete table ip kube-router-proxy\n${listed}`,
      });
      const r6 = await servers(lab, "cl", "10.96.0.10", 80, 10);
      assert.ok(r6.every((r) => r.status === "connected" && r.server === "b1"), JSON.stringify(r6));
    } finally {
      await proxy.stop();
    }

    // Cleanup removes our table and leaves a foreign one.
    await lab.exec(
      "node-1",
      ["nft", "add table ip foreign; add chain ip foreign c"].flatMap((x) => x.split(" ")),
    );
    await proxyCleanup(ctx);
    const tables = (await lab.exec("node-1", ["nft", "list", "tables"])).stdout;
    assert.match(tables, /table ip foreign/);
    assert.doesNotMatch(tables, /kube-router-proxy/);
    assert.equal((await lab.tcpProbe("cl", "10.96.0.10", 80, 800)).status === "connected", false);
  },
});

Deno.test({
  name:
    "nftables mode: a UDP endpoint replaced; the client on a fixed source port recovers (stale flow flushed)",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using lab = await createLab({ prefix: "px", nodes: [{ name: "node-1" }, { name: "node-2" }] });
    const [c, u1, u2] = await Promise.all([
      lab.addPod("node-1", { name: "c" }),
      lab.addPod("node-1", { name: "u1" }),
      lab.addPod("node-2", { name: "u2" }),
    ]);
    await lab.serve("u1", { udp: [5353] });
    await lab.serve("u2", { udp: [5353] });
    const dns = svc("dns", { clusterIPs: ["10.96.0.53"], ports: [{ port: 53, protocol: "UDP" }] });
    const sl = (ip: string, node: string) =>
      slice("dns", [ep(ip, node)], { ports: [{ name: "", port: 5353, protocol: "UDP" }] });
    const ctx = ctxFor("node-1", new CommandRunner(lab.node("node-1").netns));
    const proxy = createProxyController(ctx, { healthChecks: false });
    // socat from a fixed source port: the same conntrack flow every time.
    const ask = async () => {
      const r = await lab.exec("c", [
        "sh",
        "-c",
        "echo q | timeout 2 socat -T1 - UDP:10.96.0.53:53,sourceport=40053,reuseaddr",
      ], { okCodes: [0, 1, 124] });
      return r.stdout.trim().split(/\s+/)[0] ?? "";
    };
    try {
      await proxy.sync(withNodes(lab, snapshot({ services: [dns], slices: [sl(u1.ip, "node-1")] })));
      assert.equal(await ask(), "u1");
      assert.equal(await ask(), "u1");
      await proxy.sync(
        withNodes(lab, snapshot({ services: [dns], slices: [sl(u2.ip, "node-2")], revision: 2 })),
      );
      assert.equal(await ask(), "u2", "after the replacement the same client flow reaches the new endpoint");
      const flows = (await lab.exec("node-1", ["conntrack", "-L", "-p", "udp", "--orig-dst", "10.96.0.53"], {
        okCodes: [0, 1],
      }))
        .stdout;
      assert.doesNotMatch(
        flows,
        new RegExp(`src=${u1.ip.replaceAll(".", "\\.")} `),
        "no flow to the old endpoint",
      );
      assert.ok(c.ip);
    } finally {
      await proxy.stop();
      await proxyCleanup(ctx);
    }
  },
});

Deno.test({
  name: "nftables mode, dual stack: IPv6 ClusterIP and NodePort with real packets (ip6 table)",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    // IPv6 twins of the lab addresses: 2001:db8:250:0::1 (node-1), pods 2001:db8:251:1::/64 and
    // 2001:db8:251:2::/64, VIP 2001:db8:96::10.
    await using lab = await createLab({
      prefix: "px",
      nodes: [{ name: "node-1" }, { name: "node-2" }],
      ipv6: true,
    });
    const [w1, w2, cl] = await Promise.all([
      lab.addPod("node-1", { name: "w1" }),
      lab.addPod("node-2", { name: "w2" }),
      lab.addPod("node-1", { name: "cl" }),
    ]);
    await lab.addClient("client");
    for (const p of [w1, w2]) await lab.serve(p.name, { tcp: [8080] });
    const n1 = lab.node("node-1");
    const dual = svc("web6", {
      type: "NodePort",
      clusterIPs: ["10.96.0.10", "2001:db8:96::10"],
      ipFamilies: ["IPv4", "IPv6"],
      ports: [{ port: 80, nodePort: 30080 }],
    });
    const slices = [
      slice("web6", [ep(w1.ip, "node-1"), ep(w2.ip, "node-2")]),
      slice("web6", [ep(w1.ip6!, "node-1"), ep(w2.ip6!, "node-2")], { addressType: "IPv6", name: "web6-v6" }),
    ];
    const snap = snapshot({ services: [dual], slices });
    const nodes = new Map([["node-1", {
      name: "node-1",
      labels: {},
      annotations: {},
      podCIDRs: [n1.podCidr, n1.podCidr6!],
      internalIPs: [n1.ip, n1.ip6!],
      externalIPs: [],
      providerID: "",
    }]]);
    const ctx = ctxFor("node-1", new CommandRunner(n1.netns), { enableIpv6: true });
    const proxy = createProxyController(ctx, { healthChecks: false });
    try {
      await proxy.sync({ ...snap, nodes });
      const v6 = await lab.probeMany(
        Array.from(
          { length: 20 },
          () => ({ from: "cl", proto: "tcp" as const, ip: "2001:db8:96::10", port: 80 }),
        ),
      );
      assert.ok(v6.every((r) => r.status === "connected"), JSON.stringify(v6));
      assert.deepEqual(new Set(v6.map((r) => r.server)), new Set(["w1", "w2"]));
      assert.ok(v6.every((r) => r.clientIp === cl.ip6), "IPv6 ClusterIP keeps the pod source");
      const np = await lab.probeMany(
        Array.from(
          { length: 10 },
          () => ({ from: "client", proto: "tcp" as const, ip: n1.ip6!, port: 30080 }),
        ),
      );
      assert.ok(np.every((r) => r.status === "connected"), JSON.stringify(np));
      const v4 = await lab.tcpProbe("cl", "10.96.0.10", 80);
      assert.equal(v4.status, "connected");
      const tables = (await lab.exec("node-1", ["nft", "list", "tables"])).stdout;
      assert.match(tables, /table ip6 kube-router-proxy/);
    } finally {
      await proxy.stop();
      await proxyCleanup(ctx);
    }
  },
});
