/**
 * Small, pure IP address helpers for the proxy plan: family detection, canonical text, CIDR
 * containment. Kept here (not shared) because the plan needs only these four operations.
 *
 * @module
 */

export type Family = 4 | 6;

const V4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** 4 or 6 for a literal address, undefined for anything else (hostnames, CIDRs, garbage). */
export function ipFamily(ip: string): Family | undefined {
  if (V4.test(ip)) return 4;
  return parseV6(ip) === undefined ? undefined : 6;
}

function parseV6(ip: string): number[] | undefined {
  if (!ip.includes(":") || /[^0-9a-fA-F:.]/.test(ip)) return undefined;
  let text = ip;
  const tail: number[] = [];
  const lastColon = text.lastIndexOf(":");
  const last = text.slice(lastColon + 1);
  if (last.includes(".")) {
    if (!V4.test(last)) return undefined;
    const o = last.split(".").map(Number);
    tail.push((o[0] << 8) | o[1], (o[2] << 8) | o[3]);
    text = text.slice(0, lastColon + 1) + "0";
  }
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const parse = (s: string): number[] | undefined => {
    if (s === "") return [];
    const out: number[] = [];
    for (const g of s.split(":")) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  const head = parse(halves[0]);
  const rest = halves.length === 2 ? parse(halves[1]) : [];
  if (!head || !rest) return undefined;
  let groups: number[];
  if (halves.length === 2) {
    const fill = 8 - head.length - rest.length;
    if (fill < 1) return undefined;
    groups = [...head, ...new Array(fill).fill(0), ...rest];
  } else groups = head;
  if (tail.length) groups = [...groups.slice(0, groups.length - 1), ...tail];
  return groups.length === 8 ? groups : undefined;
}

/** Address as a 128-bit (v6) or 32-bit (v4) bigint. */
export function ipToBigInt(ip: string): { family: Family; value: bigint } | undefined {
  if (V4.test(ip)) {
    return { family: 4, value: ip.split(".").reduce((a, o) => (a << 8n) | BigInt(Number(o)), 0n) };
  }
  const g = parseV6(ip);
  if (!g) return undefined;
  return { family: 6, value: g.reduce((a, x) => (a << 16n) | BigInt(x), 0n) };
}

/** RFC 5952 text for v6 (lower case, longest zero run compressed), dotted quad for v4. */
export function canonicalIp(ip: string): string | undefined {
  // The V4 pattern admits no leading zeros, so a matching string is already canonical.
  if (V4.test(ip)) return ip;
  const g = parseV6(ip);
  if (!g) return undefined;
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

export interface Cidr {
  family: Family;
  base: bigint;
  prefix: number;
  text: string;
}

/** Parses "a.b.c.d/n" or "x::/n" (a bare address is a host route); undefined when malformed. */
export function parseCidr(text: string): Cidr | undefined {
  const [addr, len, extra] = text.trim().split("/");
  if (extra !== undefined) return undefined;
  const ip = ipToBigInt(addr);
  if (!ip) return undefined;
  const bits = ip.family === 4 ? 32 : 128;
  const prefix = len === undefined ? bits : /^\d{1,3}$/.test(len) ? Number(len) : NaN;
  if (!(prefix >= 0 && prefix <= bits)) return undefined;
  const mask = prefix === 0 ? 0n : ((1n << BigInt(prefix)) - 1n) << BigInt(bits - prefix);
  return { family: ip.family, base: ip.value & mask, prefix, text };
}

/** Whether `ip` lies inside `cidr` (different families never match). */
export function cidrContains(cidr: Cidr, ip: string): boolean {
  const v = ipToBigInt(ip);
  if (!v || v.family !== cidr.family) return false;
  const bits = cidr.family === 4 ? 32 : 128;
  const mask = cidr.prefix === 0 ? 0n : ((1n << BigInt(cidr.prefix)) - 1n) << BigInt(bits - cidr.prefix);
  return (v.value & mask) === cidr.base;
}

/** Whether any of `cidrs` contains `ip`. */
export function anyCidrContains(cidrs: readonly Cidr[], ip: string): boolean {
  return cidrs.some((c) => cidrContains(c, ip));
}

/** Host prefix text: "10.0.0.1/32" or "2001:db8::1/128". */
export function hostCidr(ip: string): string {
  return ipFamily(ip) === 6 ? `${ip}/128` : `${ip}/32`;
}
