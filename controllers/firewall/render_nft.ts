/**
 * Renders the backend-neutral model as one nftables table per family
 * (`kube-router-filter-ipv4`/`-ipv6`), with the same chain and set names as the iptables backend
 * (sets without the `inet6:` prefix). A `hash:net` set's `nomatch` entries become a second set
 * `<name>-EXCEPT` that the rule excludes, since nft sets have no nomatch.
 *
 * @module
 */
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

function hex(n: number): string {
  return "0x" + (n >>> 0).toString(16);
}

function q(s: string): string {
  return `"${s.replaceAll("\\", "").replaceAll('"', "'")}"`;
}

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

/** One nft set as it will be declared: its declaration body without elements, and the elements. */
export interface NftSetSpec {
  /** e.g. `type ipv4_addr; flags interval; auto-merge;` */
  decl: string;
  elements: string[];
}

/** One nft chain: base-chain line (if any) and rule statements. */
export interface NftChainSpec {
  hook?: string;
  rules: string[];
}

/** The nft view of a family: sets (the `-EXCEPT` companions included) and chains. */
export interface NftFamilyView {
  family: Family;
  table: { family: "ip" | "ip6"; name: string };
  sets: Map<string, NftSetSpec>;
  chains: Map<string, NftChainSpec>;
}

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
  const sets = new Map<string, NftSetSpec>();
  for (const s of state.sets.values()) {
    const name = nftSetName(s.name);
    const decl = `type ${type};${s.kind === "net" ? " flags interval; auto-merge;" : ""}`;
    const match = s.entries.filter((e) => !e.endsWith(" nomatch"));
    const except = s.entries.filter((e) => e.endsWith(" nomatch")).map((e) => e.slice(0, -8));
    sets.set(name, { decl, elements: match });
    if (s.kind === "net" && except.length) sets.set(`${name}-EXCEPT`, { decl, elements: except });
  }
  const chains = new Map<string, NftChainSpec>();
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
    chains.set(name, { hook: HOOKS[name], rules: rendered.lines });
  }
  return { family: state.family, table: tableOf(state.family), sets, chains };
}

function hookLine(hook: string): string {
  return `type filter hook ${hook} priority filter; policy accept;`;
}

function elementsLine(t: string, name: string, elements: readonly string[]): string[] {
  // Chunked: one huge line is slow for nft's parser.
  const out: string[] = [];
  for (let i = 0; i < elements.length; i += 1000) {
    out.push(`add element ${t} ${name} { ${elements.slice(i, i + 1000).join(", ")} }`);
  }
  return out;
}

/**
 * The whole table as one `nft -f` script: create-if-missing, delete, then define, so the
 * previous contents are replaced atomically in a single transaction.
 */
export function renderNftTable(state: FamilyState | NftFamilyView): string {
  const v = "table" in state ? state : nftView(state);
  const t = `${v.table.family} ${v.table.name}`;
  const lines: string[] = [`add table ${t}`, `delete table ${t}`, `add table ${t}`];
  for (const [name, s] of v.sets) {
    lines.push(`add set ${t} ${name} { ${s.decl} }`, ...elementsLine(t, name, s.elements));
  }
  for (const [name, c] of v.chains) {
    lines.push(c.hook ? `add chain ${t} ${name} { ${hookLine(c.hook)} }` : `add chain ${t} ${name}`);
  }
  for (const [name, c] of v.chains) for (const r of c.rules) lines.push(`add rule ${t} ${name} ${r}`);
  return lines.join("\n") + "\n";
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * The transaction that turns `from` (what was applied) into `to`, touching only what changed:
 * new sets and chains added, changed sets flushed and refilled, changed chains flushed and
 * refilled, and chains and sets no longer planned flushed and deleted after everything that
 * referenced them was rewritten. nft commits the whole script atomically. Empty when equal.
 */
export function renderNftDelta(from: NftFamilyView, to: NftFamilyView): string {
  const t = `${to.table.family} ${to.table.name}`;
  const head: string[] = [];
  const body: string[] = [];
  const tail: string[] = [];
  for (const [name, s] of to.sets) {
    const old = from.sets.get(name);
    if (old && old.decl === s.decl && sameList(old.elements, s.elements)) continue;
    if (!old) head.push(`add set ${t} ${name} { ${s.decl} }`);
    else if (old.decl !== s.decl) throw new Error(`nft set ${name} changed type; a full reload is needed`);
    else head.push(`flush set ${t} ${name}`);
    head.push(...elementsLine(t, name, s.elements));
  }
  for (const [name, c] of to.chains) {
    const old = from.chains.get(name);
    if (old && old.hook === c.hook && sameList(old.rules, c.rules)) continue;
    if (!old) head.push(c.hook ? `add chain ${t} ${name} { ${hookLine(c.hook)} }` : `add chain ${t} ${name}`);
    else if (old.hook !== c.hook) throw new Error(`nft chain ${name} changed hook; a full reload is needed`);
    else body.push(`flush chain ${t} ${name}`);
    for (const r of c.rules) body.push(`add rule ${t} ${name} ${r}`);
  }
  for (const name of from.chains.keys()) {
    if (!to.chains.has(name)) {
      body.push(`flush chain ${t} ${name}`);
      tail.push(`delete chain ${t} ${name}`);
    }
  }
  for (const name of from.sets.keys()) if (!to.sets.has(name)) tail.push(`delete set ${t} ${name}`);
  const all = [...head, ...body, ...tail];
  return all.length ? all.join("\n") + "\n" : "";
}
