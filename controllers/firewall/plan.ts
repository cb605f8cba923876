/**
 * The firewall plan: cluster snapshot + options + node name → the chains and sets that enforce
 * NetworkPolicy v1 for this node's pods, per address family. Pure: no I/O, deterministic output
 * (sorted inputs, identity-hashed names), so the same cluster always renders the same bytes.
 *
 * Packet path (same as upstream kube-router's mark design):
 * INPUT/FORWARD/OUTPUT → KUBE-ROUTER-* → one `KUBE-POD-FW-*` chain per local pod (by `-d`/`-s`
 * pod IP) → KUBE-NWPLCY-COMMON (conntrack, ICMP) → the pod's ingress (`-d`) / egress (`-s`) policy
 * chains, or KUBE-NWPLCY-DEFAULT when no policy of that direction selects the pod. A policy chain
 * sets mark 0x10000 when a rule allows the packet; the pod chain logs (NFLOG 100) and rejects
 * packets without it, then swaps it for 0x20000, which KUBE-NWPLCY-TAIL accepts.
 *
 * @module
 */
import type { AgentOptions } from "../../options/mod.ts";
import type {
  ClusterSnapshot,
  LabelSelector,
  NetworkPolicyInfo,
  NetworkPolicyPeer,
  NetworkPolicyPort,
  PodInfo,
} from "../../watch/types.ts";
import type { FamilyState, FwRule, FwSet, L4Proto, Match } from "./model.ts";
import {
  COMMON_CHAIN,
  DEFAULT_CHAIN,
  familySetName,
  FORWARD_CHAIN,
  INPUT_CHAIN,
  LOCAL_PODS_SET,
  MARK_ACCEPT,
  MARK_ALLOWED,
  NameHasher,
  NFLOG_GROUP,
  OUTPUT_CHAIN,
  TAIL_CHAIN,
} from "./names.ts";
import { canonicalAddress, cidrContains, type Family, familyOf, parseCidr, splitForHashNet } from "./net.ts";
import { isEmptySelector, selectorMatches } from "./selector.ts";

/** The options the plan reads. */
export type FirewallPlanOptions = Pick<
  AgentOptions,
  | "enableIpv4"
  | "enableIpv6"
  | "serviceClusterIpRange"
  | "serviceExternalIpRange"
  | "loadbalancerIpRange"
  | "serviceNodePortRange"
  | "netpolDefaultDeny"
>;

/** Something in the cluster's objects the plan could not use; it skipped just that piece. */
export interface PlanProblem {
  /** `namespace/name` of the policy (or `node/NAME`, `option/NAME`). */
  object: string;
  /** Path of the field, e.g. `spec.ingress[0].from[1].ipBlock.cidr`. */
  field: string;
  value: string;
  reason: string;
}

export interface FirewallPlan {
  families: FamilyState[];
  problems: PlanProblem[];
  /**
   * The object each policy chain, pod chain and rule set was made for ("NetworkPolicy ns/name",
   * "Pod ns/name"): what a tool's refusal of one line is traced back to (controller.ts).
   */
  owners: Map<string, string>;
}

/** Pods whose traffic policies apply to: running, with an IP, not on the host network. */
export function isActionable(p: PodInfo): boolean {
  return p.podIPs.length > 0 && !p.hostNetwork && p.phase !== "Succeeded" && p.phase !== "Failed";
}

type PodChainMemo = { key: string; chain: string; rules: FwRule[]; from: FwRule; to: FwRule };

/**
 * What a planner remembers between plans, keyed by object identity or bounded (snapshots reuse
 * unchanged objects): pod IPs, policy and pod chains, hashed names.
 */
class PlanMemo {
  readonly names = new NameHasher();
  /** Canonical pod IPs per family, computed once per pod object. */
  readonly #podIps = new WeakMap<PodInfo, { ipv4?: string; ipv6?: string }>();
  /** Policy chains' rules by chain name and family, reused while their content is unchanged. */
  readonly #policyChains: Record<Family, Map<string, { key: string; rules: FwRule[] }>> = {
    ipv4: new Map(),
    ipv6: new Map(),
  };
  /** The pod chains built for each pod object, reused while the pod and its policies are unchanged. */
  readonly podChains: Record<Family, WeakMap<PodInfo, PodChainMemo>> = {
    ipv4: new WeakMap(),
    ipv6: new WeakMap(),
  };

  podIp(p: PodInfo, family: Family): string | undefined {
    let c = this.#podIps.get(p);
    if (!c) {
      c = {};
      for (const ip of p.podIPs) {
        const f = familyOf(ip);
        if (c[f] === undefined) c[f] = canonicalAddress(ip);
      }
      this.#podIps.set(p, c);
    }
    return c[family];
  }

  /**
   * Returns the previously planned array when `rules` has the same content, so renderers (which
   * memoise by array and rule object) skip unchanged policy chains. The memo is bounded by the
   * number of policy chains ever planned; entries are replaced in place.
   */
  stableRules(family: Family, chain: string, rules: FwRule[]): FwRule[] {
    const memo = this.#policyChains[family];
    const key = JSON.stringify(rules);
    const hit = memo.get(chain);
    if (hit?.key === key) return hit.rules;
    if (memo.size > 100_000) memo.clear();
    memo.set(chain, { key, rules });
    return rules;
  }
}

/**
 * Plans the firewall, remembering between plans what did not change (as the proxy's `Planner`):
 * one per controller (or benchmark), so two controllers never share a memo.
 */
export class FirewallPlanner {
  readonly #memo = new PlanMemo();

  plan(snap: ClusterSnapshot, options: FirewallPlanOptions, nodeName: string): FirewallPlan {
    return planWith(this.#memo, snap, options, nodeName);
  }
}

const PROTOCOLS: Record<string, L4Proto> = { TCP: "tcp", UDP: "udp", SCTP: "sctp" };

/** Cluster data indexed once per plan. */
class Index {
  readonly podsByNs = new Map<string, PodInfo[]>();
  readonly nsLabels = new Map<string, Record<string, string>>();
  readonly all: PodInfo[];
  private readonly peerCache = new Map<string, PodInfo[]>();
  private readonly ipsCache = new Map<string, string[]>();

  constructor(snap: ClusterSnapshot, readonly memo: PlanMemo) {
    this.all = withoutShadowed([...snap.pods.values()].filter(isActionable), memo).sort((a, b) =>
      a.namespace === b.namespace ? cmp(a.name, b.name) : cmp(a.namespace, b.namespace)
    );
    for (const p of this.all) {
      let l = this.podsByNs.get(p.namespace);
      if (!l) this.podsByNs.set(p.namespace, l = []);
      l.push(p);
    }
    for (const ns of snap.namespaces.values()) {
      // The API server always sets this label; literal snapshots may omit it.
      this.nsLabels.set(ns.name, { "kubernetes.io/metadata.name": ns.name, ...ns.labels });
    }
    for (const ns of this.podsByNs.keys()) {
      if (!this.nsLabels.has(ns)) this.nsLabels.set(ns, { "kubernetes.io/metadata.name": ns });
    }
  }

  /** Pods a pod/namespace selector peer selects. */
  peerPods(policyNs: string, podSel: LabelSelector | undefined, nsSel: LabelSelector | undefined): PodInfo[] {
    const key = JSON.stringify([nsSel ? "*" : policyNs, podSel ?? null, nsSel ?? null]);
    const hit = this.peerCache.get(key);
    if (hit) return hit;
    const namespaces = nsSel
      ? [...this.nsLabels.entries()].filter(([, l]) => selectorMatches(nsSel, l)).map(([n]) => n).sort()
      : [policyNs];
    const out: PodInfo[] = [];
    for (const ns of namespaces) {
      for (const p of this.podsByNs.get(ns) ?? []) {
        if (!podSel || isEmptySelector(podSel) || selectorMatches(podSel, p.labels)) out.push(p);
      }
    }
    this.peerCache.set(key, out);
    return out;
  }

  /** Sorted IPs of a family of the pods every pod-selecting peer of a rule selects (cached). */
  peerIps(policyNs: string, peers: NetworkPolicyPeer[], family: Family): { pods: PodInfo[]; ips: string[] } {
    const podPeers = peers.filter((p) => !p.ipBlock && (p.podSelector || p.namespaceSelector));
    const lists = podPeers.map((p) => this.peerPods(policyNs, p.podSelector, p.namespaceSelector));
    const pods = lists.length === 1 ? lists[0] : lists.flat();
    const key = family +
      JSON.stringify(
        podPeers.map((
          p,
        ) => [p.namespaceSelector ? "*" : policyNs, p.podSelector ?? null, p.namespaceSelector ?? null]),
      );
    let ips = this.ipsCache.get(key);
    if (!ips) {
      const set = new Set<string>();
      for (const p of pods) {
        const ip = this.memo.podIp(p, family);
        if (ip) set.add(ip);
      }
      ips = [...set].sort();
      this.ipsCache.set(key, ips);
    }
    return { pods, ips };
  }

  selects(pol: NetworkPolicyInfo, p: PodInfo): boolean {
    return pol.namespace === p.namespace && selectorMatches(pol.podSelector, p.labels);
  }
}

/**
 * Drops pods whose address another actionable pod now holds. The CNI plugin hands an address to a
 * new pod once the old pod's sandbox is gone, but the old pod keeps it in its status while it
 * terminates (or until a finished pod's phase is written): its policies and labels must not judge
 * the new pod's traffic. The address belongs to the pod that is not terminating, then to the
 * newer one (then, for a stable plan, to the greater uid).
 */
function withoutShadowed(pods: PodInfo[], memo: PlanMemo): PodInfo[] {
  const owner = new Map<string, PodInfo>();
  let conflicts = false;
  for (const p of pods) {
    for (const family of ["ipv4", "ipv6"] as const) {
      const ip = memo.podIp(p, family);
      if (ip === undefined) continue;
      const held = owner.get(ip);
      if (held === undefined) owner.set(ip, p);
      else {
        conflicts = true;
        if (ownsBefore(p, held)) owner.set(ip, p);
      }
    }
  }
  if (!conflicts) return pods;
  return pods.filter((p) =>
    (["ipv4", "ipv6"] as const).every((family) => {
      const ip = memo.podIp(p, family);
      return ip === undefined || owner.get(ip) === p;
    })
  );
}

/** Whether pod `a` rather than `b` owns an address both claim. */
function ownsBefore(a: PodInfo, b: PodInfo): boolean {
  const aLive = a.deletionTimestamp === null, bLive = b.deletionTimestamp === null;
  if (aLive !== bLive) return aLive;
  const ac = a.creationTimestamp ?? "", bc = b.creationTimestamp ?? "";
  if (ac !== bc) return ac > bc;
  return a.uid > b.uid;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Whether the pod runs on this node. */
function isLocal(p: PodInfo, nodeName: string, nodeIps: ReadonlySet<string>): boolean {
  return p.nodeName === nodeName || (p.nodeName === "" && nodeIps.has(p.hostIP));
}

/** Parses `--service-node-port-range` (`30000-32767` or `30000:32767`). */
export function parseNodePortRange(s: string): [number, number] | undefined {
  const m = /^\s*(\d+)\s*[-:]\s*(\d+)\s*$/.exec(s);
  if (!m) return undefined;
  const lo = Number(m[1]), hi = Number(m[2]);
  if (lo < 1 || hi > 65535 || lo > hi) return undefined;
  return [lo, hi];
}

/** Plans both families (with `planner`'s memo; by default a fresh one, remembering nothing). */
export function planFirewall(
  snap: ClusterSnapshot,
  options: FirewallPlanOptions,
  nodeName: string,
  planner: FirewallPlanner = new FirewallPlanner(),
): FirewallPlan {
  return planner.plan(snap, options, nodeName);
}

function planWith(
  memo: PlanMemo,
  snap: ClusterSnapshot,
  options: FirewallPlanOptions,
  nodeName: string,
): FirewallPlan {
  const problems: PlanProblem[] = [];
  const index = new Index(snap, memo);
  const families: Family[] = [];
  if (options.enableIpv4) families.push("ipv4");
  if (options.enableIpv6) families.push("ipv6");
  const policies = [...snap.networkPolicies.values()].sort((a, b) =>
    a.namespace === b.namespace ? cmp(a.name, b.name) : cmp(a.namespace, b.namespace)
  );
  const node = snap.nodes.get(nodeName);
  const nodeIps = new Set([...(node?.internalIPs ?? []), ...(node?.externalIPs ?? [])]);
  const local = index.all.filter((p) => isLocal(p, nodeName, nodeIps));
  const out: FamilyState[] = [];
  const owners = new Map<string, string>();
  for (const family of families) {
    // Problems are the same for both families; report them once.
    const sink = family === families[0] ? problems : [];
    out.push(planFamily(family, index, {
      policies,
      localAll: local,
      options,
      nodePodCidrs: node?.podCIDRs ?? [],
      nodeName,
      problems: sink,
      owners,
    }));
  }
  return { families: out, problems, owners };
}

interface FamilyInputs {
  /** Every policy, sorted. */
  policies: NetworkPolicyInfo[];
  /** Actionable pods on this node. */
  localAll: PodInfo[];
  options: FirewallPlanOptions;
  nodePodCidrs: string[];
  nodeName: string;
  /** Where problems go (one family reports them). */
  problems: PlanProblem[];
  /** Chain/set name → the object it was planned for. */
  owners: Map<string, string>;
}

function planFamily(family: Family, index: Index, inputs: FamilyInputs): FamilyState {
  const { policies, localAll, options, nodePodCidrs, nodeName, problems, owners } = inputs;
  const { memo } = index;
  const names = memo.names;
  const podIp = (p: PodInfo, f: Family) => memo.podIp(p, f);
  const chains = new Map<string, FwRule[]>();
  const sets = new Map<string, FwSet>();
  const local = localAll.filter((p) => podIp(p, family) !== undefined);

  // Top-level chains first, so render order reads top-down.
  const input: FwRule[] = [], forward: FwRule[] = [], output: FwRule[] = [];
  chains.set(INPUT_CHAIN, input);
  chains.set(FORWARD_CHAIN, forward);
  chains.set(OUTPUT_CHAIN, output);
  input.push(...inputHead(family, options, problems));

  chains.set(COMMON_CHAIN, commonChain(family));
  chains.set(DEFAULT_CHAIN, [{
    matches: [],
    verdict: { k: "mark", value: MARK_ALLOWED, mask: MARK_ALLOWED },
    comment: "rule to mark traffic matching a network policy",
  }]);

  // Policies that select at least one local pod get chains; others are irrelevant on this node.
  const ingressOf = new Map<PodInfo, NetworkPolicyInfo[]>();
  const egressOf = new Map<PodInfo, NetworkPolicyInfo[]>();
  const localByNs = new Map<string, PodInfo[]>();
  for (const p of local) push(localByNs, p.namespace, p);
  for (const pol of policies) {
    const targets = (localByNs.get(pol.namespace) ?? []).filter((p) => index.selects(pol, p));
    if (targets.length === 0) continue;
    const owner = `NetworkPolicy ${pol.namespace}/${pol.name}`;
    const setsBefore = new Set(sets.keys());
    if (pol.policyTypes.includes("Ingress")) {
      const name = names.policyChain(pol.namespace, pol.name, family, "ingress");
      chains.set(
        name,
        memo.stableRules(
          family,
          name,
          policyRules(pol, "ingress", { family, index, targets, sets, problems }),
        ),
      );
      for (const t of targets) push(ingressOf, t, pol);
    }
    if (pol.policyTypes.includes("Egress")) {
      const name = names.policyChain(pol.namespace, pol.name, family, "egress");
      chains.set(
        name,
        memo.stableRules(
          family,
          name,
          policyRules(pol, "egress", { family, index, targets, sets, problems }),
        ),
      );
      for (const t of targets) push(egressOf, t, pol);
    }
    for (const dir of ["ingress", "egress"] as const) {
      owners.set(names.policyChain(pol.namespace, pol.name, family, dir), owner);
    }
    for (const s of sets.keys()) if (!setsBefore.has(s)) owners.set(s, owner);
  }

  for (const pod of local) {
    const ip = podIp(pod, family)!;
    const ingress = ingressOf.get(pod) ?? [];
    const egress = egressOf.get(pod) ?? [];
    const memoKey = `${ingress.map((p) => p.name).join(",")}|${egress.map((p) => p.name).join(",")}`;
    let pm = memo.podChains[family].get(pod);
    if (pm?.key !== memoKey) {
      const chain = names.podChain(pod.namespace, pod.name, family);
      const who = `${pod.namespace}/${pod.name}`;
      pm = {
        key: memoKey,
        chain,
        rules: podChainRules(pod, ip, family, ingress, egress, names),
        from: {
          matches: [{ k: "addr", dir: "src", cidr: ip }],
          verdict: { k: "jump", chain },
          comment: `rule to jump traffic from POD ${who} to chain ${chain}`,
        },
        to: {
          matches: [{ k: "addr", dir: "dst", cidr: ip }],
          verdict: { k: "jump", chain },
          comment: `rule to jump traffic to POD ${who} to chain ${chain}`,
        },
      };
      memo.podChains[family].set(pod, pm);
    }
    chains.set(pm.chain, pm.rules);
    owners.set(pm.chain, `Pod ${pod.namespace}/${pod.name}`);
    input.push(pm.from);
    forward.push(pm.to, pm.from);
    output.push(pm.to, pm.from);
  }

  for (const top of [input, forward, output]) {
    top.push({ matches: [], verdict: { k: "jump", chain: TAIL_CHAIN } });
  }

  // Tail: accept what a pod chain passed; with --netpol-default-deny, reject traffic of this
  // node's pod CIDRs that no pod chain has handled yet (a pod whose chain is not programmed).
  const tail: FwRule[] = [];
  const accept: FwRule = {
    matches: [{ k: "mark", value: MARK_ACCEPT, mask: MARK_ACCEPT }],
    verdict: { k: "accept" },
    comment: "rule to ACCEPT traffic that complies with network policies",
  };
  const cidrs = options.netpolDefaultDeny
    ? nodePodCidrs.map(parseCidr).filter((c) => c?.family === family).map((c) => c!.text)
    : [];
  if (options.netpolDefaultDeny && nodePodCidrs.length === 0) {
    problems.push({
      object: `node/${nodeName}`,
      field: "spec.podCIDRs",
      value: "",
      reason: "--netpol-default-deny needs the node's pod CIDRs; default deny is disabled",
    });
  }
  if (cidrs.length > 0) {
    const setName = familySetName(LOCAL_PODS_SET, family);
    sets.set(setName, { name: setName, kind: "ip", family, entries: local.map((p) => podIp(p, family)!) });
    for (const c of cidrs) {
      for (const dir of ["src", "dst"] as const) {
        tail.push({
          // The node's own addresses in the CIDR (the kube-bridge gateway) are not pods.
          matches: [
            { k: "addr", dir, cidr: c },
            { k: "local", dir, negate: true },
            { k: "set", dir, set: setName, negate: true },
          ],
          verdict: { k: "reject" },
          comment: `default deny: REJECT traffic of pods in ${c} whose firewall is not programmed yet`,
        });
      }
    }
    tail.push(accept);
    for (const c of cidrs) {
      for (const dir of ["src", "dst"] as const) {
        tail.push({
          matches: [{ k: "addr", dir, cidr: c }, { k: "local", dir, negate: true }],
          verdict: { k: "reject" },
          comment: `default deny: REJECT traffic of pods in ${c} not passed by a pod chain`,
        });
      }
    }
  } else {
    tail.push(accept);
  }
  chains.set(TAIL_CHAIN, tail);
  return { family, chains, sets };
}

function push<K, V>(m: Map<K, V[]>, k: K, v: V): void {
  const l = m.get(k);
  if (l) l.push(v);
  else m.set(k, [v]);
}

function inputHead(family: Family, options: FirewallPlanOptions, problems: PlanProblem[]): FwRule[] {
  const out: FwRule[] = [];
  const ranges: Array<[string, string[], string]> = [
    ["service-cluster-ip-range", options.serviceClusterIpRange, "allow traffic to cluster IP range"],
    ["service-external-ip-range", options.serviceExternalIpRange, "allow traffic to external IP range"],
    ["loadbalancer-ip-range", options.loadbalancerIpRange, "allow traffic to load balancer IP range"],
  ];
  for (const [flag, values, what] of ranges.slice(0, 1)) addRanges(flag, values, what);
  const np = parseNodePortRange(options.serviceNodePortRange);
  if (!np) {
    problems.push({
      object: "option/service-node-port-range",
      field: "--service-node-port-range",
      value: options.serviceNodePortRange,
      reason: "expected LOW-HIGH or LOW:HIGH within 1-65535; node port allowance skipped",
    });
  } else {
    for (const proto of ["tcp", "udp", "sctp"] as const) {
      out.push({
        matches: [{ k: "l4", proto, dport: `${np[0]}:${np[1]}`, multiport: true }, {
          k: "local",
          dir: "dst",
        }],
        verdict: { k: "return" },
        comment: `allow LOCAL ${proto.toUpperCase()} traffic to node ports`,
      });
    }
  }
  for (const [flag, values, what] of ranges.slice(1)) addRanges(flag, values, what);
  return out;

  function addRanges(flag: string, values: string[], what: string): void {
    for (const v of values) {
      const c = parseCidr(v);
      if (!c) {
        problems.push({
          object: `option/${flag}`,
          field: `--${flag}`,
          value: v,
          reason: "not a CIDR (e.g. 10.96.0.0/12); skipped",
        });
        continue;
      }
      if (c.family !== family) continue;
      out.push({
        matches: [{ k: "addr", dir: "dst", cidr: c.text }],
        verdict: { k: "return" },
        comment: `${what} ${c.text}`,
      });
    }
  }
}

function commonChain(family: Family): FwRule[] {
  const icmp: Array<import("./model.ts").IcmpType> = family === "ipv4"
    ? ["echo-request", "destination-unreachable", "time-exceeded"]
    : [
      "echo-request",
      "destination-unreachable",
      "packet-too-big",
      "time-exceeded",
      "neighbor-solicitation",
      "neighbor-advertisement",
    ];
  return [
    {
      matches: [{ k: "ct", states: ["INVALID"] }],
      verdict: { k: "drop" },
      comment: "rule to drop invalid state for pod",
    },
    {
      matches: [{ k: "ct", states: ["RELATED", "ESTABLISHED"] }],
      verdict: { k: "accept" },
      comment: "rule for stateful firewall for pod",
    },
    ...icmp.map((type): FwRule => ({
      matches: [{ k: "icmp", type }],
      verdict: { k: "accept" },
      comment: `allow icmp ${type} messages`,
    })),
  ];
}

/** One (peer side) alternative of a rule: the matches that identify allowed peers. */
type PeerAlt = Match[];
/** One port alternative: protocol/port matches (and, for named ports, a destination set). */
type PortAlt = Match[];

interface PolicyInputs {
  family: Family;
  index: Index;
  /** Local pods the policy selects. */
  targets: PodInfo[];
  /** The family's sets; the policy's peer sets are added here. */
  sets: Map<string, FwSet>;
  problems: PlanProblem[];
}

function policyRules(pol: NetworkPolicyInfo, dir: "ingress" | "egress", inputs: PolicyInputs): FwRule[] {
  const { family, index, targets: localTargets, sets, problems } = inputs;
  const names = index.memo.names;
  const key = `${pol.namespace}/${pol.name}`;
  const rules = dir === "ingress" ? pol.ingress : pol.egress;
  const peerSide = dir === "ingress" ? "src" : "dst";
  const peerField = dir === "ingress" ? "from" : "to";
  const out: FwRule[] = [];
  rules.forEach((rule, ri) => {
    const base = `spec.${dir}[${ri}]`;
    const id = [pol.namespace, pol.name, dir, String(ri)];
    // Peers: one set for every pod-selecting peer together, one set per ipBlock.
    let peerAlts: PeerAlt[];
    let peerPods: PodInfo[] | undefined;
    let hasIpBlock = false;
    if (rule.peers.length === 0) {
      peerAlts = [[]];
    } else {
      peerAlts = [];
      let anyPodPeer = false;
      rule.peers.forEach((peer: NetworkPolicyPeer, pi) => {
        if (peer.ipBlock) {
          hasIpBlock = true;
          const entries = ipBlockEntries(
            peer.ipBlock,
            family,
            key,
            `${base}.${peerField}[${pi}].ipBlock`,
            problems,
          );
          if (!entries) return;
          const name = names.ruleSet(peerSide, family, ...id, "ipblock", String(pi));
          sets.set(name, { name, kind: "net", family, entries });
          peerAlts.push([{ k: "set", dir: peerSide, set: name }]);
          return;
        }
        if (!peer.podSelector && !peer.namespaceSelector) {
          problems.push({
            object: key,
            field: `${base}.${peerField}[${pi}]`,
            value: "{}",
            reason: "peer has no podSelector, namespaceSelector or ipBlock; skipped",
          });
          return;
        }
        anyPodPeer = true;
      });
      if (anyPodPeer) {
        const sel = index.peerIps(pol.namespace, rule.peers, family);
        peerPods = sel.pods;
        const name = names.ruleSet(peerSide, family, ...id, "pod");
        sets.set(name, { name, kind: "ip", family, entries: sel.ips });
        peerAlts.unshift([{ k: "set", dir: peerSide, set: name }]);
      }
    }

    // Ports.
    let portAlts: PortAlt[];
    if (rule.ports.length === 0) {
      portAlts = [[]];
    } else {
      portAlts = [];
      rule.ports.forEach((port: NetworkPolicyPort, pi) => {
        const field = `${base}.ports[${pi}]`;
        const proto = PROTOCOLS[String(port.protocol ?? "TCP").toUpperCase()];
        if (!proto) {
          problems.push({
            object: key,
            field: `${field}.protocol`,
            value: String(port.protocol),
            reason: "unknown protocol; accepted: TCP, UDP, SCTP; port skipped",
          });
          return;
        }
        if (port.port === undefined) {
          portAlts.push([{ k: "l4", proto }]);
          return;
        }
        if (typeof port.port === "number") {
          const lo = port.port;
          const hi = port.endPort;
          if (!Number.isInteger(lo) || lo < 1 || lo > 65535) {
            problems.push({
              object: key,
              field: `${field}.port`,
              value: String(lo),
              reason: "port outside 1-65535; skipped",
            });
            return;
          }
          if (hi !== undefined && (!Number.isInteger(hi) || hi < lo || hi > 65535)) {
            problems.push({
              object: key,
              field: `${field}.endPort`,
              value: String(hi),
              reason: `endPort must be between port (${lo}) and 65535; port skipped`,
            });
            return;
          }
          portAlts.push([{
            k: "l4",
            proto,
            dport: hi !== undefined && hi !== lo ? `${lo}:${hi}` : String(lo),
          }]);
          return;
        }
        // Named port: resolved on the destination pod (the target for ingress, the peer for egress).
        const portName = port.port;
        const candidates = dir === "ingress"
          ? localTargets
          : (rule.peers.length === 0 || hasIpBlock || !peerPods ? index.all : peerPods);
        const byNumber = new Map<number, Set<string>>();
        for (const p of candidates) {
          const ip = index.memo.podIp(p, family);
          if (!ip) continue;
          for (const cp of p.containerPorts) {
            if (cp.name === portName && PROTOCOLS[cp.protocol] === proto) {
              let s = byNumber.get(cp.containerPort);
              if (!s) byNumber.set(cp.containerPort, s = new Set());
              s.add(ip);
            }
          }
        }
        if (byNumber.size === 0) {
          problems.push({
            object: key,
            field: `${field}.port`,
            value: portName,
            reason: `named port resolves on no ${
              dir === "ingress" ? "selected" : "peer"
            } pod; it allows nothing`,
          });
        }
        for (const [num, ips] of [...byNumber.entries()].sort((a, b) => a[0] - b[0])) {
          const name = names.ruleSet("dst", family, ...id, "namedport", portName, proto, String(num));
          sets.set(name, { name, kind: "ip", family, entries: [...ips].sort() });
          portAlts.push([{ k: "set", dir: "dst", set: name }, { k: "l4", proto, dport: String(num) }]);
        }
      });
    }

    for (const peer of peerAlts) {
      for (const port of portAlts) {
        const comment = `rule to ACCEPT ${dir} traffic of network policy ${key} rule ${ri}`;
        out.push(
          {
            matches: [...peer, ...port],
            verdict: { k: "mark", value: MARK_ALLOWED, mask: MARK_ALLOWED },
            comment,
          },
          {
            matches: [{ k: "mark", value: MARK_ALLOWED, mask: MARK_ALLOWED }],
            verdict: { k: "return" },
            comment,
          },
        );
      }
    }
  });
  return out;
}

/** `hash:net` entries for an ipBlock in this family, or `undefined` when it does not apply. */
function ipBlockEntries(
  block: { cidr: string; except: string[] },
  family: Family,
  policy: string,
  field: string,
  problems: PlanProblem[],
): string[] | undefined {
  const c = parseCidr(block.cidr);
  if (!c || !block.cidr.includes("/")) {
    problems.push({
      object: policy,
      field: `${field}.cidr`,
      value: block.cidr,
      reason: "not a CIDR (e.g. 10.0.0.0/16 or 2001:db8::/32); peer skipped",
    });
    return undefined;
  }
  if (c.family !== family) return undefined;
  const entries = splitForHashNet(c);
  const seen = new Set<string>();
  for (const [i, e] of (block.except ?? []).entries()) {
    const x = parseCidr(e);
    if (!x || !e.includes("/") || x.family !== family) {
      problems.push({
        object: policy,
        field: `${field}.except[${i}]`,
        value: e,
        reason: `not a ${family} CIDR; peer skipped`,
      });
      return undefined;
    }
    if (x.prefix <= c.prefix) {
      // Excepting the whole block (or more) leaves nothing; hash:net cannot hold X and X nomatch.
      if (cidrContains(x, c.address)) return [];
      continue; // disjoint: excepts nothing
    }
    if (!cidrContains(c, x.address)) continue; // outside the block: excepts nothing
    if (seen.has(x.text)) continue;
    seen.add(x.text);
    entries.push(`${x.text} nomatch`);
  }
  return entries;
}

/** The rules of one local pod's chain. */
function podChainRules(
  pod: PodInfo,
  ip: string,
  family: Family,
  ingress: NetworkPolicyInfo[],
  egress: NetworkPolicyInfo[],
  names: NameHasher,
): FwRule[] {
  const who = `${pod.namespace}/${pod.name}`;
  const rules: FwRule[] = [
    {
      matches: [],
      verdict: { k: "jump", chain: COMMON_CHAIN },
      comment: `rule to jump traffic of POD ${who} to chain ${COMMON_CHAIN}`,
    },
    {
      matches: [{ k: "addr", dir: "dst", cidr: ip }, { k: "local", dir: "src" }],
      verdict: { k: "accept" },
      comment: `rule to permit the traffic to POD ${who} when the source is the pod's local node`,
    },
  ];
  for (const [dir, pols] of [["ingress", ingress], ["egress", egress]] as const) {
    const side = dir === "ingress" ? "dst" : "src";
    if (pols.length === 0) {
      rules.push({
        matches: [{ k: "addr", dir: side, cidr: ip }],
        verdict: { k: "jump", chain: DEFAULT_CHAIN },
        comment: `rule to allow ${dir} of POD ${who}: no network policy selects it`,
      });
    }
    for (const pol of pols) {
      rules.push({
        matches: [{ k: "addr", dir: side, cidr: ip }],
        verdict: { k: "jump", chain: names.policyChain(pol.namespace, pol.name, family, dir) },
        comment: `run ${dir} of POD ${who} through network policy ${pol.namespace}/${pol.name}`,
      });
    }
  }
  const notAllowed: Match = { k: "mark", value: MARK_ALLOWED, mask: MARK_ALLOWED, negate: true };
  rules.push(
    {
      matches: [notAllowed, { k: "limit", perMinute: 10, burst: 10 }],
      verdict: { k: "nflog", group: NFLOG_GROUP },
      comment: `rule to log dropped traffic of POD ${who}`,
    },
    {
      matches: [notAllowed],
      verdict: { k: "reject" },
      comment: `rule to REJECT traffic of POD ${who} no network policy allows`,
    },
    { matches: [], verdict: { k: "mark", value: 0, mask: MARK_ALLOWED } },
    {
      matches: [],
      verdict: { k: "mark", value: MARK_ACCEPT, mask: MARK_ACCEPT },
      comment: `set mark to ACCEPT traffic of POD ${who} that complies with network policies`,
    },
  );
  return rules;
}
