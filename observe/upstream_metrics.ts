/**
 * Upstream's metric catalog (kube-router `pkg/metrics`): every `kube_router_*` name with its
 * type, labels and help, registered up front for the controllers that run, the way upstream
 * registers its collectors per controller. A dashboard written for upstream therefore finds
 * every series here, under the same name, type and labels; histograms use Prometheus' default
 * buckets, as upstream's do (it sets none).
 *
 * Ours, where we have more to say, follow the catalog (`OUR_METRICS`).
 *
 * @module
 */
import type { MetricsRegistry } from "./metrics.ts";

export type MetricType = "counter" | "gauge" | "histogram";
export type MetricOwner = "always" | "router" | "firewall" | "proxy";

export interface MetricSpec {
  name: string;
  type: MetricType;
  help: string;
  labels: readonly string[];
  owner: MetricOwner;
}

/** Prometheus client_golang's `DefBuckets`, which upstream's histograms use. */
export const PROMETHEUS_DEFAULT_BUCKETS: readonly number[] = [
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
];

/** Labels of the per-service series (upstream renamed `namespace` to `svc_namespace`). */
export const SERVICE_LABELS = ["svc_namespace", "service_name", "service_vip", "protocol", "port"] as const;

const svc = (name: string, help: string): MetricSpec => ({
  name: `kube_router_service_${name}`,
  type: "gauge",
  help,
  labels: SERVICE_LABELS,
  owner: "proxy",
});
const h = (name: string, help: string, owner: MetricOwner): MetricSpec => ({
  name: `kube_router_${name}`,
  type: "histogram",
  help,
  labels: [],
  owner,
});

/** Upstream's 34 metrics: `build_info`, ten per-service gauges, 23 controller metrics. */
export const UPSTREAM_METRICS: readonly MetricSpec[] = [
  {
    name: "kube_router_build_info",
    type: "gauge",
    help: "Expose version and other build information",
    labels: ["goversion", "version"],
    owner: "always",
  },
  svc("total_connections", "Total incoming connections made"),
  svc("packets_in", "Total incoming packets"),
  svc("packets_out", "Total outgoing packets"),
  svc("bytes_in", "Total incoming bytes"),
  svc("bytes_out", "Total outgoing bytes"),
  svc("pps_in", "Incoming packets per second"),
  svc("pps_out", "Outgoing packets per second"),
  svc("cps", "Service connections per second"),
  svc("bps_in", "Incoming bytes per second"),
  svc("bps_out", "Outgoing bytes per second"),
  {
    name: "kube_router_controller_ipvs_services",
    type: "gauge",
    help: "Number of ipvs services in the instance",
    labels: [],
    owner: "proxy",
  },
  h("controller_ipvs_services_sync_time", "Time it took for controller to sync ipvs services", "proxy"),
  h("controller_ipvs_metrics_export_time", "Time it took to export metrics", "proxy"),
  h("controller_iptables_sync_time", "Time it took for controller to sync iptables", "firewall"),
  h("controller_iptables_v4_save_time", "Time it took controller to save IPv4 rules", "firewall"),
  h("controller_iptables_v6_save_time", "Time to took for controller to save IPv6 rules", "firewall"),
  h("controller_iptables_v4_restore_time", "Time it took for controller to restore IPv4 rules", "firewall"),
  h("controller_iptables_v6_restore_time", "Time it took for controller to restore IPv6 rules", "firewall"),
  h("controller_policy_chains_sync_time", "Time it took for controller to sync policy chains", "firewall"),
  h(
    "controller_policy_ipset_v4_restore_time",
    "Time it took for controller to restore IPv4 ipsets",
    "firewall",
  ),
  h(
    "controller_policy_ipset_v6_restore_time",
    "Time it took for controller to restore IPv6 ipsets",
    "firewall",
  ),
  {
    name: "kube_router_controller_policy_chains",
    type: "gauge",
    help: "Active policy chains",
    labels: [],
    owner: "firewall",
  },
  {
    name: "kube_router_controller_policy_ipsets",
    type: "gauge",
    help: "Active policy ipsets",
    labels: [],
    owner: "firewall",
  },
  h("controller_routes_sync_time", "Time it took for controller to sync routes", "router"),
  {
    name: "kube_router_controller_bgp_peers",
    type: "gauge",
    help: "BGP peers in the runtime configuration",
    labels: [],
    owner: "router",
  },
  h("controller_bgp_internal_peers_sync_time", "Time it took to sync internal bgp peers", "router"),
  {
    name: "kube_router_controller_bgp_advertisements_received",
    type: "counter",
    help: "BGP advertisements received",
    labels: [],
    owner: "router",
  },
  {
    name: "kube_router_controller_bgp_advertisements_sent",
    type: "counter",
    help: "BGP advertisements sent",
    labels: ["type"],
    owner: "router",
  },
  {
    name: "kube_router_bgp_peer_info",
    type: "gauge",
    help: "BGP peer information",
    labels: ["address", "type", "asn", "state"],
    owner: "router",
  },
  h("host_routes_sync_time", "Time it took for the host routes controller to sync to the system", "router"),
  {
    name: "kube_router_host_routes_synced",
    type: "gauge",
    help: "Count of host routes currently synced to the system",
    labels: [],
    owner: "router",
  },
  {
    name: "kube_router_host_routes_added",
    type: "counter",
    help: "Total count of host routes added to the system",
    labels: [],
    owner: "router",
  },
  {
    name: "kube_router_host_routes_removed",
    type: "counter",
    help: "Total count of host routes removed to the system",
    labels: [],
    owner: "router",
  },
];

/** Ours: what upstream does not say. */
export const OUR_METRICS: readonly MetricSpec[] = [
  {
    name: "kube_router_controller_sync_time",
    type: "histogram",
    help: "Time of one controller sync, any controller (seconds)",
    labels: [],
    owner: "always",
  },
  {
    name: "kube_router_controller_sync_errors_total",
    type: "counter",
    help: "Controller syncs that failed and were retried",
    labels: ["controller"],
    owner: "always",
  },
  {
    name: "kube_router_lane_runs_total",
    type: "counter",
    help: "Successful runs of a controller's lane",
    labels: ["controller", "lane"],
    owner: "always",
  },
  {
    name: "kube_router_lane_run_seconds_total",
    type: "counter",
    help: "Time spent in successful runs of a controller's lane (seconds)",
    labels: ["controller", "lane"],
    owner: "always",
  },
  {
    name: "kube_router_lane_errors_total",
    type: "counter",
    help: "Failed runs of a controller's lane",
    labels: ["controller", "lane"],
    owner: "always",
  },
  {
    name: "kube_router_transaction_refusals_total",
    type: "counter",
    help: "Kernel transactions a tool refused (non-zero exit of a restore/batch): nothing of them applied",
    labels: ["tool"],
    owner: "always",
  },
  {
    name: "kube_router_objects_skipped_total",
    type: "counter",
    help: "Cluster objects (or parts) skipped for bad input; the rest was still applied",
    labels: ["kind", "reason"],
    owner: "always",
  },
];

/** Registers the catalog's metrics for the running controllers, so each is exported from the start. */
export function registerCatalog(reg: MetricsRegistry, controllers: readonly string[]): void {
  for (const m of [...UPSTREAM_METRICS, ...OUR_METRICS]) {
    if (m.owner !== "always" && !controllers.includes(m.owner)) continue;
    if (m.type === "counter") reg.counter(m.name, m.help, m.labels);
    else if (m.type === "gauge") reg.gauge(m.name, m.help, m.labels);
    else reg.histogram(m.name, m.help, [...PROMETHEUS_DEFAULT_BUCKETS]);
  }
}
