/**
 * The kernel parameters upstream's proxy sets at start, through the router's `kernel/sysctl.ts`
 * (a read of every candidate key; `ensureSysctls` reads the wanted ones again, then runs at most
 * one `sysctl -w` with every change):
 *
 * - IPVS mode only, and only when `net/ipv4/vs` exists (else one warning): `vs.conntrack=1`,
 *   `vs.expire_nodest_conn=1`, `vs.expire_quiescent_template=1`, `vs.conn_reuse_mode=0`, and
 *   `vs.sloppy_tcp` = 1 iff a DSR service uses the `mh` scheduler (0 otherwise).
 * - `conf.all.arp_ignore=1`, `conf.all.arp_announce=2` (VIPs on kube-dummy-if are never answered
 *   for, nor used as ARP source, on other links).
 * - `rp_filter` 1 → 2 (loose) on `all`, `kube-bridge`, `kube-dummy-if` and the node's interface,
 *   only where it is 1 (0 and 2 are left alone, as upstream).
 *
 * @module
 */
import type { Runner } from "../../kernel/exec.ts";
import { ensureSysctls, readSysctls } from "../../kernel/sysctl.ts";
import type { ProxyPlan } from "./types.ts";

export const IPVS_SYSCTLS: ReadonlyMap<string, string> = new Map([
  ["net.ipv4.vs.conntrack", "1"],
  ["net.ipv4.vs.expire_nodest_conn", "1"],
  ["net.ipv4.vs.expire_quiescent_template", "1"],
  ["net.ipv4.vs.conn_reuse_mode", "0"],
]);
const SLOPPY = "net.ipv4.vs.sloppy_tcp";
const ARP = new Map([["net.ipv4.conf.all.arp_ignore", "1"], ["net.ipv4.conf.all.arp_announce", "2"]]);

/** What decides the wanted values. */
export interface SysctlInputs {
  ipvs: boolean;
  /** Links whose rp_filter goes 1 → 2 besides `all` (kube-bridge, kube-dummy-if, node link). */
  links: readonly string[];
  /** A DSR service uses mh. */
  sloppyTcp: boolean;
}

/** Whether a DSR (fwmark) virtual service uses the mh scheduler. Pure. */
export function needsSloppyTcp(plan: ProxyPlan): boolean {
  return plan.services.some((v) => v.fwmark !== 0 && v.scheduler === "mh");
}

/** Keys to read before deciding. Pure. */
export function sysctlKeys(i: SysctlInputs): string[] {
  const keys = [...ARP.keys(), ...rpKeys(i.links)];
  if (i.ipvs) keys.push(...IPVS_SYSCTLS.keys(), SLOPPY);
  return keys;
}

function rpKeys(links: readonly string[]): string[] {
  // A dot in a link name (VLANs) would split the sysctl path; such links are left alone.
  const names = ["all", ...links.filter((l) => !l.includes("."))];
  return [...new Set(names)].map((l) => `net.ipv4.conf.${l}.rp_filter`);
}

/**
 * The values to write given what the kernel has (`current`: keys it lacks are absent). Keys the
 * kernel lacks are never written (an interface that does not exist yet, no IPVS); a warning says
 * so for IPVS. Pure.
 */
export function wantedSysctls(
  current: ReadonlyMap<string, string>,
  i: SysctlInputs,
): { wanted: Map<string, string>; warnings: string[] } {
  const wanted = new Map<string, string>();
  const warnings: string[] = [];
  if (i.ipvs) {
    if (!current.has("net.ipv4.vs.conntrack")) {
      warnings.push("/proc/sys/net/ipv4/vs is absent (no ip_vs module?): IPVS sysctls not set");
    } else {
      for (const [k, v] of IPVS_SYSCTLS) wanted.set(k, v);
      if (current.has(SLOPPY)) wanted.set(SLOPPY, i.sloppyTcp ? "1" : "0");
    }
  }
  for (const [k, v] of ARP) if (current.has(k)) wanted.set(k, v);
  for (const k of rpKeys(i.links)) if (current.get(k) === "1") wanted.set(k, "2");
  return { wanted, warnings };
}

/** Reads, decides and writes (one `sysctl -w` at most); returns the keys changed and warnings. */
export async function applySysctls(
  runner: Runner,
  i: SysctlInputs,
): Promise<{ changed: string[]; warnings: string[] }> {
  const current = await readSysctls(runner, sysctlKeys(i));
  const { wanted, warnings } = wantedSysctls(current, i);
  const changed = await ensureSysctls(runner, wanted);
  return { changed, warnings };
}
