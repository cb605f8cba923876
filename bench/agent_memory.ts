/**
 * Memory of the real agent at issue scale: `kube-router firewall` and `kube-router proxy
 * --service-proxy-mode=nftables` run as the operator would run them (the `main.ts` process,
 * reading `--manifests`), each inside its own throwaway network namespace, on a generated
 * cluster of 10,000 pods in 500 namespaces with 2,000 policies and 10,000 services × 5
 * endpoints. Reports each agent's resident memory (VmRSS and VmHWM from /proc) once its first
 * sync is in the kernel, against the reference of the same agent on an empty cluster, measured
 * in the same run.
 *
 *   deno run -A bench/agent_memory.ts [pods=10000] [namespaces=500] [policies=2000] [services=10000] [--shipped]
 *
 * `--shipped` runs the agent as the image does instead: `deno task bundle`'s output with the
 * shipped `deno run` and V8 flags (options/v8_flags.ts).
 *
 * Needs root. Addresses: pods 10.200.0.0/14, services 10.96.0.0/12 (data only); namespaces
 * `krmem-<random>`, removed at the end.
 *
 * @module
 */
import { CommandRunner } from "../kernel/exec.ts";
import { generatedCluster } from "./cluster_gen.ts";
import { procStatus } from "./proc_status.ts";
import { bundleArgv } from "./upstream_agents.ts";

const positional = Deno.args.filter((a) => !a.startsWith("--"));
const [PODS, NAMESPACES, POLICIES, SERVICES] = [10_000, 500, 2_000, 10_000].map((d, i) =>
  Number(positional[i] ?? d)
);
const SHIPPED = Deno.args.includes("--shipped");
const root = new URL("../", import.meta.url).pathname;
const sh = new CommandRunner();

/** Runs one agent in a fresh namespace until `ready()` says its sync is in the kernel; returns its memory. */
async function measure(args: string[], manifests: string, ready: (ns: string) => Promise<boolean>) {
  const ns = `krmem-${crypto.randomUUID().slice(0, 8)}`;
  await sh.run(["ip", "netns", "add", ns]);
  const t0 = performance.now();
  const child = new Deno.Command("ip", {
    args: [
      "netns",
      "exec",
      ns,
      ...agentArgv,
      ...args,
      "--manifests",
      manifests,
      "--hostname-override",
      "node-0",
      "--health-port=0",
    ],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  try {
    for (let i = 0; i < 1200 && !(await ready(ns)); i++) await new Promise((r) => setTimeout(r, 100));
    const seconds = (performance.now() - t0) / 1000;
    await new Promise((r) => setTimeout(r, 1000)); // let the post-sync garbage settle
    // `ip netns exec` execs the agent, so the child's pid is the agent's.
    const { rss, hwm } = procStatus(child.pid);
    return { rss, hwm, seconds };
  } finally {
    child.kill("SIGTERM");
    await child.output();
    await sh.run(["ip", "netns", "del", ns], { okCodes: [0, 1] });
  }
}

const agentArgv = SHIPPED ? await bundleArgv() : [Deno.execPath(), "run", "-A", `${root}main.ts`];
console.log(`agent: ${agentArgv.slice(1).join(" ")}`);
const dir = await Deno.makeTempDir();
const big = `${dir}/cluster.json`, empty = `${dir}/empty.json`;
await Deno.writeTextFile(
  big,
  JSON.stringify({
    apiVersion: "v1",
    kind: "List",
    items: generatedCluster({ pods: PODS, namespaces: NAMESPACES, policies: POLICIES, services: SERVICES }),
  }),
);
await Deno.writeTextFile(
  empty,
  JSON.stringify({
    apiVersion: "v1",
    kind: "List",
    items: generatedCluster({ pods: 0, namespaces: 0, policies: 0, services: 0 }),
  }),
);
console.log(
  `cluster: ${PODS} pods, ${NAMESPACES} namespaces, ${POLICIES} policies, ${SERVICES} services × 5 endpoints (${
    ((await Deno.stat(big)).size / 1e6).toFixed(1)
  } MB of manifests)`,
);

const fwReady = (min: number) => async (ns: string) => {
  const r = await sh.run(["iptables", "-S", "KUBE-ROUTER-FORWARD"], { netns: ns, okCodes: [0, 1] });
  return (r.stdout.match(/KUBE-POD-FW-/g)?.length ?? 0) >= min;
};
// The proxy's first sync is one atomic `nft -f`: its table existing means the whole table is in.
const pxReady = async (ns: string) => {
  const r = await sh.run(["nft", "list", "tables"], { netns: ns, okCodes: [0, 1] });
  return /kube-router/.test(r.stdout);
};

try {
  const rows: Array<
    [string, { rss: number; hwm: number; seconds: number }, { rss: number; hwm: number; seconds: number }]
  > = [];
  const localPods = PODS / 10;
  rows.push([
    "firewall (iptables-nft)",
    await measure(["firewall"], big, fwReady(localPods)),
    await measure(["firewall"], empty, () => Promise.resolve(true)),
  ]);
  rows.push([
    "proxy (nftables mode)",
    await measure(["proxy", "--service-proxy-mode=nftables"], big, pxReady),
    await measure(["proxy", "--service-proxy-mode=nftables"], empty, pxReady),
  ]);
  console.log("\nagent                      first sync   RSS MB   peak MB   empty-cluster RSS MB   ratio");
  for (const [name, m, ref] of rows) {
    console.log(
      `${name.padEnd(26)} ${m.seconds.toFixed(2).padStart(8)} s ${m.rss.toFixed(0).padStart(8)} ${
        m.hwm.toFixed(0).padStart(9)
      } ${ref.rss.toFixed(0).padStart(22)} ${(m.rss / ref.rss).toFixed(2).padStart(7)}×`,
    );
  }
} finally {
  await Deno.remove(dir, { recursive: true });
}
