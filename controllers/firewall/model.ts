/**
 * The backend-neutral form of the firewall: chains of rules made of matches and one verdict,
 * and sets. The plan produces it; `iptables_render.ts` and `nft_render.ts` turn it into one
 * transaction for their tool, and `trace.ts` walks packets through it in tests.
 *
 * @module
 */
import type { Family } from "./net.ts";

export type L4Proto = "tcp" | "udp" | "sctp";

export type Match =
  /** Source or destination address in a prefix (a bare address means a host). */
  | { k: "addr"; dir: "src" | "dst"; cidr: string }
  /** Source or destination in a set (optionally negated). */
  | { k: "set"; dir: "src" | "dst"; set: string; negate?: boolean }
  /** Layer-4 protocol, optionally with a destination port or `lo:hi` range. */
  | { k: "l4"; proto: L4Proto; dport?: string; multiport?: boolean }
  /** `addrtype --src-type LOCAL` / `--dst-type LOCAL`. */
  | { k: "local"; dir: "src" | "dst"; negate?: boolean }
  | { k: "ct"; states: Array<"INVALID" | "RELATED" | "ESTABLISHED"> }
  /** ICMP (or ICMPv6 in the IPv6 family) of a named type. */
  | { k: "icmp"; type: IcmpType }
  | { k: "mark"; value: number; mask: number; negate?: boolean }
  | { k: "limit"; perMinute: number; burst: number };

export type IcmpType =
  | "echo-request"
  | "destination-unreachable"
  | "time-exceeded"
  | "packet-too-big"
  | "neighbor-solicitation"
  | "neighbor-advertisement";

export type Verdict =
  | { k: "jump"; chain: string }
  | { k: "accept" }
  | { k: "drop" }
  | { k: "return" }
  | { k: "reject" }
  /** `MARK --set-xmark value/mask`: bits in mask set to value. */
  | { k: "mark"; value: number; mask: number }
  | { k: "nflog"; group: number };

export interface FwRule {
  matches: Match[];
  verdict: Verdict;
  comment?: string;
}

/** A set: `ip` holds addresses, `net` holds prefixes (entries may carry ` nomatch`). */
export interface FwSet {
  name: string;
  kind: "ip" | "net";
  family: Family;
  entries: string[];
}

/** Everything of one address family. */
export interface FamilyState {
  family: Family;
  /** Chain name → rules, in render order (top-level chains first). */
  chains: Map<string, FwRule[]>;
  sets: Map<string, FwSet>;
}
