/**
 * The one IPv4/IPv6 address and CIDR module: text ⇄ bytes, canonical text, family tests and
 * prefix arithmetic. Pure (no I/O, no Kubernetes), so the BGP library, the controllers and the
 * flag parser all share it.
 *
 * Canonical IPv6 text is RFC 5952 as the WHATWG URL serializer produces it: lower case, no
 * leading zeros, the longest run (first on ties) of two or more zero groups compressed to `::`,
 * and never a dotted-quad tail (so `::ffff:1.2.3.4` formats as `::ffff:102:304`, as `new URL`
 * does; glibc's inet_ntop would keep the dotted form). Every place in the tree formatted that
 * way before this module existed, and RIB keys and ipset entries depend on it.
 *
 * IPv4 text is strict by default: no leading zeros ("01.2.3.4" is rejected, as Go's net.ParseIP
 * does since 1.17, because inet_aton would read it as octal). The `leadingZeros` option accepts
 * them as decimal (at most three digits an octet), for the callers that always did.
 *
 * The parse/format functions on the BGP hot path (`parseIPv4`, `parseIPv6Into`, `formatIPv6`)
 * are hand-written loops without regular expressions or intermediate arrays; measure with
 * `deno run -A bench/bgp_codec.ts 100000` before changing them.
 *
 * @module
 */

/** An address family by IP version: the tree's one family type (proxy, router, kernel, BGP). */
export type IpFamily = 4 | 6;

/**
 * An address family by name, as iptables/ipset tooling and the firewall plan spell it. Convert
 * with `familyName` and `familyNumber` where the two meet; do not spell a third form.
 */
export type IpFamilyName = "ipv4" | "ipv6";

/** 4 → "ipv4", 6 → "ipv6". */
export function familyName(f: IpFamily): IpFamilyName {
  return f === 4 ? "ipv4" : "ipv6";
}

/** "ipv4" → 4, "ipv6" → 6. */
export function familyNumber(f: IpFamilyName): IpFamily {
  return f === "ipv4" ? 4 : 6;
}

/** Joins a host and a port as Go's net.JoinHostPort does: brackets when the host has a colon. */
export function hostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Formats 4 bytes at `off` as a dotted quad. */
export function formatIPv4(b: ArrayLike<number>, off = 0): string {
  return b[off] + "." + b[off + 1] + "." + b[off + 2] + "." + b[off + 3];
}

/** Formats a uint32 as a dotted quad. */
export function formatIPv4Number(n: number): string {
  return (n >>> 24) + "." + ((n >>> 16) & 255) + "." + ((n >>> 8) & 255) + "." + (n & 255);
}

/**
 * Parses a dotted quad into a uint32; -1 when `s` is not one. Leading zeros ("01") are rejected
 * unless `leadingZeros` is true (then read as decimal, at most three digits an octet).
 */
export function parseIPv4(s: string, leadingZeros = false): number {
  let n = 0;
  let parts = 0;
  let cur = -1;
  let digits = 0;
  for (let i = 0; i <= s.length; i++) {
    const c = i < s.length ? s.charCodeAt(i) : 46;
    if (c === 46) {
      if (cur < 0 || parts === 4) return -1;
      n = n * 256 + cur;
      parts++;
      cur = -1;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && cur === 0 && !leadingZeros) return -1;
      cur = cur < 0 ? c - 48 : cur * 10 + (c - 48);
      // Without leading zeros a fourth digit always exceeds 255; with them "0001" must fail too.
      if (cur > 255 || ++digits > 3) return -1;
    } else {
      return -1;
    }
  }
  return parts === 4 ? n : -1;
}

/** Formats 16 bytes at `off` as canonical IPv6 text (see module doc). */
export function formatIPv6(b: ArrayLike<number>, off = 0): string {
  // Find the longest run of zero 16-bit groups (length >= 2; first on ties).
  let bestStart = -1;
  let bestLen = 1;
  let runStart = -1;
  for (let g = 0; g <= 8; g++) {
    const zero = g < 8 && b[off + 2 * g] === 0 && b[off + 2 * g + 1] === 0;
    if (zero) {
      if (runStart < 0) runStart = g;
    } else if (runStart >= 0) {
      const len = g - runStart;
      if (len > bestLen) {
        bestStart = runStart;
        bestLen = len;
      }
      runStart = -1;
    }
  }
  let s = "";
  for (let g = 0; g < 8; g++) {
    if (g === bestStart) {
      s += g === 0 ? "::" : ":";
      g += bestLen - 1;
      continue;
    }
    s += ((b[off + 2 * g] << 8) | b[off + 2 * g + 1]).toString(16);
    if (g < 7) s += ":";
  }
  return s;
}

function hexVal(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/**
 * Parses IPv6 text (RFC 4291: with `::` and an optional dotted-quad tail) into 16 bytes written
 * to `out` at `off`; returns false when `s` is not an IPv6 address. Zone ids and brackets are
 * not accepted. `leadingZeros` applies to the dotted-quad tail (see `parseIPv4`).
 */
export function parseIPv6Into(s: string, out: Uint8Array, off = 0, leadingZeros = false): boolean {
  const groups: number[] = [];
  let gap = -1;
  let i = 0;
  const n = s.length;
  if (n < 2) return false;
  if (s.charCodeAt(0) === 58) {
    if (s.charCodeAt(1) !== 58) return false;
    gap = 0;
    i = 2;
    if (i === n) {
      out.fill(0, off, off + 16);
      return true;
    }
  }
  while (i < n) {
    // Dotted-quad tail?
    let j = i;
    let v = 0;
    let digits = 0;
    while (j < n && digits < 5) {
      const h = hexVal(s.charCodeAt(j));
      if (h < 0) break;
      v = v * 16 + h;
      j++;
      digits++;
    }
    if (j < n && s.charCodeAt(j) === 46) {
      const v4 = parseIPv4(s.slice(i), leadingZeros);
      if (v4 < 0 || groups.length > 6) return false;
      groups.push(v4 >>> 16, v4 & 0xffff);
      i = n;
      break;
    }
    if (digits === 0 || digits > 4) return false;
    groups.push(v);
    i = j;
    if (i === n) break;
    if (s.charCodeAt(i) !== 58) return false;
    i++;
    if (i < n && s.charCodeAt(i) === 58) {
      if (gap >= 0) return false;
      gap = groups.length;
      i++;
      if (i === n) break;
    } else if (i === n) {
      return false;
    }
  }
  if (gap < 0 ? groups.length !== 8 : groups.length > 7) return false;
  const fill = 8 - groups.length;
  let g = 0;
  for (let k = 0; k < 8; k++) {
    let val: number;
    if (gap >= 0 && k >= gap && k < gap + fill) val = 0;
    else val = groups[g++];
    out[off + 2 * k] = val >> 8;
    out[off + 2 * k + 1] = val & 255;
  }
  return true;
}

/** Parses IPv6 text into a new 16-byte array; null when it is not IPv6. */
export function parseIPv6(s: string, leadingZeros = false): Uint8Array | null {
  const out = new Uint8Array(16);
  return parseIPv6Into(s, out, 0, leadingZeros) ? out : null;
}

/** Options of the text parsers that are not on the hot path. */
export interface IpParseOptions {
  /** Accept IPv4 octets with leading zeros ("010"), read as decimal. Default false. */
  leadingZeros?: boolean;
}

/**
 * Text from the Kubernetes API and from configuration: leading-zero IPv4 octets read as decimal,
 * as Kubernetes' ParseIPSloppy does. The controllers and the BGP library read such text this way.
 */
export const SLOPPY: Readonly<IpParseOptions> = { leadingZeros: true };

/** A uint32 IPv4 address as 4 network-order bytes. */
export function ipv4Bytes(n: number): Uint8Array {
  return new Uint8Array([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]);
}

/** Parses an IPv4 or IPv6 literal into 4 or 16 bytes; null when it is neither. */
export function parseIp(s: string, opts?: IpParseOptions): Uint8Array | null {
  const lz = opts?.leadingZeros ?? false;
  const v4 = parseIPv4(s, lz);
  if (v4 >= 0) return ipv4Bytes(v4);
  return parseIPv6(s, lz);
}

/** Formats 4 bytes as a dotted quad and 16 bytes as canonical IPv6 text. */
export function formatIp(b: ArrayLike<number>): string {
  if (b.length === 4) return formatIPv4(b);
  if (b.length === 16) return formatIPv6(b);
  throw new RangeError(`an IP address has 4 or 16 bytes, got ${b.length}`);
}

/** Canonical text of an IPv4 or IPv6 address; null when `s` is neither. */
export function canonicalIp(s: string, opts?: IpParseOptions): string | null {
  const lz = opts?.leadingZeros ?? false;
  const v4 = parseIPv4(s, lz);
  if (v4 >= 0) return formatIPv4Number(v4);
  const v6 = parseIPv6(s, lz);
  return v6 ? formatIPv6(v6) : null;
}

const scratch = new Uint8Array(16);

/** 4 or 6 for an address literal; undefined for anything else (hostnames, CIDRs, garbage). */
export function ipFamily(s: string, opts?: IpParseOptions): IpFamily | undefined {
  const lz = opts?.leadingZeros ?? false;
  if (parseIPv4(s, lz) >= 0) return 4;
  return parseIPv6Into(s, scratch, 0, lz) ? 6 : undefined;
}

/** True for an IPv4 or IPv6 literal. */
export function isIP(s: string, opts?: IpParseOptions): boolean {
  return ipFamily(s, opts) !== undefined;
}

/** True for a dotted-quad IPv4 literal. */
export function isIPv4(s: string, opts?: IpParseOptions): boolean {
  return parseIPv4(s, opts?.leadingZeros ?? false) >= 0;
}

/** True for an IPv6 literal (no zone, no brackets). */
export function isIPv6(s: string, opts?: IpParseOptions): boolean {
  return parseIPv6Into(s, scratch, 0, opts?.leadingZeros ?? false);
}

/** An IP prefix: the network bytes (host bits cleared) and the prefix length. */
export interface Cidr {
  family: IpFamily;
  /** 4 or 16 bytes, host bits cleared. */
  bytes: Uint8Array;
  len: number;
}

/** Options of `parseCidr`. */
export interface CidrParseOptions extends IpParseOptions {
  /** Read a bare address (no "/len") as a host prefix (/32, /128). Default true. */
  bareIsHost?: boolean;
}

/** Clears, in place, every bit of `b` after the first `len`; returns `b`. */
export function clearHostBits(b: Uint8Array, len: number): Uint8Array {
  for (let i = 0; i < b.length; i++) {
    const keep = len - i * 8;
    if (keep < 8) b[i] &= keep <= 0 ? 0 : (0xff00 >> keep) & 0xff;
  }
  return b;
}

/** True when any bit of `b` after the first `len` is set ("10.0.0.1/24"). */
export function hasHostBits(b: ArrayLike<number>, len: number): boolean {
  for (let i = 0; i < b.length; i++) {
    const keep = len - i * 8;
    if (keep < 8 && (b[i] & (keep <= 0 ? 0xff : 0xff >> keep)) !== 0) return true;
  }
  return false;
}

/**
 * Parses "a.b.c.d/n" or "x::/n" (no surrounding spaces) into a `Cidr` with host bits cleared;
 * null when malformed. The length is 1-3 decimal digits, at most 32 or 128.
 */
export function parseCidr(s: string, opts?: CidrParseOptions): Cidr | null {
  const slash = s.indexOf("/");
  if (slash < 0 && opts?.bareIsHost === false) return null;
  const bytes = parseIp(slash < 0 ? s : s.slice(0, slash), opts);
  if (!bytes) return null;
  const max = bytes.length * 8;
  let len = max;
  if (slash >= 0) {
    const t = s.slice(slash + 1);
    if (!/^\d{1,3}$/.test(t)) return null;
    len = Number(t);
    if (len > max) return null;
  }
  return { family: max === 32 ? 4 : 6, bytes: clearHostBits(bytes, len), len };
}

/** "network/len" in canonical text. */
export function formatCidr(c: Cidr): string {
  return `${formatIp(c.bytes)}/${c.len}`;
}

/** True when address bytes `addr` lie in `c` (a different family never does). */
export function cidrContainsBytes(c: Cidr, addr: ArrayLike<number>): boolean {
  if (addr.length !== c.bytes.length) return false;
  let bits = c.len;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff00 >> bits) & 0xff;
    if ((addr[i] & mask) !== c.bytes[i]) return false;
  }
  return true;
}

/** True when the address literal `ip` lies in `c`; false for a non-address or another family. */
export function cidrContains(c: Cidr, ip: string, opts?: IpParseOptions): boolean {
  const b = parseIp(ip, opts);
  return b !== null && cidrContainsBytes(c, b);
}

/** True when `outer` covers `inner`: same family, shorter or equal length, same leading bits. */
export function cidrCovers(outer: Cidr, inner: Cidr): boolean {
  return outer.len <= inner.len && cidrContainsBytes(outer, inner.bytes);
}
