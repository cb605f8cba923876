/**
 * Upstream's per-service series (`kube_router_service_*`, labels svc_namespace, service_name,
 * service_vip, protocol, port) from the kernel's IPVS counters, refreshed at each scrape the way
 * upstream's collector reads them, and timed as `kube_router_controller_ipvs_metrics_export_time`.
 *
 * @module
 */
import type { IpvsServiceStats } from "../../kernel/ipvs/stats.ts";
import { statsKey } from "../../kernel/ipvs/stats.ts";
import type { MetricsRegistry } from "../../observe/metrics.ts";
import { SERVICE_LABELS } from "../../observe/upstream_metrics.ts";
import type { VirtualService } from "./types.ts";

const SERIES: Array<[string, keyof IpvsServiceStats]> = [
  ["kube_router_service_total_connections", "conns"],
  ["kube_router_service_packets_in", "inPkts"],
  ["kube_router_service_packets_out", "outPkts"],
  ["kube_router_service_bytes_in", "inBytes"],
  ["kube_router_service_bytes_out", "outBytes"],
  ["kube_router_service_cps", "cps"],
  ["kube_router_service_pps_in", "inPps"],
  ["kube_router_service_pps_out", "outPps"],
  ["kube_router_service_bps_in", "inBps"],
  ["kube_router_service_bps_out", "outBps"],
];

/** Replaces every per-service series with the virtual services' current stats. */
export function publishServiceStats(
  metrics: MetricsRegistry,
  services: readonly VirtualService[],
  stats: ReadonlyMap<string, IpvsServiceStats>,
): number {
  const gauges = SERIES.map(([name, field]) => [metrics.gauge(name, "", SERVICE_LABELS), field] as const);
  for (const [g] of gauges) g.reset();
  let n = 0;
  for (const vs of services) {
    // A firewall-mark service (DSR) is listed by its mark; the rest by protocol, VIP and port.
    const s = stats.get(
      vs.fwmark > 0 ? statsKey("FWM", String(vs.fwmark)) : statsKey(vs.protocol, vs.vip, vs.port),
    );
    if (!s) continue;
    const [namespace, name] = vs.service.split("/");
    const labels = {
      svc_namespace: namespace,
      service_name: name,
      service_vip: vs.vip,
      protocol: vs.protocol.toLowerCase(),
      port: String(vs.port),
    };
    for (const [g, field] of gauges) g.set(s[field], labels);
    n++;
  }
  return n;
}
