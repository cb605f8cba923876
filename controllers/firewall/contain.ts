/**
 * Containment of a refused transaction. Conversion (watch/convert.ts) already stops bad values at
 * the edge, but a tool may still refuse a batch for reasons no check foresees (a stale set of
 * another type under one of our names, a kernel limit). One refused line must not keep the whole
 * node's firewall stale: the line is traced back to the object it was made for (through the
 * plan's `owners`), that object is left out, the rest is applied, and the refusal is reported.
 *
 * "Left out" never opens anything: a refused NetworkPolicy stays in force as a deny (it still
 * selects its pods, with no allow rule), so its pods stay isolated; a refused pod's chain is left
 * out (its traffic is then what `--netpol-default-deny` says for unprogrammed pods). The object
 * is retried when it changes, and at every periodic resync.
 *
 * @module
 */
import { ExecError } from "../../kernel/exec.ts";
import type { ClusterSnapshot, NetworkPolicyInfo, PodInfo } from "../../watch/types.ts";
import { tempSetName } from "./names.ts";
import type { FirewallPlan } from "./plan.ts";

/** An object left out, the instance that was refused (a changed object is retried), and why. */
export interface Refused {
  object: string;
  instance: unknown;
  since: number;
  reason: string;
}

/**
 * Names of chains and sets one line of an iptables-restore, ipset restore or `nft -f` input talks
 * about (the nftables backend uses the same chain and set names).
 */
export function namesInLine(line: string): string[] {
  const t = line.trim();
  const out: string[] = [];
  // nft: `add rule ip <table> <CHAIN> … jump <CHAIN>`, `add element ip <table> <SET> { … }`, `… @<SET>`.
  const nft =
    /^(?:add|create|insert|replace|delete|destroy|flush)\s+(?:rule|chain|set|map|element)\s+\S+\s+\S+\s+(\S+)/
      .exec(t);
  if (nft) {
    out.push(nft[1]);
    for (const m of t.matchAll(/\b(?:jump|goto)\s+([^\s;}]+)/g)) out.push(m[1]);
    for (const m of t.matchAll(/@([^\s;}]+)/g)) out.push(m[1]);
    return out;
  }
  const chain = /^(?:-[AIDRFXNZ]\s+|:)(\S+)/.exec(t);
  if (chain) out.push(chain[1]);
  for (const m of t.matchAll(/(?:-j|--jump|--match-set)\s+(\S+)/g)) out.push(m[1]);
  const set = /^(?:create|add|del|swap|flush|destroy|rename|test|-[NACDFXWE])\s+(\S+)(?:\s+(\S+))?/.exec(t);
  if (set) {
    out.push(set[1]);
    if (/^(swap|rename|-W|-E)\b/.test(t) && set[2]) out.push(set[2]);
  }
  return out;
}

/** The object whose line the tool refused, or undefined when the error names no line we own. */
export function refusedObject(err: unknown, plan: FirewallPlan): string | undefined {
  if (!(err instanceof ExecError) || !err.offendingLine) return undefined;
  const names = namesInLine(err.offendingLine.text);
  for (const n of names) {
    const o = plan.owners.get(n);
    if (o) return o;
  }
  // A set is filled under a temporary name and swapped in: map the temporary name back.
  for (const [name, owner] of plan.owners) if (names.includes(tempSetName(name))) return owner;
  return undefined;
}

/**
 * The snapshot the plan is made from while objects are refused: a refused policy becomes a deny
 * (same pods, same policy types, no rules), a refused pod is left out. Entries whose object
 * changed or went away are dropped from `refused` (they get a new chance).
 */
export function withoutRefused(snap: ClusterSnapshot, refused: Map<string, Refused>): ClusterSnapshot {
  if (refused.size === 0) return snap;
  let policies: Map<string, NetworkPolicyInfo> | undefined;
  let pods: Map<string, PodInfo> | undefined;
  for (const [object, r] of refused) {
    const [kind, key] = object.split(" ");
    const current = kind === "NetworkPolicy" ? snap.networkPolicies.get(key) : snap.pods.get(key);
    if (current !== r.instance) {
      refused.delete(object);
      continue;
    }
    if (kind === "NetworkPolicy") {
      policies ??= new Map(snap.networkPolicies);
      const p = current as NetworkPolicyInfo;
      policies.set(key, { ...p, ingress: [], egress: [] });
    } else {
      pods ??= new Map(snap.pods);
      pods.delete(key);
    }
  }
  if (!policies && !pods) return snap;
  return { ...snap, networkPolicies: policies ?? snap.networkPolicies, pods: pods ?? snap.pods };
}

/** The snapshot's instance of an owner ("NetworkPolicy ns/name" or "Pod ns/name"). */
export function instanceOf(snap: ClusterSnapshot, object: string): unknown {
  const [kind, key] = object.split(" ");
  return kind === "NetworkPolicy" ? snap.networkPolicies.get(key) : snap.pods.get(key);
}
