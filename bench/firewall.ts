/**
 * Network policy firewall benchmark: a generated cluster of 10,000 pods in 500 namespaces with
 * 2,000 policies (four per namespace: deny-all for databases, frontend→backend on a port,
 * ingress from labelled namespaces on a named port, egress to an ipBlock with except + DNS), on
 * 10 nodes, so this node has 1,000 local pods. Prints plan time, rendered rules and set entries,
 * the first full apply inside a throwaway network namespace, the no-op resync, and the time from
 * one pod-label change to its rules being in the kernel, with ratios against a reference
 * measured in the same run: a full rewrite of every chain and set (what upstream does each sync).
 * Also the agent's RSS.
 *
 *   deno run -A bench/firewall.ts [pods=10000] [namespaces=500] [policies=2000] [nodes=10]
 *
 * Needs root (creates and removes a network namespace `fwbench<random>`).
 */
import { CommandRunner } from "../kernel/exec.ts";
import { cleanupIptables, IptablesApplier } from "../controllers/firewall/apply.ts";
import { cleanupNft, NftApplier } from "../controllers/firewall/apply_nft.ts";
import { FirewallPlanner } from "../controllers/firewall/plan.ts";
import { fwOptions, node, ns, pod, policy, sel, snapshot } from "../controllers/firewall/testing.ts";
import type { NetworkPolicyInfo, PodInfo } from "../watch/types.ts";

const PODS = Number(Deno.args[0] ?? 10_000);
const NAMESPACES = Number(Deno.args[1] ?? 500);
const POLICIES = Number(Deno.args[2] ?? 2_000);
const NODES = Number(Deno.args[3] ?? 10);
const ME = "node-0";

function ip(i: number): string {
  return `10.${200 + Math.floor(i / 65536)}.${Math.floor(i / 256) % 256}.${i % 256}`;
}

const apps = ["frontend", "backend", "db", "cache", "worker"];
const pods: PodInfo[] = [];
for (let i = 0; i < PODS; i++) {
  const n = i % NAMESPACES;
  pods.push(
    pod(`ns-${n}`, `pod-${i}`, ip(i + 256), { app: apps[i % apps.length], "pod-index": String(i % 7) }, {
      nodeName: `node-${Math.floor(i / NAMESPACES) % NODES}`,
      ports: [["http", 8080 + (i % 3), "TCP"], ["dns", 53, "UDP"]],
    }),
  );
}
const namespaces = Array.from({ length: NAMESPACES }, (_, n) => ns(`ns-${n}`, { team: `t${n % 25}` }));
const policies: NetworkPolicyInfo[] = [];
for (let k = 0; k < POLICIES; k++) {
  const n = `ns-${k % NAMESPACES}`;
  switch (Math.floor(k / NAMESPACES) % 4) {
    case 0:
      policies.push(policy(n, `deny-db-${k}`, { podSelector: sel({ app: "db" }) }));
      break;
    case 1:
      policies.push(policy(n, `fe-to-be-${k}`, {
        podSelector: sel({ app: "backend" }),
        ingress: [{
          peers: [{ podSelector: sel({ app: "frontend" }) }],
          ports: [{ protocol: "TCP", port: 8080 }],
        }],
      }));
      break;
    case 2:
      policies.push(policy(n, `from-team-${k}`, {
        podSelector: sel({ app: "frontend" }),
        ingress: [{
          peers: [{ namespaceSelector: sel({ team: `t${k % 25}` }) }],
          ports: [{ protocol: "TCP", port: "http" }],
        }],
      }));
      break;
    default:
      policies.push(policy(n, `egress-${k}`, {
        podSelector: sel({}, [{ key: "app", operator: "In", values: ["worker", "cache"] }]),
        policyTypes: ["Egress"],
        egress: [
          { peers: [{ ipBlock: { cidr: "10.0.0.0/8", except: ["10.99.0.0/16"] } }], ports: [] },
          { peers: [{ namespaceSelector: sel({ team: "t0" }) }], ports: [{ protocol: "UDP", port: 53 }] },
        ],
      }));
  }
}
const nodes = Array.from({ length: NODES }, (_, i) => node(`node-${i}`, `192.0.2.${i + 1}`));
let snap = snapshot({ pods, namespaces, policies, nodes });
const options = fwOptions();

function ms(t0: number): number {
  return performance.now() - t0;
}
const f1 = (x: number) => x.toFixed(1);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// Plan (one planner for the whole run, as the controller keeps one).
const planner = new FirewallPlanner();
planner.plan(snap, options, ME); // warm-up (JIT)
let t = performance.now();
const plan = planner.plan(snap, options, ME);
const planMs = ms(t);
const rules = plan.families.reduce((n, f) => n + [...f.chains.values()].reduce((m, r) => m + r.length, 0), 0);
const chains = plan.families.reduce((n, f) => n + f.chains.size, 0);
const sets = plan.families.reduce((n, f) => n + f.sets.size, 0);
const entries = plan.families.reduce(
  (n, f) => n + [...f.sets.values()].reduce((m, s) => m + s.entries.length, 0),
  0,
);
const local = pods.filter((p) => p.nodeName === ME).length;

console.log(
  `cluster: ${PODS} pods, ${NAMESPACES} namespaces, ${POLICIES} policies, ${NODES} nodes (${local} pods local)`,
);
console.log(`plan: ${f1(planMs)} ms; ${chains} chains, ${rules} rules, ${sets} sets, ${entries} set entries`);
if (plan.problems.length) {
  console.log(`plan problems: ${plan.problems.length} (first: ${JSON.stringify(plan.problems[0])})`);
}

const netns = `fwbench${crypto.randomUUID().slice(0, 8)}`;
const root = new CommandRunner();
await root.run(["ip", "netns", "add", netns]);
try {
  const inner = new CommandRunner(netns);
  /** Wall time spent in kernel tools, to split apply time into tools vs. our own work. */
  let toolMs = 0;
  const runner = {
    async run(argv: readonly string[], o?: import("../kernel/exec.ts").ExecOptions) {
      const t0 = performance.now();
      try {
        return await inner.run(argv, o);
      } finally {
        toolMs += performance.now() - t0;
      }
    },
  };
  for (const backend of ["iptables-nft", "iptables-legacy", "nftables"] as const) {
    const mk = () =>
      backend === "nftables"
        ? new NftApplier(runner)
        : new IptablesApplier(runner, { backend: backend === "iptables-nft" ? "nft" : "legacy" });
    const applier = mk();
    t = performance.now();
    await applier.apply(planner.plan(snap, options, ME));
    const firstMs = ms(t);
    const noop = await applier.apply(planner.plan(snap, options, ME));

    // One pod-label change: a frontend pod in ns-1 stops being a frontend (peer sets and, for a
    // local pod, its own chain change). Timed from the new snapshot to the kernel holding it.
    const changeOne = (v: string) => {
      const key = [...snap.pods.keys()].find((k) =>
        snap.pods.get(k)!.nodeName === ME && snap.pods.get(k)!.labels.app === (v === "x" ? "frontend" : "x")
      )!;
      const p = snap.pods.get(key)!;
      const next = new Map(snap.pods);
      next.set(key, { ...p, labels: { ...p.labels, app: v } });
      snap = { ...snap, revision: snap.revision + 1, pods: next };
    };
    // Median of 5 toggles (the machine is shared; single runs are noisy).
    const oneRuns: number[] = [];
    const planRuns: number[] = [];
    let one = noop;
    const toolRuns: number[] = [];
    for (let k = 0; k < 5; k++) {
      changeOne(k % 2 === 0 ? "x" : "frontend");
      toolMs = 0;
      t = performance.now();
      const p = planner.plan(snap, options, ME);
      planRuns.push(ms(t));
      one = await applier.apply(p);
      oneRuns.push(ms(t));
      toolRuns.push(toolMs);
    }
    changeOne("frontend");
    await applier.apply(planner.plan(snap, options, ME));
    const oneMs = median(oneRuns);
    const noopRuns: number[] = [];
    for (let k = 0; k < 5; k++) {
      t = performance.now();
      await applier.apply(planner.plan(snap, options, ME));
      noopRuns.push(ms(t));
    }
    // Reference: the same change applied as a full rewrite of every chain and set.
    const fullRuns: number[] = [];
    for (let k = 0; k < 3; k++) {
      changeOne(k % 2 === 0 ? "x" : "frontend");
      applier.reset();
      t = performance.now();
      await applier.apply(planner.plan(snap, options, ME));
      fullRuns.push(ms(t));
    }
    changeOne("frontend");
    await applier.apply(planner.plan(snap, options, ME));
    const fullMs = median(fullRuns);
    const noopMs = median(noopRuns);

    const gc = (globalThis as { gc?: () => void }).gc;
    gc?.();
    const mem = Deno.memoryUsage();
    console.log(
      [
        `${backend}:`,
        `  first plan+apply (empty kernel)       ${f1(firstMs)} ms`,
        `  no-op resync (plan + diff, no tool)   ${f1(noopMs)} ms, ${noop.restores} restores`,
        `  one pod-label change → kernel         ${f1(oneMs)} ms median of 5 (plan ${
          f1(median(planRuns))
        } ms, ` +
        `kernel tools ${f1(median(toolRuns))} ms; ${one.restores} restores, ${one.chainsWritten} chains, ` +
        `${one.setsWritten} sets written)`,
        `  reference: same change as a full rewrite of every chain and set ${f1(fullMs)} ms → ` +
        `${f1(fullMs / oneMs)}x`,
        `  memory: RSS ${f1(mem.rss / 2 ** 20)} MB, JS heap used ${f1(mem.heapUsed / 2 ** 20)} MB` +
        (gc ? " (after gc)" : " (run with --v8-flags=--expose-gc for the post-GC heap)"),
      ].join("\n"),
    );
    // Leave the namespace clean for the next backend.
    if (applier instanceof NftApplier) await cleanupNft(runner);
    else await cleanupIptables(runner, backend === "iptables-nft" ? "nft" : "legacy", ["ipv4"]);
  }
} finally {
  await root.run(["ip", "netns", "del", netns], { okCodes: [0, 1] });
}
const rss = Deno.memoryUsage().rss / 2 ** 20;
console.log(`agent RSS after all runs: ${f1(rss)} MB (target < 300 MB)`);
