/**
 * Upstream kube-router beside ours, firewall only, on the same real API server state, in the
 * same run: time from process start to the first complete sync in the kernel, time for one pod
 * label change to reach the kernel, CPU seconds, and resident memory, at three scales. Prints
 * each figure and the ratio ours/upstream.
 *
 *   deno run -A bench/upstream.ts [--scales 300,2000,10000] [--runs 3]
 *
 * Upstream is built from the Go module proxy (`github.com/cloudnativelabs/kube-router/v2`,
 * newest version it serves: v2.1.0) into ~/.cache/kube-router-deno/upstream-<version>/. Each
 * agent runs alone (one after the other, so they do not compete for the two cores) inside its
 * own throwaway network namespace `krup-<random>` that holds the node's address 192.0.2.1 on a
 * bridge and reaches the API server through `tests/fixtures/api_bridge.ts`. Pods get their
 * status written as a kubelet would (phase Running, podIP), so both agents see real objects.
 *
 * "First sync" is the moment the agent's `KUBE-POD-FW-*` chain count and ipset count reached
 * their final values (polled every 250 ms, final once unchanged for 3 s). "Label change" is
 * from the API write returning to the relabelled pod's IP appearing in one more ipset entry
 * (polled every 25 ms). Needs root.
 *
 * @module
 */
import { CommandRunner } from "../kernel/exec.ts";
import { type ApiServer, startApiServer } from "../tests/fixtures/apiserver.ts";
import { bridgeApiInto } from "../tests/fixtures/api_bridge.ts";
import { generatedCluster, podApp, podIp, podNode } from "./cluster_gen.ts";
import { procStatus } from "./proc_status.ts";
import { SHIPPED_V8_FLAGS } from "../options/v8_flags.ts";

const UPSTREAM_VERSION = "v2.1.0";
const root = new URL("../", import.meta.url).pathname;
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

async function upstreamBinary(): Promise<string> {
  const home = Deno.env.get("HOME") ?? "/root";
  const dir = `${home}/.cache/kube-router-deno/upstream-${UPSTREAM_VERSION}`;
  const bin = `${dir}/kube-router`;
  try {
    await Deno.stat(bin);
    return bin;
  } catch { /* build it */ }
  console.error(`building upstream kube-router ${UPSTREAM_VERSION} from the Go module proxy (about 2 min)…`);
  await sh.run([
    "env",
    `GOBIN=${dir}`,
    "GOFLAGS=-buildvcs=false",
    "CGO_ENABLED=0",
    `PATH=${Deno.env.get("PATH")}:/usr/local/go/bin`,
    "go",
    "install",
    `github.com/cloudnativelabs/kube-router/v2/cmd/kube-router@${UPSTREAM_VERSION}`,
  ]);
  return bin;
}

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
    const logPath = `/tmp/${ns}-${who}.log`;
    const logFile = await Deno.open(logPath, { write: true, create: true, truncate: true });
    const t0 = performance.now();
    const child = new Deno.Command("ip", {
      args: [
        "netns",
        "exec",
        ns,
        ...argv,
        `--kubeconfig=${bridge.kubeconfigPath}`,
        "--hostname-override=node-0",
      ],
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const logged = child.stderr.pipeTo(logFile.writable).catch(() => {});
    let exited = false;
    child.status.then(() => exited = true);
    const alive = async () => {
      if (!exited) return;
      await logged;
      const tail = (await Deno.readTextFile(logPath)).split("\n").slice(-15).join("\n");
      throw new Error(`${who} exited early; the end of its log (${logPath}):\n${tail}`);
    };
    try {
      // First sync: the last change of the kernel counts before 3 s of quiet.
      let last = { chains: -1, sets: -1 }, lastChange = t0;
      const deadline = t0 + 300_000;
      while (performance.now() < deadline) {
        await alive();
        const c = await kernelCounts(ns);
        if (c.chains !== last.chains || c.sets !== last.sets) [last, lastChange] = [c, performance.now()];
        if (last.chains > 0 && performance.now() - lastChange > 3_000) break;
        await sleep(250);
      }
      const firstSyncS = (lastChange - t0) / 1000;
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
      const s = procStatus(child.pid);
      return { firstSyncS, labelS, cpuS: s.cpu, rssMb: s.rss, hwmMb: s.hwm, ...last };
    } finally {
      try {
        child.kill("SIGTERM");
      } catch { /* gone */ }
      await child.status;
      await logged;
      console.error(`  ${who} stopped; its log: ${logPath}`);
    }
  } finally {
    await sh.run(["ip", "netns", "del", ns], { okCodes: [0, 1] });
  }
}

/** The command line of one form of our agent; `bundle` builds dist/kube-router/ first. */
async function oursArgv(form: string): Promise<string[]> {
  const deno = Deno.execPath();
  if (form === "source") return [deno, "run", "-A", `${root}main.ts`, "firewall"];
  const [kind, flags] = form.split(/:(.*)/s);
  if (kind !== "bundle") throw new Error(`--ours: unknown form ${form} (source, bundle, bundle:<v8 flags>)`);
  const built = await new Deno.Command(deno, { args: ["task", "bundle"], cwd: root, stdout: "null" })
    .output();
  if (!built.success) throw new Error(`deno task bundle failed: ${new TextDecoder().decode(built.stderr)}`);
  // As the image does at build time (tests/cluster/images.sh): analysed once, not at agent start.
  await sh.run([deno, "cache", `${root}dist/kube-router/main.js`]);
  const v8 = flags === undefined ? [...SHIPPED_V8_FLAGS] : flags.split(/[ ,]+/).filter(Boolean);
  return [
    deno,
    "run",
    "-A",
    ...(v8.length ? [`--v8-flags=${v8.join(",")}`] : []),
    `${root}dist/kube-router/main.js`,
    "firewall",
  ];
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const f1 = (x: number) => x.toFixed(x < 10 ? 2 : 1);

if (import.meta.main) {
  const upstream = await upstreamBinary();
  console.log(
    "| pods / namespaces / policies | agent | first sync s | label change s (median) | CPU s | RSS MB | peak RSS MB | pod chains | ipsets |",
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
        await runAgent("ours", await oursArgv(form), api, { pods, namespaces }),
      ]);
    }
    for (const [who, f] of [["upstream", up] as [string, Figures], ...oursByForm]) {
      console.log(
        `| ${pods} / ${namespaces} / ${policies} | ${who} | ${f1(f.firstSyncS)} | ${f1(median(f.labelS))} | ${
          f1(f.cpuS)
        } | ${f1(f.rssMb)} | ${f1(f.hwmMb)} | ${f.chains} | ${f.sets} |`,
      );
    }
    const ours = oursByForm[0][1];
    ratios.push(
      `${pods} pods: ${oursByForm[0][0]}/upstream first sync ${
        (ours.firstSyncS / up.firstSyncS).toFixed(2)
      }×, label change ${(median(ours.labelS) / median(up.labelS)).toFixed(2)}×, CPU ${
        (ours.cpuS / up.cpuS).toFixed(2)
      }×, RSS ${(ours.rssMb / up.rssMb).toFixed(2)}×`,
    );
  }
  console.log("");
  for (const r of ratios) console.log(r);
}
