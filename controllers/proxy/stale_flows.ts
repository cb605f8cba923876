/**
 * Which conntrack flows to delete after a sync, as kube-proxy does:
 * - UDP flows NATed to a real server that is gone. UDP has no connection teardown, so without
 *   this a client that keeps sending from the same source port keeps hitting the vanished
 *   endpoint until the flow times out;
 * - every UDP flow to a virtual service that had no usable real server and now has one. Before,
 *   nothing NATed its packets (with internalTrafficPolicy Local and no local endpoint there is no
 *   virtual service on this node at all), so the client's flow was confirmed un-NATed and would
 *   keep bypassing the new DNAT for as long as the client keeps sending (upstream e2e: "Conntrack
 *   should be able to preserve UDP traffic when server pod cycles for a ClusterIP service with
 *   InternalTrafficPolicy set to Local").
 * Pure.
 *
 * @module
 */
import type { FlowFilter } from "../../kernel/conntrack/mod.ts";
import { hostPort } from "../../net/ip.ts";
import type { ProxyPlan } from "./types.ts";

/** Filters for UDP real servers in `prev` that are no longer in `next` (by virtual service). */
export function staleUdpFlows(prev: ProxyPlan | undefined, next: ProxyPlan): FlowFilter[] {
  if (!prev) return [];
  const out: FlowFilter[] = [];
  const usable = (v: { realServers: readonly { weight: number }[] } | undefined) =>
    v !== undefined && v.realServers.some((r) => r.weight > 0);
  const prevByKey = new Map(prev.services.filter((v) => v.protocol === "UDP").map((v) => [v.key, v]));
  for (const vs of next.services) {
    if (vs.protocol !== "UDP" || vs.fwmark || !usable(vs) || usable(prevByKey.get(vs.key))) continue;
    out.push({ protocol: "udp", origDst: vs.vip, origDstPort: vs.port });
  }
  // Virtual services the planner handed over unchanged (same object) lost nothing.
  const after = new Set(next.services);
  const changed = prev.services.filter((v) => v.protocol === "UDP" && !v.fwmark && !after.has(v));
  if (changed.length === 0) return out;
  const nextByKey = new Map(next.services.filter((v) => v.protocol === "UDP").map((v) => [v.key, v]));
  for (const vs of changed) {
    const now = new Set((nextByKey.get(vs.key)?.realServers ?? []).map((r) => hostPort(r.ip, r.port)));
    for (const r of vs.realServers) {
      if (now.has(hostPort(r.ip, r.port))) continue;
      out.push({
        protocol: "udp",
        origDst: vs.vip,
        origDstPort: vs.port,
        replySrc: r.ip,
        replySrcPort: r.port,
      });
    }
  }
  return out;
}
