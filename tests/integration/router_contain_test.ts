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
import { defaultOptions } from "../../cmd/options.ts";
import type { ControllerContext } from "../../controllers/controller.ts";
import { RouterController } from "../../controllers/router/mod.ts";
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
