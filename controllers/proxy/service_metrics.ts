/**
 * Upstream's per-service series (`kube_router_service_*`, labels svc_namespace, service_name,
 * service_vip, protocol, port) from the kernel's IPVS counters, refreshed at each scrape the way
 * upstream's collector reads them, and timed as `kube_router_controller_ipvs_metrics_export_time`.
 *
 * In nftables mode the same series come from the counters of the proxy table's `stats-in`,
 * `stats-out` and `stats-conns` sets (one element per virtual service, see `nft_render.ts`),
 * read with one `nft -j` per family at each scrape. Counters are what IPVS calls conns, in/out
 * packets and bytes; the rates (IPVS's kernel estimator) are the change since the previous
 * scrape divided by the time between them (0 on the first).
 *
 * @module
 */
import type { IpvsServiceStats } from "../../kernel/ipvs/stats.ts";
import { statsKey } from "../../kernel/ipvs/stats.ts";
import type { MetricsRegistry } from "../../observe/metrics.ts";
import { SERVICE_LABELS } from "../../observe/upstream_metrics.ts";
import type { ElementCounter } from "../../kernel/nft/mod.ts";
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

/** The nftables counters of one scrape: set (`stats-in|out|conns`) → element key → counter. */
export type NftCounters = ReadonlyMap<string, ReadonlyMap<string, ElementCounter>>;

/** Turns successive reads of the nftables counters into IPVS-shaped stats (with rates). */
interface Reading {
  at: number;
  conns: number;
  inPkts: number;
  outPkts: number;
  inBytes: number;
  outBytes: number;
}

export class NftServiceStats {
  #prev = new Map<string, Reading>();

  /** Stats per `statsKey(protocol, vip, port)` for the virtual services, from `counters` read at `now` (ms). */
  update(
    services: readonly VirtualService[],
    counters: NftCounters,
    now: number,
  ): Map<string, IpvsServiceStats> {
    const out = new Map<string, IpvsServiceStats>();
    const next = new Map<string, Reading>();
    for (const vs of services) {
      if (vs.fwmark > 0) continue;
      const key = `${vs.vip} . ${vs.protocol.toLowerCase()} . ${vs.port}`;
      const inC = counters.get("stats-in")?.get(key);
      if (!inC) continue; // not in the kernel (yet)
      const outC = counters.get("stats-out")?.get(key) ?? { packets: 0, bytes: 0 };
      const conns = counters.get("stats-conns")?.get(key)?.packets ?? 0;
      const cur: Reading = {
        at: now,
        conns,
        inPkts: inC.packets,
        outPkts: outC.packets,
        inBytes: inC.bytes,
        outBytes: outC.bytes,
      };
      next.set(key, cur);
      const prev = this.#prev.get(key);
      const dt = prev ? (now - prev.at) / 1000 : 0;
      // A counter that went down was reset (the table was replaced): no rate from that interval.
      const rate = (f: Exclude<keyof Reading, "at">) =>
        prev && dt > 0 && cur[f] >= prev[f] ? (cur[f] - prev[f]) / dt : 0;
      out.set(statsKey(vs.protocol, vs.vip, vs.port), {
        conns,
        inPkts: cur.inPkts,
        outPkts: cur.outPkts,
        inBytes: cur.inBytes,
        outBytes: cur.outBytes,
        cps: rate("conns"),
        inPps: rate("inPkts"),
        outPps: rate("outPkts"),
        inBps: rate("inBytes"),
        outBps: rate("outBytes"),
      });
    }
    this.#prev = next;
    return out;
  }
}
