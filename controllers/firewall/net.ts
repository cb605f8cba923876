/**
 * The firewall plan's view of the shared IP module `net/ip.ts`: prefixes as canonical text with
 * "ipv4"/"ipv6" families, and the split of a `/0` (which `hash:net` sets cannot hold) into halves.
 *
 * @module
 */

import {
  canonicalIp,
  cidrContains as netCidrContains,
  familyName,
  formatIp,
  type IpFamilyName,
  parseCidr as parseNetCidr,
  parseIp,
  SLOPPY,
} from "../../net/ip.ts";

/** The family by name (`net/ip.ts`); the proxy and router use its number form, `IpFamily`. */
export type Family = IpFamilyName;

/** A parsed prefix: canonical text, family and length. */
export interface Cidr {
  family: Family;
  /** Canonical network address (host bits cleared). */
  address: string;
  prefix: number;
  /** `address/prefix`. */
  text: string;
}

/** The family of an address or prefix, by its syntax. */
export function familyOf(addr: string): Family {
  return addr.includes(":") ? "ipv6" : "ipv4";
}

/** Canonical form of an address, or `undefined` when it is not one. */
export function canonicalAddress(s: string): string | undefined {
  return canonicalIp(s, SLOPPY) ?? undefined;
}

/** Parses `addr/len` (or a bare address as a host prefix); `undefined` when invalid. */
export function parseCidr(s: string): Cidr | undefined {
  const c = parseNetCidr(s.trim(), SLOPPY);
  if (!c) return undefined;
  const address = formatIp(c.bytes);
  return { family: familyName(c.family), address, prefix: c.len, text: `${address}/${c.len}` };
}

/** Whether `ip` lies in `cidr`. */
export function cidrContains(cidr: Cidr, ip: string): boolean {
  const net = parseIp(cidr.address, SLOPPY);
  return net !== null &&
    netCidrContains({ family: net.length === 4 ? 4 : 6, bytes: net, len: cidr.prefix }, ip, SLOPPY);
}

/** A prefix as `hash:net` can hold it: `/0` becomes its two `/1` halves. */
export function splitForHashNet(c: Cidr): string[] {
  if (c.prefix > 0) return [c.text];
  return c.family === "ipv4" ? ["0.0.0.0/1", "128.0.0.0/1"] : ["::/1", "8000::/1"];
}
