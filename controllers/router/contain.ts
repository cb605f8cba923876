/**
 * Containment of what the kernel refuses in the router: an `ipset restore` entry of the node
 * sets (a pod CIDR or a node IP), a learned route, an overlay line. Each refusal is traced to the
 * Node it was rendered for (the node whose pod CIDR, annotation or address it is), only that
 * value is left out, the rest is applied, and the Node is reported by name, field and value
 * (controllers/refused.ts). Conversion and the plan stop bad values first; this is for what no
 * check foresees (the kernel refuses a /0 in a hash:net set, which a pod-cidr annotation may say).
 *
 * @module
 */
import { ExecError } from "../../kernel/exec.ts";
import type { ClusterSnapshot } from "../../watch/types.ts";
import type { RefusedObject } from "../refused.ts";
import type { RoutingNode } from "./identity.ts";
import { tunnelName } from "./routes.ts";
import type { RouterPlan } from "./plan.ts";

/** Every node the plan knows (this one first). */
function nodesOf(plan: Pick<RouterPlan, "local" | "remoteNodes">): RoutingNode[] {
  return [...(plan.local ? [plan.local] : []), ...plan.remoteNodes];
}

/** Where a node's pod CIDRs come from (annotations win over spec, as in identity.ts). */
function podCidrField(n: RoutingNode): string {
  if (n.annotations["kube-router.io/pod-cidrs"]) return "annotation kube-router.io/pod-cidrs";
  if (n.annotations["kube-router.io/pod-cidr"]) return "annotation kube-router.io/pod-cidr";
  return "spec.podCIDRs";
}

/** The Node(s) a value (a pod CIDR, a node IP, or a route's destination or next hop) belongs to. */
export function nodesOfValue(
  plan: Pick<RouterPlan, "local" | "remoteNodes">,
  value: string,
  reason: string,
): RefusedObject[] {
  const out: RefusedObject[] = [];
  // A host route (`10.0.0.2/32` in table 77) stands for the node's address.
  const host = /^(.*)\/(32|128)$/.exec(value)?.[1];
  for (const n of nodesOf(plan)) {
    if (n.podCIDRs.includes(value)) {
      out.push({ object: `Node ${n.name}`, field: podCidrField(n), value, reason });
    } else if (n.ipv4 === value || n.ipv6 === value || (host && (n.ipv4 === host || n.ipv6 === host))) {
      out.push({ object: `Node ${n.name}`, field: "status.addresses", value, reason });
    }
  }
  return out;
}

/**
 * The Nodes whose entry `ipset restore` refused (`add SET ENTRY` at the line it names); empty when
 * the error names no entry of a node.
 */
export function refusedSetEntry(err: unknown, plan: RouterPlan): RefusedObject[] {
  if (!(err instanceof ExecError) || !err.offendingLine) return [];
  const m = /^\s*add\s+\S+\s+(\S+)/.exec(err.offendingLine.text);
  if (!m) return [];
  const reason = `ipset refused ${JSON.stringify(err.offendingLine.text.trim())}: ${
    err.stderr.trim().split("\n").slice(-1)[0]
  }`;
  return nodesOfValue(plan, m[1], reason);
}

/** The snapshot's instance of "Node name" (undefined when gone). */
export function nodeInstance(snap: ClusterSnapshot, object: string): unknown {
  const [kind, name] = object.split(" ");
  return kind === "Node" ? snap.nodes.get(name) : undefined;
}

/**
 * The Nodes an overlay line (`link add name tun-… remote IP`, `neigh replace IP …`, `fdb replace
 * … dst IP`) the kernel refused was rendered for: by a node address in the line, or its tunnel's
 * name. Empty when the line names no node.
 */
export function nodesOfLine(
  plan: Pick<RouterPlan, "local" | "remoteNodes">,
  line: string,
  error: string,
): RefusedObject[] {
  const words = new Set(line.split(/\s+/));
  const out: RefusedObject[] = [];
  for (const n of plan.remoteNodes) {
    const ip = [n.ipv4, n.ipv6].find((a) => a && (words.has(a) || words.has(tunnelName(a))));
    if (ip) {
      out.push({
        object: `Node ${n.name}`,
        field: "status.addresses",
        value: ip,
        reason: `ip refused ${JSON.stringify(line)}: ${error}`,
      });
    }
  }
  return out;
}
