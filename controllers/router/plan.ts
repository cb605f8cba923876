/**
 * The routing plan (pure): snapshot + options + node name → speaker settings, peers with their
 * policies, advertisements, the cluster's pod CIDRs and node IPs, and every problem found.
 *
 * Bad input never aborts the plan: the offending peer, node or value is skipped and reported
 * (object, field, quoted value, what is accepted), everything else keeps routing. Only a local
 * node that cannot be identified at all yields `local: null`.
 *
 * @module
 */
import type { Policy } from "../../bgp/mod.ts";
import type { ClusterSnapshot } from "../../watch/types.ts";
import { canonicalIp } from "../../net/ip.ts";
import { type Advertisement, advertisements, allServiceVips } from "./advertise.ts";
import {
  ANN,
  type Families,
  isValidClusterAsn,
  type PlanProblem,
  routerIdFor,
  type RoutingNode,
  routingNodes,
} from "./identity.ts";
import { externalPeers, localAsn, nodePeers, type PlannedPeer, type RouterOptions } from "./peers.ts";
import { buildPolicies, customImportReject, externalExportActions } from "./policies.ts";

export interface SpeakerPlan {
  asn: number;
  routerId: string;
  listenAddresses: string[];
  port: number;
  gracefulRestart?: { restartTime: number; deferralTime: number };
  clusterId?: string;
}

/** A peer with its policies attached. */
export interface PeerPlan extends PlannedPeer {
  importPolicy?: Policy;
  exportPolicy?: Policy;
  nextHopSelf?: boolean;
}

export interface RouterPlan {
  local: RoutingNode | null;
  speaker: SpeakerPlan | null;
  peers: PeerPlan[];
  advertisements: Advertisement[];
  /** Other nodes (routable ones), for the overlay and the ipsets. */
  remoteNodes: RoutingNode[];
  /** Every node's pod CIDRs (ipset kube-router-pod-subnets). */
  allPodCidrs: string[];
  /** Every node's IPs (ipset kube-router-node-ips). */
  allNodeIps: string[];
  problems: PlanProblem[];
}

export interface PlanInput {
  snapshot: ClusterSnapshot;
  options: RouterOptions;
  nodeName: string;
  /** Text of `--peer-router-passwords-file`, read by the controller (the plan does no I/O). */
  passwordsFileText?: string;
}

export function families(o: Pick<RouterOptions, "enableIpv4" | "enableIpv6">): Families {
  return { v4: o.enableIpv4, v6: o.enableIpv6 };
}

/** Builds the whole plan. */
export function planRouter(input: PlanInput): RouterPlan {
  const { snapshot, options: o, nodeName } = input;
  const problems: PlanProblem[] = [];
  const fam = families(o);
  const nodes = routingNodes(snapshot.nodes.values(), fam, problems);
  const allPodCidrs = [...nodes.values()].flatMap((n) => n.podCIDRs).sort();
  const allNodeIps = [...snapshot.nodes.values()].flatMap((n) => [...n.internalIPs, ...n.externalIPs])
    .filter((ip) => (ip.includes(":") ? fam.v6 : fam.v4)).sort();
  const empty = (local: RoutingNode | null): RouterPlan => ({
    local,
    speaker: null,
    peers: [],
    advertisements: [],
    remoteNodes: [...nodes.values()].filter((n) => n.name !== nodeName),
    allPodCidrs,
    allNodeIps: [...new Set(allNodeIps)],
    problems,
  });
  const local = nodes.get(nodeName) ?? null;
  if (!local) {
    if (!snapshot.nodes.has(nodeName)) {
      problems.push({
        object: `node/${nodeName}`,
        field: "metadata.name",
        message: "this node is not in the cluster",
      });
    }
    return empty(null);
  }
  if (o.nodesFullMesh && o.clusterAsn !== 0 && !isValidClusterAsn(o.clusterAsn)) {
    problems.push({
      object: "flag",
      field: "--cluster-asn",
      message: `${o.clusterAsn} is not a private ASN (expected 64512-65535 or 4200000000-4294967294)`,
    });
    return empty(local);
  }
  const asn = localAsn(local, o, problems);
  const rid = routerIdFor(o.routerId, local);
  if (typeof rid !== "string") {
    problems.push({ object: `node/${local.name}`, field: "--router-id", message: rid.error });
  }
  if (asn === null || typeof rid !== "string") return empty(local);

  const mesh = nodePeers(local, asn, nodes, o, fam, problems);
  const ext = externalPeers(local, o, fam, problems, input.passwordsFileText);
  const adv = advertisements(snapshot, local, o, fam, problems);
  const policies = buildPolicies({
    rrServer: mesh.rrServer,
    advertisements: adv,
    serviceVips: allServiceVips(snapshot),
    externalActions: externalExportActions(local, o.overrideNexthop, problems),
    advertisePodCidr: o.advertisePodCidr,
    importReject: customImportReject(local, problems),
  });

  // An external peer that is also a node (same address) is kept once, as the external peer.
  const extAddrs = new Set(ext.map((p) => p.address));
  const peers: PeerPlan[] = [
    ...mesh.peers.filter((p) => !extAddrs.has(p.address)).map((p) => ({
      ...p,
      ...(policies.import ? { importPolicy: policies.import } : {}),
      ...(policies.exportToNodes ? { exportPolicy: policies.exportToNodes } : {}),
    })),
    ...ext.map((p) => ({
      ...p,
      ...(policies.import ? { importPolicy: policies.import } : {}),
      ...(policies.exportToExternal ? { exportPolicy: policies.exportToExternal } : {}),
      ...(o.overrideNexthop ? { nextHopSelf: true } : {}),
    })),
  ];

  let listen = [local.ipv4, local.ipv6].filter((x): x is string => !!x);
  const la = local.annotations[ANN.localAddresses];
  if (la !== undefined && la.trim() !== "") {
    // Upstream refuses a value that is not an IP (it would otherwise bind nothing); here the
    // node keeps its default listen addresses and the problem names the value.
    const entries = la.split(",").map((s) => s.trim()).filter(Boolean);
    const bad = entries.filter((e) => canonicalIp(e) === null);
    if (bad.length) {
      problems.push({
        object: `node/${local.name}`,
        field: `annotation ${ANN.localAddresses}`,
        message: `${bad.map((b) => JSON.stringify(b)).join(", ")} is not an IP address; listening on ${
          listen.join(", ") || "nothing"
        } instead`,
      });
    } else listen = entries.map((e) => canonicalIp(e)!);
  }
  const speaker: SpeakerPlan = { asn, routerId: rid, listenAddresses: listen, port: o.bgpPort };
  if (o.bgpGracefulRestart) {
    speaker.gracefulRestart = {
      restartTime: Math.min(4095, Math.round(o.bgpGracefulRestartTime / 1000)),
      deferralTime: Math.round(o.bgpGracefulRestartDeferralTime / 1000),
    };
  }
  if (mesh.clusterId) speaker.clusterId = mesh.clusterId;
  return {
    local,
    speaker,
    peers,
    advertisements: adv,
    remoteNodes: [...nodes.values()].filter((n) => n.name !== nodeName),
    allPodCidrs,
    allNodeIps: [...new Set(allNodeIps)],
    problems,
  };
}
