/**
 * Which BGP peers this node has (pure): the iBGP mesh or route-reflector topology between nodes,
 * and external peers from the `--peer-router-*` flags or the node's annotations.
 *
 * @module
 */
import { parse as parseYaml } from "yaml";
import { AFI, type AfiSafi, canonicalAddr, SAFI } from "../../bgp/mod.ts";
import { isIP, parseIp, SLOPPY } from "../../net/ip.ts";
import type { AgentOptions } from "../../options/mod.ts";
import {
  ANN,
  type Families,
  isReservedAsn,
  parseAsn,
  type PlanProblem,
  type RoutingNode,
} from "./identity.ts";

export type RouterOptions = Pick<
  AgentOptions,
  | "enableIpv4"
  | "enableIpv6"
  | "clusterAsn"
  | "nodesFullMesh"
  | "enableIbgp"
  | "peerRouterIps"
  | "peerRouterAsns"
  | "peerRouterPorts"
  | "peerRouterPasswords"
  | "peerRouterMultihopTtl"
  | "bgpPort"
  | "bgpHoldtime"
  | "bgpGracefulRestart"
  | "bgpGracefulRestartTime"
  | "bgpGracefulRestartDeferralTime"
  | "routerId"
  | "overrideNexthop"
  | "enableBfd"
  | "bfdPort"
  | "bfdDetectionMultiplier"
  | "bfdDesiredMinTxInterval"
  | "bfdRequiredMinRxInterval"
  | "advertiseClusterIp"
  | "advertiseExternalIp"
  | "advertiseLoadbalancerIp"
  | "advertisePodCidr"
>;

/** A peer as the plan wants it; structurally a `PeerConfig` of `bgp/mod.ts` plus `kind`. */
export interface PlannedPeer {
  kind: "node" | "external";
  /** Node name (kind "node") or "flag"/"node/<name> annotation" (kind "external"). */
  origin: string;
  address: string;
  asn: number;
  port: number;
  localAddress?: string;
  password?: string;
  holdTime?: number;
  /** Seconds before retrying a failed connection (first step of the speaker's back-off). */
  connectRetry?: number;
  multihopTtl?: number;
  families: AfiSafi[];
  routeReflectorClient?: boolean;
  gracefulRestart?: boolean;
  bfd?: {
    enabled: boolean;
    port?: number;
    desiredMinTxMs?: number;
    requiredMinRxMs?: number;
    detectMultiplier?: number;
  };
  description?: string;
}

const V4: AfiSafi = { afi: AFI.IPv4, safi: SAFI.Unicast };
const V6: AfiSafi = { afi: AFI.IPv6, safi: SAFI.Unicast };

/** Address families carried on a session: every enabled family the local node routes (MP-BGP over one session). */
function familiesFor(local: RoutingNode, fam: Families): AfiSafi[] {
  const out: AfiSafi[] = [];
  if (fam.v4 && (local.ipv4 || local.podCIDRs.some((c) => !c.includes(":")))) out.push(V4);
  if (fam.v6 && (local.ipv6 || local.podCIDRs.some((c) => c.includes(":")))) out.push(V6);
  return out.length > 0 ? out : [V4];
}

/** Cluster id of a route-reflector annotation: a uint32 or an IPv4 address (upstream accepts both). */
export function parseClusterId(s: string): string | null {
  const t = s.trim();
  if (/^\d+$/.test(t)) {
    const v = Number(t);
    if (v > 0xffffffff) return null;
    return [v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255].join(".");
  }
  const b = parseIp(t, SLOPPY);
  return b && b.length === 4 ? t : null;
}

/** The local node's ASN: the cluster ASN in full mesh, else its `node.asn` annotation. */
export function localAsn(
  local: RoutingNode,
  o: RouterOptions,
  problems: PlanProblem[],
): number | null {
  if (o.nodesFullMesh) return o.clusterAsn === 0 ? 64512 : o.clusterAsn;
  const raw = local.annotations[ANN.asn];
  if (raw === undefined) {
    problems.push({
      object: `node/${local.name}`,
      field: `annotation ${ANN.asn}`,
      message: "missing; required when --nodes-full-mesh=false",
    });
    return null;
  }
  const asn = parseAsn(raw);
  if (asn === null || asn === 0) {
    problems.push({
      object: `node/${local.name}`,
      field: `annotation ${ANN.asn}`,
      message: `${JSON.stringify(raw)} is not an ASN (expected 1-4294967295)`,
    });
    return null;
  }
  return asn;
}

/** iBGP peers among the cluster's nodes. */
export function nodePeers(
  local: RoutingNode,
  asn: number,
  nodes: ReadonlyMap<string, RoutingNode>,
  o: RouterOptions,
  fam: Families,
  problems: PlanProblem[],
): { peers: PlannedPeer[]; clusterId?: string; rrServer: boolean } {
  if (!o.enableIbgp) return { peers: [], rrServer: false };
  const rrServerRaw = local.annotations[ANN.rrServer];
  const rrClientRaw = local.annotations[ANN.rrClient];
  let clusterId: string | undefined;
  if (rrServerRaw !== undefined) {
    const id = parseClusterId(rrServerRaw);
    if (id === null) {
      problems.push({
        object: `node/${local.name}`,
        field: `annotation ${ANN.rrServer}`,
        message: `${JSON.stringify(rrServerRaw)} is not a cluster id (expected a uint32 or an IPv4 address)`,
      });
    } else clusterId = id;
  }
  const rrServer = clusterId !== undefined;
  // rr.client has rr.server's format (upstream refuses another): a bad one makes no client.
  const rrClientOk = rrClientRaw === undefined || parseClusterId(rrClientRaw) !== null;
  if (!rrClientOk) {
    problems.push({
      object: `node/${local.name}`,
      field: `annotation ${ANN.rrClient}`,
      message: `${
        JSON.stringify(rrClientRaw)
      } is not a cluster id (expected a uint32 or an IPv4 address); not a route-reflector client`,
    });
  }
  const rrClient = rrClientRaw !== undefined && rrClientOk && !rrServer;
  const families = familiesFor(local, fam);
  const peers: PlannedPeer[] = [];
  for (const n of nodes.values()) {
    if (n.name === local.name) continue;
    // Session over IPv4 when both ends have it, else IPv6 (dual-stack rides one session with MP-BGP).
    const [address, localAddress] = local.ipv4 && n.ipv4
      ? [n.ipv4, local.ipv4]
      : local.ipv6 && n.ipv6
      ? [n.ipv6, local.ipv6]
      : [undefined, undefined];
    if (!address) continue;
    if (!o.nodesFullMesh) {
      const theirs = n.annotations[ANN.asn] !== undefined ? parseAsn(n.annotations[ANN.asn]) : null;
      if (theirs !== asn) continue;
    }
    const peerIsServer = n.annotations[ANN.rrServer] !== undefined &&
      parseClusterId(n.annotations[ANN.rrServer]) !== null;
    const peerIsClient = n.annotations[ANN.rrClient] !== undefined && !peerIsServer;
    if (rrClient && !peerIsServer) continue;
    const p: PlannedPeer = {
      kind: "node",
      origin: n.name,
      address,
      asn,
      port: o.bgpPort,
      localAddress,
      families,
      // Nodes start in any order: retry quickly so the mesh forms within seconds of the last
      // node starting (the speaker backs off exponentially from here).
      connectRetry: 1,
      description: `node ${n.name}`,
    };
    if (rrServer && peerIsClient) p.routeReflectorClient = true;
    if (o.bgpGracefulRestart) p.gracefulRestart = true;
    peers.push(p);
  }
  peers.sort((a, b) => a.address.localeCompare(b.address));
  return { peers, clusterId, rrServer };
}

function decodePassword(b64: string, object: string, field: string, problems: PlanProblem[]): string | null {
  if (b64 === "") return "";
  try {
    const bin = atob(b64.trim());
    return new TextDecoder("utf-8", { fatal: true }).decode(Uint8Array.from(bin, (c) => c.charCodeAt(0)));
  } catch {
    problems.push({
      object,
      field,
      message: "password is not valid base64 (passwords are given base64-encoded)",
    });
    return null;
  }
}

interface RawPeer {
  ip: string;
  asn: string | number;
  password?: string;
  port?: string | number;
  localIp?: string;
  bfd?: PlannedPeer["bfd"];
}

function buildExternal(
  raw: RawPeer,
  idx: number,
  object: string,
  field: string,
  local: RoutingNode,
  o: RouterOptions,
  fam: Families,
  problems: PlanProblem[],
  /** The field a part comes from, when the parts come from separate lists (the deprecated `peer.*` keys). */
  partField?: (part: "asn" | "port" | "localIp" | "password") => string,
): PlannedPeer | null {
  const where = `${field}[${idx}]`;
  const at = (part: "asn" | "port" | "localIp" | "password") => partField?.(part) ?? where;
  const ipBytes = parseIp(String(raw.ip).trim(), SLOPPY);
  if (!ipBytes) {
    problems.push({
      object,
      field: where,
      message: `peer IP ${JSON.stringify(raw.ip)} is not an IPv4/IPv6 address`,
    });
    return null;
  }
  const asn = typeof raw.asn === "number" ? raw.asn : parseAsn(String(raw.asn));
  if (asn === null || !Number.isInteger(asn) || asn > 0xffffffff || isReservedAsn(asn)) {
    problems.push({
      object,
      field: at("asn"),
      message: `peer ASN ${
        JSON.stringify(raw.asn)
      } is malformed or reserved (expected 1-4294967294, not 23456, 64496-64511, 65535, 65536-65551)`,
    });
    return null;
  }
  const address = canonicalAddr(String(raw.ip).trim());
  const v6 = address.includes(":");
  if ((v6 && !fam.v6) || (!v6 && !fam.v4)) {
    problems.push({ object, field: where, message: `peer ${address} is of a disabled address family` });
    return null;
  }
  let port = 179;
  if (raw.port !== undefined && raw.port !== "" && raw.port !== 0) {
    port = Number(raw.port);
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      problems.push({
        object,
        field: at("port"),
        message: `port ${JSON.stringify(raw.port)} is not 1-65535`,
      });
      return null;
    }
  }
  const p: PlannedPeer = {
    kind: "external",
    origin: object,
    address,
    asn,
    port,
    families: familiesFor(local, fam),
    holdTime: Math.round(o.bgpHoldtime / 1000),
    description: `external ${address} (${object})`,
  };
  const localAddress = raw.localIp?.trim() || (v6 ? local.ipv6 : local.ipv4);
  if (localAddress) {
    if (!isIP(localAddress, SLOPPY)) {
      problems.push({
        object,
        field: at("localIp"),
        message: `local IP ${JSON.stringify(raw.localIp)} is not an IP address`,
      });
      return null;
    }
    p.localAddress = localAddress;
  }
  if (raw.password !== undefined && raw.password !== "") {
    const pw = decodePassword(raw.password, object, at("password"), problems);
    if (pw === null) return null;
    if (pw !== "") p.password = pw;
  }
  if (o.peerRouterMultihopTtl >= 2) p.multihopTtl = o.peerRouterMultihopTtl;
  if (o.bgpGracefulRestart) p.gracefulRestart = true;
  if (raw.bfd) p.bfd = raw.bfd;
  return p;
}

/**
 * External peers: `--peer-router-ips` (with asns/ports/passwords) when given, else the node's
 * `kube-router.io/peers` YAML, else its deprecated `peer.*` annotations. A list-length mismatch
 * drops that whole source (it is ambiguous which peer a value belongs to); a bad entry drops
 * only that peer.
 */
export function externalPeers(
  local: RoutingNode,
  o: RouterOptions,
  fam: Families,
  problems: PlanProblem[],
  passwordsFileText?: string,
): PlannedPeer[] {
  const out: PlannedPeer[] = [];
  if (o.peerRouterIps.length > 0) {
    const ips = o.peerRouterIps;
    const obj = "flag";
    if (o.peerRouterAsns.length !== ips.length) {
      problems.push({
        object: obj,
        field: "--peer-router-asns",
        message:
          `${o.peerRouterAsns.length} ASNs for ${ips.length} peer IPs; one ASN per peer is required, global peers skipped`,
      });
      return [];
    }
    if (o.peerRouterPorts.length !== 0 && o.peerRouterPorts.length !== ips.length) {
      problems.push({
        object: obj,
        field: "--peer-router-ports",
        message:
          `${o.peerRouterPorts.length} ports for ${ips.length} peer IPs; give none or one per peer, global peers skipped`,
      });
      return [];
    }
    let passwords = o.peerRouterPasswords;
    let pwField = "--peer-router-passwords";
    if (passwords.length === 0 && passwordsFileText !== undefined) {
      passwords = passwordsFileText.trim() === ""
        ? []
        : passwordsFileText.trim().split(",").map((s) => s.trim());
      pwField = "--peer-router-passwords-file";
    }
    if (passwords.length !== 0 && passwords.length !== ips.length) {
      problems.push({
        object: obj,
        field: pwField,
        message:
          `${passwords.length} passwords for ${ips.length} peer IPs; give none or one per peer (blank allowed), global peers skipped`,
      });
      return [];
    }
    const bfd = o.enableBfd
      ? {
        enabled: true,
        port: o.bfdPort,
        desiredMinTxMs: o.bfdDesiredMinTxInterval,
        requiredMinRxMs: o.bfdRequiredMinRxInterval,
        detectMultiplier: o.bfdDetectionMultiplier,
      }
      : undefined;
    ips.forEach((ip, i) => {
      const p = buildExternal(
        { ip, asn: o.peerRouterAsns[i], port: o.peerRouterPorts[i], password: passwords[i], bfd },
        i,
        obj,
        "--peer-router-ips",
        local,
        o,
        fam,
        problems,
      );
      if (p) out.push(p);
    });
    return out;
  }
  const object = `node/${local.name}`;
  const yamlText = local.annotations[ANN.peers];
  if (yamlText !== undefined && yamlText.trim() !== "") {
    let list: unknown;
    try {
      list = parseYaml(yamlText);
    } catch (e) {
      problems.push({
        object,
        field: `annotation ${ANN.peers}`,
        message: `not valid YAML (${(e as Error).message.split("\n")[0]})`,
      });
      return [];
    }
    if (!Array.isArray(list)) {
      problems.push({ object, field: `annotation ${ANN.peers}`, message: "must be a YAML list of peers" });
      return [];
    }
    list.forEach((raw: Record<string, unknown>, i) => {
      if (!raw || typeof raw !== "object" || raw.remoteip === undefined || raw.remoteasn === undefined) {
        problems.push({
          object,
          field: `annotation ${ANN.peers}[${i}]`,
          message: "remoteip and remoteasn are required",
        });
        return;
      }
      const b = raw.bfd as Record<string, unknown> | undefined;
      const p = buildExternal(
        {
          ip: String(raw.remoteip),
          asn: raw.remoteasn as number | string,
          password: raw.password === undefined ? undefined : String(raw.password),
          port: raw.port as number | undefined,
          localIp: raw.localip === undefined ? undefined : String(raw.localip),
          bfd: b && b.enabled
            ? {
              enabled: true,
              port: b.port as number | undefined,
              desiredMinTxMs: b.desired_min_tx_interval as number | undefined,
              requiredMinRxMs: b.required_min_rx_interval as number | undefined,
              detectMultiplier: b.detection_multiplier as number | undefined,
            }
            : undefined,
        },
        i,
        object,
        `annotation ${ANN.peers}`,
        local,
        o,
        fam,
        problems,
      );
      if (p) out.push(p);
    });
    return out;
  }
  const ipsRaw = local.annotations[ANN.peerIps];
  if (ipsRaw === undefined || ipsRaw.trim() === "") return [];
  const split = (k: string) => local.annotations[k] === undefined ? [] : local.annotations[k].split(",");
  const ips = split(ANN.peerIps).map((s) => s.trim());
  const asns = split(ANN.peerAsns).map((s) => s.trim());
  const pws = split(ANN.peerPasswords);
  const ports = split(ANN.peerPorts).map((s) => s.trim());
  const locals = split(ANN.peerLocalIps).map((s) => s.trim());
  for (
    const [k, l, req] of [[ANN.peerAsns, asns, true], [ANN.peerPasswords, pws, false], [
      ANN.peerPorts,
      ports,
      false,
    ], [
      ANN.peerLocalIps,
      locals,
      false,
    ]] as const
  ) {
    if ((req || l.length > 0) && l.length !== ips.length) {
      problems.push({
        object,
        field: `annotation ${k}`,
        message:
          `${l.length} entries for ${ips.length} peer IPs in ${ANN.peerIps}; lists must be the same length, annotation peers skipped`,
      });
      return [];
    }
  }
  ips.forEach((ip, i) => {
    const p = buildExternal(
      { ip, asn: asns[i], password: pws[i], port: ports[i], localIp: locals[i] },
      i,
      object,
      `annotation ${ANN.peerIps}`,
      local,
      o,
      fam,
      problems,
      (part) => {
        const key = {
          asn: ANN.peerAsns,
          port: ANN.peerPorts,
          localIp: ANN.peerLocalIps,
          password: ANN.peerPasswords,
        }[part];
        return `annotation ${key}[${i}]`;
      },
    );
    if (p) out.push(p);
  });
  return out;
}
