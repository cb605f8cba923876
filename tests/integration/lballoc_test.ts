/**
 * The LoadBalancer allocator against a real (private) kube-apiserver: two allocator instances
 * race for the Lease `kube-router-lballoc`; exactly one leads, services get distinct addresses
 * from the pool, and when the leader dies (no lease release, like a crash) the other takes over
 * after the lease expires (15 s, upstream's timing) and keeps allocating.
 *
 * Addresses: pool 192.0.2.0/29 (usable .1-.6) and 2001:db8:1b::/126; services in namespace
 * `rt-lb`. A private API server is used because the allocator acts on every service of the
 * cluster.
 */
import assert from "node:assert/strict";
import * as k8s from "@kubernetes/client-node";
import { defaultOptions } from "../../options/mod.ts";
import type { ControllerContext } from "../../controllers/controller.ts";
import { LEASE_NAME, LoadBalancerController } from "../../controllers/loadbalancer/mod.ts";
import { runController } from "../../controllers/runner.ts";
import { CommandRunner } from "../../kernel/exec.ts";
import { logger } from "../../observe/log.ts";
import { MetricsRegistry } from "../../observe/metrics.ts";
import { apiSource } from "../../watch/mod.ts";
import { loadKubeConfig } from "../../watch/client_node_config.ts";
import { startApiServer } from "../fixtures/apiserver.ts";

const NS = "rt-lb";

async function waitUntil(what: string, ms: number, check: () => Promise<boolean> | boolean): Promise<number> {
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    if (await check()) return Date.now() - t0;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

function svcYaml(name: string, extra = ""): string {
  return `apiVersion: v1
kind: Service
metadata: { name: ${name}, namespace: ${NS} }
spec:
  type: LoadBalancer
  loadBalancerClass: kube-router
  ports: [{ port: 80, protocol: TCP }]
${extra}`;
}

Deno.test({
  name: "lballoc: two allocators race for the lease; one leads; distinct IPs; failover after leader death",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const api = await startApiServer();
    const abort = new AbortController();
    const instances: Array<{ c: LoadBalancerController; abort: AbortController; done: Promise<void> }> = [];
    try {
      await api.kubectl(["create", "namespace", NS]);
      const options = {
        ...defaultOptions(),
        loadbalancerIpRange: ["192.0.2.0/29", "2001:db8:1b::/126"],
        loadbalancerSyncPeriod: 5_000,
      };
      const start = async (id: string) => {
        const a = new AbortController();
        abort.signal.addEventListener("abort", () => a.abort(), { once: true });
        const kc = loadKubeConfig({ kubeconfig: api.kubeconfigPath });
        const ctx: ControllerContext = {
          options,
          runner: new CommandRunner(),
          nodeName: id,
          log: logger("lballoc", id),
          metrics: new MetricsRegistry(),
          dryRun: false,
          api: kc,
        };
        const c = new LoadBalancerController(ctx, { namespace: NS, identity: id, releaseOnStop: false });
        const source = await apiSource({ kubeconfig: api.kubeconfigPath });
        await source.ready;
        await c.start(a.signal);
        const h = runController(c, source, { signal: a.signal, minIntervalMs: 50 });
        const done = h.done.then(() => c.stop()).then(() => source.close());
        instances.push({ c, abort: a, done });
        return c;
      };
      const [a, b] = await Promise.all([start("alloc-a"), start("alloc-b")]);
      await waitUntil("a leader", 20_000, () => a.leading || b.leading);
      // Stays exactly one over several renew rounds.
      for (let i = 0; i < 10; i++) {
        assert.equal(Number(a.leading) + Number(b.leading), 1, "exactly one leader");
        await new Promise((r) => setTimeout(r, 300));
      }
      const leader = a.leading ? a : b, follower = a.leading ? b : a;
      const kc = loadKubeConfig({ kubeconfig: api.kubeconfigPath });
      const coord = kc.makeApiClient(k8s.CoordinationV1Api);
      const lease = await coord.readNamespacedLease({ name: LEASE_NAME, namespace: NS });
      assert.equal(lease.spec?.holderIdentity, leader.identity);
      assert.equal(lease.spec?.leaseDurationSeconds, 15);

      await api.kubectl(["apply", "-f", "-"], {
        stdin: [
          svcYaml("s1"),
          svcYaml("s2"),
          svcYaml("s3", "  ipFamilyPolicy: PreferDualStack\n  ipFamilies: [IPv4]\n"),
          svcYaml("other").replace("loadBalancerClass: kube-router", "loadBalancerClass: example.com/other"),
        ].join("---\n"),
      });
      const core = kc.makeApiClient(k8s.CoreV1Api);
      const ingress = async (name: string) =>
        ((await core.readNamespacedService({ name, namespace: NS })).status?.loadBalancer?.ingress ?? []).map(
          (i) => i.ip!,
        );
      await waitUntil("s1..s3 allocated", 20_000, async () => {
        for (const s of ["s1", "s2", "s3"]) if ((await ingress(s)).length === 0) return false;
        return true;
      });
      const ips = [...await ingress("s1"), ...await ingress("s2"), ...await ingress("s3")];
      assert.equal(new Set(ips).size, ips.length, `distinct: ${ips}`);
      console.log(`allocated: s1=${await ingress("s1")} s2=${await ingress("s2")} s3=${await ingress("s3")}`);
      // PreferDualStack gets one address per family the API server gave the service.
      for (const ip of ips) assert.match(ip, /^(192\.0\.2\.[1-6]|2001:db8:1b::[0-3]?)$/);
      const s3svc = await core.readNamespacedService({ name: "s3", namespace: NS });
      assert.equal((await ingress("s3")).length, s3svc.spec?.ipFamilies?.length);
      assert.deepEqual(await ingress("other"), [], "a service of another class is left alone");
      assert.equal(follower.written, 0, "the follower wrote nothing");

      // The leader dies without releasing the lease; the follower takes over after expiry.
      const li = instances.find((x) => x.c === leader)!;
      li.abort.abort();
      await li.done;
      const t = await waitUntil("failover", 25_000, () => follower.leading);
      console.log(`failover after ${t} ms (lease 15 s)`);
      await api.kubectl(["apply", "-f", "-"], { stdin: svcYaml("s4") });
      await waitUntil("s4 allocated by the new leader", 15_000, async () => (await ingress("s4")).length > 0);
      const s4 = await ingress("s4");
      assert.ok(!ips.includes(s4[0]), `s4 got a fresh address ${s4}`);
      assert.ok(follower.written >= 1);
    } finally {
      abort.abort();
      await Promise.all(instances.map((i) => i.done.catch(() => {})));
      await api.stop();
    }
  },
});
