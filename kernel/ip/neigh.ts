/**
 * Static neighbours and bridge FDB entries for the VXLAN overlay: each remote node's VTEP MAC is
 * derived from its IP, so no ARP or flooding crosses the overlay.
 *
 * Neighbours go through `ip -batch`; FDB entries through `bridge -batch` (iproute2's `ip` has no
 * fdb object).
 *
 * @module
 */
import { parseIp } from "../../net/ip.ts";

export interface Neighbour {
  ip: string;
  mac: string;
  dev: string;
}

export interface FdbEntry {
  mac: string;
  dev: string;
  /** Remote VTEP (the node's underlay IP). */
  dst: string;
}

export function renderNeighReplace(n: Neighbour): string {
  return `neigh replace ${n.ip} lladdr ${n.mac} dev ${n.dev} nud permanent`;
}

export function renderNeighDel(n: Neighbour): string {
  return `neigh del ${n.ip} dev ${n.dev}`;
}

/** Parses `ip -j neigh show dev X` (permanent entries only: the ones we own on our device). */
export function parseNeighbours(json: string, dev: string): Neighbour[] {
  const text = json.trim();
  if (text === "") return [];
  const rows = JSON.parse(text) as Array<{ dst: string; lladdr?: string; state?: string[] }>;
  return rows.filter((r) => r.lladdr && r.state?.includes("PERMANENT")).map((r) => ({
    ip: r.dst,
    mac: r.lladdr!.toLowerCase(),
    dev,
  }));
}

export function renderFdbReplace(f: FdbEntry): string {
  return `fdb replace ${f.mac} dev ${f.dev} dst ${f.dst} self permanent`;
}

export function renderFdbDel(f: FdbEntry): string {
  return `fdb del ${f.mac} dev ${f.dev} dst ${f.dst} self`;
}

/** Parses `bridge -j fdb show dev X`, keeping entries with a remote `dst` (the VTEP ones). */
export function parseFdb(json: string, dev: string): FdbEntry[] {
  const text = json.trim();
  if (text === "") return [];
  const rows = JSON.parse(text) as Array<{ mac: string; dst?: string }>;
  return rows.filter((r) => r.dst).map((r) => ({ mac: r.mac.toLowerCase(), dev, dst: r.dst! }));
}

/**
 * A locally administered unicast MAC derived from an IPv4 address (`0e:6b:` + the 4 bytes) or
 * the last 4 bytes of an IPv6 address, so every node computes the same MAC for a peer's VTEP.
 */
export function vtepMac(ip: string): string {
  const b = parseIp(ip, { leadingZeros: true });
  if (!b) throw new TypeError(`VTEP MAC: ${JSON.stringify(ip)} is not an IPv4 or IPv6 address`);
  const tail = Array.from(b.subarray(b.length - 4), (x) => x.toString(16).padStart(2, "0"));
  return ["0e", "6b", ...tail].join(":");
}
