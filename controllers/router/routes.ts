/**
 * From best paths to kernel state (pure): which routes, overlay neighbours, FDB entries, tunnels
 * and policy rules the learned routes need.
 *
 * Decision per learned route (upstream's, reference §3.3), next hop NH:
 * - overlay needed (`--overlay-type=full`, or `subnet` and NH outside every local subnet) and NH
 *   is a cluster node ⇒ through the overlay: VXLAN (`dst via NH dev kube-vxlan onlink`) or, as
 *   upstream, an IPIP/FoU tunnel `tun-<11 hex of sha256(NH without separators)>`;
 * - else NH inside a local subnet ⇒ `dst via NH`;
 * - else nothing (left to the underlay's routing), as upstream.
 * Policy routing: `from <local pod CIDR> lookup 77`, and in table 77 `NH/32` through the overlay,
 * so pod traffic to a remote node's own address is encapsulated too.
 *
 * @module
 */
import { sha256Hex } from "../../kernel/sha256.ts";
import { parsePrefix, type Prefix, prefixContains, SLOPPY_PREFIX } from "../../bgp/mod.ts";
import type { FdbEntry, Neighbour } from "../../kernel/ip/neigh.ts";
import { vtepMac } from "../../kernel/ip/neigh.ts";
import { OVERLAY_TABLE, type Route } from "../../kernel/ip/route.ts";
import type { Rule } from "../../kernel/ip/rule.ts";

/** The single VXLAN device of `--overlay-encap=vxlan`. */
export const VXLAN_DEV = "kube-vxlan";
/** VNI of the overlay (any fixed value works: every node uses the same). */
export const VXLAN_VNI = 4097;
/** IANA VXLAN port; `--overlay-encap-port` stays FoU's (upstream's meaning). */
export const VXLAN_PORT = 4789;
/** Bytes VXLAN adds (outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14). */
export const VXLAN_OVERHEAD = 50;
/** Bytes IPIP adds. */
export const IPIP_OVERHEAD = 20;
/** Bytes IPIP in FoU with GUE adds (outer IPv4 20 + UDP 8 + GUE 4): the kernel's tunnel MTU is 1500 − 32. */
export const FOU_OVERHEAD = 32;

/**
 * Bytes the overlay adds to a pod packet: what kube-bridge's MTU (`--auto-mtu`) leaves room for, so a
 * pod never sends a packet its tunnel must refuse (the VM suite saw FoU's tunnel at 1468 under a
 * bridge at 1480 when IPIP's 20 was used for both).
 */
export function overlayOverhead(encap: "ipip" | "fou" | "vxlan"): number {
  return encap === "vxlan" ? VXLAN_OVERHEAD : encap === "fou" ? FOU_OVERHEAD : IPIP_OVERHEAD;
}

/** Upstream's tunnel name: `tun-` + first 11 hex chars of sha256(IP with `.`/`:` removed). */
export function tunnelName(ip: string): string {
  return "tun-" +
    sha256Hex(ip.replaceAll(".", "").replaceAll(":", "")).slice(0, 11);
}

/** Whether a link name is one of our tunnels or the VXLAN device. */
export function isOurLink(name: string): boolean {
  return name === VXLAN_DEV || /^tun-[0-9a-f]{11}$/.test(name);
}

/** A best path as the speaker reports it, reduced to what the kernel needs. */
export interface LearnedRoute {
  prefix: string;
  nextHop: string;
}

export interface OverlayConfig {
  enabled: boolean;
  type: "subnet" | "full";
  encap: "ipip" | "fou" | "vxlan";
  encapPort: number;
}

export interface RouteContext {
  overlay: OverlayConfig;
  /** Subnets of the node's own interfaces (not kube-bridge/overlay devices). */
  localSubnets: readonly string[];
  /** Underlay IP of this node per family (tunnel local end, route `src`). */
  nodeIp: { v4?: string; v6?: string };
  /** Cluster node IPs (tunnels only go to nodes). */
  nodeIps: ReadonlySet<string>;
  /** This node's pod CIDRs (policy rules for table 77). */
  localPodCidrs: readonly string[];
  /**
   * VTEP (underlay address) of each node IP, for the VXLAN overlay: a node's IPv6 next hop is
   * reached through its IPv4 VTEP when it has one (one IPv4-underlay device carries both
   * families). Absent entries map to themselves.
   */
  vtepOf?: ReadonlyMap<string, string>;
}

export interface KernelPlan {
  routes: Route[];
  neighbours: Neighbour[];
  fdb: FdbEntry[];
  tunnels: Array<{ name: string; remote: string; local: string; encap: "ipip" | "fou"; encapPort: number }>;
  rules: Rule[];
  /** Whether the VXLAN device must exist. */
  vxlan: boolean;
  /** Learned routes that got no kernel route (next hop unreachable without overlay). */
  skipped: LearnedRoute[];
}

function inAny(ip: string, subnets: readonly Prefix[]): boolean {
  const p = parsePrefix(ip, SLOPPY_PREFIX);
  return !!p && subnets.some((s) => prefixContains(s, p));
}

/** Whether traffic to next hop `nh` goes through the overlay. */
export function needsOverlay(nh: string, ctx: RouteContext, subnets?: Prefix[]): boolean {
  if (!ctx.overlay.enabled || !ctx.nodeIps.has(nh)) return false;
  if (ctx.overlay.type === "full") return true;
  return !inAny(nh, subnets ?? ctx.localSubnets.map((s) => parsePrefix(s, SLOPPY_PREFIX)!).filter(Boolean));
}

/**
 * The kernel route of one learned route. The decision depends only on the next hop and the
 * context, so it is made once per next hop and cached: a full table of 1M prefixes behind a few
 * next hops costs a few decisions, not 1M subnet scans.
 */
export class RouteDecider {
  readonly #subnets: Prefix[];
  readonly #cache = new Map<string, { overlay: boolean; body: Omit<Route, "dst"> } | null>();

  constructor(readonly ctx: RouteContext) {
    this.#subnets = ctx.localSubnets.map((s) => parsePrefix(s, SLOPPY_PREFIX)).filter((p): p is Prefix =>
      !!p
    );
  }

  #decide(nh: string): { overlay: boolean; body: Omit<Route, "dst"> } | null {
    let d = this.#cache.get(nh);
    if (d !== undefined) return d;
    const ctx = this.ctx;
    const src = nh.includes(":") ? ctx.nodeIp.v6 : ctx.nodeIp.v4;
    if (needsOverlay(nh, ctx, this.#subnets)) {
      const dev = ctx.overlay.encap === "vxlan" ? VXLAN_DEV : tunnelName(nh);
      d = { overlay: true, body: { via: nh, dev, onlink: true, ...(src ? { src } : {}) } };
    } else if (inAny(nh, this.#subnets)) d = { overlay: false, body: { via: nh } };
    else d = null;
    this.#cache.set(nh, d);
    return d;
  }

  /** The route for `prefix` via `nextHop`, or null when the next hop is unreachable without overlay. */
  route(prefix: string, nextHop: string): Route | null {
    const d = this.#decide(nextHop);
    return d ? { dst: prefix, ...d.body } : null;
  }

  /** Whether routes via `nextHop` go through the overlay (then it needs a tunnel/neighbour). */
  overlay(nextHop: string): boolean {
    return this.#decide(nextHop)?.overlay ?? false;
  }
}

/** Compares by code points (cheap, deterministic; `localeCompare` costs seconds on 1M routes). */
export function byKey(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Kernel state for a set of learned best paths (sorted, deterministic). */
export function kernelPlan(learned: Iterable<LearnedRoute>, ctx: RouteContext): KernelPlan {
  const decider = new RouteDecider(ctx);
  const routes: Route[] = [];
  const skipped: LearnedRoute[] = [];
  const overlayHops = new Set<string>();
  for (const l of learned) {
    const r = decider.route(l.prefix, l.nextHop);
    if (!r) skipped.push(l);
    else {
      routes.push(r);
      if (decider.overlay(l.nextHop)) overlayHops.add(l.nextHop);
    }
  }
  const aux = overlayPlan(overlayHops, ctx);
  for (const r of aux.routes) routes.push(r);
  const keyed = routes.map((r) => ({ k: `${r.table ?? 254} ${r.dst}`, r }));
  keyed.sort((a, b) => byKey(a.k, b.k));
  return { ...aux, routes: keyed.map((x) => x.r), skipped };
}

/**
 * What the overlay needs for a set of next hops (neighbours, FDB entries, tunnels, table-77
 * routes and rules); independent of how many prefixes use each next hop.
 */
export function overlayPlan(hops: Iterable<string>, ctx: RouteContext): Omit<KernelPlan, "skipped"> {
  const routes: Route[] = [];
  const overlayHops = [...hops];
  const neighbours: Neighbour[] = [];
  const fdb: FdbEntry[] = [];
  const tunnels: KernelPlan["tunnels"] = [];
  for (const nh of [...overlayHops].sort()) {
    const local = nh.includes(":") ? ctx.nodeIp.v6 : ctx.nodeIp.v4;
    if (ctx.overlay.encap === "vxlan") {
      const vtep = ctx.vtepOf?.get(nh) ?? nh;
      neighbours.push({ ip: nh, mac: vtepMac(vtep), dev: VXLAN_DEV });
      if (!fdb.some((f) => f.dst === vtep)) fdb.push({ mac: vtepMac(vtep), dev: VXLAN_DEV, dst: vtep });
      routes.push({
        dst: `${nh}/${nh.includes(":") ? 128 : 32}`,
        via: nh,
        dev: VXLAN_DEV,
        onlink: true,
        table: OVERLAY_TABLE,
      });
    } else {
      const name = tunnelName(nh);
      if (local) {
        tunnels.push({
          name,
          remote: nh,
          local,
          encap: ctx.overlay.encap as "ipip" | "fou",
          encapPort: ctx.overlay.encapPort,
        });
      }
      routes.push({ dst: `${nh}/${nh.includes(":") ? 128 : 32}`, dev: name, table: OVERLAY_TABLE });
    }
  }
  const rules: Rule[] = ctx.overlay.enabled
    ? ctx.localPodCidrs.map((c) => ({ from: c, table: OVERLAY_TABLE }))
    : [];
  routes.sort((a, b) => byKey(a.dst, b.dst));
  return {
    routes,
    neighbours,
    fdb,
    tunnels,
    rules,
    vxlan: ctx.overlay.enabled && ctx.overlay.encap === "vxlan",
  };
}
