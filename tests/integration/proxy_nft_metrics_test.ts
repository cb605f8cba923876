// Integration: upstream's per-service series (`kube_router_service_*`) in nftables mode, from the
// proxy table's counter sets, moved by real packets in lab namespaces: a pod on node-1 reaching a
// ClusterIP (bridged path) and an outside client reaching a NodePort (routed path), both served by
// pods on node-1. Connections counted exactly; packets and bytes in (client → service) and out
// (service → client); rates from the change between two scrapes.
//
// Addresses (lab defaults): node network 10.250.0.0/24, pods 10.251.1.0/24, VIP 10.96.0.20.
// Namespaces are prefixed "pm".
import assert from "node:assert/strict";
import { defaultOptions } from "../../options/mod.ts";
import { createProxyController } from "../../controllers/proxy/mod.ts";
import { ep, slice, snapshot, svc } from "../../controllers/proxy/testing.ts";
import { CommandRunner } from "../../kernel/exec.ts";
import { MetricsRegistry } from "../../observe/metrics.ts";
import { logger } from "../../observe/log.ts";
import { SERVICE_LABELS } from "../../observe/upstream_metrics.ts";
import { createLab, type Lab } from "../fixtures/lab.ts";
import type { NodeInfo } from "../../watch/types.ts";

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

Deno.test({
  name: "nftables mode: kube_router_service_* counters move with real packets (ClusterIP and NodePort)",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using lab = await createLab({ prefix: "pm", nodes: [{ name: "node-1" }] });
    const [a1, cl] = await Promise.all([
      lab.addPod("node-1", { name: "a1" }),
      lab.addPod("node-1", { name: "cl" }),
    ]);
    await lab.addClient("client");
    await lab.serve(a1.name, { tcp: [8080] });
    const metrics = new MetricsRegistry();
    const proxy = createProxyController({
      options: { ...defaultOptions(), serviceProxyMode: "nftables" },
      runner: new CommandRunner(lab.node("node-1").netns),
      nodeName: "node-1",
      log: logger("proxy-metrics-test"),
      metrics,
      dryRun: false,
    }, { healthChecks: false });
    const nodeIp = lab.node("node-1").ip;
    const get = (name: string, vip: string, port: number) =>
      metrics.gauge(`kube_router_service_${name}`, "", SERVICE_LABELS).get({
        svc_namespace: "default",
        service_name: "web",
        service_vip: vip,
        protocol: "tcp",
        port: String(port),
      }) ?? -1;
    try {
      await proxy.sync({
        ...snapshot({
          services: [
            svc("web", {
              type: "NodePort",
              clusterIPs: ["10.96.0.20"],
              ports: [{ port: 80, nodePort: 30090 }],
            }),
          ],
          slices: [slice("web", [ep(a1.ip, "node-1")])],
        }),
        nodes: new Map([["node-1", nodeInfo(lab, "node-1")]]),
      });
      await metrics.collect();
      assert.equal(get("total_connections", "10.96.0.20", 80), 0, "series exist before any traffic");
      assert.equal(get("packets_in", nodeIp, 30090), 0);

      const N = 5;
      for (let i = 0; i < N; i++) {
        assert.equal((await lab.tcpProbe(cl.name, "10.96.0.20", 80, 1500)).status, "connected");
        assert.equal((await lab.tcpProbe("client", nodeIp, 30090, 1500)).status, "connected");
      }
      const t0 = Date.now();
      await metrics.collect();
      for (const [vip, port] of [["10.96.0.20", 80], [nodeIp, 30090]] as const) {
        const where = `${vip}:${port}`;
        assert.equal(get("total_connections", vip, port), N, `${where}: one connection per probe`);
        // A TCP connection is at least SYN, ACK and FIN/ACK from the client, SYN-ACK and more from the server.
        assert.ok(
          get("packets_in", vip, port) >= 3 * N,
          `${where}: packets in ${get("packets_in", vip, port)}`,
        );
        assert.ok(
          get("packets_out", vip, port) >= 2 * N,
          `${where}: packets out ${get("packets_out", vip, port)}`,
        );
        assert.ok(get("bytes_in", vip, port) >= 40 * get("packets_in", vip, port), `${where}: bytes in`);
        assert.ok(get("bytes_out", vip, port) >= 40 * get("packets_out", vip, port), `${where}: bytes out`);
      }

      // Rates: the change since the previous scrape over the time between them.
      const before = get("total_connections", "10.96.0.20", 80);
      for (let i = 0; i < N; i++) {
        assert.equal((await lab.tcpProbe(cl.name, "10.96.0.20", 80, 1500)).status, "connected");
      }
      await metrics.collect();
      const elapsed = (Date.now() - t0) / 1000;
      assert.equal(get("total_connections", "10.96.0.20", 80), before + N);
      const cps = get("cps", "10.96.0.20", 80);
      assert.ok(cps > 0 && cps <= N / (elapsed * 0.5), `cps ${cps} over ${elapsed}s`);
      assert.ok(get("pps_in", "10.96.0.20", 80) > 0 && get("bps_out", "10.96.0.20", 80) > 0);
      assert.equal(get("cps", nodeIp, 30090), 0, "no new NodePort connection since the last scrape");

      // An endpoint change keeps the counters (the element is not re-created).
      const [a2] = await Promise.all([lab.addPod("node-1", { name: "a2" })]);
      await lab.serve(a2.name, { tcp: [8080] });
      await proxy.sync({
        ...snapshot({
          services: [
            svc("web", {
              type: "NodePort",
              clusterIPs: ["10.96.0.20"],
              ports: [{ port: 80, nodePort: 30090 }],
            }),
          ],
          slices: [slice("web", [ep(a2.ip, "node-1")])],
          revision: 2,
        }),
        nodes: new Map([["node-1", nodeInfo(lab, "node-1")]]),
      });
      await metrics.collect();
      assert.equal(get("total_connections", "10.96.0.20", 80), before + N);
    } finally {
      await proxy.stop();
    }
  },
});
