/**
 * The router half of `bench/upstream.ts`: pod-CIDR propagation between two nodes, upstream
 * kube-router against ours, on the same API server state.
 *
 * Two Node objects (node-a 192.0.2.1 with 10.244.1.0/24, node-b 192.0.2.2 with 10.244.2.0/24)
 * and two throwaway namespaces `krur-<id>-a`/`-b` joined by a veth pair, each reaching the API
 * server through `tests/fixtures/api_bridge.ts`. Per agent: node-a's agent starts and is left
 * until it listens on TCP 179 (its BGP speaker is up); then node-b's agent starts, and the
 * figures are
 * - **join**: node-b's process start → node-b's pod CIDR routed in node-a's kernel, and → node-a's
 *   pod CIDR routed in node-b's (each agent's whole path: start, API list, BGP session, route);
 * - **leave**: node-b's agent stopped (SIGTERM) → its pod CIDR gone from node-a's kernel, when
 *   that happens within 30 s (an agent that keeps the routes of a peer that went away, e.g.
 *   for graceful restart, shows "kept");
 * - CPU seconds and resident memory of each agent 3 s after the join.
 * Both agents get the same upstream flags; `--enable-cni=false` keeps them off the host's CNI
 * directory, and each namespace gets its own copy of /etc/iproute2 (`ip netns exec` mounts
 * /etc/netns/<ns>/iproute2 over it), since upstream names its routing tables in `rt_tables`.
 * Routes are polled every 20 ms.
 *
 * @module
 */
import { CommandRunner } from "../kernel/exec.ts";
import type { ApiServer } from "../tests/fixtures/apiserver.ts";
import { bridgeApiInto } from "../tests/fixtures/api_bridge.ts";
import { procStatus } from "./proc_status.ts";
import { spawnAgent } from "./upstream_agents.ts";

const sh = new CommandRunner();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const NODES = [
  { name: "node-a", ip: "192.0.2.1", cidr: "10.244.1.0/24" },
  { name: "node-b", ip: "192.0.2.2", cidr: "10.244.2.0/24" },
] as const;

/** Flags both agents get after their command line (upstream's names and syntax). */
export const ROUTER_FLAGS = ["--enable-cni=false", "--metrics-port=0"];

/** One join and leave of node-b beside a running node-a. */
export interface JoinFigures {
  /** node-b start → its pod CIDR routed at node-a (s). */
  aSeesB: number;
  /** node-b start → node-a's pod CIDR routed at node-b (s). */
  bSeesA: number;
  /** node-b stopped → its route gone at node-a (s), null when kept past 30 s. */
  leaveS: number | null;
  cpuA: number;
  cpuB: number;
  rssA: number;
  rssB: number;
}

/** Writes the two Node objects (spec with the pod CIDR, status with the InternalIP). */
export async function loadNodes(api: ApiServer): Promise<void> {
  for (const n of NODES) {
    await api.request("POST", "/api/v1/nodes", {
      apiVersion: "v1",
      kind: "Node",
      metadata: { name: n.name, labels: { "kubernetes.io/hostname": n.name } },
      spec: { podCIDR: n.cidr, podCIDRs: [n.cidr] },
    });
    await api.request("PATCH", `/api/v1/nodes/${n.name}/status`, {
      status: {
        addresses: [{ type: "InternalIP", address: n.ip }, { type: "Hostname", address: n.name }],
        conditions: [{ type: "Ready", status: "True", reason: "KubeletReady", message: "bench" }],
      },
    }, "application/merge-patch+json");
  }
}

async function routed(ns: string, cidr: string): Promise<boolean> {
  const out = await sh.run(["ip", "-4", "route", "show", "exact", cidr], { netns: ns, readOnly: true });
  return out.stdout.trim() !== "";
}

async function listening(ns: string, port: number): Promise<boolean> {
  const out = await sh.run(["ss", "-Hltn", `sport = :${port}`], { netns: ns, readOnly: true });
  return out.stdout.trim() !== "";
}

/** Two node namespaces on one veth pair, each with its own /etc/iproute2. */
async function twoNodes(id: string): Promise<{ names: [string, string]; remove(): Promise<void> }> {
  const names: [string, string] = [`krur-${id}-a`, `krur-${id}-b`];
  const remove = async () => {
    for (const ns of names) {
      await sh.run(["ip", "netns", "del", ns], { okCodes: [0, 1] });
      await Deno.remove(`/etc/netns/${ns}`, { recursive: true }).catch(() => {});
    }
  };
  try {
    for (const [i, ns] of names.entries()) {
      await sh.run(["ip", "netns", "add", ns]);
      await Deno.mkdir(`/etc/netns/${ns}`, { recursive: true });
      await sh.run(["cp", "-a", "/etc/iproute2", `/etc/netns/${ns}/iproute2`]);
      if (i === 0) await sh.run(["ip", "link", "add", "kr0", "type", "veth", "peer", "kr1"], { netns: ns });
    }
    await sh.run(["ip", "link", "set", "kr1", "netns", names[1], "name", "kr0"], { netns: names[0] });
    for (const [i, ns] of names.entries()) {
      await sh.run(["ip", "-batch", "-"], {
        netns: ns,
        stdin: `link set lo up\nlink set kr0 up\naddr add ${NODES[i].ip}/24 dev kr0\n`,
      });
    }
    return { names, remove };
  } catch (e) {
    await remove();
    throw e;
  }
}

/** node-b joins beside node-a and leaves again, each running `argv` + `ROUTER_FLAGS`. */
export async function routerJoin(who: string, argv: string[], api: ApiServer): Promise<JoinFigures> {
  const id = crypto.randomUUID().slice(0, 8);
  const nodes = await twoNodes(id);
  const dir = await Deno.makeTempDir({ prefix: `krur-${id}-` });
  try {
    const [nsA, nsB] = nodes.names;
    await using bridgeA = await bridgeApiInto(nsA, api, { dir });
    await using bridgeB = await bridgeApiInto(nsB, api, { dir });
    const start = (ns: string, bridge: { kubeconfigPath: string }, node: string) =>
      spawnAgent(`${who} ${node}`, ns, [
        ...argv,
        `--kubeconfig=${bridge.kubeconfigPath}`,
        `--hostname-override=${node}`,
        ...ROUTER_FLAGS,
      ], `/tmp/krur-${id}-${who.replace(/\W+/g, "_")}-${node}.log`);
    await using a = start(nsA, bridgeA, "node-a");
    const upBy = performance.now() + 120_000;
    while (!(await listening(nsA, 179))) {
      await a.alive();
      if (performance.now() > upBy) throw new Error(`${who} node-a: no BGP listener after 120 s`);
      await sleep(100);
    }
    await sleep(1_000);

    const t0 = performance.now();
    await using b = start(nsB, bridgeB, "node-b");
    let aSeesB = NaN, bSeesA = NaN;
    const joinBy = t0 + 120_000;
    while (Number.isNaN(aSeesB) || Number.isNaN(bSeesA)) {
      await a.alive();
      await b.alive();
      if (performance.now() > joinBy) {
        throw new Error(
          `${who}: no join after 120 s (node-a sees node-b: ${aSeesB}, node-b sees node-a: ${bSeesA})`,
        );
      }
      if (Number.isNaN(aSeesB) && await routed(nsA, NODES[1].cidr)) aSeesB = (performance.now() - t0) / 1000;
      if (Number.isNaN(bSeesA) && await routed(nsB, NODES[0].cidr)) bSeesA = (performance.now() - t0) / 1000;
      await sleep(20);
    }
    await sleep(3_000);
    const sa = procStatus(a.pid), sb = procStatus(b.pid);

    const tStop = performance.now();
    await b.stop();
    let leaveS: number | null = null;
    while (performance.now() - tStop < 30_000) {
      if (!(await routed(nsA, NODES[1].cidr))) {
        leaveS = (performance.now() - tStop) / 1000;
        break;
      }
      await sleep(20);
    }
    return { aSeesB, bSeesA, leaveS, cpuA: sa.cpu, cpuB: sb.cpu, rssA: sa.rss, rssB: sb.rss };
  } finally {
    await nodes.remove();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}
