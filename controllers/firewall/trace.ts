/**
 * A packet tracer over the backend-neutral model: walks one packet through our chains the way
 * netfilter would (jumps, returns, marks, terminal verdicts) and says what happens to it. Used by
 * unit and property tests to check plan semantics without a kernel; it models only the matches
 * the plan emits.
 *
 * @module
 */
import type { FamilyState, FwRule, FwSet, Match } from "./model.ts";
import { type Cidr, cidrContains, parseCidr } from "./net.ts";
import { FORWARD_CHAIN, INPUT_CHAIN, OUTPUT_CHAIN } from "./names.ts";

export interface Packet {
  src: string;
  dst: string;
  proto: "tcp" | "udp" | "sctp" | "icmp";
  dport?: number;
  icmpType?: string;
  hook: "INPUT" | "FORWARD" | "OUTPUT";
  /** Conntrack state; NEW for a first packet. */
  ct?: "NEW" | "ESTABLISHED" | "RELATED" | "INVALID";
  srcLocal?: boolean;
  dstLocal?: boolean;
  mark?: number;
}

export type Outcome = "accept" | "reject" | "drop" | "continue";

export interface TraceResult {
  outcome: Outcome;
  mark: number;
  /** Chains and rule indexes visited, for failure messages. */
  path: string[];
}

function setContains(s: FwSet, ip: string): boolean {
  if (s.kind === "ip") return s.entries.includes(ip);
  let best: { c: Cidr; nomatch: boolean } | undefined;
  for (const e of s.entries) {
    const [text, flag] = e.split(" ");
    const c = parseCidr(text)!;
    if (cidrContains(c, ip) && (!best || c.prefix > best.c.prefix)) best = { c, nomatch: flag === "nomatch" };
  }
  return !!best && !best.nomatch;
}

function inRange(spec: string, port: number | undefined): boolean {
  if (port === undefined) return false;
  const [lo, hi] = spec.split(":").map(Number);
  return hi === undefined ? port === lo : port >= lo && port <= hi;
}

function matches(m: Match, p: Packet, mark: number, st: FamilyState): boolean {
  switch (m.k) {
    case "addr":
      return cidrContains(parseCidr(m.cidr)!, m.dir === "src" ? p.src : p.dst);
    case "set": {
      const s = st.sets.get(m.set);
      if (!s) throw new Error(`trace: rule references missing set ${m.set}`);
      const r = setContains(s, m.dir === "src" ? p.src : p.dst);
      return m.negate ? !r : r;
    }
    case "l4":
      return p.proto === m.proto && (m.dport === undefined || inRange(m.dport, p.dport));
    case "local":
      return (m.dir === "src" ? !!p.srcLocal : !!p.dstLocal) !== !!m.negate;
    case "ct":
      return m.states.includes((p.ct ?? "NEW") as "INVALID");
    case "icmp":
      return p.proto === "icmp" && p.icmpType === m.type;
    case "mark": {
      const r = (mark & m.mask) === m.value;
      return m.negate ? !r : r;
    }
    case "limit":
      return true;
  }
}

/** Traces a packet from the built-in hook through our top-level chain. */
export function trace(st: FamilyState, p: Packet): TraceResult {
  const top = p.hook === "INPUT" ? INPUT_CHAIN : p.hook === "FORWARD" ? FORWARD_CHAIN : OUTPUT_CHAIN;
  const path: string[] = [];
  let mark = p.mark ?? 0;
  const run = (chain: string, depth: number): Outcome | "return" => {
    if (depth > 16) throw new Error(`trace: jump depth exceeded at ${chain}`);
    const rules: FwRule[] | undefined = st.chains.get(chain);
    if (!rules) throw new Error(`trace: jump to missing chain ${chain}`);
    for (let i = 0; i < rules.length; i++) {
      const r = rules[i];
      if (!r.matches.every((m) => matches(m, p, mark, st))) continue;
      path.push(`${chain}#${i}`);
      const v = r.verdict;
      switch (v.k) {
        case "jump": {
          const o = run(v.chain, depth + 1);
          if (o !== "return" && o !== "continue") return o;
          break;
        }
        case "accept":
          return "accept";
        case "drop":
          return "drop";
        case "reject":
          return "reject";
        case "return":
          return "return";
        case "mark":
          mark = (mark & ~v.mask) | (v.value & v.mask);
          break;
        case "nflog":
          break;
      }
    }
    return "continue";
  };
  const o = run(top, 0);
  return { outcome: o === "return" ? "continue" : o, mark, path };
}
