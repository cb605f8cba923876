/**
 * IP address text ⇄ bytes and `struct sockaddr_in`/`sockaddr_in6` encoding, pure and
 * unit-tested, so the FFI layer only moves bytes.
 *
 * @module
 */
import { C } from "./libc.ts";
import { formatIp as formatIpBytes, ipv4Bytes, parseIPv4, parseIPv6 } from "../../net/ip.ts";

/** A parsed IP address: 4 or 16 bytes, and an optional IPv6 zone (`fe80::1%eth0`). */
export interface IpAddr {
  family: 4 | 6;
  bytes: Uint8Array;
  zone?: string;
}

/** Parses dotted IPv4 or RFC 4291 IPv6 text (with `::` and an embedded IPv4 tail); null if invalid. */
export function parseIp(text: string): IpAddr | null {
  const v4 = parseIPv4(text);
  if (v4 >= 0) return { family: 4, bytes: ipv4Bytes(v4) };
  let zone: string | undefined;
  let s = text;
  const pct = s.indexOf("%");
  if (pct >= 0) {
    zone = s.slice(pct + 1);
    s = s.slice(0, pct);
    if (!zone) return null;
  }
  if (s.startsWith("[") && s.endsWith("]")) s = s.slice(1, -1);
  const v6 = parseIPv6(s);
  if (!v6) return null;
  return zone === undefined ? { family: 6, bytes: v6 } : { family: 6, bytes: v6, zone };
}

/** Canonical text (RFC 5952 for IPv6: lower case, longest zero run of ≥2 groups as `::`). */
export function formatIp(a: IpAddr): string {
  const text = formatIpBytes(a.bytes);
  return a.zone ? `${text}%${a.zone}` : text;
}

/** `::ffff:a.b.c.d` → the IPv4 address; anything else unchanged. */
export function unmapV4(a: IpAddr): IpAddr {
  if (a.family !== 6) return a;
  const b = a.bytes;
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return a;
  if (b[10] !== 0xff || b[11] !== 0xff) return a;
  return { family: 4, bytes: b.slice(12) };
}

/** IPv4 → `::ffff:a.b.c.d` (how a dual-stack IPv6 socket names an IPv4 peer). */
export function mapV4(a: IpAddr): IpAddr {
  if (a.family === 6) return a;
  const b = new Uint8Array(16);
  b[10] = 0xff;
  b[11] = 0xff;
  b.set(a.bytes, 12);
  return { family: 6, bytes: b };
}

/** Size of `struct sockaddr_storage`. */
export const SOCKADDR_STORAGE = 128;

/**
 * Encodes `struct sockaddr_in` (16 bytes) or `sockaddr_in6` (28 bytes) into `out` (or a new
 * 128-byte buffer) and returns the buffer and the length to pass to the kernel.
 * `scopeId` is the interface index of a link-local IPv6 address.
 */
export function encodeSockaddr(
  a: IpAddr,
  port: number,
  scopeId = 0,
  out = new Uint8Array(SOCKADDR_STORAGE),
): { buf: Uint8Array; len: number } {
  const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
  out.fill(0);
  if (a.family === 4) {
    dv.setUint16(0, C.AF_INET, true);
    dv.setUint16(2, port, false);
    out.set(a.bytes, 4);
    return { buf: out, len: 16 };
  }
  dv.setUint16(0, C.AF_INET6, true);
  dv.setUint16(2, port, false);
  out.set(a.bytes, 8);
  dv.setUint32(24, scopeId, true);
  return { buf: out, len: 28 };
}

/** Decodes a sockaddr written by the kernel; null for a family other than IPv4/IPv6. */
export function decodeSockaddr(buf: Uint8Array): { addr: IpAddr; port: number; scopeId: number } | null {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const family = dv.getUint16(0, true);
  const port = dv.getUint16(2, false);
  if (family === C.AF_INET) return { addr: { family: 4, bytes: buf.slice(4, 8) }, port, scopeId: 0 };
  if (family === C.AF_INET6) {
    return { addr: { family: 6, bytes: buf.slice(8, 24) }, port, scopeId: dv.getUint32(24, true) };
  }
  return null;
}
