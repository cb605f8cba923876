/**
 * Upstream kube-router beside ours on the same real API server state, in the same run, in two
 * parts (`--parts firewall,router`, both by default); prints each figure and the ratio
 * ours/upstream.
 * - **firewall**: time from process start to the first complete sync in the kernel, time for one
 *   pod label change to reach the kernel, CPU seconds, and resident memory, at three scales;
 * - **router**: pod-CIDR propagation between two nodes (`bench/upstream_router.ts`): a node
 *   joining beside a running one until each routes the other's pod CIDR, and leaving until its
 *   route is gone, `--runs` times, with each agent's CPU and memory.
 *
 *   deno run -A bench/upstream.ts [--parts firewall,router] [--scales 300,2000,10000] [--runs 3]
 *
 * Upstream is built from the Go module proxy (`github.com/cloudnativelabs/kube-router/v2`,
 * newest version it serves: v2.1.0) into ~/.cache/kube-router-deno/upstream-<version>/. Each
 * firewall agent runs alone (one after the other, so they do not compete for the two cores) inside its
 * own throwaway network namespace `krup-<random>` that holds the node's address 192.0.2.1 on a
 * bridge and reaches the API server through `tests/fixtures/api_bridge.ts`. Pods get their
 * status written as a kubelet would (phase Running, podIP), so both agents see real objects.
 *
 * "First sync" is the moment the agent's `KUBE-POD-FW-*` chain count and ipset count reached
 * their final values (polled every 50 ms, final once unchanged for 3 s; polling every 250 ms put
 * both agents on the same tick at 300 pods). "Label change" is from the API write returning to
 * the relabelled pod's IP appearing in one more ipset entry (polled every 25 ms). Needs root.
 *
 * @module
 */
import { CommandRunner } from "../kernel/exec.ts";
import { type ApiServer, startApiServer } from "../tests/fixtures/apiserver.ts";
import { bridgeApiInto } from "../tests/fixtures/api_bridge.ts";
import { generatedCluster, podApp, podIp, podNode } from "./cluster_gen.ts";
import { procStatus } from "./proc_status.ts";
import { oursArgv, spawnAgent, upstreamBinary } from "./upstream_agents.ts";
import { type JoinFigures, loadNodes, routerJoin } from "./upstream_router.ts";

const sh = new CommandRunner();
const arg = (name: string, dflt: string) => {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Deno.args[i + 1] : dflt;
};
const SCALES = arg("scales", "300,2000,10000").split(",").map(Number);
const RUNS = Number(arg("runs", "2"));
const NODES = 10;
// Which of our agent's forms to run beside upstream: `source` (deno run main.ts), `bundle`
// (dist/kube-router/main.js as the image runs it, with its V8 flags), or `bundle:<v8 flags>` to try others.
const OURS = arg("ours", "bundle").split(",");
const PARTS = arg("parts", "firewall,router").split(",");

/** Runs `fn` over `items` with at most `n` at once. */
async function pool<T>(items: T[], n: number, fn: (t: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    while (next < items.length) await fn(items[next++]);
  }));
}

// deno-lint-ignore no-explicit-any
type Obj = any;

/** Writes the generated cluster through the API, pods with a kubelet-like status. */
async function load(api: ApiServer, pods: number, namespaces: number, policies: number): Promise<void> {
  const items = generatedCluster({ pods, namespaces, policies, services: 0 }) as Obj[];
  const path = (o: Obj) => {
    const ns = o.metadata.namespace;
    switch (o.kind) {
      case "Node":
        return "/api/v1/nodes";
      case "Namespace":
        return "/api/v1/namespaces";
      case "Pod":
        return `/api/v1/namespaces/${ns}/pods`;
      default:
        return `/apis/networking.k8s.io/v1/namespaces/${ns}/networkpolicies`;
    }
  };
  for (const kind of ["Node", "Namespace", "NetworkPolicy", "Pod"]) {
    const of = items.filter((o) => o.kind === kind);
    await pool(of, 12, async (o) => {
      const { status, ...rest } = o;
      if (kind === "Pod") rest.spec.containers[0].image = "none";
      await api.request("POST", path(o), rest);
      if (kind === "Node") {
        await api.request(
          "PATCH",
          `/api/v1/nodes/${o.metadata.name}/status`,
          { status },
          "application/merge-patch+json",
        );
      }
      if (kind === "Pod") {
        await api.setPodStatus(o.metadata.namespace, o.metadata.name, {
          podIP: status.podIP,
          hostIP: status.hostIP,
          phase: "Running",
        });
      }
    });
  }
}

interface Figures {
  firstSyncS: number;
  labelS: number[];
  cpuS: number;
  rssMb: number;
  hwmMb: number;
  anonMb: number;
  fileMb: number;
  chains: number;
  sets: number;
}

async function kernelCounts(ns: string): Promise<{ chains: number; sets: number }> {
  const ipt = await sh.run(["iptables-save", "-t", "filter"], { netns: ns, readOnly: true, okCodes: [0, 1] });
  const sets = await sh.run(["ipset", "list", "-n"], { netns: ns, readOnly: true, okCodes: [0, 1] });
  return {
    chains: ipt.stdout.split("\n").filter((l) => l.startsWith(":KUBE-POD-FW-")).length,
    sets: sets.stdout.split("\n").filter(Boolean).length,
  };
}

async function ipsetHits(ns: string, ip: string): Promise<number> {
  const out = await sh.run(["ipset", "save"], { netns: ns, readOnly: true, okCodes: [0, 1] });
  let n = 0;
  for (const l of out.stdout.split("\n")) if (l.startsWith("add ") && l.split(" ")[2] === ip) n++;
  return n;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Pods (index) on node-0 that are not frontends, in a namespace that has a backend pod on node-0. */
function relabelTargets(pods: number, namespaces: number): number[] {
  const nsWithLocalBackend = new Set<number>();
  for (let i = 0; i < pods; i++) {
    if (podNode(i, NODES) === 0 && podApp(i, namespaces) === "backend") {
      nsWithLocalBackend.add(i % namespaces);
    }
  }
  const out: number[] = [];
  for (let i = 0; i < pods; i++) {
    if (nsWithLocalBackend.has(i % namespaces) && podApp(i, namespaces) === "worker") out.push(i);
  }
  return out;
}

async function runAgent(
  who: "upstream" | "ours",
  argv: string[],
  api: ApiServer,
  scale: { pods: number; namespaces: number },
): Promise<Figures> {
  const ns = `krup-${crypto.randomUUID().slice(0, 8)}`;
  await sh.run(["ip", "netns", "add", ns]);
  try {
    await sh.run(["ip", "-batch", "-"], {
      netns: ns,
      stdin: "link set lo up\nlink add kr0 type bridge\nlink set kr0 up\naddr add 192.0.2.1/24 dev kr0\n",
    });
    await using bridge = await bridgeApiInto(ns, api);
    const t0 = performance.now();
    const agent = spawnAgent(who, ns, [
      ...argv,
      `--kubeconfig=${bridge.kubeconfigPath}`,
      "--hostname-override=node-0",
    ], `/tmp/${ns}-${who}.log`);
    const alive = () => agent.alive();
    try {
      // First sync: the last change of the kernel counts before 3 s of quiet.
      let last = { chains: -1, sets: -1 }, lastChange = t0, settled = false;
      const deadline = t0 + 300_000;
      while (performance.now() < deadline) {
        await alive();
        const c = await kernelCounts(ns);
        if (c.chains !== last.chains || c.sets !== last.sets) [last, lastChange] = [c, performance.now()];
        if (last.chains > 0 && performance.now() - lastChange > 3_000) {
          settled = true;
          break;
        }
        await sleep(50);
      }
      // An agent that never wrote its pod chains has no first sync to compare (NaN, printed so).
      if (!settled) {
        console.error(
          `  ${who}: no settled first sync within 300 s (${last.chains} pod chains); see its log`,
        );
      }
      const firstSyncS = settled ? (lastChange - t0) / 1000 : NaN;
      const labelS: number[] = [];
      const targets = relabelTargets(scale.pods, scale.namespaces);
      for (const i of targets.slice(0, RUNS)) {
        const ip = podIp(i);
        const before = await ipsetHits(ns, ip);
        const podNs = `ns-${i % scale.namespaces}`;
        const patch = (app: string) =>
          api.request(
            "PATCH",
            `/api/v1/namespaces/${podNs}/pods/pod-${i}`,
            { metadata: { labels: { app } } },
            "application/merge-patch+json",
          );
        const t = performance.now();
        await patch("frontend");
        const tEnd = t + 60_000;
        while (performance.now() < tEnd && (await ipsetHits(ns, ip)) <= before) await sleep(25);
        labelS.push((performance.now() - t) / 1000);
        await patch(podApp(i, scale.namespaces));
        while ((await ipsetHits(ns, ip)) > before && performance.now() < tEnd + 60_000) await sleep(100);
      }
      await sleep(2_000);
      await alive();
      const s = procStatus(agent.pid);
      return {
        firstSyncS,
        labelS,
        cpuS: s.cpu,
        rssMb: s.rss,
        hwmMb: s.hwm,
        anonMb: s.anon,
        fileMb: s.file,
        ...last,
      };
    } finally {
      await agent.stop();
    }
  } finally {
    await sh.run(["ip", "netns", "del", ns], { okCodes: [0, 1] });
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const f1 = (x: number) => Number.isNaN(x) ? "none in 300 s" : x.toFixed(x < 10 ? 2 : 1);

/** The firewall part: first sync, one label change, CPU and memory at each scale. */
async function firewallPart(upstream: string): Promise<void> {
  console.log(
    "| pods / namespaces / policies | agent | first sync s | label change s (median) | CPU s | RSS MB (anon + file) | peak RSS MB | pod chains | ipsets |",
  );
  console.log("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
  const ratios: string[] = [];
  for (const pods of SCALES) {
    const namespaces = Math.max(15, Math.round(pods / 20));
    const policies = Math.round(pods / 5);
    await using api = await startApiServer();
    const tl = performance.now();
    await load(api, pods, namespaces, policies);
    console.error(`scale ${pods}: loaded in ${((performance.now() - tl) / 1000).toFixed(1)} s`);
    const up = await runAgent(
      "upstream",
      [
        upstream,
        "--run-firewall=true",
        "--run-router=false",
        "--run-service-proxy=false",
        "--metrics-port=0",
      ],
      api,
      { pods, namespaces },
    );
    const oursByForm: [string, Figures][] = [];
    for (const form of OURS) {
      oursByForm.push([
        `ours (${form})`,
        await runAgent("ours", await oursArgv(form, "firewall"), api, { pods, namespaces }),
      ]);
    }
    for (const [who, f] of [["upstream", up] as [string, Figures], ...oursByForm]) {
      console.log(
        `| ${pods} / ${namespaces} / ${policies} | ${who} | ${f1(f.firstSyncS)} | ${f1(median(f.labelS))} | ${
          f1(f.cpuS)
        } | ${f1(f.rssMb)} (${f1(f.anonMb)} + ${f1(f.fileMb)}) | ${f1(f.hwmMb)} | ${f.chains} | ${f.sets} |`,
      );
    }
    const ours = oursByForm[0][1];
    ratios.push(
      `${pods} pods: ${oursByForm[0][0]}/upstream first sync ${
        Number.isNaN(up.firstSyncS)
          ? "n/a (upstream never settled)"
          : `${(ours.firstSyncS / up.firstSyncS).toFixed(2)}×`
      }, label change ${(median(ours.labelS) / median(up.labelS)).toFixed(2)}×, CPU ${
        (ours.cpuS / up.cpuS).toFixed(2)
      }×, RSS ${(ours.rssMb / up.rssMb).toFixed(2)}×`,
    );
  }
  console.log("");
  for (const r of ratios) console.log(r);
}

/** The router part: a node joining and leaving beside another, `RUNS` times, agents taking turns. */
async function routerPart(upstream: string): Promise<void> {
  await using api = await startApiServer();
  await loadNodes(api);
  const agents: [string, string[]][] = [[
    "upstream",
    [upstream, "--run-router=true", "--run-firewall=false", "--run-service-proxy=false"],
  ]];
  for (const form of OURS) agents.push([`ours (${form})`, await oursArgv(form, "router")]);
  const runs = new Map<string, JoinFigures[]>(agents.map(([who]) => [who, []]));
  for (let r = 0; r < RUNS; r++) {
    for (const [who, argv] of agents) runs.get(who)!.push(await routerJoin(who, argv, api));
  }
  const med = (who: string, f: (j: JoinFigures) => number | null) =>
    median(runs.get(who)!.map((j) => f(j) ?? Infinity));
  const shown = (x: number) => Number.isFinite(x) ? f1(x) : "kept > 30 s";
  console.log("");
  console.log(
    `| router, 2 nodes (median of ${RUNS}) | node-b start → routed at node-a s | → node-a routed at node-b s | node-b stopped → route gone at node-a s | CPU s a / b | RSS MB a / b |`,
  );
  console.log("| --- | --- | --- | --- | --- | --- |");
  for (const [who] of agents) {
    console.log(
      `| ${who} | ${f1(med(who, (j) => j.aSeesB))} | ${f1(med(who, (j) => j.bSeesA))} | ${
        shown(med(who, (j) => j.leaveS))
      } | ${f1(med(who, (j) => j.cpuA))} / ${f1(med(who, (j) => j.cpuB))} | ${
        f1(med(who, (j) => j.rssA))
      } / ${f1(med(who, (j) => j.rssB))} |`,
    );
  }
  const ours = agents[1][0];
  const ratio = (f: (j: JoinFigures) => number | null) => (med(ours, f) / med("upstream", f)).toFixed(2);
  console.log("");
  console.log(
    `router: ${ours}/upstream join ${ratio((j) => Math.max(j.aSeesB, j.bSeesA))}×, leave ${
      ratio((j) => j.leaveS)
    }×, CPU ${ratio((j) => j.cpuA + j.cpuB)}×, RSS ${ratio((j) => j.rssA + j.rssB)}×`,
  );
}

if (import.meta.main) {
  const unknown = PARTS.filter((p) => p !== "firewall" && p !== "router");
  if (unknown.length) throw new Error(`--parts: unknown ${unknown.join(",")} (firewall, router)`);
  const upstream = await upstreamBinary();
  if (PARTS.includes("firewall")) await firewallPart(upstream);
  if (PARTS.includes("router")) await routerPart(upstream);
}
