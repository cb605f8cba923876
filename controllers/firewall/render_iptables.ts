/**
 * Renders the backend-neutral model as iptables rule arguments (one `-A` line's words after the
 * chain name), in the order `iptables-save` would print the matches.
 *
 * @module
 */
import type { Family } from "./net.ts";
import type { FwRule, Match, Verdict } from "./model.ts";

const ICMP6: Record<string, string> = {
  "echo-request": "echo-request",
  "destination-unreachable": "destination-unreachable",
  "time-exceeded": "time-exceeded",
  "packet-too-big": "packet-too-big",
  "neighbor-solicitation": "neighbour-solicitation",
  "neighbor-advertisement": "neighbour-advertisement",
};

function hex(n: number): string {
  return "0x" + n.toString(16);
}

function matchArgs(m: Match, family: Family): string[] {
  switch (m.k) {
    case "addr":
      return [m.dir === "src" ? "-s" : "-d", m.cidr];
    case "set":
      return ["-m", "set", ...(m.negate ? ["!"] : []), "--match-set", m.set, m.dir];
    case "l4":
      if (m.dport === undefined) return ["-p", m.proto];
      if (m.multiport) return ["-p", m.proto, "-m", "multiport", "--dports", m.dport];
      return ["-p", m.proto, "-m", m.proto, "--dport", m.dport];
    case "local":
      return [
        "-m",
        "addrtype",
        ...(m.negate ? ["!"] : []),
        m.dir === "src" ? "--src-type" : "--dst-type",
        "LOCAL",
      ];
    case "ct":
      return ["-m", "conntrack", "--ctstate", m.states.join(",")];
    case "icmp":
      return family === "ipv4"
        ? ["-p", "icmp", "-m", "icmp", "--icmp-type", m.type]
        : ["-p", "ipv6-icmp", "-m", "icmp6", "--icmpv6-type", ICMP6[m.type]];
    case "mark":
      return ["-m", "mark", ...(m.negate ? ["!"] : []), "--mark", `${hex(m.value)}/${hex(m.mask)}`];
    case "limit":
      return ["-m", "limit", "--limit", `${m.perMinute}/minute`, "--limit-burst", String(m.burst)];
  }
}

function verdictArgs(v: Verdict): string[] {
  switch (v.k) {
    case "jump":
      return ["-j", v.chain];
    case "accept":
      return ["-j", "ACCEPT"];
    case "drop":
      return ["-j", "DROP"];
    case "return":
      return ["-j", "RETURN"];
    case "reject":
      return ["-j", "REJECT"];
    case "mark":
      return ["-j", "MARK", "--set-xmark", `${hex(v.value)}/${hex(v.mask)}`];
    case "nflog":
      return ["-j", "NFLOG", "--nflog-group", String(v.group)];
  }
}

/** The words of one rule after `-A CHAIN`. Comments are cut to the kernel's 256 bytes. */
export function ruleArgs(rule: FwRule, family: Family): string[] {
  const out: string[] = [];
  for (const m of rule.matches) out.push(...matchArgs(m, family));
  if (rule.comment) out.push("-m", "comment", "--comment", truncate(rule.comment, 255));
  out.push(...verdictArgs(rule.verdict));
  return out;
}

function truncate(s: string, max: number): string {
  const b = new TextEncoder().encode(s);
  if (b.length <= max) return s;
  return new TextDecoder().decode(b.slice(0, max)).replace(/\uFFFD+$/, "");
}

/** Rendered lines per rule object; one per applier (`IptablesApplier` keeps its own). */
export type RuleLineMemo = Record<Family, WeakMap<FwRule, { args: string[]; line: string }>>;

export function ruleLineMemo(): RuleLineMemo {
  return { ipv4: new WeakMap(), ipv6: new WeakMap() };
}

/**
 * `ruleArgs` plus its text, memoised per rule object in `memo` when given: the plan reuses the
 * rule objects of unchanged pods, so a sync re-renders only what changed.
 */
export function ruleLine(
  rule: FwRule,
  family: Family,
  memo?: RuleLineMemo,
): { args: string[]; line: string } {
  let r = memo?.[family].get(rule);
  if (!r) {
    const args = ruleArgs(rule, family);
    r = { args, line: args.join(" ") };
    memo?.[family].set(rule, r);
  }
  return r;
}
