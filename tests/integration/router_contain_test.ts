/**
 * The router contains what the kernel refuses: a node annotated `kube-router.io/pod-cidr=0.0.0.0/0`
 * passes the plan (it is a CIDR), but the real `ipset restore` refuses a /0 in the hash:net
 * `kube-router-pod-subnets`. Before containment the whole netfilter stage failed, so no node's
 * pod CIDR or IP reached the sets. (The plan refuses a /0 overlapping another node's pod CIDR, so
 * the other nodes here have none yet, as new nodes may.) Now only that
 * value is left out, every other node is applied, and the Node is named (object, field, value)
 * in the log, the metric and /healthz. Namespace `rt-cn…` of its own; addresses 10.213.0.0/16
 * exist only as data in it.
 */
import assert from "node:assert/strict";
import { BgpSpeaker } from "../../bgp/mod.ts";
import { defaultOptions } from "../../options/mod.ts";
import type { ControllerContext } from "../../controllers/controller.ts";
import { RouterController } from "../../controllers/router/mod.ts";
import { nodesOfLine, nodesOfValue } from "../../controllers/router/contain.ts";
import { applyKernelPlan } from "../../controllers/router/ip_apply.ts";
import { kernelPlan, type RouteContext, tunnelName } from "../../controllers/router/routes.ts";
import { CommandRunner } from "../../kernel/exec.ts";
import type { Logger } from "../../observe/log.ts";
import { MetricsRegistry } from "../../observe/metrics.ts";
import { emptySnapshot, type NodeInfo } from "../../watch/types.ts";

function recordingLog(lines: string[]): Logger {
  const rec = (level: string) => (msg: string, props?: Record<string, unknown>) => {
    lines.push(`${level} ${msg.replace(/\{(\w+)\}/g, (_, k) => String(props?.[k]))}`);
  };
  return { info: rec("I"), warn: rec("W"), error: rec("E"), debug: rec("D") } as unknown as Logger;
}

function node(
  n: number,
  annotations: Record<string, string> = {},
  podCIDRs = [`10.213.${n}.0/24`],
): NodeInfo {
  return {
    name: `node-${n}`,
    labels: {},
    annotations,
    podCIDRs,
    internalIPs: [`10.213.0.${n}`],
    externalIPs: [],
    providerID: "",
  };
}

Deno.test({
  name: "router: a node value ipset refuses is left out and named; every other node is applied",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const ns = `rt-cn-${crypto.randomUUID().slice(0, 8)}`;
    const root = new CommandRunner();
    const tmp = await Deno.makeTempDir({ prefix: "kr-rt-contain-" });
    await root.run(["ip", "netns", "add", ns]);
    const run = new CommandRunner(ns);
    try {
      await run.run(["ip", "-batch", "-"], {
        stdin:
          "link set lo up\nlink add name rcu0 type bridge\nlink set rcu0 up\naddr add 10.213.0.1/24 dev rcu0\n",
      });
      const lines: string[] = [];
      let health: string[] = [];
      const ctx: ControllerContext = {
        options: {
          ...defaultOptions(),
          enableOverlay: false,
          gobgpAdminPort: 0,
          injectedRoutesSyncPeriod: 0,
        },
        runner: run,
        nodeName: "node-1",
        log: recordingLog(lines),
        metrics: new MetricsRegistry(),
        dryRun: false,
        healthNote: (l) => health = l,
      };
      const c = new RouterController(ctx, {
        cniConfPath: `${tmp}/10-kuberouter.conf`,
        speakerFactory: (cfg) => new BgpSpeaker({ ...cfg, listen: false }),
      });
      const abort = new AbortController();
      await c.start(abort.signal);
      const bad = node(3, { "kube-router.io/pod-cidr": "0.0.0.0/0" });
      const snap = (n3: NodeInfo, revision: number) => ({
        ...emptySnapshot(),
        revision,
        // No pod CIDR on the others: the plan refuses a /0 that overlaps another node's CIDR.
        nodes: new Map([["node-1", node(1, {}, [])], ["node-2", node(2, {}, [])], ["node-3", n3]]),
      });
      try {
        await c.sync(snap(bad, 1), abort.signal); // Before containment: throws "router netfilter (IPv4)".
        assert.deepEqual([...c.refused.entries.keys()], ["Node node-3"], lines.join("\n"));
        assert.ok(
          lines.some((l) =>
            /^E Node node-3 left out of the router: the kernel refused annotation kube-router\.io\/pod-cidr "0\.0\.0\.0\/0" \(ipset refused "add .* 0\.0\.0\.0\/0": .*CIDR parameter/
              .test(l)
          ),
          lines.join("\n"),
        );
        assert.equal(
          ctx.metrics.counter("kube_router_router_objects_refused_total", "").get({ kind: "Node" }),
          1,
        );
        assert.equal(health.length, 1);
        assert.match(health[0], /^router: Node node-3 left out/);
        const sets = (await run.run(["ipset", "save"])).stdout;
        assert.doesNotMatch(sets, /0\.0\.0\.0/);
        // Only the refused value is left out: node-3's address is in the node set.
        assert.match(sets, /add kube-router-node-ips 10\.213\.0\.3/);
        assert.match(sets, /add kube-router-node-ips 10\.213\.0\.2/);

        // Fixed: applied at its next change, the note cleared.
        await c.sync(snap(node(3), 2), abort.signal);
        assert.equal(c.refused.entries.size, 0);
        assert.deepEqual(health, []);
        assert.match(
          (await run.run(["ipset", "save"])).stdout,
          /add kube-router-pod-subnets 10\.213\.3\.0\/24/,
        );
      } finally {
        abort.abort();
        await c.stop();
      }
    } finally {
      await root.run(["ip", "netns", "del", ns], { okCodes: [0, 1] });
      await Deno.remove(tmp, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "router: an overlay tunnel the kernel refuses is left out and traced to its Node; other routes applied",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    // This kernel has no IPIP: `link add … type ipip` is refused for real ("Unknown device type").
    // node-2 (10.213.0.2) shares our subnet and needs no tunnel; node-3 (10.214.0.3) needs one.
    const ns = `rt-cn-${crypto.randomUUID().slice(0, 8)}`;
    const root = new CommandRunner();
    await root.run(["ip", "netns", "add", ns]);
    const run = new CommandRunner(ns);
    try {
      await run.run(["ip", "-batch", "-"], {
        stdin:
          "link set lo up\nlink add name rcu0 type bridge\nlink set rcu0 up\naddr add 10.213.0.1/24 dev rcu0\n",
      });
      const ctx: RouteContext = {
        overlay: { enabled: true, type: "subnet", encap: "ipip", encapPort: 5555 },
        localSubnets: ["10.213.0.0/24"],
        nodeIp: { v4: "10.213.0.1" },
        nodeIps: new Set(["10.213.0.2", "10.214.0.3"]),
        localPodCidrs: ["10.213.1.0/24"],
      };
      const kp = kernelPlan([
        { prefix: "10.213.2.0/24", nextHop: "10.213.0.2" },
        { prefix: "10.213.3.0/24", nextHop: "10.214.0.3" },
      ], ctx);
      const empty = { routes: [], neighbours: [], fdb: [], rules: [], tunnels: [] };
      // Before containment: throws at the tunnel line, and no route at all is applied.
      const r = await applyKernelPlan(run, kp, empty);
      const tun = tunnelName("10.214.0.3");
      assert.deepEqual(r.refusedLines.map((l) => l.line.split(" ").slice(0, 4).join(" ")), [
        `link add name ${tun}`,
        `link set dev ${tun}`,
      ]);
      assert.match(r.refusedLines[0].error, /Unknown device type/);
      assert.deepEqual(r.state.tunnels, [], "the refused tunnel is not believed present");
      const routes = (await run.run(["ip", "route", "show", "proto", "17"])).stdout;
      assert.match(routes, /10\.213\.2\.0\/24 via 10\.213\.0\.2/, "the other node's route is applied");
      assert.doesNotMatch(routes, /10\.213\.3\.0/);
      assert.match((await run.run(["ip", "rule", "show"])).stdout, /from 10\.213\.1\.0\/24 lookup 77/);
      // Each refusal is traced to node-3, by its tunnel and by its routes.
      const plan = {
        local: { name: "node-1", ipv4: "10.213.0.1", podCIDRs: ["10.213.1.0/24"], annotations: {} },
        remoteNodes: [
          { name: "node-2", ipv4: "10.213.0.2", podCIDRs: ["10.213.2.0/24"], annotations: {} },
          { name: "node-3", ipv4: "10.214.0.3", podCIDRs: ["10.213.3.0/24"], annotations: {} },
        ],
      };
      for (const l of r.refusedLines) {
        assert.deepEqual(nodesOfLine(plan, l.line, l.error).map((o) => o.object), ["Node node-3"], l.line);
      }
      assert.ok(r.failed.length > 0);
      for (const f of r.failed) {
        const dst = nodesOfValue(plan, f.op.route.dst, f.error);
        const via = nodesOfValue(plan, f.op.route.via ?? "", f.error);
        assert.deepEqual([...dst, ...via].map((o) => o.object).slice(0, 1), ["Node node-3"], f.op.route.dst);
      }
    } finally {
      await root.run(["ip", "netns", "del", ns], { okCodes: [0, 1] });
    }
  },
});
