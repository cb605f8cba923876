/**
 * Host state the router owns apart from routes: kube-bridge (created if missing, up, MTU, the
 * gateway address of each pod CIDR), the VXLAN overlay device, and kernel parameters.
 *
 * An address on kube-bridge is ours when it is the first host of its own prefix (the pod
 * CIDR's gateway, what we add); iproute2 6.1 cannot tag addresses with a protocol.
 *
 * @module
 */
import { AFI } from "../../bgp/codec/types.ts";
import { addrBytes, bytesToAddr, parsePrefix } from "../../bgp/prefix.ts";
import type { Runner } from "../../kernel/exec.ts";
import {
  ipBatch,
  ipRead,
  type LinkAddress,
  type LinkInfo,
  listLinksArgv,
  parseLinkAddresses,
  parseLinks,
  renderAddrDel,
  renderAddrReplace,
  renderBridgeAdd,
  renderLinkDel,
  renderLinkUp,
  renderVxlanAdd,
  vtepMac,
  vxlanMatches,
  type VxlanSpec,
} from "../../kernel/ip/mod.ts";
import { VXLAN_DEV, VXLAN_PORT, VXLAN_VNI } from "./routes.ts";

export const BRIDGE = "kube-bridge";

/** The gateway address of a pod CIDR: its first host, with the CIDR's length ("10.244.1.1/24"). */
export function gatewayOf(cidr: string): string | null {
  const p = parsePrefix(cidr);
  if (!p) return null;
  const b = addrBytes(p.addr)!;
  for (let i = b.length - 1; i >= 0; i--) {
    if (b[i] < 255) {
      b[i]++;
      break;
    }
    b[i] = 0;
  }
  return `${bytesToAddr(b)}/${p.len}`;
}

/** Whether an address on kube-bridge is a pod-CIDR gateway address (ours). */
export function isGatewayAddress(cidr: string): boolean {
  const p = parsePrefix(cidr);
  if (!p || (p.afi === AFI.IPv4 && p.len >= 31) || (p.afi === AFI.IPv6 && p.len >= 127)) return false;
  const gw = gatewayOf(cidr)!.split("/")[0];
  return addrBytes(cidr.split("/")[0])!.join(".") === addrBytes(gw)!.join(".");
}

/** Everything the host reads once per sync. */
export interface HostFacts {
  links: LinkInfo[];
  /** Global addresses of every link. */
  addresses: LinkAddress[];
}

export async function readHostFacts(runner: Runner): Promise<HostFacts> {
  const links = parseLinks(await ipRead(runner, listLinksArgv()));
  const addresses = parseLinkAddresses(await ipRead(runner, ["ip", "-j", "addr", "show"]));
  return { links, addresses };
}

/** Subnets of the node's own interfaces (excluding kube-bridge and our overlay devices). */
export function localSubnets(facts: HostFacts, exclude: (dev: string) => boolean): string[] {
  const out = new Set<string>();
  for (const a of facts.addresses) {
    if (exclude(a.dev)) continue;
    const p = parsePrefix(a.cidr);
    if (p) out.add(`${p.addr}/${p.len}`);
  }
  return [...out].sort();
}

/** The link carrying an address (the node's underlay interface). */
export function linkOfAddress(facts: HostFacts, ip: string): LinkInfo | undefined {
  const a = facts.addresses.find((x) => x.cidr.split("/")[0] === ip);
  return a ? facts.links.find((l) => l.name === a.dev) : undefined;
}

export interface BridgePlan {
  mtu?: number;
  gateways: string[];
}

/** `ip -batch` lines to bring kube-bridge to the plan (empty when it already is). Pure. */
export function bridgeLines(facts: HostFacts, p: BridgePlan): string[] {
  const lines: string[] = [];
  const br = facts.links.find((l) => l.name === BRIDGE);
  if (!br) lines.push(renderBridgeAdd(BRIDGE, p.mtu));
  if (!br || !br.up || (p.mtu !== undefined && br.mtu !== p.mtu)) lines.push(renderLinkUp(BRIDGE, p.mtu));
  const have = facts.addresses.filter((a) => a.dev === BRIDGE);
  const key = (c: string) => `${addrBytes(c.split("/")[0])!.join(".")}/${c.split("/")[1]}`;
  const haveKeys = new Set(have.map((a) => key(a.cidr)));
  const wantKeys = new Set(p.gateways.map(key));
  for (const g of p.gateways) {
    if (!haveKeys.has(key(g))) lines.push(renderAddrReplace({ cidr: g, dev: BRIDGE }));
  }
  // Gateways of pod CIDRs this node no longer has (ours by the gateway pattern) are removed.
  for (const a of have) {
    if (isGatewayAddress(a.cidr) && !wantKeys.has(key(a.cidr))) lines.push(renderAddrDel(a));
  }
  return lines;
}

/** The VXLAN device spec for this node. */
export function vxlanSpec(nodeIp: string, mtu?: number, dev?: string): VxlanSpec {
  return {
    name: VXLAN_DEV,
    vni: VXLAN_VNI,
    port: VXLAN_PORT,
    local: nodeIp,
    dev,
    mtu,
    address: vtepMac(nodeIp),
  };
}

/** Lines creating/repairing the VXLAN device, or removing it when not wanted. Pure. */
export function vxlanLines(facts: HostFacts, spec: VxlanSpec | null): string[] {
  const cur = facts.links.find((l) => l.name === VXLAN_DEV);
  if (!spec) return cur ? [renderLinkDel(VXLAN_DEV)] : [];
  const lines: string[] = [];
  if (cur && !vxlanMatches(cur, spec)) lines.push(renderLinkDel(VXLAN_DEV));
  if (!cur || !vxlanMatches(cur, spec)) lines.push(renderVxlanAdd(spec));
  if (!cur || !vxlanMatches(cur, spec) || !cur.up || (spec.mtu !== undefined && cur.mtu !== spec.mtu)) {
    lines.push(renderLinkUp(VXLAN_DEV, spec.mtu));
  }
  return lines;
}

/** Applies bridge and overlay device lines in one `ip -batch`. */
export async function applyHost(runner: Runner, lines: string[]): Promise<void> {
  await ipBatch(runner, lines);
}
