/**
 * Renders the backend-neutral model as one nftables table per family
 * (`kube-router-filter-ipv4`/`-ipv6`), with the same chain and set names as the iptables backend
 * (sets without the `inet6:` prefix). A `hash:net` set's `nomatch` entries become a second set
 * `<name>-EXCEPT` that the rule excludes, since nft sets have no nomatch. The view is
 * `kernel/nft`'s typed table; whole-table and delta transactions come from there.
 *
 * @module
 */
import * as nft from "../../kernel/nft/mod.ts";
import type { Family } from "./net.ts";
import type { FamilyState, FwRule, FwSet, Match, Verdict } from "./model.ts";
import { FORWARD_CHAIN, INPUT_CHAIN, NFT_TABLES, OUTPUT_CHAIN } from "./names.ts";

const HOOKS: Record<string, string> = {
  [INPUT_CHAIN]: "input",
  [FORWARD_CHAIN]: "forward",
  [OUTPUT_CHAIN]: "output",
};

const ICMP6: Record<string, string> = {
  "echo-request": "echo-request",
  "destination-unreachable": "destination-unreachable",
  "time-exceeded": "time-exceeded",
  "packet-too-big": "packet-too-big",
  "neighbor-solicitation": "nd-neighbor-solicit",
  "neighbor-advertisement": "nd-neighbor-advert",
};

/** nft name of a set (no `inet6:` prefix: the table is per family). */
export function nftSetName(name: string): string {
  return name.replace(/^inet6:/, "");
}

export function tableOf(family: Family): { family: "ip" | "ip6"; name: string } {
  const t = NFT_TABLES.find((t) => t.ipFamily === family)!;
  return { family: t.family, name: t.name };
}

const hex = nft.nftHex;
const q = (s: string) => nft.nftComment(s);

function addrKw(family: Family): string {
  return family === "ipv4" ? "ip" : "ip6";
}

function matchExpr(m: Match, family: Family, sets: ReadonlyMap<string, FwSet>): string {
  const a = addrKw(family);
  switch (m.k) {
    case "addr":
      return `${a} ${m.dir === "src" ? "saddr" : "daddr"} ${m.cidr}`;
    case "set": {
      const f = `${a} ${m.dir === "src" ? "saddr" : "daddr"}`;
      const name = nftSetName(m.set);
      const s = sets.get(m.set);
      const hasExcept = s?.kind === "net" && s.entries.some((e) => e.endsWith(" nomatch"));
      if (m.negate) return `${f} != @${name}`;
      return hasExcept ? `${f} @${name} ${f} != @${name}-EXCEPT` : `${f} @${name}`;
    }
    case "l4":
      return m.dport === undefined
        ? `meta l4proto ${m.proto}`
        : `meta l4proto ${m.proto} th dport ${m.dport.replace(":", "-")}`;
    case "local":
      return `fib ${m.dir === "src" ? "saddr" : "daddr"} type ${m.negate ? "!= " : ""}local`;
    case "ct":
      return `ct state ${m.states.map((s) => s.toLowerCase()).join(",")}`;
    case "icmp":
      return family === "ipv4" ? `icmp type ${m.type}` : `icmpv6 type ${ICMP6[m.type]}`;
    case "mark":
      return `meta mark & ${hex(m.mask)} ${m.negate ? "!=" : "=="} ${hex(m.value)}`;
    case "limit":
      return `limit rate ${m.perMinute}/minute burst ${m.burst} packets`;
  }
}

function verdictStmt(v: Verdict): string {
  switch (v.k) {
    case "jump":
      return `jump ${v.chain}`;
    case "accept":
      return "accept";
    case "drop":
      return "drop";
    case "return":
      return "return";
    case "reject":
      return "reject";
    case "mark":
      return `meta mark set meta mark & ${hex(~v.mask)} | ${hex(v.value & v.mask)}`;
    case "nflog":
      return `log group ${v.group}`;
  }
}

/** What rendering remembers between syncs, by object identity; one per applier (`NftApplier`). */
export interface NftRenderMemo {
  lines: Record<Family, WeakMap<FwRule, string>>;
  /** Rendered rules of chain arrays the plan reuses between syncs (unchanged pods' chains). */
  chains: WeakMap<readonly FwRule[], { family: Family; sig: string; lines: string[] }>;
}

export function nftRenderMemo(): NftRenderMemo {
  return { lines: { ipv4: new WeakMap(), ipv6: new WeakMap() }, chains: new WeakMap() };
}

/** One rule as an nft statement line (memoised per rule object in `memo` unless it matches sets). */
export function nftRule(
  rule: FwRule,
  family: Family,
  sets: ReadonlyMap<string, FwSet>,
  memo?: NftRenderMemo,
): string {
  const hit = memo?.lines[family].get(rule);
  if (hit !== undefined) return hit;
  const line = nftRuleUncached(rule, family, sets);
  // A set match renders differently when the set gains or loses excepts: never reuse those.
  if (!rule.matches.some((m) => m.k === "set")) memo?.lines[family].set(rule, line);
  return line;
}

function nftRuleUncached(rule: FwRule, family: Family, sets: ReadonlyMap<string, FwSet>): string {
  const parts = rule.matches.map((m) => matchExpr(m, family, sets));
  parts.push(verdictStmt(rule.verdict));
  if (rule.comment) parts.push(`comment ${q(rule.comment.slice(0, 120))}`);
  return parts.join(" ");
}

/** The nft view of a family: our table with its sets (the `-EXCEPT` companions included) and chains. */
export type NftFamilyView = nft.NftTableSpec;

function hasExcept(s: FwSet | undefined): boolean {
  return s?.kind === "net" && s.entries.some((e) => e.endsWith(" nomatch"));
}

/** Which of the sets a chain matches have excepts (the only set property rendering depends on). */
function exceptSignature(rules: readonly FwRule[], sets: ReadonlyMap<string, FwSet>): string {
  let sig = "";
  for (const r of rules) {
    for (const m of r.matches) if (m.k === "set") sig += hasExcept(sets.get(m.set)) ? "1" : "0";
  }
  return sig;
}

/** Converts a family's model into the nft view. */
export function nftView(state: FamilyState, memo?: NftRenderMemo): NftFamilyView {
  const type = state.family === "ipv4" ? "ipv4_addr" : "ipv6_addr";
  const sets = new Map<string, nft.NftSetSpec>();
  // Interval sets with auto-merge hold merged ranges, not what was added: refilled whole on change.
  const spec = (decl: string, elements: string[]): nft.NftSetSpec => ({
    kind: "set",
    decl,
    elements: new Map(elements.map((e) => [e, ""])),
    replaceOnChange: true,
  });
  for (const s of state.sets.values()) {
    const name = nftSetName(s.name);
    const decl = `type ${type};${s.kind === "net" ? " flags interval; auto-merge;" : ""}`;
    const match = s.entries.filter((e) => !e.endsWith(" nomatch"));
    const except = s.entries.filter((e) => e.endsWith(" nomatch")).map((e) => e.slice(0, -8));
    sets.set(name, spec(decl, match));
    if (s.kind === "net" && except.length) sets.set(`${name}-EXCEPT`, spec(decl, except));
  }
  const chains = new Map<string, nft.NftChainSpec>();
  for (const [name, rules] of state.chains) {
    // A set match renders differently when its set has excepts: that is part of the memo key.
    const sig = exceptSignature(rules, state.sets);
    let rendered = memo?.chains.get(rules);
    if (!rendered || rendered.family !== state.family || rendered.sig !== sig) {
      rendered = {
        family: state.family,
        sig,
        lines: rules.map((r) => nftRule(r, state.family, state.sets, memo)),
      };
      memo?.chains.set(rules, rendered);
    }
    const hook = HOOKS[name];
    chains.set(name, { decl: hook ? hookLine(hook) : "", rules: rendered.lines });
  }
  return { ...tableOf(state.family), sets, chains };
}

function hookLine(hook: string): string {
  return `type filter hook ${hook} priority filter; policy accept;`;
}

/**
 * The whole table as one `nft -f` script: create-if-missing, delete, then define, so the
 * previous contents are replaced atomically in a single transaction.
 */
export function renderNftTable(state: FamilyState | NftFamilyView): string {
  return nft.fullTransaction(
    "chains" in state && "name" in state ? state as NftFamilyView : nftView(state as FamilyState),
  );
}

/**
 * The transaction that turns `from` (what was applied) into `to`, touching only what changed:
 * new sets and chains added, changed sets flushed and refilled, changed chains flushed and
 * refilled, and chains and sets no longer planned flushed and deleted after everything that
 * referenced them was rewritten. nft commits the whole script atomically. Empty when equal.
 * Throws when a set changed type or a chain its hook (a full reload is needed).
 */
export function renderNftDelta(from: NftFamilyView, to: NftFamilyView): string {
  const script = nft.deltaTransaction(from, to);
  if (script === undefined) {
    throw new Error("an nft set changed type or a chain its hook; a full reload is needed");
  }
  return script;
}
