/**
 * Host state the router owns apart from routes: kube-bridge (created if missing, up, MTU, the
 * gateway address of each pod CIDR), the VXLAN overlay device, and kernel parameters.
 *
 * An address on kube-bridge is ours when it is the first host of its own prefix (the pod
 * CIDR's gateway, what we add); iproute2 6.1 cannot tag addresses with a protocol.
 *
 * @module
 */
import { AFI, parsePrefix, SLOPPY_PREFIX } from "../../bgp/mod.ts";
import { formatIp, parseIp, SLOPPY } from "../../net/ip.ts";
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
  renderLinkAlias,
  renderLinkDel,
  renderLinkSet,
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
  const p = parsePrefix(cidr, SLOPPY_PREFIX);
  if (!p) return null;
  const b = parseIp(p.addr, SLOPPY)!;
  for (let i = b.length - 1; i >= 0; i--) {
    if (b[i] < 255) {
      b[i]++;
      break;
    }
    b[i] = 0;
  }
  return `${formatIp(b)}/${p.len}`;
}

/** Whether an address on kube-bridge is a pod-CIDR gateway address (ours). */
export function isGatewayAddress(cidr: string): boolean {
  const p = parsePrefix(cidr, SLOPPY_PREFIX);
  if (!p || (p.afi === AFI.IPv4 && p.len >= 31) || (p.afi === AFI.IPv6 && p.len >= 127)) return false;
  const gw = gatewayOf(cidr)!.split("/")[0];
  return parseIp(cidr.split("/")[0], SLOPPY)!.join(".") === parseIp(gw, SLOPPY)!.join(".");
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
    const p = parsePrefix(a.cidr, SLOPPY_PREFIX);
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
  /** The CNI config path the router writes (recorded so cleanup removes that file, not another). */
  cniPath?: string;
}

/**
 * What the agent did to kube-bridge, kept on the bridge itself (its alias) so that `kube-router
 * cleanup` — often a different container, or a process started after a reboot of the agent —
 * can undo exactly that: a bridge we `created` is removed; a bridge we `found` (made by the CNI
 * plugin, pods attached) gets its MTU and up state back and loses only the addresses we `added`.
 * The record is written in the same `ip -batch` before any change, so it never lags the kernel.
 */
export interface BridgeRecord {
  origin: "found" | "created";
  /** Found: the MTU and state before our first change. */
  mtu?: number;
  up?: boolean;
  /** Addresses we added (canonical CIDR text). */
  added: string[];
  /** The CNI config path the router was told to write (when it fits the alias). */
  cni?: string;
}

const RECORD_PREFIX = "kube-router:v1;";
/** IFALIASZ - 1: the kernel refuses longer aliases. */
const ALIAS_MAX = 255;

export function formatBridgeRecord(r: BridgeRecord): string {
  const parts = [`origin=${r.origin}`];
  if (r.mtu !== undefined) parts.push(`mtu=${r.mtu}`);
  if (r.up !== undefined) parts.push(`up=${r.up ? 1 : 0}`);
  parts.push(`added=${r.added.join(",")}`);
  if (r.cni !== undefined && /^\/[^\s#;]*$/.test(r.cni)) parts.push(`cni=${r.cni}`);
  let text = RECORD_PREFIX + parts.join(";");
  // The path is a convenience (cleanup falls back to --cni-conf-file); the rest is not.
  if (text.length > ALIAS_MAX && r.cni !== undefined) text = formatBridgeRecord({ ...r, cni: undefined });
  if (text.length > ALIAS_MAX) {
    throw new RangeError(`kube-bridge record longer than ${ALIAS_MAX} bytes: ${text}`);
  }
  return text;
}

/** The record in a link alias; null when the alias is not ours. */
export function parseBridgeRecord(alias: string): BridgeRecord | null {
  if (!alias.startsWith(RECORD_PREFIX)) return null;
  const kv = new Map(
    alias.slice(RECORD_PREFIX.length).split(";").map((p) => {
      const i = p.indexOf("=");
      return [p.slice(0, i), p.slice(i + 1)] as [string, string];
    }),
  );
  const origin = kv.get("origin");
  if (origin !== "found" && origin !== "created") return null;
  const mtu = kv.has("mtu") ? Number(kv.get("mtu")) : undefined;
  return {
    origin,
    ...(mtu !== undefined && Number.isInteger(mtu) && mtu > 0 ? { mtu } : {}),
    ...(kv.has("up") ? { up: kv.get("up") === "1" } : {}),
    added: (kv.get("added") ?? "").split(",").filter((c) => parsePrefix(c, SLOPPY_PREFIX) !== null),
    ...(kv.get("cni")?.startsWith("/") ? { cni: kv.get("cni") } : {}),
  };
}

const addrKey = (c: string) => `${parseIp(c.split("/")[0], SLOPPY)!.join(".")}/${c.split("/")[1]}`;

/** `ip -batch` lines to bring kube-bridge to the plan (empty when it already is). Pure. */
export function bridgeLines(facts: HostFacts, p: BridgePlan): string[] {
  const lines: string[] = [];
  const br = facts.links.find((l) => l.name === BRIDGE);
  const prior = br ? parseBridgeRecord(br.alias) : null;
  const rec: BridgeRecord = prior
    ? { ...prior, added: [...prior.added] }
    : br
    ? { origin: "found", mtu: br.mtu, up: br.up, added: [] }
    : { origin: "created", added: [] };
  if (p.cniPath !== undefined) rec.cni = p.cniPath;
  if (!br) lines.push(renderBridgeAdd(BRIDGE, p.mtu));
  if (!br || !br.up || (p.mtu !== undefined && br.mtu !== p.mtu)) lines.push(renderLinkUp(BRIDGE, p.mtu));
  const have = facts.addresses.filter((a) => a.dev === BRIDGE);
  const haveKeys = new Set(have.map((a) => addrKey(a.cidr)));
  const wantKeys = new Set(p.gateways.map(addrKey));
  for (const g of p.gateways) {
    if (!haveKeys.has(addrKey(g))) {
      lines.push(renderAddrReplace({ cidr: g, dev: BRIDGE }));
      if (!rec.added.some((a) => addrKey(a) === addrKey(g))) rec.added.push(g);
    }
  }
  // Gateways of pod CIDRs this node no longer has are removed when we added them; an address
  // that was on a bridge we found (the CNI plugin's gateway for its pods) is never ours.
  for (const a of have) {
    const ours = rec.origin === "created" || rec.added.some((x) => addrKey(x) === addrKey(a.cidr));
    if (ours && isGatewayAddress(a.cidr) && !wantKeys.has(addrKey(a.cidr))) {
      lines.push(renderAddrDel(a));
      rec.added = rec.added.filter((x) => addrKey(x) !== addrKey(a.cidr));
    }
  }
  const record = formatBridgeRecord(rec);
  if (record !== br?.alias) {
    // The record goes first: a crash after it and before the changes leaves a record of
    // changes not made, which cleanup undoes harmlessly; the reverse would lose the original.
    lines.splice(br ? 0 : 1, 0, renderLinkAlias(BRIDGE, record));
  }
  return lines;
}

/**
 * `ip -batch` lines that undo what `bridgeLines` did, per the bridge's record (pure): a bridge
 * we created is deleted; one we found gets back its MTU and state and loses only our addresses;
 * one we found is deleted when, besides our addresses, it holds nothing but pod gateway addresses
 * (or nothing) and no port; one without our record when it holds only a pod gateway and no port
 * (the bridge plugin's, from our CNI config, its pods gone: a pod may start before the agent
 * first sees the node); else left alone. `note` says which, for the log.
 */
export function bridgeCleanupLines(facts: HostFacts): { lines: string[]; note: string; cni?: string } {
  const br = facts.links.find((l) => l.name === BRIDGE);
  if (!br) return { lines: [], note: "absent" };
  const rec = parseBridgeRecord(br.alias);
  const attached = facts.links.some((l) => l.master === BRIDGE);
  if (!rec) {
    // Made by the bridge plugin from kube-router's CNI config (the usual case: the plugin runs
    // before the router ever sees the bridge). With a pod attached it stays, gateway and all; with
    // none, nobody loses a gateway, and leaving it would keep its gateway route ahead of whatever
    // network the node gets next (upstream's cleanup deletes kube-bridge outright).
    // Anything else on it (an address that is not a pod gateway, a port) says someone else uses it.
    if (attached) {
      return { lines: [], note: "no kube-router record on it and pods attached: left as it is" };
    }
    if (!onlyPluginGateways(facts, [])) {
      return { lines: [], note: "no kube-router record on it and not a pod gateway: left as it is" };
    }
    return {
      lines: [renderLinkDel(BRIDGE)],
      note: "no kube-router record, only a pod gateway and no port attached: deleted",
    };
  }
  const cni = rec.cni !== undefined ? { cni: rec.cni } : {};
  if (rec.origin === "created") {
    return { lines: [renderLinkDel(BRIDGE)], note: "created by kube-router: deleted", ...cni };
  }
  // Found with the bridge plugin's gateway on it, or bare (a pod started before the agent did; the
  // plugin may not have addressed it yet), and now no pod left: nobody loses a gateway, and its
  // route would shadow the node's next network. Only an address that is no pod gateway keeps it.
  if (!attached && onlyPluginGateways(facts, rec.added, true)) {
    return {
      lines: [renderLinkDel(BRIDGE)],
      note: "found before kube-router with only a pod gateway, and no port attached now: deleted",
      ...cni,
    };
  }
  const lines: string[] = [];
  const have = new Set(facts.addresses.filter((a) => a.dev === BRIDGE).map((a) => addrKey(a.cidr)));
  for (const cidr of rec.added) {
    if (have.has(addrKey(cidr))) lines.push(renderAddrDel({ cidr, dev: BRIDGE }));
  }
  const mtu = rec.mtu !== undefined && rec.mtu !== br.mtu ? rec.mtu : undefined;
  const up = rec.up !== undefined && rec.up !== br.up ? rec.up : undefined;
  if (mtu !== undefined || up !== undefined) lines.push(renderLinkSet(BRIDGE, { mtu, up }));
  lines.push(renderLinkAlias(BRIDGE, ""));
  return { lines, note: `found before kube-router: restored (${lines.length - 1} changes undone)`, ...cni };
}

/**
 * Whether kube-bridge's addresses other than `ours` are all pod gateways (the bridge plugin's
 * doing; an operator's bridge has other addresses), and there is one unless `bareOk`.
 */
function onlyPluginGateways(facts: HostFacts, ours: string[], bareOk = false): boolean {
  const mine = new Set(ours.map(addrKey));
  const addrs = facts.addresses.filter((a) => a.dev === BRIDGE && !mine.has(addrKey(a.cidr)));
  return (bareOk || addrs.length > 0) && addrs.every((a) => isGatewayAddress(a.cidr));
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
