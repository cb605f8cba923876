/**
 * Builders for literal snapshots used by the firewall's unit tests, benchmark and integration
 * tests (plain data, no API server). Not used by the agent itself.
 *
 * @module
 */
import { defaultOptions } from "../../options/mod.ts";
import type {
  ClusterSnapshot,
  ContainerPort,
  LabelSelector,
  NamespaceInfo,
  NetworkPolicyInfo,
  NetworkPolicyRule,
  NodeInfo,
  PodInfo,
} from "../../watch/types.ts";
import type { FirewallPlanOptions } from "./plan.ts";

export function fwOptions(o: Partial<FirewallPlanOptions> = {}): FirewallPlanOptions {
  const d = defaultOptions();
  return {
    enableIpv4: d.enableIpv4,
    enableIpv6: d.enableIpv6,
    serviceClusterIpRange: d.serviceClusterIpRange,
    serviceExternalIpRange: d.serviceExternalIpRange,
    loadbalancerIpRange: d.loadbalancerIpRange,
    serviceNodePortRange: d.serviceNodePortRange,
    netpolDefaultDeny: d.netpolDefaultDeny,
    ...o,
  };
}

export function sel(
  matchLabels: Record<string, string> = {},
  matchExpressions: LabelSelector["matchExpressions"] = [],
): LabelSelector {
  return { matchLabels, matchExpressions };
}

export function pod(
  ns: string,
  name: string,
  ip: string | string[],
  labels: Record<string, string> = {},
  o: Partial<PodInfo> & { ports?: Array<[string, number, ContainerPort["protocol"]?]> } = {},
): PodInfo {
  const { ports, ...rest } = o;
  return {
    namespace: ns,
    name,
    uid: `${ns}-${name}`,
    labels,
    annotations: {},
    nodeName: "node-a",
    hostIP: "192.0.2.1",
    podIPs: Array.isArray(ip) ? ip : [ip],
    hostNetwork: false,
    phase: "Running",
    containerPorts: (ports ?? []).map(([n, p, proto]) => ({
      name: n,
      containerPort: p,
      protocol: proto ?? "TCP",
    })),
    deletionTimestamp: null,
    terminationGracePeriodSeconds: 30,
    ...rest,
  };
}

export function ns(name: string, labels: Record<string, string> = {}): NamespaceInfo {
  return { name, labels };
}

export function policy(
  namespace: string,
  name: string,
  o: {
    podSelector?: LabelSelector;
    policyTypes?: Array<"Ingress" | "Egress">;
    ingress?: NetworkPolicyRule[];
    egress?: NetworkPolicyRule[];
  } = {},
): NetworkPolicyInfo {
  const ingress = o.ingress ?? [];
  const egress = o.egress ?? [];
  const types = o.policyTypes ?? (egress.length ? ["Ingress", "Egress"] : ["Ingress"]);
  return { namespace, name, podSelector: o.podSelector ?? sel(), policyTypes: types, ingress, egress };
}

export function node(name: string, ip: string, podCIDRs: string[] = []): NodeInfo {
  return {
    name,
    labels: {},
    annotations: {},
    podCIDRs,
    internalIPs: [ip],
    externalIPs: [],
    providerID: "",
  };
}

export function snapshot(parts: {
  pods?: PodInfo[];
  namespaces?: NamespaceInfo[];
  policies?: NetworkPolicyInfo[];
  nodes?: NodeInfo[];
  revision?: number;
}): ClusterSnapshot {
  return {
    revision: parts.revision ?? 1,
    nodes: new Map((parts.nodes ?? []).map((n) => [n.name, n])),
    pods: new Map((parts.pods ?? []).map((p) => [`${p.namespace}/${p.name}`, p])),
    namespaces: new Map((parts.namespaces ?? []).map((n) => [n.name, n])),
    services: new Map(),
    endpointSlices: new Map(),
    networkPolicies: new Map((parts.policies ?? []).map((p) => [`${p.namespace}/${p.name}`, p])),
  };
}
