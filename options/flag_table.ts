/**
 * The single source of every flag: name, type, default, group, help and env fallback. The
 * names, types and defaults are upstream kube-router's (`pkg/options/options.go`), so an existing
 * DaemonSet's args work unchanged; flags marked `ours` are additions of this agent.
 *
 * `AgentOptions` is derived from this table: `--peer-router-ips` becomes `peerRouterIps`.
 *
 * @module
 */

export type FlagType =
  | "bool"
  | "string"
  | "duration"
  | "uint"
  | "uint8"
  | "uint16"
  | "uint32"
  | "stringSlice"
  | "ipSlice"
  | "uintSlice";

export type FlagGroup = "general" | "proxy" | "firewall" | "router" | "loadbalancer" | "agent";

export interface FlagSpec {
  name: string;
  type: FlagType;
  default: unknown;
  group: FlagGroup;
  help: string;
  shorthand?: string;
  env?: string;
  /** Added by this agent, not in upstream. */
  ours?: boolean;
  /** Allowed values for a string flag. */
  choices?: readonly string[];
}

const MIN = 60_000;

function f<const N extends string, const T extends FlagType>(
  name: N,
  type: T,
  def: TypeOf<T>,
  group: FlagGroup,
  help: string,
  extra: Omit<Partial<FlagSpec>, "name" | "type" | "default" | "group" | "help"> = {},
): FlagSpec & { name: N; type: T; default: TypeOf<T> } {
  return { ...extra, name, type, default: def, group, help };
}

/** The value type a flag type parses to (durations are milliseconds). */
export type TypeOf<T extends FlagType> = T extends "bool" ? boolean
  : T extends "string" ? string
  : T extends "stringSlice" | "ipSlice" ? string[]
  : T extends "uintSlice" ? number[]
  : number;

export const FLAGS = [
  // general / process
  f(
    "run-router",
    "bool",
    true,
    "general",
    "Enables Pod Networking -- Advertises and learns the routes to Pods via iBGP.",
  ),
  f(
    "run-firewall",
    "bool",
    true,
    "general",
    "Enables Network Policy -- sets up iptables to provide ingress firewall for pods.",
  ),
  f(
    "run-service-proxy",
    "bool",
    true,
    "general",
    "Enables Service Proxy -- sets up IPVS for Kubernetes Services.",
  ),
  f("run-loadbalancer", "bool", false, "general", "Enable loadbalancer address allocator."),
  f(
    "kubeconfig",
    "string",
    "",
    "general",
    "Path to kubeconfig file with authorization information (the master location is set by the master flag).",
  ),
  f(
    "master",
    "string",
    "",
    "general",
    "The address of the Kubernetes API server (overrides any value in kubeconfig).",
  ),
  f(
    "hostname-override",
    "string",
    "",
    "general",
    "Overrides the NodeName of the node. Set this if kube-router is unable to determine your NodeName automatically.",
    { env: "NODE_NAME" },
  ),
  f(
    "cache-sync-timeout",
    "duration",
    1 * MIN,
    "general",
    "The timeout for cache synchronization (e.g. '5s', '1m'). Must be greater than 0.",
  ),
  f(
    "cleanup-config",
    "bool",
    false,
    "general",
    "Cleanup iptables rules, ipvs, ipset configuration and exit.",
  ),
  f("enable-ipv4", "bool", true, "general", "Enables IPv4 support"),
  f("enable-ipv6", "bool", false, "general", "Enables IPv6 support"),
  f("health-addr", "string", "", "general", "Health check address to listen on (Default: all interfaces)"),
  f("health-port", "uint16", 20244, "general", "Health check port, 0 = Disabled"),
  f(
    "metrics-addr",
    "string",
    "",
    "general",
    "Prometheus metrics address to listen on, (Default: all interfaces)",
  ),
  f("metrics-port", "uint16", 0, "general", "Prometheus metrics port, (Default 0, Disabled)"),
  f("metrics-path", "string", "/metrics", "general", "Prometheus metrics path"),
  f(
    "enable-pprof",
    "bool",
    false,
    "general",
    "Enables pprof for debugging performance and memory leak issues. (Accepted for compatibility; this agent has no pprof.)",
  ),
  f(
    "service-cluster-ip-range",
    "stringSlice",
    ["10.96.0.0/12"],
    "general",
    "CIDR values from which service cluster IPs are assigned (can be specified up to 2 times)",
  ),
  f(
    "service-external-ip-range",
    "stringSlice",
    [],
    "general",
    "Specify external IP CIDRs that are used for inter-cluster communication (can be specified multiple times)",
  ),
  f(
    "loadbalancer-ip-range",
    "stringSlice",
    [],
    "general",
    "CIDR values from which loadbalancer services addresses are assigned (can be specified multiple times)",
  ),
  f(
    "strict-external-ip-validation",
    "bool",
    true,
    "general",
    "Enables strict validation of external IPs for services, denying any ExternalIPs that do not fall within the ranges specified by --service-external-ip-range and --loadbalancer-ip-range.",
  ),
  f(
    "service-node-port-range",
    "string",
    "30000-32767",
    "general",
    "NodePort range specified with either a hyphen or colon",
  ),
  f("v", "string", "0", "general", "log level for V logs", { shorthand: "v" }),
  f("version", "bool", false, "general", "Print version information.", { shorthand: "V" }),
  f("help", "bool", false, "general", "Print usage information.", { shorthand: "h" }),
  // service proxy
  f(
    "ipvs-sync-period",
    "duration",
    5 * MIN,
    "proxy",
    "The delay between ipvs config synchronizations (e.g. '5s', '1m', '2h22m'). Must be greater than 0.",
  ),
  f(
    "ipvs-permit-all",
    "bool",
    true,
    "proxy",
    "Enables rule to accept all incoming traffic to service VIP's on the node.",
  ),
  f(
    "ipvs-graceful-termination",
    "bool",
    false,
    "proxy",
    "Enables the experimental IPVS graceful terminaton capability",
  ),
  f(
    "ipvs-graceful-period",
    "duration",
    30_000,
    "proxy",
    "The graceful period before removing destinations from IPVS services (e.g. '5s', '1m', '2h22m'). Must be greater than 0.",
  ),
  f("masquerade-all", "bool", false, "proxy", "SNAT all traffic to cluster IP/node port."),
  f(
    "hairpin-mode",
    "bool",
    false,
    "proxy",
    "Add iptables rules for every Service Endpoint to support hairpin traffic.",
  ),
  f(
    "nodeport-bindon-all-ip",
    "bool",
    false,
    "proxy",
    "For service of NodePort type create IPVS service that listens on all IP's of the node.",
  ),
  f(
    "excluded-cidrs",
    "stringSlice",
    [],
    "proxy",
    "Excluded CIDRs are used to exclude IPVS rules from deletion.",
  ),
  f(
    "runtime-endpoint",
    "string",
    "",
    "proxy",
    "Path to CRI compatible container runtime socket (used for DSR mode). Currently known working with containerd.",
  ),
  f(
    "service-tcp-timeout",
    "duration",
    0,
    "proxy",
    "Specify TCP timeout for IPVS services in standard duration syntax (e.g. '5s', '1m'), default 0s preserves default system value (default: 0s)",
  ),
  f(
    "service-tcpfin-timeout",
    "duration",
    0,
    "proxy",
    "Specify TCP FIN timeout for IPVS services in standard duration syntax (e.g. '5s', '1m'), default 0s preserves default system value (default: 0s)",
  ),
  f(
    "service-udp-timeout",
    "duration",
    0,
    "proxy",
    "Specify UDP timeout for IPVS services in standard duration syntax (e.g. '5s', '1m'), default 0s preserves default system value (default: 0s)",
  ),
  f(
    "service-proxy-mode",
    "string",
    "ipvs",
    "proxy",
    "How services are programmed: ipvs (upstream's way) or nftables (one nft transaction per sync; works on kernels without IPVS).",
    { ours: true, choices: ["ipvs", "nftables"] },
  ),
  // network policy firewall
  f(
    "iptables-sync-period",
    "duration",
    5 * MIN,
    "firewall",
    "The delay between iptables rule synchronizations (e.g. '5s', '1m'). Must be greater than 0.",
  ),
  f(
    "netpol-default-deny",
    "bool",
    false,
    "firewall",
    "Reject all traffic of pods on this node until their network policy rules are in place, closing the startup race (needs the node's pod CIDRs).",
  ),
  f(
    "use-nftables-for-netpol",
    "bool",
    false,
    "firewall",
    "Use nftables instead of iptables for network policy enforcement.",
  ),
  // routing
  f(
    "routes-sync-period",
    "duration",
    5 * MIN,
    "router",
    "The delay between route updates and advertisements (e.g. '5s', '1m', '2h22m'). Must be greater than 0.",
  ),
  f(
    "injected-routes-sync-period",
    "duration",
    60_000,
    "router",
    "The delay between route synchronizations of routes learned from BGP peers (e.g. '5s', '1m', '2h22m'). Must be greater than 0.",
  ),
  f(
    "advertise-cluster-ip",
    "bool",
    false,
    "router",
    "Add Cluster IP of the service to the RIB so that it gets advertises to the BGP peers.",
  ),
  f(
    "advertise-external-ip",
    "bool",
    false,
    "router",
    "Add External IP of service to the RIB so that it gets advertised to the BGP peers.",
  ),
  f(
    "advertise-loadbalancer-ip",
    "bool",
    false,
    "router",
    "Add LoadbBalancer IP of service status as set by the LB provider to the RIB so that it gets advertised to the BGP peers.",
  ),
  f(
    "advertise-pod-cidr",
    "bool",
    true,
    "router",
    "Add Node's POD cidr to the RIB so that it gets advertised to the BGP peers.",
  ),
  f(
    "cluster-asn",
    "uint",
    0,
    "router",
    "ASN number under which cluster nodes will run iBGP (default 64512 when 0).",
  ),
  f(
    "nodes-full-mesh",
    "bool",
    true,
    "router",
    "Each node in the cluster will setup BGP peering with rest of the nodes.",
  ),
  f(
    "enable-ibgp",
    "bool",
    true,
    "router",
    "Enables peering with nodes with the same ASN, if disabled will only peer with external BGP peers",
  ),
  f(
    "peer-router-ips",
    "ipSlice",
    [],
    "router",
    "The ip address of the external router to which all nodes will peer and advertise the cluster ip and pod cidr's.",
  ),
  f(
    "peer-router-asns",
    "uintSlice",
    [],
    "router",
    "ASN numbers of the BGP peer to which cluster nodes will advertise cluster ip and node's pod cidr.",
  ),
  f(
    "peer-router-ports",
    "uintSlice",
    [],
    "router",
    "The remote port of the external BGP to which all nodes will peer. If not set, default BGP port (179) will be used.",
  ),
  f(
    "peer-router-passwords",
    "stringSlice",
    [],
    "router",
    'Password for authenticating against the BGP peer defined with "--peer-router-ips".',
  ),
  f(
    "peer-router-passwords-file",
    "string",
    "",
    "router",
    'Path to file containing password for authenticating against the BGP peer defined with "--peer-router-ips". --peer-router-passwords will be preferred if both are set.',
  ),
  f(
    "peer-router-multihop-ttl",
    "uint8",
    0,
    "router",
    "Enable eBGP multihop supports -- sets multihop-ttl. (Relevant only if ttl >= 2)",
  ),
  f(
    "bgp-port",
    "uint32",
    179,
    "router",
    "The port open for incoming BGP connections and to use for connecting with other BGP peers.",
  ),
  f(
    "bgp-holdtime",
    "duration",
    90_000,
    "router",
    "This parameter is mainly used to modify the holdtime declared to BGP peer. When Kube-router goes down abnormally, the local saving time of BGP route will be affected. Holdtime must be in the range 3s to 18h12m16s.",
  ),
  f(
    "bgp-graceful-restart",
    "bool",
    false,
    "router",
    "Enables the BGP Graceful Restart capability so that routes are preserved on unexpected restarts",
  ),
  f(
    "bgp-graceful-restart-time",
    "duration",
    90_000,
    "router",
    "BGP Graceful restart time according to RFC4724 3, maximum 4095s.",
  ),
  f(
    "bgp-graceful-restart-deferral-time",
    "duration",
    360_000,
    "router",
    "BGP Graceful restart deferral time according to RFC4724 4.1, maximum 18h.",
  ),
  f(
    "router-id",
    "string",
    "",
    "router",
    'BGP router-id. Must be specified in a ipv6 only cluster, "generate" can be specified to generate the router id.',
  ),
  f(
    "override-nexthop",
    "bool",
    false,
    "router",
    "Override the next-hop in bgp routes sent to peers with the local ip.",
  ),
  f(
    "gobgp-admin-address",
    "string",
    "127.0.0.1",
    "router",
    "Address of the BGP admin/status API (upstream: GoBGP's gRPC; here: the JSON status API used by `kube-router bgp`).",
  ),
  f("gobgp-admin-port", "uint16", 50051, "router", "Port of the BGP admin/status API, 0 = Disabled."),
  f("enable-bfd", "bool", false, "router", "Enables BFD for global peers"),
  f("bfd-port", "uint32", 3784, "router", "Port used for BFD"),
  f("bfd-detection-multiplier", "uint32", 3, "router", "BFD detection multiplier (1-255)"),
  f(
    "bfd-desired-min-tx-interval",
    "uint32",
    1000,
    "router",
    "BFD desired minimum transmit interval in milliseconds",
  ),
  f(
    "bfd-required-min-rx-interval",
    "uint32",
    1000,
    "router",
    "BFD required minimum receive interval in milliseconds",
  ),
  f(
    "enable-overlay",
    "bool",
    true,
    "router",
    "When enable-overlay is set to true, IP-in-IP tunneling is used for pod-to-pod networking across nodes in different subnets. When set to false no tunneling is used i.e. routing across the pods is expected to be done by the underlying network.",
  ),
  f(
    "overlay-type",
    "string",
    "subnet",
    "router",
    'Possible values: subnet,full - When set to "subnet", the default, default "--enable-overlay=true" behavior is used. When set to "full", it changes "--enable-overlay=true" default behavior so that IP-in-IP tunneling is used for pod-to-pod networking across nodes regardless of the subnet the nodes are in.',
    { choices: ["subnet", "full"] },
  ),
  f(
    "overlay-encap",
    "string",
    "ipip",
    "router",
    'Valid encapsulation types are "ipip" or "fou" (upstream), or "vxlan" (this agent).',
    { choices: ["ipip", "fou", "vxlan"] },
  ),
  f(
    "overlay-encap-port",
    "uint16",
    5555,
    "router",
    'Overlay tunnel encapsulation port (only used for "fou" encapsulation)',
  ),
  f(
    "enable-cni",
    "bool",
    true,
    "router",
    "Enable CNI plugin. Disable if you want to use kube-router features alongside another CNI plugin.",
  ),
  f(
    "cni-conf-file",
    "string",
    "/etc/cni/net.d/10-kuberouter.conf",
    "router",
    "The CNI config file the router writes (and `cleanup` removes, if the router created it). Upstream reads only the KUBE_ROUTER_CNI_CONF_FILE environment variable.",
    { ours: true, env: "KUBE_ROUTER_CNI_CONF_FILE" },
  ),
  f(
    "auto-mtu",
    "bool",
    true,
    "router",
    "Auto detect and set the largest possible MTU for kube-bridge and pod interfaces (also accounts for IPIP overlay network when enabled).",
  ),
  f(
    "enable-pod-egress",
    "bool",
    true,
    "router",
    "SNAT traffic from Pods to destinations outside the cluster.",
  ),
  f(
    "disable-source-dest-check",
    "bool",
    true,
    "router",
    "Disable the source-dest-check attribute for AWS EC2 instances. When this option is false, it must be set some other way.",
  ),
  // loadbalancer allocator
  f(
    "loadbalancer-default-class",
    "bool",
    true,
    "loadbalancer",
    "Handle loadbalancer services without a class",
  ),
  f(
    "loadbalancer-sync-period",
    "duration",
    1 * MIN,
    "loadbalancer",
    "The delay between checking for missed services (e.g. '5s', '1m'). Must be greater than 0.",
  ),
  // this agent's own
  f(
    "manifests",
    "string",
    "",
    "agent",
    "Read cluster objects from this YAML file or directory (re-read on change) instead of the Kubernetes API.",
    { ours: true },
  ),
  f(
    "dry-run",
    "bool",
    false,
    "agent",
    "Print the kernel transactions each controller would run instead of running them.",
    { ours: true },
  ),
  f("log-format", "string", "text", "agent", "Log line format: text (klog-like) or json.", {
    ours: true,
    choices: ["text", "json"],
  }),
] as const;

type Flags = typeof FLAGS[number];

/** "peer-router-ips" → "peerRouterIps". */
export type CamelCase<S extends string> = S extends `${infer H}-${infer T}`
  ? `${H}${Capitalize<CamelCase<T>>}`
  : S;

export function camelCase(name: string): string {
  return name.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** Every flag's parsed value, by camelCase name. */
export type AgentOptions = { [F in Flags as CamelCase<F["name"]>]: TypeOf<F["type"]> };

/** The defaults, as an `AgentOptions` (fresh copy each call: slices are mutable). */
export function defaultOptions(): AgentOptions {
  const o: Record<string, unknown> = {};
  for (const spec of FLAGS) o[camelCase(spec.name)] = structuredClone(spec.default);
  return o as AgentOptions;
}

export const FLAG_BY_NAME: ReadonlyMap<string, FlagSpec> = new Map(FLAGS.map((s) => [s.name, s]));
export const FLAG_BY_SHORTHAND: ReadonlyMap<string, FlagSpec> = new Map(
  FLAGS.filter((s) => "shorthand" in s && s.shorthand).map((s) => [(s as FlagSpec).shorthand!, s]),
);
