/**
 * The proxy's desired state: what `plan()` computes from a snapshot and what the IPVS and
 * nftables appliers render. Plain data, so plans compare with `deepStrictEqual` and golden tests
 * read well.
 *
 * @module
 */
import type { AgentOptions } from "../../options/mod.ts";
import type { Protocol } from "../../watch/types.ts";
import type { Family } from "./ip.ts";

/** The options the proxy plan reads (a slice of `AgentOptions`, durations in ms). */
export type ProxyOptions = Pick<
  AgentOptions,
  | "serviceClusterIpRange"
  | "serviceExternalIpRange"
  | "loadbalancerIpRange"
  | "strictExternalIpValidation"
  | "ipvsPermitAll"
  | "ipvsGracefulTermination"
  | "ipvsGracefulPeriod"
  | "masqueradeAll"
  | "hairpinMode"
  | "nodeportBindonAllIp"
  | "excludedCidrs"
  | "serviceTcpTimeout"
  | "serviceTcpfinTimeout"
  | "serviceUdpTimeout"
  | "enableIpv4"
  | "enableIpv6"
>;

/** Who and where this node is; the controller fills it from the snapshot and `ip -j addr`. */
export interface NodeIdentity {
  name: string;
  /** Primary node address per family (first InternalIP, else ExternalIP). */
  ipv4?: string;
  ipv6?: string;
  /** Every address on the node's own links (for `--nodeport-bindon-all-ip` and local-ips). */
  localAddresses: string[];
  /** The node's pod CIDRs (for the pod-CIDR SNAT rule). */
  podCIDRs: string[];
  /** MTU of the link holding the node's primary address (DSR TCPMSS clamping); default 1500. */
  mtu?: number;
}

/** Which kind of address a virtual service listens on. */
export type VipKind = "clusterip" | "nodeport" | "externalip" | "loadbalancer";

export type Scheduler = "rr" | "lc" | "dh" | "sh" | "mh";

/** IPVS scheduler flags as upstream's annotation names them (bits 0x08, 0x10, 0x20). */
export type SchedFlag = "flag-1" | "flag-2" | "flag-3";

/** One real server (endpoint) of a virtual service. */
export interface RealServer {
  ip: string;
  port: number;
  /** 1 for ready endpoints, 0 while draining (terminating or removed, within the grace period). */
  weight: number;
  /** On this node. */
  local: boolean;
  /** "namespace/name" of the pod, or "". */
  pod: string;
}

/** One virtual service: what an IPVS service is, and one entry of the nftables service map. */
export interface VirtualService {
  /** Stable identity: "tcp/10.96.0.1:80", "udp/[2001:db8::1]:53", "fwm/4242/v4". */
  key: string;
  family: Family;
  kind: VipKind;
  /** The Kubernetes service, "namespace/name", and the service port's name. */
  service: string;
  portName: string;
  vip: string;
  protocol: Protocol;
  port: number;
  /** Non-zero for DSR services: an IPVS fwmark service instead of address/port. */
  fwmark: number;
  scheduler: Scheduler;
  schedFlags: SchedFlag[];
  /** Persistence (ClientIP affinity) timeout in seconds; 0 = not persistent. */
  persistence: number;
  /** How IPVS forwards to real servers: masquerade (NAT), or tunnel for DSR. */
  forward: "masq" | "tunnel";
  /** Source NAT traffic to this VIP (masquerade-all, or external traffic with policy Cluster). */
  masquerade: boolean;
  /** Hairpin SNAT for local endpoints reaching themselves through this VIP. */
  hairpin: boolean;
  /** Only local endpoints, client source kept (externalTrafficPolicy/internalTrafficPolicy Local). */
  localOnly: boolean;
  /** Sorted by ip, port. */
  realServers: RealServer[];
}

/** A VIP·proto·port with no usable endpoint: traffic to it is rejected (ICMP port unreachable). */
export interface RejectEntry {
  service: string;
  family: Family;
  vip: string;
  protocol: Protocol;
  port: number;
}

/** `healthCheckNodePort` of an externalTrafficPolicy Local service, and how many local endpoints it has. */
export interface HealthCheck {
  service: string;
  port: number;
  localEndpoints: number;
}

/** A DSR mark rule (mangle): packets to vip·proto·port get `fwmark`. */
export interface DsrMark {
  service: string;
  family: Family;
  vip: string;
  protocol: Protocol;
  port: number;
  fwmark: number;
}

/** Something the plan skipped or replaced by a fallback, reported with the object's name. */
export interface PlanWarning {
  service: string;
  field: string;
  message: string;
}

/** Everything the proxy wants in the kernel for one node. */
export interface ProxyPlan {
  /** Sorted by key. */
  services: VirtualService[];
  /** Host addresses for `kube-dummy-if` (VIPs that are not node addresses), sorted, "ip/32"|"ip/128". */
  dummyAddresses: string[];
  /** Sorted. */
  rejects: RejectEntry[];
  healthChecks: HealthCheck[];
  dsrMarks: DsrMark[];
  /** Contents of the proxy's ipsets per family. */
  sets: {
    localIps: Record<Family, string[]>;
    svip: Record<Family, string[]>;
    svipPort: Record<Family, string[]>;
  };
  /** Node address per family used as SNAT source. */
  nodeIps: Partial<Record<Family, string>>;
  /** Addresses where NodePorts listen, per family (nftables `nodeport-ips`). */
  nodePortIps: Record<Family, string[]>;
  podCIDRs: Record<Family, string[]>;
  /** MTU of the node's primary link: DSR SYN-ACKs get MSS = MTU − 60 (IPv4) / − 100 (IPv6). */
  nodeMtu: number;
  /** IPVS global timeouts in seconds (0 = leave the kernel's value). */
  timeouts: { tcp: number; tcpfin: number; udp: number };
  warnings: PlanWarning[];
}
