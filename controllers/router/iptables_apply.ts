/**
 * The router's iptables and ipset state, in its OWN chains and sets:
 *
 * - filter `KUBE-ROUTER-PODNET-FWD` (jumped to from FORWARD, after the firewall's policy hook:
 *   see `../forward_order.ts`): ACCEPT `-i kube-bridge`, ACCEPT `-o kube-bridge` (upstream
 *   inserts these straight into FORWARD);
 * - nat `KUBE-ROUTER-POD-EGRESS` (jumped to from POSTROUTING) with `--enable-pod-egress`:
 *   MASQUERADE from the pod subnets to anything that is neither a pod subnet nor a node IP;
 * - ipsets `kube-router-pod-subnets` (hash:net) and `kube-router-node-ips` (hash:ip), and their
 *   `inet6:` twins for IPv6, the names upstream uses.
 *
 * Each family is one `iptables-restore --noflush` transaction, run only when our chains or jumps
 * differ from what the kernel holds; sets are replaced by one `ipset restore` swap script only
 * when their members differ.
 *
 * @module
 */
import type { Runner } from "../../kernel/exec.ts";
import {
  type IptablesBackend,
  type IptablesTool,
  listChain,
  renderNoflush,
  restoreNoflush,
} from "../../kernel/iptables/mod.ts";
import {
  type DesiredSet,
  listNames,
  renderSwapScript,
  restore,
  save as ipsetSave,
} from "../../kernel/ipset/mod.ts";
import { acceptJumpPlaced, acceptJumpPosition } from "../forward_order.ts";

export const FWD_CHAIN = "KUBE-ROUTER-PODNET-FWD";
export const EGRESS_CHAIN = "KUBE-ROUTER-POD-EGRESS";
export const POD_SUBNETS_SET = "kube-router-pod-subnets";
export const NODE_IPS_SET = "kube-router-node-ips";

/** Set name for a family (upstream's `inet6:` prefix for IPv6). */
export function setName(base: string, v6: boolean): string {
  return v6 ? `inet6:${base}` : base;
}

export function isOurChain(name: string): boolean {
  return name === FWD_CHAIN || name === EGRESS_CHAIN;
}

export function isOurSet(name: string): boolean {
  return [POD_SUBNETS_SET, NODE_IPS_SET].some((b) => name === b || name === `inet6:${b}`);
}

export interface NetfilterPlan {
  v6: boolean;
  podEgress: boolean;
  bridge: string;
  podCidrs: string[];
  nodeIps: string[];
}

/** The rules of our chains for one family (pure). */
export function chainRules(p: NetfilterPlan): { filter: string[][]; nat: string[][] } {
  const filter = [
    ["-i", p.bridge, "-m", "comment", "--comment", "kube-router pod network", "-j", "ACCEPT"],
    ["-o", p.bridge, "-m", "comment", "--comment", "kube-router pod network", "-j", "ACCEPT"],
  ];
  const pods = setName(POD_SUBNETS_SET, p.v6), nodes = setName(NODE_IPS_SET, p.v6);
  const nat = p.podEgress
    ? [[
      "-m",
      "set",
      "--match-set",
      pods,
      "src",
      "-m",
      "set",
      "!",
      "--match-set",
      pods,
      "dst",
      "-m",
      "set",
      "!",
      "--match-set",
      nodes,
      "dst",
      "-m",
      "comment",
      "--comment",
      "kube-router pod egress",
      "-j",
      "MASQUERADE",
      "--random-fully",
    ]]
    : [];
  return { filter, nat };
}

/** The ipsets of one family (pure). */
export function desiredSets(p: NetfilterPlan): DesiredSet[] {
  const fam = p.v6 ? "inet6" : "inet";
  const hostLen = p.v6 ? 128 : 32;
  return [
    {
      name: setName(POD_SUBNETS_SET, p.v6),
      type: "hash:net",
      options: ["family", fam, "hashsize", "1024", "maxelem", "65536"],
      entries: [...new Set(p.podCidrs)].sort(),
    },
    {
      name: setName(NODE_IPS_SET, p.v6),
      type: "hash:ip",
      options: ["family", fam, "hashsize", "1024", "maxelem", "65536"],
      entries: [...new Set(p.nodeIps.map((ip) => ip.replace(new RegExp(`/${hostLen}$`), "")))].sort(),
    },
  ];
}

function normalise(rules: readonly (readonly string[])[]): string {
  return rules.map((r) => r.join(" ")).join("\n");
}

/** Applies sets then chains for one family; returns whether anything was changed. */
export async function applyNetfilter(
  runner: Runner,
  backend: IptablesBackend,
  p: NetfilterPlan,
): Promise<boolean> {
  let changed = false;
  // Sets first: the MASQUERADE rule references them.
  const want = desiredSets(p);
  const present = new Set(await listNames(runner));
  const existing = new Map<string, { type: string; family?: string }>();
  const stale: DesiredSet[] = [];
  for (const s of want) {
    if (!present.has(s.name)) {
      stale.push(s);
      continue;
    }
    const [cur] = await ipsetSave(runner, {}, s.name);
    existing.set(s.name, { type: cur.type });
    const curEntries = [...cur.entries].map((e) => e.split(" ")[0]).sort();
    if (cur.type !== s.type || normalise([curEntries]) !== normalise([[...s.entries]])) stale.push(s);
  }
  for (const n of present) if (!existing.has(n)) existing.set(n, { type: "" });
  if (stale.length > 0) {
    await restore(runner, renderSwapScript({ sets: stale, existing }));
    changed = true;
  }

  const tool: IptablesTool = { family: p.v6 ? "ipv6" : "ipv4", backend };
  const rules = chainRules(p);
  for (
    const [table, parent, chain, body] of [
      ["filter", "FORWARD", FWD_CHAIN, rules.filter],
      ["nat", "POSTROUTING", EGRESS_CHAIN, rules.nat],
    ] as const
  ) {
    const cur = await listChain(runner, tool, table, chain);
    const parentRules = (await listChain(runner, tool, table, parent)) ?? [];
    const jumps = parentRules.filter((r) => r.args.join(" ") === `-j ${chain}`);
    const wantChain = body.length > 0;
    if (wantChain) {
      const same = cur !== undefined && normalise(cur.map((r) => r.args)) === normalise(body);
      const parentArgs = parentRules.map((r) => r.args);
      // FORWARD: after the firewall's policy hook (an ACCEPT ahead of it would bypass every
      // NetworkPolicy); POSTROUTING: anywhere, once.
      const placed = parent === "FORWARD" ? acceptJumpPlaced(parentArgs, chain) : jumps.length === 1;
      if (same && placed) continue;
      const edits: string[][] = jumps.map(() => ["-D", parent, "-j", chain]);
      const at = parent === "FORWARD" ? acceptJumpPosition(parentArgs, chain) : 1;
      edits.push(["-I", parent, String(at), "-j", chain]);
      await restoreNoflush(
        runner,
        tool,
        renderNoflush({ table, replaceChains: new Map([[chain, body.map((r) => [...r])]]), edits }),
      );
      changed = true;
    } else if (cur !== undefined || jumps.length > 0) {
      await restoreNoflush(
        runner,
        tool,
        renderNoflush({
          table,
          replaceChains: new Map(),
          edits: jumps.map(() => ["-D", parent, "-j", chain]),
          deleteChains: cur !== undefined ? [chain] : [],
        }),
      );
      changed = true;
    }
  }
  return changed;
}

/** Removes our chains, jumps and sets for one family; absent ones are fine. */
export async function cleanupNetfilter(runner: Runner, backend: IptablesBackend, v6: boolean): Promise<void> {
  const tool: IptablesTool = { family: v6 ? "ipv6" : "ipv4", backend };
  for (
    const [table, parent, chain] of [["filter", "FORWARD", FWD_CHAIN], [
      "nat",
      "POSTROUTING",
      EGRESS_CHAIN,
    ]] as const
  ) {
    let cur, parentRules;
    try {
      cur = await listChain(runner, tool, table, chain);
      parentRules = (await listChain(runner, tool, table, parent)) ?? [];
    } catch {
      continue; // the tool or table is absent: nothing of ours can be there
    }
    const jumps = parentRules.filter((r) => r.args.join(" ") === `-j ${chain}`);
    if (cur === undefined && jumps.length === 0) continue;
    await restoreNoflush(
      runner,
      tool,
      renderNoflush({
        table,
        replaceChains: new Map(),
        edits: jumps.map(() => ["-D", parent, "-j", chain]),
        deleteChains: cur !== undefined ? [chain] : [],
      }),
    );
  }
  const present = new Set(await listNames(runner).catch(() => [] as string[]));
  const mine = [POD_SUBNETS_SET, NODE_IPS_SET].map((b) => setName(b, v6)).filter((n) => present.has(n));
  if (mine.length > 0) await restore(runner, mine.map((n) => `destroy ${n}`).join("\n") + "\n");
}
