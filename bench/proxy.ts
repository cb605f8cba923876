/**
 * Service proxy benchmark: 10,000 ClusterIP services × 5 endpoints (50,000 real servers).
 *
 * Measures, in one run: plan time; rendered batch sizes (ipvsadm -R and nft -f); the nftables
 * apply time of the whole table inside a throwaway network namespace; and the time from one
 * endpoint change to the kernel holding it (plan + incremental render + `nft -f`), with the
 * same change applied as a full table rewrite as the reference measured in the same run. The IPVS
 * path (no IPVS in this kernel) is measured up to the rendered `ipvsadm -R` batch.
 *
 * Run: `deno run -A bench/proxy.ts [services] [endpointsPerService]` (root, for the namespace).
 * Addresses: VIPs 10.96.0.0/12, endpoints 10.200.0.0/14, node 192.0.2.10, namespace px-bench-*.
 *
 * @module
 */
import { diffTables, IpvsModelRunner, renderBatch } from "../kernel/ipvs/mod.ts";
import { CommandRunner } from "../kernel/exec.ts";
import { desiredIpvsTable, IpvsApplier } from "../controllers/proxy/ipvs_apply.ts";
import { NftApplier } from "../controllers/proxy/nft_apply.ts";
import { plan, Planner } from "../controllers/proxy/plan.ts";
import { ep, nodeA, proxyOptions, slice, snapshot, svc } from "../controllers/proxy/testing.ts";
import type { ClusterSnapshot, EndpointSliceInfo } from "../watch/types.ts";
import { defaultOptions } from "../options/mod.ts";
import { createProxyController } from "../controllers/proxy/mod.ts";
import { logger } from "../observe/log.ts";
import { MetricsRegistry } from "../observe/metrics.ts";
import { objectKey } from "../watch/types.ts";

const N = Number(Deno.args[0] ?? 10_000);
const E = Number(Deno.args[1] ?? 5);

function ipOf(base: number, k: number): string {
  const v = base + k;
  return [(v >>> 24) & 255, (v >>> 16) & 255, (v >>> 8) & 255, v & 255].join(".");
}
const VIP_BASE = (10 << 24) | (96 << 16) | 1;
const EP_BASE = (10 << 24) | (200 << 16) | 1;

function build(): ClusterSnapshot {
  const services = [], slices = [];
  for (let i = 0; i < N; i++) {
    services.push(svc(`s${i}`, { clusterIPs: [ipOf(VIP_BASE, i)] }));
    const eps = Array.from(
      { length: E },
      (_, j) => ep(ipOf(EP_BASE, i * E + j), j % 2 ? "node-a" : "node-b"),
    );
    slices.push({ ...slice(`s${i}`, eps), name: `s${i}-abc` });
  }
  return snapshot({ services, slices });
}

function time<T>(fn: () => T): [T, number] {
  const t0 = performance.now();
  const v = fn();
  return [v, performance.now() - t0];
}

async function timeAsync<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const v = await fn();
  return [v, performance.now() - t0];
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}
function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * p))];
}

/** The snapshot with endpoint j of service i replaced by a fresh address. */
function withChange(s: ClusterSnapshot, i: number, n: number): ClusterSnapshot {
  const slices = new Map(s.endpointSlices);
  const key = objectKey("default", `s${i}-abc`);
  const old = slices.get(key)!;
  const eps = old.endpoints.slice();
  eps[0] = ep(ipOf(EP_BASE, N * E + n), "node-a");
  slices.set(key, { ...old, endpoints: eps } as EndpointSliceInfo);
  return { ...s, revision: s.revision + 1, endpointSlices: slices };
}

const opts = proxyOptions();
const node = nodeA();
const fmt = (ms: number) => `${ms.toFixed(1)} ms`;
const kb = (s: string) => `${(new TextEncoder().encode(s).length / 1024).toFixed(0)} KiB`;

const [snap, tBuild] = time(build);
console.log(
  `scale: ${N} services × ${E} endpoints = ${N * E} real servers (snapshot built in ${fmt(tBuild)})`,
);

const planTimes: number[] = [];
let p = plan(snap, opts, node);
for (let k = 0; k < 5; k++) planTimes.push(time(() => (p = plan(snap, opts, node)))[1]);
console.log(`plan (cold, whole snapshot): median ${fmt(median(planTimes))} (5 runs)`);
const planner = new Planner();
planner.plan(snap, opts, node);

const [ipvsBatch, tIpvsRender] = time(() =>
  renderBatch(diffTables(new Map(), desiredIpvsTable(p), { owned: () => true }))
);
console.log(
  `ipvsadm -R batch (full): ${ipvsBatch.split("\n").length - 1} lines, ${kb(ipvsBatch)}, rendered in ${
    fmt(tIpvsRender)
  }`,
);

const ns = `px-bench-${crypto.randomUUID().slice(0, 6)}`;
const root = new CommandRunner();
await root.run(["ip", "netns", "add", ns]);
// The node's address, as on a real node (IPVS mode routes VIPs with it as preferred source).
await root.run(["ip", "-n", ns, "addr", "add", "192.0.2.10/32", "dev", "lo"]);
try {
  const runner = new CommandRunner(ns);
  const applier = new NftApplier(runner, [4]);
  const [rendered, tRender] = time(() => applier.render(p));
  const full = rendered.script;
  console.log(
    `nft -f transaction (full): ${full.split("\n").length - 1} lines, ${kb(full)}, rendered in ${
      fmt(tRender)
    }`,
  );
  const [, tFull] = await timeAsync(() => applier.apply(p));
  console.log(
    `full plan + render + nft apply: ${fmt(median(planTimes) + tFull)} ` +
      `(plan ${fmt(median(planTimes))}, render ${fmt(tRender)}, nft -f ${fmt(tFull - tRender)})`,
  );

  // One endpoint change → kernel, incremental (ours) vs full rewrite (reference), same run.
  const inc: number[] = [], ref: number[] = [];
  const parts = { plan: [] as number[], render: [] as number[], nft: [] as number[] };
  let cur = snap;
  let lines = 0;
  for (let k = 0; k < 15; k++) {
    cur = withChange(cur, (k * 7919) % N, k);
    // Timed: plan + apply (apply renders, then runs nft -f). The render alone is timed apart.
    const t0 = performance.now();
    const q = planner.plan(cur, opts, node);
    const t1 = performance.now();
    const [r, tr] = time(() => applier.render(q));
    const t2 = performance.now();
    await applier.apply(q);
    const t3 = performance.now();
    inc.push(t1 - t0 + (t3 - t2));
    parts.plan.push(t1 - t0);
    parts.render.push(tr);
    parts.nft.push(t3 - t2 - tr);
    lines = r.script.split("\n").length - 1;
    p = q;
  }
  console.log(
    `one endpoint change → kernel (memoized plan + incremental nft -f): median ${fmt(median(inc))}, p90 ${
      fmt(pct(inc, 0.9))
    }; ` +
      `transaction ${lines} lines; medians: plan ${fmt(median(parts.plan))}, render ${
        fmt(median(parts.render))
      }, ` +
      `nft -f (process incl. ip netns exec) ${fmt(median(parts.nft))}`,
  );
  for (let k = 0; k < 5; k++) {
    cur = withChange(cur, (k * 104729) % N, 100 + k);
    applier.invalidate();
    const [, t] = await timeAsync(async () => {
      await applier.apply(planner.plan(cur, opts, node));
    });
    ref.push(t);
  }
  console.log(
    `reference, same change as a full table rewrite: median ${fmt(median(ref))} → incremental is ${
      (median(ref) / median(inc)).toFixed(1)
    }× faster`,
  );
  // The same, through the controller's sync (what the agent runs: plan, apply, stale-flow check,
  // health, metrics), on a fresh table in the same namespace.
  const ctrl = createProxyController({
    options: { ...defaultOptions(), serviceProxyMode: "nftables" },
    runner,
    nodeName: "node-a",
    log: logger("bench"),
    metrics: new MetricsRegistry(),
    dryRun: false,
  }, { healthChecks: false });
  let csnap = withChange(cur, 1, 900);
  await ctrl.sync(csnap);
  const viaCtrl: number[] = [];
  for (let k = 0; k < 15; k++) {
    csnap = withChange(csnap, (k * 4099) % N, 1000 + k);
    viaCtrl.push((await timeAsync(() => ctrl.sync(csnap)))[1]);
  }
  await ctrl.stop();
  console.log(
    `one endpoint change through ProxyController.sync (nftables mode): median ${fmt(median(viaCtrl))}, p90 ${
      fmt(pct(viaCtrl, 0.9))
    }`,
  );

  // IPVS mode: ip/ipset/iptables run for real in the namespace; ipvsadm runs against the IPVS
  // MODEL (no IPVS in this kernel), so the figures are our side of the work plus the model.
  const ipvsRunner = new IpvsModelRunner(runner);
  const ipvs = new IpvsApplier(ipvsRunner, {
    families: [4],
    backend: "nft",
    excludedCidrs: [],
    options: opts,
    warn: () => {},
  });
  const ipvsPlanner = new Planner();
  // No pod CIDR: its `-m ipvs` SNAT rule cannot load without xt_ipvs (golden-tested instead).
  const ipvsNode = nodeA({ podCIDRs: [] });
  let ipvsSnap = cur;
  const [, tIpvsFull] = await timeAsync(() => ipvs.apply(ipvsPlanner.plan(ipvsSnap, opts, ipvsNode)));
  const incIpvs: number[] = [];
  for (let k = 0; k < 15; k++) {
    ipvsSnap = withChange(ipvsSnap, (k * 613) % N, 200 + k);
    ipvsRunner.commands = [];
    const [, t] = await timeAsync(() => ipvs.apply(ipvsPlanner.plan(ipvsSnap, opts, ipvsNode)));
    incIpvs.push(t);
  }
  console.log(
    `IPVS mode (ipvsadm against the model): full apply ${fmt(tIpvsFull)} ` +
      `(${ipvsRunner.model.table.size} virtual services); one endpoint change (plan + one ipvsadm -R of ` +
      `${ipvsRunner.commands.length} command) median ${fmt(median(incIpvs))}`,
  );
  const listed = JSON.parse(
    (await runner.run(["nft", "-j", "list", "map", "ip", "kube-router-proxy", "endpoints"])).stdout,
  ) as { nftables: Array<{ map?: { elem?: unknown[] } }> };
  const elems = listed.nftables.find((x) => x.map)?.map?.elem?.length ?? 0;
  console.log(`kernel check: the endpoints map holds ${elems} elements (expected ${N * E})`);
} finally {
  await root.run(["ip", "netns", "del", ns]);
}
