/**
 * Cluster state as typed, normalised snapshots: what every controller's plan reads.
 *
 * Both sources (the API server's informers and `--manifests` YAML) convert Kubernetes objects
 * into these shapes through `convert.ts`, so plans never see raw API objects, never see
 * `undefined` where the API has a default, and are unit-testable with plain literals.
 *
 * @module
 */

export type Protocol = "TCP" | "UDP" | "SCTP";
export type IpFamily = "IPv4" | "IPv6";

export interface LabelSelectorRequirement {
  key: string;
  operator: "In" | "NotIn" | "Exists" | "DoesNotExist";
  values: string[];
}

/** A Kubernetes LabelSelector; an empty one (no labels, no expressions) selects everything. */
export interface LabelSelector {
  matchLabels: Record<string, string>;
  matchExpressions: LabelSelectorRequirement[];
}

export interface NodeInfo {
  name: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** From `spec.podCIDRs` (or `spec.podCIDR`); the annotation overrides are applied by the router. */
  podCIDRs: string[];
  internalIPs: string[];
  externalIPs: string[];
  providerID: string;
  /** `metadata.creationTimestamp` (ISO), "" when unknown: the older object wins a conflict. */
  creationTimestamp?: string;
}

export interface ContainerPort {
  name: string;
  containerPort: number;
  protocol: Protocol;
}

export interface PodInfo {
  namespace: string;
  name: string;
  uid: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  nodeName: string;
  hostIP: string;
  /** All pod IPs (dual-stack: one per family). */
  podIPs: string[];
  hostNetwork: boolean;
  phase: string;
  containerPorts: ContainerPort[];
  /** Set while the pod is terminating. */
  deletionTimestamp: string | null;
  terminationGracePeriodSeconds: number;
  /** `metadata.creationTimestamp` (ISO), "" when unknown: the newer pod owns an address two claim. */
  creationTimestamp?: string;
}

export interface NamespaceInfo {
  name: string;
  labels: Record<string, string>;
}

export interface ServicePort {
  name: string;
  protocol: Protocol;
  port: number;
  /** Number, or the name of a container port. */
  targetPort: number | string;
  /** 0 when none. */
  nodePort: number;
}

export interface LoadBalancerIngress {
  ip: string;
  hostname: string;
  /** "VIP" (default) or "Proxy"; Proxy entries are skipped by the proxy. */
  ipMode: string;
}

export interface ServiceInfo {
  namespace: string;
  name: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  type: "ClusterIP" | "NodePort" | "LoadBalancer" | "ExternalName";
  /** Empty for headless services ("None"). */
  clusterIPs: string[];
  headless: boolean;
  externalIPs: string[];
  loadBalancerIPs: LoadBalancerIngress[];
  loadBalancerClass: string;
  ports: ServicePort[];
  sessionAffinity: "None" | "ClientIP";
  /** Seconds; the API default 10800 when affinity is ClientIP. */
  sessionAffinityTimeout: number;
  externalTrafficPolicy: "Cluster" | "Local";
  internalTrafficPolicy: "Cluster" | "Local";
  healthCheckNodePort: number;
  ipFamilies: IpFamily[];
  ipFamilyPolicy: string;
  /** `metadata.creationTimestamp` (ISO), "" when unknown: the older Service wins a conflict. */
  creationTimestamp?: string;
}

export interface Endpoint {
  addresses: string[];
  ready: boolean;
  serving: boolean;
  terminating: boolean;
  nodeName: string;
  /** "namespace/name" of the target pod, or "". */
  targetPod: string;
}

export interface EndpointPort {
  name: string;
  port: number;
  protocol: Protocol;
}

export interface EndpointSliceInfo {
  namespace: string;
  name: string;
  /** From the `kubernetes.io/service-name` label. */
  serviceName: string;
  addressType: "IPv4" | "IPv6" | "FQDN";
  endpoints: Endpoint[];
  ports: EndpointPort[];
}

export interface NetworkPolicyPort {
  protocol: Protocol;
  /** Absent means every port. A string is a named port. */
  port?: number | string;
  endPort?: number;
}

export interface IPBlock {
  cidr: string;
  except: string[];
}

export interface NetworkPolicyPeer {
  podSelector?: LabelSelector;
  namespaceSelector?: LabelSelector;
  ipBlock?: IPBlock;
}

/** One ingress or egress rule: `peers` empty means "from/to anywhere", `ports` empty means "any port". */
export interface NetworkPolicyRule {
  peers: NetworkPolicyPeer[];
  ports: NetworkPolicyPort[];
}

export interface NetworkPolicyInfo {
  namespace: string;
  name: string;
  podSelector: LabelSelector;
  /** Explicit, or implied as the API does: Ingress always, Egress when egress rules exist. */
  policyTypes: Array<"Ingress" | "Egress">;
  ingress: NetworkPolicyRule[];
  egress: NetworkPolicyRule[];
}

/** Kinds of object a source delivers. */
export type ResourceKind =
  | "Node"
  | "Pod"
  | "Namespace"
  | "Service"
  | "EndpointSlice"
  | "NetworkPolicy";

/**
 * An immutable, consistent view of the cluster. Maps are keyed by "namespace/name" (or
 * "name" for cluster-scoped objects). A new snapshot is made for every applied batch of
 * events, so a controller holding one never sees it change under it.
 */
export interface ClusterSnapshot {
  /** Increases with every batch of changes. */
  readonly revision: number;
  readonly nodes: ReadonlyMap<string, NodeInfo>;
  readonly pods: ReadonlyMap<string, PodInfo>;
  readonly namespaces: ReadonlyMap<string, NamespaceInfo>;
  readonly services: ReadonlyMap<string, ServiceInfo>;
  readonly endpointSlices: ReadonlyMap<string, EndpointSliceInfo>;
  readonly networkPolicies: ReadonlyMap<string, NetworkPolicyInfo>;
}

/** A change delivered to subscribers; `snapshot` already includes it. */
export interface ClusterChange {
  kinds: ReadonlySet<ResourceKind>;
  snapshot: ClusterSnapshot;
}

export function emptySnapshot(): ClusterSnapshot {
  return {
    revision: 0,
    nodes: new Map(),
    pods: new Map(),
    namespaces: new Map(),
    services: new Map(),
    endpointSlices: new Map(),
    networkPolicies: new Map(),
  };
}

/** Key of a namespaced object in a snapshot map. */
export function objectKey(namespace: string, name: string): string {
  return namespace === "" ? name : `${namespace}/${name}`;
}
