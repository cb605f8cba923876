/**
 * Builders for literal snapshots used by the proxy's unit tests, benchmark and integration tests
 * (plain data, no API server). Not used by the agent itself.
 *
 * @module
 */
import { defaultOptions } from "../../options/mod.ts";
import {
  type ClusterSnapshot,
  type Endpoint,
  type EndpointSliceInfo,
  objectKey,
  type PodInfo,
  type ServiceInfo,
  type ServicePort,
} from "../../watch/types.ts";
import { hostProcFs, type ProcFs } from "../../kernel/netns/mod.ts";
import type { NodeIdentity, ProxyOptions } from "./types.ts";

/** Default options with overrides. */
export function proxyOptions(overrides: Partial<ProxyOptions> = {}): ProxyOptions {
  return { ...defaultOptions(), ...overrides };
}

/** Service fields a test sets; ports need only `port`. */
export type ServiceOverrides = Partial<Omit<ServiceInfo, "ports">> & {
  ports?: Array<Partial<ServicePort> & { port: number }>;
};

export function svc(name: string, o: ServiceOverrides = {}): ServiceInfo {
  const { ports, ...rest } = o;
  return {
    namespace: "default",
    name,
    labels: {},
    annotations: {},
    type: "ClusterIP",
    clusterIPs: [],
    headless: false,
    externalIPs: [],
    loadBalancerIPs: [],
    loadBalancerClass: "",
    sessionAffinity: "None",
    sessionAffinityTimeout: 0,
    externalTrafficPolicy: "Cluster",
    internalTrafficPolicy: "Cluster",
    healthCheckNodePort: 0,
    ipFamilies: ["IPv4"],
    ipFamilyPolicy: "SingleStack",
    ...rest,
    ports: (ports ?? [{ port: 80 }]).map((p) => ({
      name: "",
      protocol: "TCP",
      targetPort: p.port,
      nodePort: 0,
      ...p,
    })),
  };
}

export function ep(ip: string, nodeName = "node-a", o: Partial<Endpoint> = {}): Endpoint {
  return {
    addresses: [ip],
    ready: true,
    serving: true,
    terminating: false,
    nodeName,
    targetPod: "",
    ...o,
  };
}

export function slice(
  service: string,
  endpoints: Endpoint[],
  o: Partial<EndpointSliceInfo> & { port?: number } = {},
): EndpointSliceInfo {
  const { port, ...rest } = o;
  return {
    namespace: "default",
    name: `${service}-${Math.abs(hash(JSON.stringify(endpoints))).toString(36)}`,
    serviceName: service,
    addressType: "IPv4",
    endpoints,
    ports: [{ name: "", port: port ?? 8080, protocol: "TCP" }],
    ...rest,
  };
}

function hash(s: string): number {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (Math.imul(h, 31) + s.charCodeAt(i)) | 0;
  return h;
}

export function pod(name: string, o: Partial<PodInfo> = {}): PodInfo {
  return {
    namespace: "default",
    name,
    uid: name,
    labels: {},
    annotations: {},
    nodeName: "node-a",
    hostIP: "",
    podIPs: [],
    hostNetwork: false,
    phase: "Running",
    containerPorts: [],
    deletionTimestamp: null,
    terminationGracePeriodSeconds: 30,
    ...o,
  };
}

export function snapshot(
  o: { services?: ServiceInfo[]; slices?: EndpointSliceInfo[]; pods?: PodInfo[]; revision?: number } = {},
): ClusterSnapshot {
  return {
    revision: o.revision ?? 1,
    nodes: new Map(),
    pods: new Map((o.pods ?? []).map((p) => [objectKey(p.namespace, p.name), p])),
    namespaces: new Map(),
    services: new Map((o.services ?? []).map((s) => [objectKey(s.namespace, s.name), s])),
    endpointSlices: new Map((o.slices ?? []).map((s) => [objectKey(s.namespace, s.name), s])),
    networkPolicies: new Map(),
  };
}

export function nodeA(o: Partial<NodeIdentity> = {}): NodeIdentity {
  return {
    name: "node-a",
    ipv4: "192.0.2.10",
    localAddresses: ["192.0.2.10", "10.201.0.1"],
    podCIDRs: ["10.201.0.0/24"],
    ...o,
  };
}

/**
 * The host's real /proc, seen through a filter: only processes inside the named network
 * namespaces (`ip netns` names) are listed. Tests share one machine, so DSR's /proc scan must not
 * wander into another test's namespaces that happen to use the same pod IP.
 */
export async function procFsLimitedTo(netnsNames: readonly string[]): Promise<ProcFs> {
  const real = hostProcFs();
  const ids = new Set<string>();
  for (const n of netnsNames) ids.add(`net:[${(await Deno.stat(`/run/netns/${n}`)).ino}]`);
  return {
    ...real,
    async pids() {
      const out: string[] = [];
      for (const p of await real.pids()) {
        const id = await real.readLink(`/proc/${p}/ns/net`);
        if (id && ids.has(id)) out.push(p);
      }
      return out;
    },
  };
}
