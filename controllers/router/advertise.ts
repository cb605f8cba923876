/**
 * What this node originates (pure): its pod CIDRs, and service VIPs by flag or per-service
 * annotation, withheld when the traffic policy is Local and the node has no local endpoint.
 *
 * @module
 */
import { canonicalAddr } from "../../bgp/mod.ts";
import { isIP, SLOPPY } from "../../net/ip.ts";
import { parseGoBool as parseBool } from "../../options/go_text.ts";
import type { ClusterSnapshot, ServiceInfo } from "../../watch/types.ts";
import type { Families, PlanProblem, RoutingNode } from "./identity.ts";
import type { RouterOptions } from "./peers.ts";

export const SVC_ANN = {
  advClusterIp: "kube-router.io/service.advertise.clusterip",
  advExternalIp: "kube-router.io/service.advertise.externalip",
  advLbIp: "kube-router.io/service.advertise.loadbalancerip",
  local: "kube-router.io/service.local",
  skipLbIps: "kube-router.io/service.skiplbips",
} as const;

/** One prefix this node originates. */
export interface Advertisement {
  /** "10.244.1.0/24", "10.96.0.10/32". */
  prefix: string;
  nextHop: string;
  kind: "pod-cidr" | "cluster-ip" | "external-ip" | "loadbalancer-ip";
}

function flagOrAnnotation(svc: ServiceInfo, key: string, flag: boolean, problems: PlanProblem[]): boolean {
  const raw = svc.annotations[key];
  if (raw === undefined) return flag;
  const v = parseBool(raw.trim());
  if (v === null) {
    problems.push({
      object: `service/${svc.namespace}/${svc.name}`,
      field: `annotation ${key}`,
      message: `${
        JSON.stringify(raw)
      } is not a boolean (expected true/false); using the flag's value ${flag}`,
    });
    return flag;
  }
  return v;
}

/** Whether the service has a ready endpoint on this node. */
export function hasLocalEndpoint(snap: ClusterSnapshot, svc: ServiceInfo, node: string): boolean {
  for (const es of snap.endpointSlices.values()) {
    if (es.namespace !== svc.namespace || es.serviceName !== svc.name) continue;
    if (es.endpoints.some((e) => e.nodeName === node && e.ready)) return true;
  }
  return false;
}

/** Every VIP the cluster's services use (never imported from peers). */
export function allServiceVips(snap: ClusterSnapshot): string[] {
  const out = new Set<string>();
  for (const s of snap.services.values()) {
    for (const ip of [...s.clusterIPs, ...s.externalIPs, ...s.loadBalancerIPs.map((i) => i.ip)]) {
      if (ip && isIP(ip, SLOPPY)) out.add(hostPrefix(ip));
    }
  }
  return [...out].sort();
}

function hostPrefix(ip: string): string {
  const c = canonicalAddr(ip);
  return `${c}/${c.includes(":") ? 128 : 32}`;
}

/** Pod CIDR and service VIP advertisements of the local node, sorted. */
export function advertisements(
  snap: ClusterSnapshot,
  local: RoutingNode,
  o: RouterOptions,
  fam: Families,
  problems: PlanProblem[],
): Advertisement[] {
  const out = new Map<string, Advertisement>();
  const nh = (ip: string) => ip.includes(":") ? local.ipv6 : local.ipv4;
  for (const c of local.podCIDRs) {
    const n = nh(c);
    if (n) out.set(c, { prefix: c, nextHop: n, kind: "pod-cidr" });
  }
  for (const svc of snap.services.values()) {
    if (svc.type === "ExternalName") continue;
    const proxyName = svc.labels["service.kubernetes.io/service-proxy-name"];
    if (proxyName !== undefined && proxyName !== "kube-router") continue;
    const add = (ip: string, kind: Advertisement["kind"]) => {
      if (!ip || !isIP(ip, SLOPPY)) return;
      const v6 = ip.includes(":");
      if ((v6 && !fam.v6) || (!v6 && !fam.v4)) return;
      const n = nh(ip);
      if (!n) return;
      const prefix = hostPrefix(ip);
      if (!out.has(prefix)) out.set(prefix, { prefix, nextHop: n, kind });
    };
    const local_ = () => hasLocalEndpoint(snap, svc, local.name);
    if (!svc.headless && flagOrAnnotation(svc, SVC_ANN.advClusterIp, o.advertiseClusterIp, problems)) {
      if (svc.internalTrafficPolicy !== "Local" || local_()) {
        for (const ip of svc.clusterIPs) add(ip, "cluster-ip");
      }
    }
    const extLocal = svc.externalTrafficPolicy === "Local" || svc.annotations[SVC_ANN.local] === "true";
    const extOk = () => !extLocal || local_();
    if (flagOrAnnotation(svc, SVC_ANN.advExternalIp, o.advertiseExternalIp, problems) && extOk()) {
      for (const ip of svc.externalIPs) add(ip, "external-ip");
    }
    if (
      svc.type === "LoadBalancer" && svc.annotations[SVC_ANN.skipLbIps] === undefined &&
      flagOrAnnotation(svc, SVC_ANN.advLbIp, o.advertiseLoadbalancerIp, problems) && extOk()
    ) {
      for (const ing of svc.loadBalancerIPs) add(ing.ip, "loadbalancer-ip");
    }
  }
  return [...out.values()].sort((a, b) => a.prefix.localeCompare(b.prefix));
}
