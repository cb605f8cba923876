/**
 * Prefix and address helpers shared by the RIB, the policies and the API: parse "10.0.0.0/24" and
 * "2001:db8::/32" into `Prefix`, make canonical keys, test containment. Pure.
 *
 * @module
 */

import { AFI, type Prefix } from "./codec/types.ts";
import { canonicalIp, cidrContainsBytes, clearHostBits, formatIp, parseCidr, parseIp } from "../net/ip.ts";

/** The RIB key of a prefix: "addr/len" (addresses are canonical, so one prefix = one key). */
export function prefixKey(p: Prefix): string {
  return `${p.addr}/${p.len}`;
}

// Addresses from configuration and the Kubernetes API: leading-zero IPv4 octets are read as
// decimal, as this module always did.
const LENIENT = { leadingZeros: true } as const;

/** Address → bytes (4 or 16), or null when it is not an IPv4/IPv6 literal. */
export function addrBytes(a: string): number[] | null {
  const b = parseIp(a, LENIENT);
  return b ? Array.from(b) : null;
}

/** Bytes → canonical text (RFC 5952 for IPv6: lower case, longest zero run compressed). */
export function bytesToAddr(b: number[]): string {
  return formatIp(b);
}

/** Canonical form of an address literal (throws on a non-address: caller validated config). */
export function canonicalAddr(a: string): string {
  const c = canonicalIp(a, LENIENT);
  if (c === null) throw new TypeError(`address ${JSON.stringify(a)} is not an IPv4 or IPv6 literal`);
  return c;
}

/**
 * Parse "addr/len" into a Prefix with host bits cleared; null when malformed. Surrounding spaces
 * are ignored (a trailing one always was); the length is 1-3 decimal digits.
 */
export function parsePrefix(s: string): Prefix | null {
  const c = parseCidr(s.trim(), LENIENT);
  if (!c) return null;
  return { afi: c.family === 4 ? AFI.IPv4 : AFI.IPv6, addr: formatIp(c.bytes), len: c.len };
}

/** Text form of a prefix. */
export function formatPrefix(p: Prefix): string {
  return prefixKey(p);
}

/** True when `outer` covers `inner` (same family, shorter or equal length, same leading bits). */
export function prefixContains(outer: Prefix, inner: Prefix): boolean {
  if (outer.afi !== inner.afi || outer.len > inner.len) return false;
  const a = parseIp(outer.addr, LENIENT)!, b = parseIp(inner.addr, LENIENT)!;
  return cidrContainsBytes({
    family: a.length === 4 ? 4 : 6,
    bytes: clearHostBits(a, outer.len),
    len: outer.len,
  }, b);
}

/** True for an IPv6 link-local address (fe80::/10). */
export function isLinkLocal6(a: string): boolean {
  return /^fe[89ab]/i.test(a);
}
