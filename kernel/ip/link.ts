/**
 * Links the router creates (kube-bridge, the VXLAN overlay device, IPIP/FoU tunnels, veths in
 * tests): `ip -batch` lines and a parser for `ip -j -d link show`.
 *
 * IPIP and FoU cannot be created on this project's CI kernel (no ipip/fou support); their lines
 * are checked against iproute2's documented syntax by golden tests only.
 *
 * @module
 */

/** A link as `ip -j -d link show` reports it, reduced to what we compare. */
export interface LinkInfo {
  name: string;
  ifindex: number;
  kind: string;
  mtu: number;
  up: boolean;
  address: string;
  /** The link's alias (`ip link set dev X alias …`), "" when none. */
  alias: string;
  /** The bridge (or bond) this link is a port of; absent when none. */
  master?: string;
  /** vxlan: VNI, local, port, learning; ipip: remote/local. */
  data: Record<string, unknown>;
}

interface JsonLink {
  ifindex: number;
  ifname: string;
  flags?: string[];
  mtu: number;
  address?: string;
  operstate?: string;
  ifalias?: string;
  master?: string;
  linkinfo?: { info_kind?: string; info_data?: Record<string, unknown> };
}

/** Parses `ip -j -d link show [dev X]`. */
export function parseLinks(json: string): LinkInfo[] {
  const text = json.trim();
  if (text === "") return [];
  return (JSON.parse(text) as JsonLink[]).map((l) => ({
    name: l.ifname.replace(/@.*$/, ""),
    ifindex: l.ifindex,
    kind: l.linkinfo?.info_kind ?? "",
    mtu: l.mtu,
    up: l.flags?.includes("UP") ?? false,
    address: l.address ?? "",
    alias: l.ifalias ?? "",
    ...(l.master ? { master: l.master } : {}),
    data: l.linkinfo?.info_data ?? {},
  }));
}

/** `ip -j -d link show` argv. */
export function listLinksArgv(): string[] {
  return ["ip", "-j", "-d", "link", "show"];
}

export function renderBridgeAdd(name: string, mtu?: number): string {
  return `link add name ${name}${mtu ? ` mtu ${mtu}` : ""} type bridge`;
}

export function renderLinkUp(name: string, mtu?: number): string {
  return `link set dev ${name}${mtu ? ` mtu ${mtu}` : ""} up`;
}

/** Sets (or, with "", clears) a link's alias; the alias must not contain blanks. */
export function renderLinkAlias(name: string, alias: string): string {
  if (/\s|#/.test(alias)) throw new RangeError(`link alias ${JSON.stringify(alias)} contains a blank or '#'`);
  return `link set dev ${name} alias ${alias === "" ? '""' : alias}`;
}

/** Sets a link's MTU (and, when `up` is given, its state) without other changes. */
export function renderLinkSet(name: string, s: { mtu?: number; up?: boolean }): string {
  return `link set dev ${name}${s.mtu ? ` mtu ${s.mtu}` : ""}${
    s.up === undefined ? "" : s.up ? " up" : " down"
  }`;
}

export function renderLinkDel(name: string): string {
  return `link del dev ${name}`;
}

/** Parameters of the overlay's single VXLAN device (see controllers/router/README.md). */
export interface VxlanSpec {
  name: string;
  vni: number;
  port: number;
  local: string;
  /** Underlay device. */
  dev?: string;
  mtu?: number;
  /** Fixed MAC, derived from the node IP so peers can program static neighbours. */
  address: string;
}

/** `link add` for a VXLAN device without learning: every neighbour and FDB entry is static. */
export function renderVxlanAdd(v: VxlanSpec): string {
  return `link add name ${v.name} address ${v.address}${
    v.mtu ? ` mtu ${v.mtu}` : ""
  } type vxlan id ${v.vni}` +
    ` local ${v.local}${v.dev ? ` dev ${v.dev}` : ""} dstport ${v.port} nolearning`;
}

/** Whether an existing vxlan link matches the spec (else it is recreated). */
export function vxlanMatches(l: LinkInfo, v: VxlanSpec): boolean {
  return l.kind === "vxlan" && l.data.id === v.vni && l.data.local === v.local && l.data.port === v.port &&
    l.address.toLowerCase() === v.address.toLowerCase();
}

/** Tunnel to one remote node (upstream's IPIP/FoU overlay). Rendered only; not creatable here. */
export interface TunnelSpec {
  name: string;
  remote: string;
  local: string;
  encap: "ipip" | "fou";
  /** FoU (GUE) destination port. */
  encapPort: number;
}

/**
 * Upstream's tunnel line: `ip [-6] link add name tun-… type ipip|ip6tnl remote R local L ttl 225
 * [encap gue encap-sport auto encap-dport P] mode ipip|ip6ip6`. For IPv4 ipip, iproute2 has no
 * `mode` keyword on the ipip kind, so it is only emitted for ip6tnl.
 */
export function renderTunnelAdd(t: TunnelSpec): string {
  const v6 = t.remote.includes(":");
  const kind = v6 ? "ip6tnl" : "ipip";
  let s = `link add name ${t.name} type ${kind} remote ${t.remote} local ${t.local} ttl 225`;
  if (t.encap === "fou") s += ` encap gue encap-sport auto encap-dport ${t.encapPort}`;
  if (v6) s += " mode ip6ip6";
  return s;
}

/** `ip fou add port P gue` (upstream's FoU receive port). Rendered only; not creatable here. */
export function renderFouAdd(port: number, v6: boolean): string {
  return `fou add port ${port} gue${v6 ? " -6" : ""}`;
}

/** veth pair, for tests and the lab. */
export function renderVethAdd(name: string, peer: string, peerNetns?: string): string {
  return `link add name ${name} type veth peer name ${peer}${peerNetns ? ` netns ${peerNetns}` : ""}`;
}
