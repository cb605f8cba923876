/**
 * LoadBalancer IP allocation (pure): which services the allocator handles, and which address
 * from the `--loadbalancer-ip-range` pools each one gets.
 *
 * - Handled: `type: LoadBalancer` with `loadBalancerClass: kube-router`, or with no class (or
 *   `default`) when `--loadbalancer-default-class` is on (upstream's rule).
 * - Families: `ipFamilyPolicy` SingleStack takes the first of `ipFamilies`; PreferDualStack every
 *   listed family that has a pool; RequireDualStack needs a pool for both and is an error
 *   otherwise (the service is reported and left alone).
 * - A service that already has an ingress IP of a family keeps it; addresses in use by any
 *   service are never handed out again; the lowest free address of a pool is taken, so the result
 *   depends only on the cluster's state (two allocators would agree).
 *
 * @module
 */
import { parsePrefix, SLOPPY_PREFIX } from "../../bgp/mod.ts";
import { formatIp, isIP, parseIp, SLOPPY } from "../../net/ip.ts";
import type { ServiceInfo } from "../../watch/types.ts";

export const LB_CLASS = "kube-router";

export interface Pool {
  cidr: string;
  v6: boolean;
  first: bigint;
  last: bigint;
}

function toBig(b: Uint8Array): bigint {
  return b.reduce((acc, x) => (acc << 8n) | BigInt(x), 0n);
}

function fromBig(v: bigint, len: number): string {
  const out: number[] = [];
  for (let i = 0; i < len; i++) {
    out.unshift(Number(v & 255n));
    v >>= 8n;
  }
  return formatIp(out);
}

/** Parses the pools; bad entries are reported (flag, value, what is accepted) and skipped. */
export function parsePools(ranges: readonly string[], problems: string[]): Pool[] {
  const out: Pool[] = [];
  for (const raw of ranges.flatMap((r) => r.split(",")).map((s) => s.trim()).filter(Boolean)) {
    const p = raw.includes("/") ? parsePrefix(raw, SLOPPY_PREFIX) : null;
    if (!p) {
      problems.push(
        `flag: --loadbalancer-ip-range: ${JSON.stringify(raw)} is not a CIDR (e.g. 192.0.2.0/28)`,
      );
      continue;
    }
    const bytes = parseIp(p.addr, SLOPPY)!;
    const bits = bytes.length * 8;
    const base = toBig(bytes);
    const size = 1n << BigInt(bits - p.len);
    let first = base, last = base + size - 1n;
    // IPv4 /30 and larger: skip the network and broadcast addresses.
    if (bytes.length === 4 && p.len <= 30) {
      first += 1n;
      last -= 1n;
    }
    out.push({ cidr: `${p.addr}/${p.len}`, v6: bytes.length === 16, first, last });
  }
  return out;
}

/** Whether the allocator handles this service. */
export function handles(svc: ServiceInfo, defaultClass: boolean): boolean {
  if (svc.type !== "LoadBalancer") return false;
  if (svc.loadBalancerClass === LB_CLASS) return true;
  return defaultClass && (svc.loadBalancerClass === "" || svc.loadBalancerClass === "default");
}

export interface Allocation {
  namespace: string;
  name: string;
  /** The full list of ingress IPs the service should have (existing ones first). */
  ips: string[];
}

/** Which families a service wants, or an error text. */
export function wantedFamilies(svc: ServiceInfo, pools: Pool[]): Array<"IPv4" | "IPv6"> | string {
  const fams = svc.ipFamilies.length > 0 ? svc.ipFamilies : ["IPv4" as const];
  const has = (f: string) => pools.some((p) => p.v6 === (f === "IPv6"));
  switch (svc.ipFamilyPolicy) {
    case "RequireDualStack": {
      const missing = ["IPv4", "IPv6"].filter((f) => !has(f));
      if (missing.length > 0) {
        return `ipFamilyPolicy RequireDualStack needs an ${
          missing.join(" and ")
        } pool in --loadbalancer-ip-range`;
      }
      return ["IPv4", "IPv6"];
    }
    case "PreferDualStack": {
      const ok = fams.filter(has);
      return ok.length > 0 ? ok : `no --loadbalancer-ip-range pool for ${fams.join("/")}`;
    }
    default:
      return has(fams[0]) ? [fams[0]] : `no --loadbalancer-ip-range pool for ${fams[0]}`;
  }
}

/**
 * Allocations for every handled service that lacks an IP of a wanted family. Services are taken
 * in namespace/name order so the outcome is deterministic.
 */
export function allocate(
  services: Iterable<ServiceInfo>,
  pools: Pool[],
  defaultClass: boolean,
  problems: string[],
): Allocation[] {
  const all = [...services].sort((a, b) =>
    `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`)
  );
  const used = new Set<string>();
  for (const s of all) {
    for (const i of s.loadBalancerIPs) {
      if (i.ip && parseIp(i.ip, SLOPPY)) used.add(formatIp(parseIp(i.ip, SLOPPY)!));
    }
  }
  const out: Allocation[] = [];
  for (const s of all) {
    if (!handles(s, defaultClass)) continue;
    const fams = wantedFamilies(s, pools);
    if (typeof fams === "string") {
      problems.push(`service/${s.namespace}/${s.name}: spec.ipFamilyPolicy: ${fams}; not allocated`);
      continue;
    }
    const have = s.loadBalancerIPs.map((i) => i.ip).filter((ip) => ip && isIP(ip, SLOPPY));
    const ips = [...have];
    let changed = false;
    for (const f of fams) {
      if (have.some((ip) => ip.includes(":") === (f === "IPv6"))) continue;
      const ip = nextFree(pools.filter((p) => p.v6 === (f === "IPv6")), used);
      if (!ip) {
        problems.push(
          `service/${s.namespace}/${s.name}: no free ${f} address left in --loadbalancer-ip-range`,
        );
        continue;
      }
      used.add(ip);
      ips.push(ip);
      changed = true;
    }
    if (changed) out.push({ namespace: s.namespace, name: s.name, ips });
  }
  return out;
}

function nextFree(pools: Pool[], used: Set<string>): string | null {
  for (const p of pools) {
    const len = p.v6 ? 16 : 4;
    // Bounded walk: pools are operator-sized; stop after 65536 probes per pool.
    let n = 0;
    for (let v = p.first; v <= p.last && n < 65536; v++, n++) {
      const ip = fromBig(v, len);
      if (!used.has(ip)) return ip;
    }
  }
  return null;
}
