/**
 * Speaker and peer configuration (the library's API types, exported by `mod.ts`; a few fields are
 * marked "added"), with a validate step that reports every problem at once.
 *
 * @module
 */

import type { AfiSafi } from "./codec/types.ts";
import { type Policy, validatePolicy } from "./policy.ts";
import { addrBytes } from "./prefix.ts";
import { ConfigError } from "../errors/mod.ts";

export { ConfigError };

export type LogFn = (
  level: "debug" | "info" | "warning" | "error",
  msg: string,
  fields?: Record<string, unknown>,
) => void;

export interface SpeakerConfig {
  asn: number;
  routerId: string;
  /** Listening sockets shared by all peers; false = never accept (all peers active). Default: 0.0.0.0:179. */
  listen?: { addresses: string[]; port: number } | false;
  /**
   * Graceful restart (RFC 4724). `restarting` (added): set the R bit in our first OPEN to each
   * peer and defer our advertisement until its End-of-RIB; use it when the process restarts with
   * routes preserved in the kernel.
   */
  gracefulRestart?: { restartTime: number; deferralTime: number; restarting?: boolean };
  /** CLUSTER_ID when acting as route reflector; default: router ID. */
  clusterId?: string;
  log?: LogFn;
}

export interface PeerConfig {
  address: string;
  asn: number;
  port?: number;
  localAddress?: string;
  password?: string;
  holdTime?: number;
  connectRetry?: number;
  multihopTtl?: number;
  passive?: boolean;
  families?: AfiSafi[];
  routeReflectorClient?: boolean;
  nextHopSelf?: boolean;
  gracefulRestart?: boolean;
  importPolicy?: Policy;
  exportPolicy?: Policy;
  bfd?: {
    enabled: boolean;
    port?: number;
    desiredMinTxMs?: number;
    requiredMinRxMs?: number;
    detectMultiplier?: number;
  };
  description?: string;
  /** (added) Next hop we announce for IPv4 routes when the session runs over IPv6 (or to override). */
  nextHopIpv4?: string;
  /** (added) Next hop we announce for IPv6 routes when the session runs over IPv4 (or to override). */
  nextHopIpv6?: string;
  /** (added) IPv6 link-local next hop sent next to the global one (RFC 2545). */
  nextHopIpv6LinkLocal?: string;
}

const isAsn = (n: number) => Number.isInteger(n) && n >= 1 && n <= 0xffffffff;
const isV4 = (s: string) => !!addrBytes(s) && !s.includes(":");
const isIp = (s: string) => !!addrBytes(s);

/** Every problem with a speaker configuration (empty = valid). */
export function validateSpeakerConfig(c: SpeakerConfig): string[] {
  const e: string[] = [];
  if (!isAsn(c.asn)) e.push(`bgp speaker: asn ${JSON.stringify(c.asn)} must be an integer 1..4294967295`);
  if (!isV4(c.routerId) || c.routerId === "0.0.0.0") {
    e.push(`bgp speaker: routerId ${JSON.stringify(c.routerId)} must be a non-zero dotted quad`);
  }
  if (c.clusterId !== undefined && !isV4(c.clusterId)) {
    e.push(`bgp speaker: clusterId ${JSON.stringify(c.clusterId)} must be a dotted quad`);
  }
  if (c.listen) {
    if (!Number.isInteger(c.listen.port) || c.listen.port < 0 || c.listen.port > 65535) {
      e.push(`bgp speaker: listen.port ${JSON.stringify(c.listen.port)} must be 0..65535`);
    }
    for (const a of c.listen.addresses) {
      if (!isIp(a)) e.push(`bgp speaker: listen.addresses entry ${JSON.stringify(a)} is not an IP address`);
    }
  }
  const gr = c.gracefulRestart;
  if (gr) {
    if (!(gr.restartTime >= 0 && gr.restartTime <= 4095)) {
      e.push(`bgp speaker: gracefulRestart.restartTime ${gr.restartTime} must be 0..4095 s`);
    }
    if (!(gr.deferralTime >= 0)) {
      e.push(`bgp speaker: gracefulRestart.deferralTime ${gr.deferralTime} must be ≥ 0 s`);
    }
  }
  return e;
}

/** Every problem with a peer configuration (empty = valid). */
export function validatePeerConfig(p: PeerConfig): string[] {
  const e: string[] = [];
  const at = `bgp peer ${JSON.stringify(p.address)}`;
  if (!isIp(p.address)) e.push(`${at}: address is not an IP address`);
  if (!isAsn(p.asn)) e.push(`${at}: asn ${JSON.stringify(p.asn)} must be an integer 1..4294967295`);
  if (p.port !== undefined && !(Number.isInteger(p.port) && p.port > 0 && p.port <= 65535)) {
    e.push(`${at}: port ${p.port} must be 1..65535`);
  }
  if (p.localAddress !== undefined && !isIp(p.localAddress)) {
    e.push(`${at}: localAddress ${JSON.stringify(p.localAddress)} is not an IP address`);
  }
  if (p.holdTime !== undefined && !(p.holdTime === 0 || (p.holdTime >= 3 && p.holdTime <= 65535))) {
    e.push(`${at}: holdTime ${p.holdTime} must be 0 or 3..65535 s`);
  }
  if (p.connectRetry !== undefined && !(p.connectRetry > 0)) {
    e.push(`${at}: connectRetry ${p.connectRetry} must be > 0 s`);
  }
  if (
    p.multihopTtl !== undefined &&
    !(Number.isInteger(p.multihopTtl) && p.multihopTtl >= 1 && p.multihopTtl <= 255)
  ) {
    e.push(`${at}: multihopTtl ${p.multihopTtl} must be 1..255`);
  }
  if (p.password !== undefined && new TextEncoder().encode(p.password).length > 80) {
    e.push(`${at}: password is longer than 80 bytes (RFC 2385 key limit)`);
  }
  for (const f of p.families ?? []) {
    if (!((f.afi === 1 || f.afi === 2) && f.safi === 1)) {
      e.push(`${at}: family ${JSON.stringify(f)} is not IPv4 (afi 1) or IPv6 (afi 2) unicast (safi 1)`);
    }
  }
  for (const k of ["nextHopIpv4", "nextHopIpv6", "nextHopIpv6LinkLocal"] as const) {
    if (p[k] !== undefined && !isIp(p[k]!)) {
      e.push(`${at}: ${k} ${JSON.stringify(p[k])} is not an IP address`);
    }
  }
  if (p.importPolicy) e.push(...validatePolicy(p.importPolicy, `${at}: importPolicy`));
  if (p.exportPolicy) e.push(...validatePolicy(p.exportPolicy, `${at}: exportPolicy`));
  return e;
}

/**
 * A configuration the speaker cannot use: the tree's one `ConfigError`, with every problem
 * joined by "; " so a log record of it stays one line.
 */
export function configError(problems: string[]): ConfigError {
  return new ConfigError(problems, { separator: "; " });
}
