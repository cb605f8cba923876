/**
 * The typed nftables state one controller owns: a table with its sets, maps (with their
 * elements) and chains (with their rules as nft statement text). The proxy and the firewall
 * build one of these per family; `transaction.ts` turns it into `nft -f` scripts (a whole-table
 * replace or the delta from what was applied) and `fake.ts` executes those scripts in memory.
 *
 * Statements stay text (what `nft -f` reads): the layer types the containers, orders the
 * commands, diffs elements and chains, and owns the quoting and naming every caller shares.
 *
 * @module
 */
import { sha256Hex } from "../sha256.ts";

/** Families a table of ours can have. */
export type NftTableFamily = "ip" | "ip6" | "inet";

/** A named set or map. */
export interface NftSetSpec {
  kind: "set" | "map";
  /** Text inside `{ }` of `add set|map`, elements excluded (e.g. `type ipv4_addr ; flags interval ;`). */
  decl: string;
  /** Elements we manage: key → value ("" for a set). */
  elements: Map<string, string>;
  /**
   * On a change, `flush set` and refill it instead of per-element updates. For interval sets with
   * `auto-merge`, whose kernel elements are the merged ranges, not the ones we added.
   */
  replaceOnChange?: boolean;
}

/** A chain: its declaration and its rules, in order. */
export interface NftChainSpec {
  /** Text inside `{ }` of `add chain` (hook spec, policy, comment); "" for a plain chain. */
  decl: string;
  rules: readonly string[];
  /**
   * Map elements this state does not hold (the caller diffs them itself, see `NftDelta.extra`)
   * may point at this chain, so when it goes its deletion waits a transaction (see
   * `NftTableSync`). Chains named in this state's own map elements or verdict maps are found
   * without it.
   */
  mapTarget?: boolean;
}

/** One table of ours in one family. */
export interface NftTableSpec {
  family: NftTableFamily;
  name: string;
  sets: Map<string, NftSetSpec>;
  chains: Map<string, NftChainSpec>;
}

/** An empty table. */
export function emptyTable(family: NftTableFamily, name: string): NftTableSpec {
  return { family, name, sets: new Map(), chains: new Map() };
}

/** Quotes an nft identifier or string when it needs it. */
export function nftQuote(s: string): string {
  return /^[A-Za-z_][A-Za-z0-9_.\-]*$/.test(s) ? s : `"${s.replaceAll('"', '\\"')}"`;
}

/** nft refuses comments longer than this (NFT_USERDATA_MAXLEN / 2 in nft 1.0.x). */
export const COMMENT_MAX = 128;

/**
 * A comment as an nft string literal: nft has no escapes inside strings, so backslashes go and
 * double quotes become single ones; cut to what nft accepts (a longer one refuses the batch).
 */
export function nftComment(s: string, max = COMMENT_MAX): string {
  const clean = s.replaceAll("\\", "").replaceAll('"', "'");
  return `"${[...clean].slice(0, max).join("")}"`;
}

/** 16 hex digits of sha256: deterministic object names within nft's limits. */
export function nftHash16(text: string): string {
  return sha256Hex(text).slice(0, 16);
}

/** `0x…` as nft prints marks and masks (unsigned 32-bit). */
export function nftHex(n: number): string {
  return "0x" + (n >>> 0).toString(16);
}

/** The chains a statement jumps or goes to, literally or through an anonymous verdict map. */
export function chainTargets(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/\b(?:jump|goto)\s+("[^"]*"|[A-Za-z0-9_.\-]+)/g)) {
    out.push(m[1].replace(/^"|"$/g, ""));
  }
  return out;
}

/** The named sets and maps (`@name`) a statement refers to. */
export function setRefs(text: string): string[] {
  return [...text.matchAll(/@([A-Za-z0-9_.\-]+)/g)].map((m) => m[1]);
}
