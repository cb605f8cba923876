/**
 * An independent reference evaluator of the NetworkPolicy v1 spec, written from the Kubernetes
 * API documentation and NOT from the firewall's code: given the cluster's pods, namespaces and
 * policies, is a new connection from pod A to pod B on proto/port allowed? Used by the e2e suite
 * to compute expected truth tables and by the plan's property test.
 *
 * Bad input follows the agent's documented contract: a peer with an unparsable CIDR, a port
 * with an unknown protocol, or a named port that resolves nowhere allows nothing; the rest of
 * the policy still applies.
 *
 * @module
 */
import type {
  LabelSelector,
  NamespaceInfo,
  NetworkPolicyInfo,
  NetworkPolicyPeer,
  NetworkPolicyPort,
  PodInfo,
} from "../../watch/types.ts";

export interface RefCluster {
  pods: PodInfo[];
  namespaces: NamespaceInfo[];
  policies: NetworkPolicyInfo[];
}

function labelsMatch(s: LabelSelector, labels: Record<string, string>): boolean {
  for (const k in s.matchLabels) if (labels[k] !== s.matchLabels[k]) return false;
  return s.matchExpressions.every((e) => {
    const v = labels[e.key];
    const present = e.key in labels;
    if (e.operator === "In") return present && e.values.includes(v);
    if (e.operator === "NotIn") return !present || !e.values.includes(v);
    if (e.operator === "Exists") return present;
    if (e.operator === "DoesNotExist") return !present;
    return false;
  });
}

function nsLabels(c: RefCluster, ns: string): Record<string, string> {
  const n = c.namespaces.find((x) => x.name === ns);
  return { ...(n?.labels ?? {}), "kubernetes.io/metadata.name": ns };
}

/** IPv4 only, by integer arithmetic (independent of the agent's address code). */
function v4(ip: string): number | undefined {
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(ip);
  if (!m) return undefined;
  const b = m.slice(1).map(Number);
  if (b.some((x) => x > 255)) return undefined;
  return ((b[0] << 24) >>> 0) + (b[1] << 16) + (b[2] << 8) + b[3];
}

function inV4Cidr(ip: string, cidr: string): boolean | undefined {
  const m = /^([\d.]+)\/(\d+)$/.exec(cidr);
  if (!m) return undefined;
  const net = v4(m[1]);
  const len = Number(m[2]);
  if (net === undefined || len > 32) return undefined;
  const a = v4(ip);
  if (a === undefined) return false;
  if (len === 0) return true;
  const mask = (~0 << (32 - len)) >>> 0;
  return ((a & mask) >>> 0) === ((net & mask) >>> 0);
}

function peerMatches(c: RefCluster, policyNs: string, peer: NetworkPolicyPeer, other: PodInfo): boolean {
  const ip = other.podIPs[0];
  if (peer.ipBlock) {
    const inside = inV4Cidr(ip, peer.ipBlock.cidr);
    if (inside !== true) return false; // includes unparsable: peer skipped
    for (const e of peer.ipBlock.except) {
      const x = inV4Cidr(ip, e);
      if (x === undefined) return false;
      if (x) return false;
    }
    return true;
  }
  if (!peer.podSelector && !peer.namespaceSelector) return false;
  const nsOk = peer.namespaceSelector
    ? labelsMatch(peer.namespaceSelector, nsLabels(c, other.namespace))
    : other.namespace === policyNs;
  if (!nsOk) return false;
  return peer.podSelector ? labelsMatch(peer.podSelector, other.labels) : true;
}

function portMatches(ports: NetworkPolicyPort[], dstPod: PodInfo, proto: string, port: number): boolean {
  if (ports.length === 0) return true;
  return ports.some((p) => {
    const pp = String(p.protocol ?? "TCP").toUpperCase();
    if (!["TCP", "UDP", "SCTP"].includes(pp)) return false;
    if (pp !== proto) return false;
    if (p.port === undefined) return true;
    if (typeof p.port === "string") {
      return dstPod.containerPorts.some((cp) =>
        cp.name === p.port && cp.protocol === pp && cp.containerPort === port
      );
    }
    if (p.endPort !== undefined) {
      if (p.endPort < p.port) return false;
      return port >= p.port && port <= p.endPort;
    }
    return port === p.port;
  });
}

function selects(pol: NetworkPolicyInfo, pod: PodInfo): boolean {
  return pol.namespace === pod.namespace && labelsMatch(pol.podSelector, pod.labels);
}

/** Whether `dst` admits a new connection from `src` (its ingress policies). */
export function ingressAllowed(
  c: RefCluster,
  src: PodInfo,
  dst: PodInfo,
  proto: string,
  port: number,
): boolean {
  const pols = c.policies.filter((p) => p.policyTypes.includes("Ingress") && selects(p, dst));
  if (pols.length === 0) return true;
  return pols.some((pol) =>
    pol.ingress.some((r) =>
      (r.peers.length === 0 || r.peers.some((peer) => peerMatches(c, pol.namespace, peer, src))) &&
      portMatches(r.ports, dst, proto, port)
    )
  );
}

/** Whether `src` may open a new connection to `dst` (its egress policies). */
export function egressAllowed(
  c: RefCluster,
  src: PodInfo,
  dst: PodInfo,
  proto: string,
  port: number,
): boolean {
  const pols = c.policies.filter((p) => p.policyTypes.includes("Egress") && selects(p, src));
  if (pols.length === 0) return true;
  return pols.some((pol) =>
    pol.egress.some((r) =>
      (r.peers.length === 0 || r.peers.some((peer) => peerMatches(c, pol.namespace, peer, dst))) &&
      portMatches(r.ports, dst, proto, port)
    )
  );
}

/** Both sides: the connection is allowed when egress of src and ingress of dst allow it. */
export function connectionAllowed(
  c: RefCluster,
  src: PodInfo,
  dst: PodInfo,
  proto: string,
  port: number,
): boolean {
  return egressAllowed(c, src, dst, proto, port) && ingressAllowed(c, src, dst, proto, port);
}
