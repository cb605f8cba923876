/**
 * Prefix and address helpers shared by the RIB, the policies and the API: parse "10.0.0.0/24" and
 * "2001:db8::/32" into `Prefix`, make canonical keys, test containment. Pure.
 *
 * @module
 */

import type { Prefix } from "./codec/types.ts";
import {
  canonicalIp,
  cidrContainsBytes,
  clearHostBits,
  formatIp,
  parseIp,
  parseIPv4,
  SLOPPY,
} from "../net/ip.ts";

// The one prefix-text parser and formatter live in the codec (the bottom of this library).
export { formatPrefix, parsePrefix, SLOPPY_PREFIX } from "./codec/nlri.ts";

/** The RIB key of a prefix: "addr/len" (addresses are canonical, so one prefix = one key). */
export function prefixKey(p: Prefix): string {
  return `${p.addr}/${p.len}`;
}

/** Address → bytes (4 or 16), or null when it is not an IPv4/IPv6 literal. */
export function addrBytes(a: string): number[] | null {
  const b = parseIp(a, SLOPPY);
  return b ? Array.from(b) : null;
}

/** Bytes → canonical text (RFC 5952 for IPv6: lower case, longest zero run compressed). */
export function bytesToAddr(b: number[]): string {
  return formatIp(b);
}

/** Canonical form of an address literal (throws on a non-address: caller validated config). */
export function canonicalAddr(a: string): string {
  const c = canonicalIp(a, SLOPPY);
  if (c === null) throw new TypeError(`address ${JSON.stringify(a)} is not an IPv4 or IPv6 literal`);
  return c;
}

/** Whether IPv4 address `y` (a number) has the first `len` bits of `x` (`len` 0: always). */
export function ipv4Covers(x: number, len: number, y: number): boolean {
  // `>>> 32` shifts by 0 in JavaScript, so /0 is answered before it.
  return len === 0 || ((x ^ y) >>> (32 - len)) === 0;
}

/** True when `outer` covers `inner` (same family, shorter or equal length, same leading bits). */
export function prefixContains(outer: Prefix, inner: Prefix): boolean {
  if (outer.afi !== inner.afi || outer.len > inner.len) return false;
  // IPv4 as numbers: policies test every received route, and two byte arrays per test were a
  // tenth of the router's time under a full feed's churn.
  const x = parseIPv4(outer.addr, true), y = x < 0 ? -1 : parseIPv4(inner.addr, true);
  if (y >= 0) return ipv4Covers(x, outer.len, y);
  const a = parseIp(outer.addr, SLOPPY)!, b = parseIp(inner.addr, SLOPPY)!;
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
