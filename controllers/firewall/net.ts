/**
 * The little address arithmetic the firewall plan needs: parse and canonicalise IPv4/IPv6
 * addresses and prefixes, and split a `/0` (which `hash:net` sets cannot hold) into halves.
 *
 * @module
 */

export type Family = "ipv4" | "ipv6";

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

function parseV4(s: string): number[] | undefined {
  const parts = s.split(".");
  if (parts.length !== 4) return undefined;
  const out: number[] = [];
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    out.push(n);
  }
  return out;
}

function parseV6(s: string): number[] | undefined {
  if (!/^[0-9a-fA-F:.]+$/.test(s)) return undefined;
  const halves = s.split("::");
  if (halves.length > 2) return undefined;
  const parseGroups = (h: string): number[] | undefined => {
    if (h === "") return [];
    const out: number[] = [];
    const groups = h.split(":");
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i];
      if (i === groups.length - 1 && g.includes(".")) {
        const v4 = parseV4(g);
        if (!v4) return undefined;
        out.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
        continue;
      }
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  const a = parseGroups(halves[0]);
  const b = halves.length === 2 ? parseGroups(halves[1]) : [];
  if (!a || !b) return undefined;
  if (halves.length === 1 && a.length !== 8) return undefined;
  if (halves.length === 2 && a.length + b.length > 7) return undefined;
  const groups = [...a, ...new Array(8 - a.length - b.length).fill(0), ...b];
  const bytes: number[] = [];
  for (const g of groups) bytes.push(g >> 8, g & 255);
  return bytes;
}

/** Parses an address into bytes (4 or 16), or `undefined` if it is not one. */
export function parseAddress(s: string): { family: Family; bytes: number[] } | undefined {
  const v4 = parseV4(s);
  if (v4) return { family: "ipv4", bytes: v4 };
  const v6 = s.includes(":") ? parseV6(s) : undefined;
  return v6 ? { family: "ipv6", bytes: v6 } : undefined;
}

/** Formats address bytes canonically (RFC 5952 for IPv6). */
export function formatAddress(bytes: readonly number[]): string {
  if (bytes.length === 4) return bytes.join(".");
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i] << 8) | bytes[i + 1]);
  let bestStart = -1, bestLen = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(":");
  return hex.slice(0, bestStart).join(":") + "::" + hex.slice(bestStart + bestLen).join(":");
}

/** Canonical form of an address, or `undefined` when it is not one. */
export function canonicalAddress(s: string): string | undefined {
  const a = parseAddress(s);
  return a ? formatAddress(a.bytes) : undefined;
}

/** Parses `addr/len` (or a bare address as a host prefix); `undefined` when invalid. */
export function parseCidr(s: string): Cidr | undefined {
  const [addr, len, ...rest] = s.trim().split("/");
  if (rest.length) return undefined;
  const a = parseAddress(addr);
  if (!a) return undefined;
  const max = a.bytes.length * 8;
  if (len !== undefined && !/^\d{1,3}$/.test(len)) return undefined;
  const prefix = len === undefined ? max : Number(len);
  if (prefix > max) return undefined;
  const bytes = a.bytes.map((b, i) => {
    const keep = Math.max(0, Math.min(8, prefix - i * 8));
    return b & ((0xff << (8 - keep)) & 0xff);
  });
  const address = formatAddress(bytes);
  return { family: a.family, address, prefix, text: `${address}/${prefix}` };
}

/** Whether `ip` lies in `cidr`. */
export function cidrContains(cidr: Cidr, ip: string): boolean {
  const a = parseAddress(ip);
  if (!a || a.family !== cidr.family) return false;
  const net = parseAddress(cidr.address)!.bytes;
  for (let bit = 0; bit < cidr.prefix; bit++) {
    const i = bit >> 3, m = 0x80 >> (bit & 7);
    if ((a.bytes[i] & m) !== (net[i] & m)) return false;
  }
  return true;
}

/** A prefix as `hash:net` can hold it: `/0` becomes its two `/1` halves. */
export function splitForHashNet(c: Cidr): string[] {
  if (c.prefix > 0) return [c.text];
  return c.family === "ipv4" ? ["0.0.0.0/1", "128.0.0.0/1"] : ["::/1", "8000::/1"];
}
