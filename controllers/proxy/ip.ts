/**
 * The proxy plan's names for the shared IP module `net/ip.ts` (family, canonical text, CIDR
 * containment), with `undefined` rather than `null` for "not an address", as the plan expects.
 *
 * @module
 */
import * as ip from "../../net/ip.ts";

export type Family = ip.IpFamily;
/** A parsed CIDR (network bytes with host bits cleared, and the length). */
export type Cidr = ip.Cidr;

/** 4 or 6 for a literal address, undefined for anything else (hostnames, CIDRs, garbage). */
export const ipFamily = (s: string): Family | undefined => ip.ipFamily(s);

/**
 * RFC 5952 text for v6 (lower case, longest zero run compressed), dotted quad for v4. Objects
 * from the API may carry leading-zero octets, which Kubernetes' ParseIPSloppy reads as decimal.
 */
export const canonicalIp = (s: string): string | undefined => ip.canonicalIp(s, ip.SLOPPY) ?? undefined;

/** Parses "a.b.c.d/n" or "x::/n" (a bare address is a host route); undefined when malformed. */
export const parseCidr = (text: string): Cidr | undefined =>
  ip.parseCidr(text.trim(), ip.SLOPPY) ?? undefined;

/** Whether any of `cidrs` contains `addr`. */
export function anyCidrContains(cidrs: readonly Cidr[], addr: string): boolean {
  const b = ip.parseIp(addr, ip.SLOPPY);
  return b !== null && cidrs.some((c) => ip.cidrContainsBytes(c, b));
}

/** Host prefix text: "10.0.0.1/32" or "2001:db8::1/128". */
export function hostCidr(addr: string): string {
  return ip.ipFamily(addr) === 6 ? `${addr}/128` : `${addr}/32`;
}
