/**
 * Prefix and address helpers shared by the RIB, the policies and the API: parse "10.0.0.0/24" and
 * "2001:db8::/32" into `Prefix`, make canonical keys, test containment. Pure.
 *
 * @module
 */

import { AFI, type Prefix } from "./codec/types.ts";

/** The RIB key of a prefix: "addr/len" (addresses are canonical, so one prefix = one key). */
export function prefixKey(p: Prefix): string {
  return `${p.addr}/${p.len}`;
}

function v4Bytes(a: string): number[] | null {
  const parts = a.split(".");
  if (parts.length !== 4) return null;
  const out: number[] = [];
  for (const s of parts) {
    if (!/^\d{1,3}$/.test(s) || +s > 255) return null;
    out.push(+s);
  }
  return out;
}

function v6Bytes(a: string): number[] | null {
  if (!/^[0-9a-fA-F:.]+$/.test(a)) return null;
  const dbl = a.split("::");
  if (dbl.length > 2) return null;
  const parse = (s: string): number[] | null => {
    if (s === "") return [];
    const out: number[] = [];
    const groups = s.split(":");
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i];
      if (i === groups.length - 1 && g.includes(".")) {
        const v4 = v4Bytes(g);
        if (!v4) return null;
        out.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
        out.push(parseInt(g, 16));
      }
    }
    return out;
  };
  const head = parse(dbl[0]);
  const tail = dbl.length === 2 ? parse(dbl[1]) : [];
  if (!head || !tail) return null;
  const fill = 8 - head.length - tail.length;
  if ((dbl.length === 2 && fill < 1) || (dbl.length === 1 && fill !== 0)) return null;
  const groups = [...head, ...Array(Math.max(0, fill)).fill(0), ...tail];
  return groups.flatMap((g) => [g >> 8, g & 255]);
}

/** Address → bytes (4 or 16), or null when it is not an IPv4/IPv6 literal. */
export function addrBytes(a: string): number[] | null {
  return a.includes(":") ? v6Bytes(a) : v4Bytes(a);
}

/** Bytes → canonical text (RFC 5952 for IPv6: lower case, longest zero run compressed). */
export function bytesToAddr(b: number[]): string {
  if (b.length === 4) return b.join(".");
  const g: number[] = [];
  for (let i = 0; i < 16; i += 2) g.push((b[i] << 8) | b[i + 1]);
  let bestStart = -1, bestLen = 0;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) [bestStart, bestLen] = [i, j - i];
    i = j;
  }
  const hex = g.map((x) => x.toString(16));
  if (bestStart < 0) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLen).join(":")}`;
}

/** Canonical form of an address literal (throws on a non-address: caller validated config). */
export function canonicalAddr(a: string): string {
  const b = addrBytes(a);
  if (!b) throw new TypeError(`address ${JSON.stringify(a)} is not an IPv4 or IPv6 literal`);
  return bytesToAddr(b);
}

/** Parse "addr/len" into a Prefix with host bits cleared; null when malformed. */
export function parsePrefix(s: string): Prefix | null {
  const slash = s.indexOf("/");
  const addr = slash < 0 ? s : s.slice(0, slash);
  const b = addrBytes(addr);
  if (!b) return null;
  const max = b.length * 8;
  const len = slash < 0 ? max : Number(s.slice(slash + 1));
  if (!Number.isInteger(len) || len < 0 || len > max) return null;
  for (let i = 0; i < b.length; i++) {
    const keep = Math.max(0, Math.min(8, len - i * 8));
    b[i] &= (0xff00 >> keep) & 0xff;
  }
  return { afi: b.length === 4 ? AFI.IPv4 : AFI.IPv6, addr: bytesToAddr(b), len };
}

/** Text form of a prefix. */
export function formatPrefix(p: Prefix): string {
  return prefixKey(p);
}

/** True when `outer` covers `inner` (same family, shorter or equal length, same leading bits). */
export function prefixContains(outer: Prefix, inner: Prefix): boolean {
  if (outer.afi !== inner.afi || outer.len > inner.len) return false;
  const a = addrBytes(outer.addr)!, b = addrBytes(inner.addr)!;
  let bits = outer.len;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff00 >> bits) & 0xff;
    if ((a[i] & mask) !== (b[i] & mask)) return false;
  }
  return true;
}

/** True for an IPv6 link-local address (fe80::/10). */
export function isLinkLocal6(a: string): boolean {
  return /^fe[89ab]/i.test(a);
}
