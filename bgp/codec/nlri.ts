/**
 * NLRI prefix encoding (RFC 4271 §4.3, RFC 4760 §5): a length octet followed by the fewest
 * octets that hold it. Decoded prefixes have their host bits cleared and canonical address text.
 *
 * @module
 */

import type { ByteWriter } from "./bytes.ts";
import { formatIp, formatIPv4Number, formatIPv6, parseCidr, parseIPv4, parseIPv6Into } from "./ip.ts";
import { AFI, type Afi, type Prefix } from "./types.ts";

const scratch6 = new Uint8Array(16);

/** Maximum prefix length for an AFI. */
export function maxPrefixLength(afi: Afi): number {
  return afi === AFI.IPv6 ? 128 : 32;
}

/**
 * Decodes the prefixes in `b[start, end)` and appends them to `out`. Returns null on success or a
 * one-line reason when the field is syntactically incorrect (RFC 7606 §5.3: a prefix length above
 * the family maximum, or a prefix that overruns the field).
 */
export function decodePrefixes(
  b: Uint8Array,
  start: number,
  end: number,
  afi: Afi,
  out: Prefix[],
): string | null {
  let p = start;
  if (afi === AFI.IPv4) {
    while (p < end) {
      const len = b[p++];
      if (len > 32) return `prefix length ${len} at offset ${p - 1} exceeds 32`;
      const nb = (len + 7) >> 3;
      if (p + nb > end) return `prefix /${len} at offset ${p - 1} overruns the field`;
      let v = 0;
      for (let i = 0; i < 4; i++) v = v * 256 + (i < nb ? b[p + i] : 0);
      if (len < 32) v = len === 0 ? 0 : (v & ~((1 << (32 - len)) - 1)) >>> 0;
      out.push({ afi: AFI.IPv4, addr: formatIPv4Number(v), len });
      p += nb;
    }
    return null;
  }
  while (p < end) {
    const len = b[p++];
    if (len > 128) return `prefix length ${len} at offset ${p - 1} exceeds 128`;
    const nb = (len + 7) >> 3;
    if (p + nb > end) return `prefix /${len} at offset ${p - 1} overruns the field`;
    scratch6.fill(0);
    for (let i = 0; i < nb; i++) scratch6[i] = b[p + i];
    const rem = len & 7;
    if (rem) scratch6[nb - 1] &= (0xff << (8 - rem)) & 0xff;
    out.push({ afi: AFI.IPv6, addr: formatIPv6(scratch6), len });
    p += nb;
  }
  return null;
}

/**
 * Writes one prefix in NLRI form, clearing host bits. Throws TypeError for an address that is not
 * of the prefix's family or a length out of range (a programming error in the caller).
 */
export function encodePrefix(w: ByteWriter, p: Prefix): void {
  const max = maxPrefixLength(p.afi);
  if (!Number.isInteger(p.len) || p.len < 0 || p.len > max) {
    throw new TypeError(`prefix ${p.addr}/${p.len}: length must be 0..${max}`);
  }
  const nb = (p.len + 7) >> 3;
  w.ensure(1 + nb);
  w.buf[w.pos++] = p.len;
  if (p.afi === AFI.IPv4) {
    let v = parseIPv4(p.addr);
    if (v < 0) throw new TypeError(`prefix ${p.addr}/${p.len}: address is not IPv4 dotted-quad text`);
    if (p.len < 32) v = p.len === 0 ? 0 : (v & ~((1 << (32 - p.len)) - 1)) >>> 0;
    for (let i = 0; i < nb; i++) w.buf[w.pos++] = (v >>> (24 - 8 * i)) & 255;
    return;
  }
  if (p.afi !== AFI.IPv6 || !parseIPv6Into(p.addr, scratch6)) {
    throw new TypeError(`prefix ${p.addr}/${p.len}: address is not IPv6 text`);
  }
  const rem = p.len & 7;
  if (rem) scratch6[nb - 1] &= (0xff << (8 - rem)) & 0xff;
  for (let i = 0; i < nb; i++) w.buf[w.pos++] = scratch6[i];
}

/** Writes a list of prefixes. */
export function encodePrefixes(w: ByteWriter, ps: readonly Prefix[]): void {
  for (let i = 0; i < ps.length; i++) encodePrefix(w, ps[i]);
}

/** Bytes a prefix takes in NLRI form. */
export function prefixWireLength(p: Prefix): number {
  return 1 + ((p.len + 7) >> 3);
}

/** How `parsePrefix` reads text. Every field defaults to false (strict, as the codec wants). */
export interface PrefixTextOptions {
  /** Accept IPv4 octets with leading zeros ("010"), read as decimal. */
  leadingZeros?: boolean;
  /** Read a bare address (no "/len") as a host prefix (/32, /128). */
  bareIsHost?: boolean;
  /** Ignore surrounding spaces. */
  trim?: boolean;
}

/**
 * Text from configuration and the Kubernetes API (the speaker's API and the routing controller
 * read it this way): leading-zero octets as decimal, as Kubernetes' ParseIPSloppy does; a bare
 * address is a host prefix; surrounding spaces ignored.
 */
export const SLOPPY_PREFIX: Readonly<PrefixTextOptions> = {
  leadingZeros: true,
  bareIsHost: true,
  trim: true,
};

/**
 * Parses "10.1.0.0/16" or "2001:db8::/32" into a `Prefix` with host bits cleared and canonical
 * address text; null when it is not a prefix. The tree's one prefix-text parser (over
 * `net/ip.ts`): strict unless `opts` relaxes it (see `SLOPPY_PREFIX`).
 */
export function parsePrefix(s: string, opts: Readonly<PrefixTextOptions> = {}): Prefix | null {
  const c = parseCidr(opts.trim ? s.trim() : s, {
    leadingZeros: opts.leadingZeros ?? false,
    bareIsHost: opts.bareIsHost ?? false,
  });
  if (!c) return null;
  return { afi: c.family === 4 ? AFI.IPv4 : AFI.IPv6, addr: formatIp(c.bytes), len: c.len };
}

/** "addr/len" text of a prefix. */
export function formatPrefix(p: Prefix): string {
  return p.addr + "/" + p.len;
}
