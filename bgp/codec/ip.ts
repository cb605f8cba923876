/**
 * Pure IPv4/IPv6 address text ⇄ bytes. IPv6 text is canonical per RFC 5952 as the WHATWG URL
 * serializer produces it: lower-case, no leading zeros, the longest run (first on ties) of two or
 * more zero groups compressed to `::`, and never a dotted-quad tail (so `::ffff:1.2.3.4` formats
 * as `::ffff:102:304`, as `new URL` does; glibc's inet_ntop would keep the dotted form).
 *
 * @module
 */

/** Formats 4 bytes at `off` as a dotted quad. */
export function formatIPv4(b: Uint8Array, off = 0): string {
  return b[off] + "." + b[off + 1] + "." + b[off + 2] + "." + b[off + 3];
}

/** Formats a uint32 as a dotted quad. */
export function formatIPv4Number(n: number): string {
  return (n >>> 24) + "." + ((n >>> 16) & 255) + "." + ((n >>> 8) & 255) + "." + (n & 255);
}

/** Parses a dotted quad into a uint32; -1 when `s` is not one (no leading zeros beyond "0"). */
export function parseIPv4(s: string): number {
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
      if (digits > 0 && cur === 0) return -1;
      cur = cur < 0 ? c - 48 : cur * 10 + (c - 48);
      if (cur > 255) return -1;
      digits++;
    } else {
      return -1;
    }
  }
  return parts === 4 ? n : -1;
}

/** Formats 16 bytes at `off` as canonical IPv6 text (see module doc). */
export function formatIPv6(b: Uint8Array, off = 0): string {
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
 * Parses IPv6 text (with `::` and an optional dotted-quad tail) into 16 bytes written to `out`
 * at `off`; returns false when `s` is not an IPv6 address. Zone ids are not accepted.
 */
export function parseIPv6Into(s: string, out: Uint8Array, off = 0): boolean {
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
      const v4 = parseIPv4(s.slice(i));
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
export function parseIPv6(s: string): Uint8Array | null {
  const out = new Uint8Array(16);
  return parseIPv6Into(s, out) ? out : null;
}

/** Canonical text of an IPv4 or IPv6 address; null when `s` is neither. */
export function canonicalIp(s: string): string | null {
  const v4 = parseIPv4(s);
  if (v4 >= 0) return formatIPv4Number(v4);
  const v6 = parseIPv6(s);
  return v6 ? formatIPv6(v6) : null;
}
