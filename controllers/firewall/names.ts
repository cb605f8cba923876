/**
 * Names of everything the firewall creates, and the pure `isOurs` predicates cleanup relies on.
 * Names follow upstream kube-router's scheme (`KUBE-POD-FW-`, `KUBE-NWPLCY-`, `KUBE-SRC-`,
 * `KUBE-DST-` + 16 base32 chars of a sha256), but the hashed input is the object's identity, not
 * a sync timestamp: an unchanged cluster renders the same names, so an unchanged sync is a no-op.
 *
 * Limits: iptables chain names ≤ 28 chars (ours are at most 28), ipset names ≤ 31 (`inet6:` +
 * 25 = 31).
 *
 * @module
 */
import { sha256 } from "../../kernel/sha256.ts";
import { base32 } from "../../kernel/ipset/mod.ts";
import type { Family } from "./net.ts";
import { POLICY_FORWARD_CHAIN } from "../forward_order.ts";

export const INPUT_CHAIN = "KUBE-ROUTER-INPUT";
export const FORWARD_CHAIN = POLICY_FORWARD_CHAIN;
export const OUTPUT_CHAIN = "KUBE-ROUTER-OUTPUT";
export const COMMON_CHAIN = "KUBE-NWPLCY-COMMON";
export const DEFAULT_CHAIN = "KUBE-NWPLCY-DEFAULT";
export const TAIL_CHAIN = "KUBE-NWPLCY-TAIL";
export const LOCAL_PODS_SET = "kube-router-local-pods";

/** The built-in chain each top-level chain is jumped from. */
export const TOP_CHAINS: ReadonlyArray<{ builtin: "INPUT" | "FORWARD" | "OUTPUT"; chain: string }> = [
  { builtin: "INPUT", chain: INPUT_CHAIN },
  { builtin: "FORWARD", chain: FORWARD_CHAIN },
  { builtin: "OUTPUT", chain: OUTPUT_CHAIN },
];

/** Marks: 0x10000 "a policy allowed this", 0x20000 "netpol checked, accept". */
export const MARK_ALLOWED = 0x10000;
export const MARK_ACCEPT = 0x20000;
export const NFLOG_GROUP = 100;

function sha16(key: string): string {
  return base32(sha256(key)).slice(0, 16);
}

/** 16 base32 chars of sha256(parts joined by NUL). */
export function hash16(...parts: string[]): string {
  return sha16(parts.join("\0"));
}

type Hash = (...parts: string[]) => string;

const podChainOf = (h: Hash, namespace: string, pod: string, family: Family) =>
  "KUBE-POD-FW-" + h("pod", namespace, pod, family);
const policyChainOf = (
  h: Hash,
  namespace: string,
  policy: string,
  family: Family,
  direction: "ingress" | "egress",
) => "KUBE-NWPLCY-" + h("policy", namespace, policy, family, direction);
const ruleSetOf = (h: Hash, side: "src" | "dst", family: Family, identity: string[]) =>
  familySetName((side === "src" ? "KUBE-SRC-" : "KUBE-DST-") + h(family, ...identity), family);

export function podChainName(namespace: string, pod: string, family: Family): string {
  return podChainOf(hash16, namespace, pod, family);
}

export function policyChainName(
  namespace: string,
  policy: string,
  family: Family,
  direction: "ingress" | "egress",
): string {
  return policyChainOf(hash16, namespace, policy, family, direction);
}

/**
 * The same names, memoised (names are hashed every sync): one per planner, bounded, so nothing
 * is remembered at module level.
 */
export class NameHasher {
  readonly #memo = new Map<string, string>();
  readonly #hash: Hash = (...parts) => {
    const key = parts.join("\0");
    let h = this.#memo.get(key);
    if (h === undefined) {
      if (this.#memo.size > 200_000) this.#memo.clear();
      h = sha16(key);
      this.#memo.set(key, h);
    }
    return h;
  };

  podChain(namespace: string, pod: string, family: Family): string {
    return podChainOf(this.#hash, namespace, pod, family);
  }

  policyChain(namespace: string, policy: string, family: Family, direction: "ingress" | "egress"): string {
    return policyChainOf(this.#hash, namespace, policy, family, direction);
  }

  ruleSet(side: "src" | "dst", family: Family, ...identity: string[]): string {
    return ruleSetOf(this.#hash, side, family, identity);
  }
}

/** ipset name with upstream's `inet6:` prefix for IPv6 sets. */
export function familySetName(base: string, family: Family): string {
  return family === "ipv6" ? `inet6:${base}` : base;
}

/** A per-rule set: `KUBE-SRC-` for peers matched on the source side, `KUBE-DST-` for the destination. */
export function ruleSetName(side: "src" | "dst", family: Family, ...identity: string[]): string {
  return ruleSetOf(hash16, side, family, identity);
}

/** Temporary name a set is filled under before it is swapped into place. */
export function tempSetName(name: string): string {
  const family: Family = name.startsWith("inet6:") ? "ipv6" : "ipv4";
  return familySetName("KUBE-TMP-" + hash16("tmp", name), family);
}

/** The comment on the jump from a built-in chain (upstream's wording, with a stable id). */
export function topJumpComment(chain: string): string {
  return `kube-router netpol - ${hash16("jump", chain)}`;
}

const CHAIN_RE = /^(KUBE-POD-FW-[A-Z2-7]{16}|KUBE-NWPLCY-[A-Z2-7]{16})$/;
const FIXED_CHAINS = new Set([
  INPUT_CHAIN,
  FORWARD_CHAIN,
  OUTPUT_CHAIN,
  COMMON_CHAIN,
  DEFAULT_CHAIN,
  TAIL_CHAIN,
]);

/** Whether an iptables chain is one this controller creates. */
export function isOurChain(name: string): boolean {
  return FIXED_CHAINS.has(name) || CHAIN_RE.test(name);
}

const SET_RE = /^(inet6:)?(KUBE-SRC-|KUBE-DST-|KUBE-TMP-)[A-Z2-7]{16}$/;

/** Whether an ipset is one this controller creates. */
export function isOurSet(name: string): boolean {
  return SET_RE.test(name) || name === LOCAL_PODS_SET || name === `inet6:${LOCAL_PODS_SET}`;
}

/** nftables tables of the nft backend. */
export const NFT_TABLES = [
  { family: "ip" as const, name: "kube-router-filter-ipv4", ipFamily: "ipv4" as Family },
  { family: "ip6" as const, name: "kube-router-filter-ipv6", ipFamily: "ipv6" as Family },
];

/** Whether an nftables table is one this controller creates. */
export function isOurNftTable(family: string, name: string): boolean {
  return NFT_TABLES.some((t) => t.family === family && t.name === name);
}
