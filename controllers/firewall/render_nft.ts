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
      return `fib ${m.dir === "src" ? "saddr" : "daddr"} type local`;
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

/** One rule as an nft statement line. */
export function nftRule(rule: FwRule, family: Family, sets: ReadonlyMap<string, FwSet>): string {
  const parts = rule.matches.map((m) => matchExpr(m, family, sets));
  parts.push(verdictStmt(rule.verdict));
  if (rule.comment) parts.push(`comment ${q(rule.comment.slice(0, 120))}`);
  return parts.join(" ");
}

function setDecl(s: FwSet, name: string, entries: string[], family: Family): string[] {
  const type = family === "ipv4" ? "ipv4_addr" : "ipv6_addr";
  const flags = s.kind === "net" ? " flags interval; auto-merge;" : "";
  const elems = entries.length ? ` elements = { ${entries.join(", ")} }` : "";
  return [`  set ${name} { type ${type};${flags}${elems} }`];
}

/**
 * The whole table as one `nft -f` script: create-if-missing, delete, then define, so the
 * previous contents are replaced atomically in a single transaction.
 */
export function renderNftTable(state: FamilyState): string {
  const t = tableOf(state.family);
  const lines: string[] = [
    `table ${t.family} ${t.name}`,
    `delete table ${t.family} ${t.name}`,
    `table ${t.family} ${t.name} {`,
  ];
  for (const s of state.sets.values()) {
    const name = nftSetName(s.name);
    const match = s.entries.filter((e) => !e.endsWith(" nomatch"));
    const except = s.entries.filter((e) => e.endsWith(" nomatch")).map((e) => e.slice(0, -8));
    lines.push(...setDecl(s, name, match, state.family));
    if (s.kind === "net" && except.length) lines.push(...setDecl(s, `${name}-EXCEPT`, except, state.family));
  }
  for (const name of state.chains.keys()) {
    const hook = HOOKS[name];
    lines.push(`  chain ${name} {`);
    if (hook) lines.push(`    type filter hook ${hook} priority filter; policy accept;`);
    lines.push("  }");
  }
  lines.push("}");
  for (const [name, rules] of state.chains) {
    lines.push(`table ${t.family} ${t.name} {`, `  chain ${name} {`);
    for (const r of rules) lines.push(`    ${nftRule(r, state.family, state.sets)}`);
    lines.push("  }", "}");
  }
  return lines.join("\n") + "\n";
}
