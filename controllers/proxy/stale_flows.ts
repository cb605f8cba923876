/**
 * Which conntrack flows to delete after a sync: UDP flows NATed to a real server that is gone.
 * UDP has no connection teardown, so without this a client that keeps sending from the same
 * source port keeps hitting the vanished endpoint until the flow times out. Pure.
 *
 * @module
 */
import type { FlowFilter } from "../../kernel/conntrack/mod.ts";
import { hostPort } from "./plan.ts";
import type { ProxyPlan } from "./types.ts";

/** Filters for UDP real servers in `prev` that are no longer in `next` (by virtual service). */
export function staleUdpFlows(prev: ProxyPlan | undefined, next: ProxyPlan): FlowFilter[] {
  if (!prev) return [];
  // Virtual services the planner handed over unchanged (same object) lost nothing.
  const after = new Set(next.services);
  const changed = prev.services.filter((v) => v.protocol === "UDP" && !v.fwmark && !after.has(v));
  if (changed.length === 0) return [];
  const nextByKey = new Map(next.services.filter((v) => v.protocol === "UDP").map((v) => [v.key, v]));
  const out: FlowFilter[] = [];
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
