/**
 * Addresses on the proxy's VIP interface (`kube-dummy-if`), through one `ip -batch` per sync:
 * list (`ip -j addr show`), diff, and render `addr add`/`addr del` plus the local-table route that
 * makes the node's own address the source for traffic to a VIP (as upstream does).
 *
 * The interface is a `dummy` link; kernels without the dummy driver (this project's CI) get a
 * bridge with no ports instead, which holds addresses the same way. `ensureVipLink` reports the
 * fallback so the caller can warn.
 *
 * @module
 */
import { ExecError, type Runner, streamLines } from "../exec.ts";
import { ipBatch } from "./batch.ts";

/** An address as `ip -j addr show` reports it. */
export interface IfAddress {
  dev: string;
  /** "10.96.0.1" */
  ip: string;
  prefixlen: number;
  scope: string;
}

/** Parses `ip -j addr show [dev X]`. */
export function parseAddresses(json: string): IfAddress[] {
  const text = json.trim();
  if (text === "") return [];
  const rows = JSON.parse(text) as Array<
    { ifname: string; addr_info?: Array<{ local?: string; prefixlen: number; scope?: string }> }
  >;
  const out: IfAddress[] = [];
  for (const r of rows) {
    for (const a of r.addr_info ?? []) {
      if (!a.local) continue;
      out.push({ dev: r.ifname, ip: a.local, prefixlen: a.prefixlen, scope: a.scope ?? "global" });
    }
  }
  return out;
}

/** MTU per link from `ip -j addr show` (its rows carry `mtu`). */
export function parseMtus(json: string): Map<string, number> {
  const text = json.trim();
  const out = new Map<string, number>();
  if (text === "") return out;
  for (const r of JSON.parse(text) as Array<{ ifname: string; mtu?: number }>) {
    if (typeof r.mtu === "number") out.set(r.ifname, r.mtu);
  }
  return out;
}

/** Addresses and link MTUs from one `ip -j addr show` (read-only). */
export async function readAddresses(
  runner: Runner,
): Promise<{ addrs: IfAddress[]; mtus: Map<string, number> }> {
  const r = await runner.run(["ip", "-j", "addr", "show"], { readOnly: true });
  return { addrs: parseAddresses(r.stdout), mtus: parseMtus(r.stdout) };
}

/** Every address of the host (or namespace), for node-local sets and `--nodeport-bindon-all-ip`. */
export async function listAddresses(runner: Runner): Promise<IfAddress[]> {
  const r = await runner.run(["ip", "-j", "addr", "show"], { readOnly: true });
  return parseAddresses(r.stdout);
}

/** Addresses on one link as "ip/len"; `undefined` when the link does not exist. */
export async function linkAddresses(runner: Runner, dev: string): Promise<string[] | undefined> {
  const r = await runner.run(["ip", "-j", "addr", "show", "dev", dev], { readOnly: true, okCodes: [0, 1] });
  if (r.code !== 0) return undefined;
  return parseAddresses(r.stdout).filter((a) => a.scope !== "link" || !a.ip.startsWith("fe80:")).map((a) =>
    `${a.ip}/${a.prefixlen}`
  );
}

/**
 * Creates the VIP link if missing: `type dummy`, or a port-less bridge when the kernel has no
 * dummy driver. Returns what it did: "exists", "dummy", or "bridge" (the fallback).
 */
export async function ensureVipLink(runner: Runner, dev: string): Promise<"exists" | "dummy" | "bridge"> {
  const have = await runner.run(["ip", "-j", "link", "show", "dev", dev], {
    readOnly: true,
    okCodes: [0, 1],
  });
  if (have.code === 0 && have.stdout.trim() !== "" && have.stdout.trim() !== "[]") {
    if (!/"UP"/.test(have.stdout)) await runner.run(["ip", "link", "set", "dev", dev, "up"]);
    return "exists";
  }
  try {
    await ipBatch(runner, [`link add name ${dev} type dummy`, `link set dev ${dev} up`]);
    return "dummy";
  } catch (e) {
    if (!(e instanceof ExecError) || !/Unknown device type|not supported/i.test(e.stderr)) throw e;
    await ipBatch(runner, [`link add name ${dev} type bridge`, `link set dev ${dev} up`]);
    return "bridge";
  }
}

/** Host prefix for a VIP: "/32" or "/128". */
export function vipCidr(ip: string): string {
  return ip.includes(":") ? `${ip}/128` : `${ip}/32`;
}

/**
 * `ip -batch` lines turning the addresses `have` on `dev` into `want` (both "ip/len"): deletes of
 * extras, adds of missing ones, and for each added VIP a local-table route whose preferred source
 * is the node address of its family (so the VIP is never picked as a source address).
 */
export function renderAddressSync(
  dev: string,
  have: readonly string[],
  want: readonly string[],
  src: { v4?: string; v6?: string } = {},
): string[] {
  const haveSet = new Set(have), wantSet = new Set(want);
  const lines: string[] = [];
  for (const a of [...have].sort()) if (!wantSet.has(a)) lines.push(`addr del ${a} dev ${dev}`);
  for (const a of [...want].sort()) {
    if (haveSet.has(a)) continue;
    lines.push(`addr add ${a} dev ${dev} scope link`);
    const ip = a.split("/")[0];
    const s = ip.includes(":") ? src.v6 : src.v4;
    if (s) {
      // The family follows from the address, so the same line serves IPv4 and IPv6.
      lines.push(`route replace local ${ip} dev ${dev} table local proto kernel scope host src ${s}`);
    }
  }
  return lines;
}

/** Runs address lines as one `ip -batch`; no process when empty. */
export async function applyAddressLines(runner: Runner, lines: readonly string[]): Promise<void> {
  await ipBatch(runner, lines);
}

/** Deletes a link (cleanup); "not found" is success. */
export async function deleteLink(runner: Runner, dev: string): Promise<boolean> {
  const r = await runner.run(["ip", "link", "del", "dev", dev], { okCodes: [0, 1, 2] });
  return r.code === 0;
}

/** A running `ip monitor address`. */
export interface AddressMonitor {
  /** Stops the monitor process. */
  close(): Promise<void>;
}

/** The link name of one `ip -o monitor address` line ("[Deleted ]<idx>: <dev> inet ..."). Pure. */
export function monitorLineDev(line: string): string | undefined {
  return /^(?:Deleted\s+)?\d+:\s+(\S+)\s/.exec(line)?.[1];
}

/**
 * Calls `onChange(dev)` whenever an address is added to or removed from a link (`ip -o monitor
 * address`, one long-lived process; inside `netns` when given). The caller re-reads with
 * `readAddresses`, so a missed or coalesced event cannot leave it wrong. `onExit` is called if the
 * process ends by itself (the caller then relies on periodic reads).
 */
export function monitorAddresses(
  runner: Runner,
  onChange: (dev: string | undefined) => void,
  options: { netns?: string; onExit?: (code: number) => void } = {},
): AddressMonitor {
  return streamLines(runner, ["ip", "-o", "monitor", "address"], (l) => onChange(monitorLineDev(l)), options);
}
