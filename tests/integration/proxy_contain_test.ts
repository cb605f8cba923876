/**
 * A batch a kernel tool refuses in the proxy's IPVS mode is contained: the refusal is traced to
 * its Service, that Service is left out (none of its VIPs half-served), every other Service is
 * applied, and the refusal is logged by object, field and value, counted, and shown under
 * /healthz. Before containment, one refused Service failed the whole sync and kept every other
 * Service stale.
 *
 * Two refusals: `ipvsadm -R` refusing a scheduler the kernel lacks (this kernel has no IPVS, so
 * ipvsadm runs against the IPVS model with `missingSchedulers`, the fault a kernel without
 * `ip_vs_mh` shows; ipvsadm goes on after the refused line and exits with the last line's status,
 * as the real one does), and the real `ipset restore` refusing an unspecified address (0.0.0.0 as an
 * externalIP; conversion rejects it, so it stands for a value no check foresees). Everything but
 * ipvsadm is real, in a lab namespace: node-1 10.250.0.1, pod "cl", VIPs 10.96.0.0/16.
 */
import assert from "node:assert/strict";
import { defaultOptions } from "../../options/mod.ts";
import type { ControllerContext } from "../../controllers/controller.ts";
import { createProxyController } from "../../controllers/proxy/mod.ts";
import { ep, procFsLimitedTo, slice, snapshot, svc } from "../../controllers/proxy/testing.ts";
import { CommandRunner } from "../../kernel/exec.ts";
import { IpvsModelRunner } from "../../kernel/ipvs/model_runner.ts";
import type { Logger } from "../../observe/log.ts";
import { MetricsRegistry } from "../../observe/metrics.ts";
import type { ClusterSnapshot, ServiceInfo } from "../../watch/types.ts";
import { createLab } from "../fixtures/lab.ts";

function recordingLog(lines: string[]): Logger {
  const rec = (level: string) => (msg: string, props?: Record<string, unknown>) => {
    lines.push(`${level} ${msg.replace(/\{(\w+)\}/g, (_, k) => String(props?.[k]))}`);
  };
  return { info: rec("I"), warn: rec("W"), error: rec("E"), debug: rec("D") } as unknown as Logger;
}

Deno.test({
  name: "IPVS mode: a Service the kernel refuses is left out and named; every other Service is applied",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using lab = await createLab({ prefix: "pxc", nodes: [{ name: "node-1" }] });
    await lab.addPod("node-1", { name: "cl" });
    const node = lab.node("node-1");
    await lab.serve("node-1", { tcp: [80] });
    const runner = new IpvsModelRunner(new CommandRunner(node.netns));
    runner.model.missingSchedulers.add("mh");
    const sh = async (cmd: string) => (await lab.exec("node-1", ["sh", "-c", cmd])).stdout;

    const lines: string[] = [];
    let health: string[] = [];
    const metrics = new MetricsRegistry();
    const ctx: ControllerContext = {
      options: { ...defaultOptions(), serviceProxyMode: "ipvs", serviceExternalIpRange: ["0.0.0.0/0"] },
      runner,
      nodeName: "node-1",
      log: recordingLog(lines),
      metrics,
      dryRun: false,
      healthNote: (l) => health = l,
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
    const maglev = svc("maglev", {
      clusterIPs: ["10.96.0.30"],
      annotations: { "kube-router.io/service.scheduler": "mh" },
    });
    const snap = (revision: number, services: ServiceInfo[]): ClusterSnapshot => ({
      ...snapshot({
        revision,
        services: [
          svc("web", { clusterIPs: ["10.96.0.10"] }),
          svc("other", { clusterIPs: ["10.96.0.40"] }),
          ...services,
        ],
        slices: ["web", "other", "maglev", "zero"].map((s) => slice(s, [ep("10.251.1.5", "node-1")])),
      }),
      nodes,
    });
    const procfs = await procFsLimitedTo([lab.netnsOf("cl")]);
    const proxy = createProxyController(ctx, { healthChecks: false, iptablesBackend: "nft", procfs });
    try {
      // 1. ipvsadm -R refuses the maglev service: it alone is left out.
      await proxy.sync(snap(1, [maglev])); // Before containment: throws here, nothing after applied.
      assert.deepEqual([...proxy.refused.entries.keys()], ["Service default/maglev"]);
      assert.ok(
        lines.some((l) =>
          /^E Service default\/maglev left out of the proxy: the kernel refused spec\.clusterIP "10\.96\.0\.30:80\/tcp" \(ipvsadm -R refused IPVS service tcp\/10\.96\.0\.30:80: .*Scheduler or persistence engine not found/
            .test(l)
        ),
        lines.join("\n"),
      );
      assert.equal(
        metrics.counter("kube_router_proxy_objects_refused_total", "").get({ kind: "Service" }),
        1,
      );
      assert.equal(health.length, 1);
      assert.match(health[0], /^proxy: Service default\/maglev left out/);
      const keys = [...runner.model.table.keys()].sort();
      assert.deepEqual(keys, ["tcp/10.96.0.10:80", "tcp/10.96.0.40:80"]);
      // Nothing of the refused Service is half-applied: no VIP on kube-dummy-if, none in the sets.
      assert.doesNotMatch(await sh("ip -o addr show dev kube-dummy-if"), /10\.96\.0\.30\//);
      assert.doesNotMatch(await sh("ipset save"), /10\.96\.0\.30/);
      assert.match(await sh("ipset save"), /10\.96\.0\.40,tcp:80/);
      // The rest serves real packets (the node stands in for IPVS on :80).
      assert.equal((await lab.tcpProbe("cl", "10.96.0.10", 80)).server, "node-1");

      // A resync while it is still refused: nothing is tried again, the sync succeeds.
      await proxy.sync(snap(2, [maglev]));
      assert.equal(
        metrics.counter("kube_router_proxy_objects_refused_total", "").get({ kind: "Service" }),
        1,
      );

      // 2. The real ipset refuses 0.0.0.0 (hash:ip holds no null address): that Service is left out.
      const zero = svc("zero", { clusterIPs: ["10.96.0.50"], externalIPs: ["0.0.0.0"] });
      await proxy.sync(snap(3, [maglev, zero]));
      assert.deepEqual([...proxy.refused.entries.keys()].sort(), [
        "Service default/maglev",
        "Service default/zero",
      ]);
      assert.ok(
        lines.some((l) =>
          /^E Service default\/zero left out of the proxy: the kernel refused spec\.externalIPs "0\.0\.0\.0:80\/tcp" \(ipset refused "add .* 0\.0\.0\.0.*": .*Null-valued element/
            .test(l)
        ),
        lines.join("\n"),
      );
      assert.doesNotMatch(await sh("ip -o addr show dev kube-dummy-if"), /0\.0\.0\.0|10\.96\.0\.50/);
      assert.ok(!runner.model.table.has("tcp/10.96.0.50:80"));
      assert.equal((await lab.tcpProbe("cl", "10.96.0.40", 80)).server, "node-1");

      // 3. Fixed objects are applied at their next change: maglev on rr, zero without 0.0.0.0.
      const fixed = { ...maglev, annotations: {} };
      await proxy.sync(snap(4, [fixed, { ...zero, externalIPs: [] }]));
      assert.equal(proxy.refused.entries.size, 0);
      assert.deepEqual(health, [], "the health note is cleared");
      assert.ok(runner.model.table.has("tcp/10.96.0.30:80") && runner.model.table.has("tcp/10.96.0.50:80"));
      assert.equal(metrics.gauge("kube_router_proxy_objects_refused", "").get({}), 0);
    } finally {
      await proxy.stop();
    }
  },
});
