/**
 * Node identity for routing (pure): pod CIDRs (annotations win over the spec, as upstream), primary
 * IPs per family, the ASN, the router id, and the overlap check between nodes' pod CIDRs.
 *
 * @module
 */
import { sha256 } from "../../kernel/sha256.ts";
import { AFI, formatPrefix, parsePrefix, prefixContains, SLOPPY_PREFIX } from "../../bgp/mod.ts";
import { isIP, parseIp, SLOPPY } from "../../net/ip.ts";
import type { NodeInfo } from "../../watch/types.ts";

export const ANN = {
  podCidrs: "kube-router.io/pod-cidrs",
  podCidr: "kube-router.io/pod-cidr",
  asn: "kube-router.io/node.asn",
  rrServer: "kube-router.io/rr.server",
  rrClient: "kube-router.io/rr.client",
  peers: "kube-router.io/peers",
  peerIps: "kube-router.io/peer.ips",
  peerAsns: "kube-router.io/peer.asns",
  peerPasswords: "kube-router.io/peer.passwords",
  peerPorts: "kube-router.io/peer.ports",
  peerLocalIps: "kube-router.io/peer.localips",
  localAddresses: "kube-router.io/bgp-local-addresses",
  communities: "kube-router.io/node.bgp.communities",
  importReject: "kube-router.io/node.bgp.customimportreject",
  prependAs: "kube-router.io/path-prepend.as",
  prependRepeat: "kube-router.io/path-prepend.repeat-n",
} as const;

/** A problem found while planning: which object and field, and what is wrong. */
export interface PlanProblem {
  /** "node/node-2", "flag", "service/ns/name". */
  object: string;
  field: string;
  message: string;
}

export function problemText(p: PlanProblem): string {
  return `${p.object}: ${p.field}: ${p.message}`;
}

export interface Families {
  v4: boolean;
  v6: boolean;
}

/** What routing needs to know about one node. */
export interface RoutingNode {
  name: string;
  ipv4?: string;
  ipv6?: string;
  /** Canonical pod CIDRs of enabled families. */
  podCIDRs: string[];
  annotations: Record<string, string>;
}

function isV6(a: string): boolean {
  return a.includes(":");
}

/** The node's primary IP of a family: first InternalIP, else first ExternalIP (upstream's order). */
export function primaryIp(node: NodeInfo, family: 4 | 6): string | undefined {
  const pick = (l: string[]) => l.find((a) => isIP(a, SLOPPY) && isV6(a) === (family === 6));
  return pick(node.internalIPs) ?? pick(node.externalIPs);
}

/**
 * Pod CIDRs: `kube-router.io/pod-cidrs` (comma list) wins, then the deprecated
 * `kube-router.io/pod-cidr`, then `spec.podCIDRs`. Malformed entries are reported and dropped.
 */
export function podCidrsOf(node: NodeInfo, fam: Families, problems: PlanProblem[]): string[] {
  let source: string[];
  let field: string;
  if (node.annotations[ANN.podCidrs]) {
    source = node.annotations[ANN.podCidrs].split(",").map((s) => s.trim()).filter(Boolean);
    field = `annotation ${ANN.podCidrs}`;
  } else if (node.annotations[ANN.podCidr]) {
    source = [node.annotations[ANN.podCidr].trim()];
    field = `annotation ${ANN.podCidr}`;
  } else {
    source = node.podCIDRs;
    field = "spec.podCIDRs";
  }
  const out: string[] = [];
  for (const s of source) {
    const p = s.includes("/") ? parsePrefix(s, SLOPPY_PREFIX) : null;
    if (!p) {
      problems.push({
        object: `node/${node.name}`,
        field,
        message: `${JSON.stringify(s)} is not a CIDR (expected e.g. "10.244.1.0/24" or "2001:db8:1::/64")`,
      });
      continue;
    }
    if ((p.afi === AFI.IPv4 && fam.v4) || (p.afi === AFI.IPv6 && fam.v6)) out.push(formatPrefix(p));
  }
  return out;
}

/**
 * Routing view of every node, with conflicts in valid data resolved by one rule, the oldest Node
 * wins (`creationTimestamp`, then name; unknown times, as in manifests, sort last): a node whose
 * pod CIDR overlaps one an older node claimed, or whose address an older node already has, is
 * reported and skipped entirely, so a misconfigured node cannot hijack another's pods or traffic.
 */
export function routingNodes(
  nodes: Iterable<NodeInfo>,
  fam: Families,
  problems: PlanProblem[],
): Map<string, RoutingNode> {
  const age = (n: NodeInfo) => {
    const ms = Date.parse(n.creationTimestamp ?? "");
    return Number.isNaN(ms) ? Infinity : ms;
  };
  const sorted = [...nodes].sort((a, b) => (age(a) - age(b)) || a.name.localeCompare(b.name));
  const claimed: Array<{ node: string; cidr: string }> = [];
  const claimedIps = new Map<string, string>();
  const out = new Map<string, RoutingNode>();
  for (const n of sorted) {
    const cidrs = podCidrsOf(n, fam, problems);
    const clash = cidrs.flatMap((c) =>
      claimed.filter((o) => {
        const a = parsePrefix(c, SLOPPY_PREFIX)!, b = parsePrefix(o.cidr, SLOPPY_PREFIX)!;
        return prefixContains(a, b) || prefixContains(b, a);
      }).map((o) => ({ c, o }))
    )[0];
    if (clash) {
      problems.push({
        object: `node/${n.name}`,
        field: "pod CIDR",
        message:
          `${clash.c} overlaps ${clash.o.cidr} of node/${clash.o.node}; node skipped (pod CIDRs must be disjoint)`,
      });
      continue;
    }
    const v4 = primaryIp(n, 4), v6 = primaryIp(n, 6);
    const taken = [v4, v6].find((ip) => ip !== undefined && claimedIps.has(ip));
    if (taken) {
      problems.push({
        object: `node/${n.name}`,
        field: "status.addresses",
        message: `${taken} is also the address of node/${claimedIps.get(taken)}, which is older and wins; ` +
          "node skipped (node addresses must be unique)",
      });
      continue;
    }
    for (const ip of [v4, v6]) if (ip) claimedIps.set(ip, n.name);
    for (const c of cidrs) claimed.push({ node: n.name, cidr: c });
    const rn: RoutingNode = { name: n.name, podCIDRs: cidrs, annotations: n.annotations };
    if (v4 && fam.v4) rn.ipv4 = v4;
    if (v6 && fam.v6) rn.ipv6 = v6;
    out.set(n.name, rn);
  }
  return out;
}

/** Parses an ASN as Go's `ParseUint(s, 0, 32)` does (decimal, 0x hex, 0o/0 octal). */
export function parseAsn(s: string): number | null {
  const t = s.trim();
  let v: number;
  if (/^0x[0-9a-f]+$/i.test(t)) v = parseInt(t.slice(2), 16);
  else if (/^0o?[0-7]+$/i.test(t) && t !== "0") v = parseInt(t.replace(/^0o?/i, ""), 8);
  else if (/^\d+$/.test(t)) v = Number(t);
  else return null;
  return Number.isSafeInteger(v) && v >= 0 && v <= 0xffffffff ? v : null;
}

/** ASNs that may not be used for a peer: 0, AS_TRANS, documentation, 65535, 65536–65551, 2^32-1. */
export function isReservedAsn(a: number): boolean {
  return a === 0 || a === 23456 || (a >= 64496 && a <= 64511) || a === 65535 || (a >= 65536 && a <= 65551) ||
    a === 4294967295;
}

/** Private ASN ranges accepted for `--cluster-asn`. */
export function isValidClusterAsn(a: number): boolean {
  return (a >= 64512 && a <= 65535) || (a >= 4200000000 && a <= 4294967294);
}

/**
 * Router id: the flag when it is an IPv4 address; `generate` ⇒ the first four bytes of
 * sha256(node IP) as a dotted quad (stable per node, also for IPv6-only nodes); empty ⇒ the
 * node's IPv4 address (an IPv6-only node must set the flag, as upstream requires).
 */
export function routerIdFor(flag: string, node: RoutingNode): string | { error: string } {
  if (flag === "generate") {
    const ip = node.ipv4 ?? node.ipv6;
    if (!ip) return { error: "node has no IP to generate a router id from" };
    const h = sha256(ip);
    return `${h[0]}.${h[1]}.${h[2]}.${h[3]}`;
  }
  if (flag !== "") {
    const b = parseIp(flag, SLOPPY);
    if (!b || b.length !== 4) {
      return { error: `--router-id ${JSON.stringify(flag)} is not an IPv4 address or "generate"` };
    }
    return flag;
  }
  if (node.ipv4) return node.ipv4;
  return { error: 'node has no IPv4 address; set --router-id to an IPv4 address or "generate"' };
}
