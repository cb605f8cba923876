/**
 * Find the IPv6 link-local address of the interface that holds a given global address, from
 * `/proc/net/if_inet6` (the calling process's network namespace). Used to send the link-local
 * next hop next to the global one on directly connected IPv6 eBGP sessions (RFC 2545 §3), which
 * BIRD and FRR expect ("Missing link-local address" otherwise). Reading /proc is not spawning a
 * process, so it stays outside `kernel/`.
 *
 * @module
 */

import { addrBytes, bytesToAddr, canonicalAddr } from "./prefix.ts";

/** One row of /proc/net/if_inet6. */
export interface Inet6Row {
  addr: string;
  ifindex: number;
  scope: number;
  ifname: string;
}

/** Parse the text of /proc/net/if_inet6 (32 hex digits, ifindex, prefix length, scope, flags, name). */
export function parseIfInet6(text: string): Inet6Row[] {
  const rows: Inet6Row[] = [];
  for (const line of text.split("\n")) {
    const f = line.trim().split(/\s+/);
    if (f.length < 6 || f[0].length !== 32) continue;
    const bytes: number[] = [];
    for (let i = 0; i < 32; i += 2) bytes.push(parseInt(f[0].slice(i, i + 2), 16));
    rows.push({
      addr: bytesToAddr(bytes),
      ifindex: parseInt(f[1], 16),
      scope: parseInt(f[3], 16),
      ifname: f[5],
    });
  }
  return rows;
}

/** The link-local address on the interface holding `global` in `rows`, if any. */
export function linkLocalFor(rows: Inet6Row[], global: string): string | undefined {
  if (!addrBytes(global)) return undefined;
  const g = canonicalAddr(global);
  const own = rows.find((r) => r.addr === g);
  if (!own) return undefined;
  return rows.find((r) => r.ifindex === own.ifindex && r.scope === 0x20)?.addr;
}

/** `linkLocalFor` over this namespace's /proc/net/if_inet6; undefined when unreadable. */
export function linkLocalOfLocalAddress(global: string): string | undefined {
  try {
    return linkLocalFor(parseIfInet6(Deno.readTextFileSync("/proc/net/if_inet6")), global);
  } catch {
    return undefined;
  }
}
