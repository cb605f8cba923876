/**
 * Typed IPVS state as `ipvsadm -Sn` prints it and `ipvsadm -R` reads it.
 *
 * @module
 */

export type IpvsFamily = 4 | 6;
export type IpvsProtocol = "tcp" | "udp" | "sctp";
/** ipvsadm's packet-forwarding methods: -m masquerading, -i ipip tunnel, -g gatewaying (direct routing). */
export type IpvsForward = "masq" | "tunnel" | "route";

/** A virtual service: address/protocol/port, or a firewall mark (then `protocol` and `address` are unset). */
export interface IpvsService {
  family: IpvsFamily;
  protocol?: IpvsProtocol;
  address?: string;
  port: number;
  fwmark: number;
  scheduler: string;
  /** Persistence timeout in seconds; undefined when the service is not persistent. */
  persistence?: number;
  /** Persistence netmask as printed (-M): dotted quad for v4, prefix length for v6; undefined = host. */
  netmask?: string;
  /** Persistence engine (--pe), e.g. "sip". */
  pe?: string;
  /** Scheduler flag bits 1..3 (IP_VS_SVC_F_SCHED1..3), sorted. */
  schedFlags: number[];
  /** One-packet scheduling (--ops). */
  ops: boolean;
}

/** A real server of a virtual service. */
export interface IpvsDestination {
  address: string;
  port: number;
  forward: IpvsForward;
  weight: number;
  /** Upper/lower connection thresholds (-x/-y), 0 = unset. */
  upperThreshold: number;
  lowerThreshold: number;
  /** Tunnel type for forward=tunnel (ipvsadm ≥1.30 prints it when not ipip). */
  tunType?: "ipip" | "gue" | "gre";
  tunPort?: number;
}

/** One virtual service with its real servers keyed by "ip:port" ("[v6]:port"). */
export interface IpvsEntry {
  service: IpvsService;
  destinations: Map<string, IpvsDestination>;
}

/** The whole table, keyed by `ipvsServiceKey`. */
export type IpvsTable = Map<string, IpvsEntry>;

/** Global connection timeouts in seconds (`ipvsadm --set tcp tcpfin udp`); 0 = unchanged. */
export interface IpvsTimeouts {
  tcp: number;
  tcpfin: number;
  udp: number;
}

/** "tcp/10.96.0.1:80", "udp/[2001:db8::1]:53", "fwm/4242/v4": the same keys as the proxy plan. */
export function ipvsServiceKey(
  s: Pick<IpvsService, "family" | "protocol" | "address" | "port" | "fwmark">,
): string {
  if (s.fwmark) return `fwm/${s.fwmark}/v${s.family}`;
  return `${s.protocol}/${addrPort(s.address ?? "", s.port)}`;
}

/** "10.0.0.1:80" or "[2001:db8::1]:80", as ipvsadm prints addresses. */
export function addrPort(address: string, port: number): string {
  return address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`;
}
