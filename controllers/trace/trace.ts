/**
 * `kube-router trace`: what happens to one new connection, computed from the plans the kernel
 * gets. The proxy's plan on the entry node says which virtual service the destination is and
 * which backends it balances to; the firewall's plan of each node the packet crosses, walked by
 * the firewall's packet tracer, says which rule admits or drops it; the routes the routing
 * controller installs for the other nodes' pod CIDRs say how it gets there.
 *
 * Address translation is applied where the kernel applies it: DNAT to the backend before the
 * filter hooks (so the firewall sees the backend address and target port); masquerading after
 * them (so only the backend's node, when it is not the entry node, sees the node's address).
 *
 * Modelled, not measured: the node subnet of each node is taken as the /24 (IPv4) or /64 (IPv6)
 * around its address (the cluster's objects do not carry it), which decides direct route vs.
 * tunnel under `--overlay-type=subnet`.
 *
 * @module
 */
import type { AgentOptions } from "../../options/mod.ts";
import type { ClusterSnapshot, NodeInfo, PodInfo, ServiceInfo } from "../../watch/types.ts";
import { planFirewall } from "../firewall/plan.ts";
import type { FamilyState } from "../firewall/model.ts";
import { isEmptySelector, selectorMatches } from "../firewall/selector.ts";
import { type Packet, trace as tracePacket } from "../firewall/trace.ts";
import { nodeIdentity } from "../proxy/controller.ts";
import { plan as planProxy } from "../proxy/plan.ts";
import type { ProxyPlan, VirtualService } from "../proxy/types.ts";
import { kernelPlan, type RouteContext } from "../router/routes.ts";

export type Protocol = "tcp" | "udp" | "sctp";

export interface TraceQuery {
  /** `namespace/pod`, `pod/namespace/name`, `node/NAME`, or an IP (a pod's, a node's, or an outside address). */
  from: string;
  /** `namespace/pod`, `pod/…`, `svc/namespace/name` (`service/…`), `node/NAME`, or an IP. */
  to: string;
  port: number;
  protocol: Protocol;
  /**
   * The node an outside packet enters (a LoadBalancer/external IP's next hop). Default: the node
   * that owns the destination address, else the source's node, else the first node by name.
   */
  entryNode?: string;
}

export interface Party {
  kind: "pod" | "node" | "service" | "external";
  ip: string;
  /** `namespace/name` of a pod or service. */
  name?: string;
  node?: string;
  /** Policies selecting a pod, by direction they apply to it. */
  policies?: { ingress: string[]; egress: string[] };
}

export interface FirewallStep {
  node: string;
  /** Which netfilter hook of that node's rules the packet crosses. */
  hook: Packet["hook"];
  direction: "egress" | "ingress" | "host";
  src: string;
  dst: string;
  outcome: "accept" | "drop" | "reject" | "continue";
  /** The rule that decided (its comment), or why nothing of ours did. */
  decidedBy: string;
  /** Chains and rule numbers walked, e.g. `KUBE-ROUTER-FORWARD#2 KUBE-POD-FW-…#5`. */
  path: string[];
}

export interface PathReport {
  /** Where the packet is finally delivered. */
  target: Party & { port: number };
  firewall: FirewallStep[];
  route: string;
  verdict: "allowed" | "dropped" | "rejected";
}

export interface TraceReport {
  query: TraceQuery;
  source: Party;
  destination: Party;
  entryNode: string;
  /** Present when the destination is a Service's address and port. */
  service?: {
    name: string;
    vip: string;
    port: number;
    kind: string;
    scheduler: string;
    masquerade: boolean;
    /** Why no backend can be reached, when none can. */
    noBackends?: string;
  };
  paths: PathReport[];
  /** `allowed` when at least one path is, else the first path's verdict (or `rejected` without backends). */
  verdict: "allowed" | "dropped" | "rejected";
  /** Backends (pods or addresses) the connection can reach. */
  reachable: string[];
}

/** Errors the CLI reports as bad usage: a name that resolves to nothing. */
export class TraceInputError extends Error {}

function isIp(s: string): boolean {
  return /^\d+\.\d+\.\d+\.\d+$/.test(s) || (s.includes(":") && /^[0-9a-fA-F:.]+$/.test(s));
}

const v6 = (ip: string) => ip.includes(":");

function nodeIps(n: NodeInfo): string[] {
  return [...n.internalIPs, ...n.externalIPs];
}

function podByName(snap: ClusterSnapshot, key: string): PodInfo | undefined {
  return snap.pods.get(key);
}

function podByIp(snap: ClusterSnapshot, ip: string): PodInfo | undefined {
  return [...snap.pods.values()].find((p) =>
    !p.hostNetwork && p.podIPs.includes(ip) && p.phase !== "Succeeded"
  );
}

/** The node owning an address: from Node objects, else from pods' `hostIP` (a cluster may list no Nodes to us). */
function nodeByIp(snap: ClusterSnapshot, ip: string): string | undefined {
  const n = [...snap.nodes.values()].find((n) => nodeIps(n).includes(ip));
  if (n) return n.name;
  return [...snap.pods.values()].find((p) => p.hostIP === ip && p.nodeName)?.nodeName;
}

function knownNode(snap: ClusterSnapshot, name: string): boolean {
  return snap.nodes.has(name) || [...snap.pods.values()].some((p) => p.nodeName === name);
}

/** Policies selecting a pod, per direction (the ones whose rules decide its traffic). */
export function policiesSelecting(
  snap: ClusterSnapshot,
  pod: PodInfo,
): { ingress: string[]; egress: string[] } {
  const out = { ingress: [] as string[], egress: [] as string[] };
  for (const p of [...snap.networkPolicies.values()].sort((a, b) => a.name.localeCompare(b.name))) {
    if (p.namespace !== pod.namespace) continue;
    if (!isEmptySelector(p.podSelector) && !selectorMatches(p.podSelector, pod.labels)) continue;
    if (p.policyTypes.includes("Ingress")) out.ingress.push(`${p.namespace}/${p.name}`);
    if (p.policyTypes.includes("Egress")) out.egress.push(`${p.namespace}/${p.name}`);
  }
  return out;
}

function podParty(snap: ClusterSnapshot, pod: PodInfo, ip?: string): Party {
  return {
    kind: "pod",
    ip: ip ?? pod.podIPs[0],
    name: `${pod.namespace}/${pod.name}`,
    node: pod.nodeName,
    policies: policiesSelecting(snap, pod),
  };
}

function ipParty(snap: ClusterSnapshot, ip: string): Party {
  const pod = podByIp(snap, ip);
  if (pod) return podParty(snap, pod, ip);
  const node = nodeByIp(snap, ip);
  if (node) return { kind: "node", ip, name: node, node };
  return { kind: "external", ip };
}

function stripKind(text: string, kinds: string[]): string | undefined {
  for (const k of kinds) if (text.startsWith(`${k}/`)) return text.slice(k.length + 1);
  return undefined;
}

/** `node/NAME`: the node's first address (from its Node object, else its pods' `hostIP`). */
function nodeParty(snap: ClusterSnapshot, text: string): Party | undefined {
  const name = stripKind(text, ["node", "nodes"]);
  if (name === undefined) return undefined;
  const n = snap.nodes.get(name);
  const ip = (n ? nodeIps(n)[0] : undefined) ??
    [...snap.pods.values()].find((p) => p.nodeName === name && p.hostIP)?.hostIP;
  if (!ip) throw new TraceInputError(`${JSON.stringify(text)}: no node ${name} with an address`);
  return { kind: "node", ip, name, node: name };
}

export function resolveSource(snap: ClusterSnapshot, text: string): Party {
  if (isIp(text)) return ipParty(snap, text);
  const node = nodeParty(snap, text);
  if (node) return node;
  const key = stripKind(text, ["pod", "pods"]) ?? text;
  const pod = podByName(snap, key);
  if (!pod) {
    throw new TraceInputError(`source ${JSON.stringify(text)}: no pod ${key} (use namespace/name or an IP)`);
  }
  if (!pod.podIPs.length) throw new TraceInputError(`source pod ${key} has no IP yet`);
  return podParty(snap, pod);
}

/** The destination and, for a Service name, the address to send to (its first ClusterIP). */
export function resolveDestination(
  snap: ClusterSnapshot,
  text: string,
): { party: Party; service?: ServiceInfo } {
  if (isIp(text)) return { party: ipParty(snap, text) };
  const node = nodeParty(snap, text);
  if (node) return { party: node };
  const svcKey = stripKind(text, ["svc", "service", "services"]);
  const podKey = stripKind(text, ["pod", "pods"]);
  if (podKey === undefined) {
    const svc = snap.services.get(svcKey ?? text);
    if (svc && (svcKey !== undefined || !snap.pods.has(text))) {
      const ip = svc.clusterIPs.find((a) => a && a !== "None");
      if (!ip) throw new TraceInputError(`service ${svcKey ?? text} has no cluster IP to trace to`);
      return { party: { kind: "service", ip, name: `${svc.namespace}/${svc.name}` }, service: svc };
    }
    if (svcKey !== undefined) {
      throw new TraceInputError(`destination ${JSON.stringify(text)}: no service ${svcKey}`);
    }
  }
  const pod = podByName(snap, podKey ?? text);
  if (!pod) {
    throw new TraceInputError(
      `destination ${JSON.stringify(text)}: no pod or service ${
        podKey ?? text
      } (use namespace/name, svc/namespace/name or an IP)`,
    );
  }
  if (!pod.podIPs.length) throw new TraceInputError(`destination pod ${podKey ?? text} has no IP yet`);
  return { party: podParty(snap, pod) };
}

/** Plans computed once per node for one trace. */
class Plans {
  #fw = new Map<string, FamilyState[]>();
  #proxy = new Map<string, ProxyPlan>();
  constructor(readonly snap: ClusterSnapshot, readonly options: AgentOptions) {}

  firewall(node: string, ip: string): FamilyState {
    let fams = this.#fw.get(node);
    if (!fams) {
      fams = planFirewall(this.snap, this.options, node).families;
      this.#fw.set(node, fams);
    }
    const st = fams.find((f) => f.family === (v6(ip) ? "ipv6" : "ipv4"));
    if (!st) {
      throw new TraceInputError(`the ${v6(ip) ? "IPv6" : "IPv4"} family is not enabled (--enable-ipv*)`);
    }
    return st;
  }

  proxy(node: string): ProxyPlan {
    let p = this.#proxy.get(node);
    if (!p) {
      const n = this.snap.nodes.get(node);
      // The node's own addresses stand in for what the kernel would list (NodePorts bind there).
      const addrs = (n ? nodeIps(n) : []).map((ip) => ({
        dev: "eth0",
        ip,
        prefixlen: v6(ip) ? 64 : 24,
        scope: "global",
      }));
      p = planProxy(this.snap, this.options, nodeIdentity(this.snap, node, addrs));
      this.#proxy.set(node, p);
    }
    return p;
  }
}

function ruleComment(st: FamilyState, step: string): string {
  const [chain, idx] = step.split("#");
  return st.chains.get(chain)?.[Number(idx)]?.comment ?? step;
}

function firewallStep(
  plans: Plans,
  node: string,
  pkt: Packet,
  direction: FirewallStep["direction"],
): FirewallStep {
  const st = plans.firewall(node, pkt.dst);
  const r = tracePacket(st, pkt);
  const last = r.path[r.path.length - 1];
  // An accept is decided by the policy rules (or the absence of a policy) that set the mark the
  // final generic accept tests: name those.
  const reasons = r.path.map((p) => ruleComment(st, p)).filter((c) =>
    /ACCEPT (ingress|egress) traffic of network policy|no network policy selects it|source is the pod's local node/
      .test(c)
  );
  const decidedBy = r.outcome === "continue"
    ? "no rule of kube-router decides: the hook's default policy (ACCEPT) applies"
    : r.outcome === "accept" && reasons.length
    ? [...new Set(reasons)].join("; ")
    : last
    ? ruleComment(st, last)
    : "";
  return {
    node,
    hook: pkt.hook,
    direction,
    src: pkt.src,
    dst: pkt.dst,
    outcome: r.outcome,
    decidedBy,
    path: r.path.map((p) => {
      const c = ruleComment(st, p);
      return c === p ? p : `${p} (${c})`;
    }),
  };
}

/** The firewall hooks a packet crosses from `src` to the (post-DNAT) `dst`, per upstream's model. */
function firewallSteps(
  plans: Plans,
  src: Party,
  dst: Party,
  port: number,
  proto: Protocol,
  opts: { entryNode: string; masqueradeTo?: string },
): FirewallStep[] {
  const base = { proto, dport: port, ct: "NEW" as const };
  const steps: FirewallStep[] = [];
  const dstNode = dst.kind === "pod" || dst.kind === "node" ? dst.node! : undefined;
  const srcNode = src.kind === "pod" || src.kind === "node" ? src.node! : undefined;
  if (src.kind === "pod") {
    if (dst.kind === "node" && dstNode === srcNode) {
      steps.push(
        firewallStep(
          plans,
          srcNode!,
          { ...base, src: src.ip, dst: dst.ip, hook: "INPUT", dstLocal: true },
          "egress",
        ),
      );
      return steps;
    }
    steps.push(
      firewallStep(plans, srcNode!, { ...base, src: src.ip, dst: dst.ip, hook: "FORWARD" }, "egress"),
    );
    if (dstNode === srcNode || !dstNode) return steps;
  } else if (src.kind === "node") {
    steps.push(firewallStep(
      plans,
      srcNode!,
      {
        ...base,
        src: src.ip,
        dst: dst.ip,
        hook: "OUTPUT",
        srcLocal: true,
        dstLocal: dstNode === srcNode && dst.kind === "node",
      },
      "host",
    ));
    if (dstNode === srcNode || !dstNode) return steps;
  } else if (dstNode && opts.entryNode !== dstNode) {
    // From outside through another node (a service's entry node): that node forwards it.
    steps.push(
      firewallStep(plans, opts.entryNode, { ...base, src: src.ip, dst: dst.ip, hook: "FORWARD" }, "egress"),
    );
  }
  if (!dstNode) return steps;
  // On the destination's node: masquerading (after the entry node's filter) shows the entry node's address.
  const seenSrc = opts.masqueradeTo && opts.entryNode !== dstNode ? opts.masqueradeTo : src.ip;
  if (dst.kind === "node") {
    steps.push(
      firewallStep(
        plans,
        dstNode,
        { ...base, src: seenSrc, dst: dst.ip, hook: "INPUT", dstLocal: true },
        "ingress",
      ),
    );
  } else {
    steps.push(
      firewallStep(plans, dstNode, { ...base, src: seenSrc, dst: dst.ip, hook: "FORWARD" }, "ingress"),
    );
  }
  return steps;
}

/** How a packet from node `from` reaches `dst` (routes the routing controller installs). */
function routeFrom(
  snap: ClusterSnapshot,
  options: AgentOptions,
  from: string | undefined,
  dst: Party,
): string {
  if (!from) return dst.node ? `enters node ${dst.node} from outside the cluster` : "outside the cluster";
  if (!dst.node) return `leaves node ${from} by its default route (not a cluster address)`;
  if (dst.node === from) {
    return dst.kind === "pod"
      ? `same node ${from}: bridged on kube-bridge`
      : `delivered locally on node ${from}`;
  }
  const me = snap.nodes.get(from);
  const them = snap.nodes.get(dst.node);
  if (!me || !them) return `to node ${dst.node}`;
  if (dst.kind === "node") return `node ${from} to node ${dst.node} over the node network`;
  const fam = v6(dst.ip) ? "v6" : "v4";
  const myIp = me.internalIPs.find((a) => (fam === "v6") === v6(a));
  const subnet = (ip: string) => `${ip}/${v6(ip) ? 64 : 24}`;
  const ctx: RouteContext = {
    overlay: {
      enabled: options.enableOverlay,
      type: options.overlayType === "full" ? "full" : "subnet",
      encap: options.overlayEncap === "vxlan" ? "vxlan" : options.overlayEncap === "fou" ? "fou" : "ipip",
      encapPort: options.overlayEncapPort,
    },
    localSubnets: me.internalIPs.map(subnet),
    nodeIp: { v4: me.internalIPs.find((a) => !v6(a)), v6: me.internalIPs.find(v6) },
    nodeIps: new Set([...snap.nodes.values()].flatMap(nodeIps)),
    localPodCidrs: me.podCIDRs,
  };
  const nh = them.internalIPs.find((a) => (fam === "v6") === v6(a));
  if (!nh || !myIp) return `no ${fam} address on node ${dst.node}: no route`;
  const learned = them.podCIDRs.filter((c) => (fam === "v6") === c.includes(":")).map((prefix) => ({
    prefix,
    nextHop: nh,
  }));
  const k = kernelPlan(learned, ctx);
  const r = k.routes.find((x) => !x.table && learned.some((l) => l.prefix === x.dst));
  if (!r) return `no route: node ${dst.node} (${nh}) is off-subnet and the overlay is off (--enable-overlay)`;
  const tunnel = k.tunnels.find((t) => t.name === r.dev);
  return `route ${r.dst} via ${r.via}${r.dev ? ` dev ${r.dev}` : ""}${
    tunnel ? ` (${tunnel.encap} tunnel ${tunnel.local} → ${tunnel.remote})` : r.dev ? " (VXLAN overlay)" : ""
  }, learned over BGP from ${dst.node}`;
}

function verdictOf(steps: FirewallStep[]): PathReport["verdict"] {
  for (const s of steps) {
    if (s.outcome === "drop") return "dropped";
    if (s.outcome === "reject") return "rejected";
  }
  return "allowed";
}

/** The Service an address and port belong to, by the cluster's objects (whatever a node programs). */
function serviceAt(
  snap: ClusterSnapshot,
  ip: string,
  proto: Protocol,
  port: number,
): ServiceInfo | undefined {
  const nodeIp = nodeByIp(snap, ip) !== undefined;
  for (const svc of snap.services.values()) {
    const ports = svc.ports.filter((p) => p.protocol.toLowerCase() === proto);
    const vips = [...svc.clusterIPs, ...svc.externalIPs, ...svc.loadBalancerIPs.map((i) => i.ip)];
    if (vips.includes(ip)) return svc;
    if (nodeIp && ports.some((p) => p.nodePort === port)) return svc;
  }
  return undefined;
}

function findService(plan: ProxyPlan, ip: string, proto: Protocol, port: number): VirtualService | undefined {
  return plan.services.find((s) => s.vip === ip && s.protocol.toLowerCase() === proto && s.port === port);
}

/** Traces one new connection. Pure over the snapshot and options. */
export function traceConnection(snap: ClusterSnapshot, options: AgentOptions, q: TraceQuery): TraceReport {
  const plans = new Plans(snap, options);
  const source = resolveSource(snap, q.from);
  const { party: destination, service: namedService } = resolveDestination(snap, q.to);
  const nodesByName = [...snap.nodes.keys()].sort();
  const entryNode = q.entryNode ??
    (destination.kind === "node" ? destination.node : undefined) ??
    source.node ??
    (destination.kind === "pod" ? destination.node : undefined) ??
    nodesByName[0];
  if (!entryNode || !knownNode(snap, entryNode)) {
    throw new TraceInputError(`entry node ${JSON.stringify(entryNode ?? "")} is not a node of the cluster`);
  }
  const report: TraceReport = {
    query: q,
    source,
    destination,
    entryNode,
    paths: [],
    verdict: "allowed",
    reachable: [],
  };

  const proxy = plans.proxy(entryNode);
  const vs = findService(proxy, destination.ip, q.protocol, q.port);
  const addressed = namedService ?? serviceAt(snap, destination.ip, q.protocol, q.port);
  if (vs || addressed) {
    if (destination.kind === "external" && addressed) {
      report.destination = {
        ...destination,
        kind: "service",
        name: `${addressed.namespace}/${addressed.name}`,
      };
    }
    if (!vs) {
      const reject = proxy.rejects.find((r) =>
        r.vip === destination.ip && r.protocol.toLowerCase() === q.protocol && r.port === q.port
      );
      const servesPort = addressed?.ports.some((p) =>
        p.protocol.toLowerCase() === q.protocol && p.port === q.port
      );
      report.service = {
        name: addressed ? `${addressed.namespace}/${addressed.name}` : reject?.service ?? "",
        vip: destination.ip,
        port: q.port,
        kind: addressed?.type.toLowerCase() ?? "",
        scheduler: "",
        masquerade: false,
        noBackends: reject
          ? "the service has no ready endpoint: new connections are rejected"
          : !servesPort
          ? `the service has no ${q.protocol.toUpperCase()} port ${q.port}`
          : `node ${entryNode} balances nothing for this address (externalTrafficPolicy Local without a ` +
            "local endpoint, or an address outside the allowed ranges): the connection fails there",
      };
      report.verdict = reject || !servesPort ? "rejected" : "dropped";
      return report;
    }
    const live = vs.realServers.filter((r) => r.weight > 0);
    const masqAddr = proxy.nodeIps[v6(destination.ip) ? 6 : 4];
    // A source pod's own service traffic (hairpin) or --masquerade-all SNATs at the entry node.
    report.service = {
      name: vs.service,
      vip: vs.vip,
      port: vs.port,
      kind: vs.kind,
      scheduler: vs.scheduler,
      masquerade: vs.masquerade,
      ...(live.length === 0 ? { noBackends: "every endpoint is draining or not ready" } : {}),
    };
    for (const rs of live) {
      // The endpoint names its pod: no guessing from the address (a stale object may share it).
      const pod = rs.pod ? snap.pods.get(rs.pod) : undefined;
      const party = pod && pod.podIPs.includes(rs.ip) ? podParty(snap, pod, rs.ip) : ipParty(snap, rs.ip);
      const firewall = firewallSteps(plans, source, party, rs.port, q.protocol, {
        entryNode,
        masqueradeTo: vs.masquerade ? masqAddr : undefined,
      });
      report.paths.push({
        target: { ...party, port: rs.port },
        firewall,
        route: routeFrom(
          snap,
          options,
          source.kind === "external" ? entryNode : source.node ?? entryNode,
          party,
        ),
        verdict: verdictOf(firewall),
      });
    }
  } else {
    const firewall = firewallSteps(plans, source, destination, q.port, q.protocol, { entryNode });
    report.paths.push({
      target: { ...destination, port: q.port },
      firewall,
      route: routeFrom(snap, options, source.node, destination),
      verdict: verdictOf(firewall),
    });
  }
  report.reachable = report.paths.filter((p) => p.verdict === "allowed").map((p) =>
    p.target.name ?? p.target.ip
  );
  report.verdict = report.paths.length === 0
    ? "rejected"
    : report.paths.some((p) => p.verdict === "allowed")
    ? "allowed"
    : report.paths[0].verdict;
  return report;
}

/** The human form of a report. */
export function formatTrace(r: TraceReport): string {
  const who = (p: Party) =>
    p.kind === "pod"
      ? `pod ${p.name} (${p.ip} on ${p.node})`
      : p.kind === "node"
      ? `node ${p.name} (${p.ip})`
      : p.kind === "service"
      ? `service ${p.name} (${p.ip})`
      : `outside address ${p.ip}`;
  const pols = (p: Party) =>
    p.policies
      ? [
        `  ingress policies: ${p.policies.ingress.join(", ") || "none (all ingress allowed)"}`,
        `  egress policies:  ${p.policies.egress.join(", ") || "none (all egress allowed)"}`,
      ]
      : [];
  const out = [
    `trace ${r.query.protocol.toUpperCase()} ${r.query.from} -> ${r.query.to} port ${r.query.port}`,
    `source: ${who(r.source)}`,
    ...pols(r.source),
    `destination: ${who(r.destination)}`,
    ...pols(r.destination),
  ];
  if (r.service) {
    const s = r.service;
    out.push(
      `service ${s.name} ${s.kind} ${s.vip}:${s.port} on entry node ${r.entryNode}` +
        (s.scheduler ? ` (scheduler ${s.scheduler}${s.masquerade ? ", masquerade" : ""})` : ""),
    );
    if (s.noBackends) out.push(`  no backend: ${s.noBackends}`);
  }
  for (const p of r.paths) {
    out.push(`-> ${who(p.target)} port ${p.target.port}: ${p.verdict.toUpperCase()}`);
    if (p.target.policies && r.service) out.push(...pols(p.target).map((l) => `  ${l}`));
    out.push(`   route: ${p.route}`);
    for (const f of p.firewall) {
      out.push(
        `   firewall on ${f.node} (${f.direction}, ${f.hook} ${f.src} -> ${f.dst}): ${f.outcome}: ${f.decidedBy}`,
      );
    }
  }
  out.push(
    `verdict: ${r.verdict.toUpperCase()}${
      r.service ? `; reachable backends: ${r.reachable.join(", ") || "none"}` : ""
    }`,
  );
  return out.join("\n") + "\n";
}
