/**
 * Import and export policies as upstream builds them (reference §4), expressed as `bgp/policy.ts`
 * statements and attached per peer (our speaker has per-peer policies rather than GoBGP's global
 * ones with neighbor sets; the effect is the same).
 *
 * - Export to node peers: accept this node's pod CIDRs; reject everything else.
 * - Export to external peers: accept service VIPs, and pod CIDRs with `--advertise-pod-cidr`,
 *   with the node's communities, AS-path prepend and `--override-nexthop`; reject the rest.
 * - Import from everyone: reject service VIPs, the default route and the custom reject list;
 *   accept the rest.
 * - A route-reflector server gets neither (it reflects everything).
 *
 * @module
 */
import {
  parsePrefix,
  type Policy,
  type PolicyActions,
  type PolicyStatement,
  type Prefix,
  SLOPPY_PREFIX,
} from "../../bgp/mod.ts";
import type { Advertisement } from "./advertise.ts";
import { ANN, parseAsn, type PlanProblem, type RoutingNode } from "./identity.ts";

const WELL_KNOWN: Record<string, number> = {
  "graceful-shutdown": 0xffff0000,
  "accept-own": 0xffff0001,
  "llgr-stale": 0xffff0006,
  "no-llgr": 0xffff0007,
  "blackhole": 0xffff029a,
  "no-export": 0xffffff01,
  "no-advertise": 0xffffff02,
  "no-export-subconfed": 0xffffff03,
  "local-as": 0xffffff03,
  "no-peer": 0xffffff04,
};

/** One community: decimal uint32, `AA:NN` (16-bit halves) or a well-known name. */
export function parseCommunity(s: string): number | null {
  const t = s.trim();
  if (/^\d+$/.test(t)) {
    const v = Number(t);
    return v <= 0xffffffff ? v : null;
  }
  const m = /^(\d+):(\d+)$/.exec(t);
  if (m) {
    const a = Number(m[1]), n = Number(m[2]);
    return a <= 0xffff && n <= 0xffff ? a * 65536 + n : null;
  }
  return WELL_KNOWN[t.toLowerCase()] ?? null;
}

/** The export actions for external peers from the node's annotations and flags. */
export function externalExportActions(
  local: RoutingNode,
  overrideNexthop: boolean,
  problems: PlanProblem[],
): PolicyActions {
  const obj = `node/${local.name}`;
  const actions: PolicyActions = { result: "accept" };
  const rawC = local.annotations[ANN.communities];
  if (rawC !== undefined && rawC.trim() !== "") {
    const cs: number[] = [];
    for (const c of rawC.split(",")) {
      const v = parseCommunity(c);
      if (v === null) {
        problems.push({
          object: obj,
          field: `annotation ${ANN.communities}`,
          message: `${
            JSON.stringify(c.trim())
          } is not a community (expected a uint32, AA:NN or a well-known name like no-export); skipped`,
        });
      } else cs.push(v);
    }
    if (cs.length > 0) actions.addCommunities = cs;
  }
  const asRaw = local.annotations[ANN.prependAs], nRaw = local.annotations[ANN.prependRepeat];
  if (asRaw !== undefined || nRaw !== undefined) {
    const asn = asRaw === undefined ? null : parseAsn(asRaw);
    const n = nRaw !== undefined && /^\d+$/.test(nRaw.trim()) ? Number(nRaw.trim()) : null;
    if (asn === null || asn === 0 || n === null || n < 1 || n > 255) {
      problems.push({
        object: obj,
        field: `annotations ${ANN.prependAs}/${ANN.prependRepeat}`,
        message: `need both an ASN and a repeat count 1-255 (got ${JSON.stringify(asRaw)} and ${
          JSON.stringify(nRaw)
        }); no prepending`,
      });
    } else actions.asPathPrepend = { asn, count: n };
  }
  if (overrideNexthop) actions.nextHop = "self";
  return actions;
}

/** The custom import reject list: CIDRs (and everything inside them) never imported. */
export function customImportReject(local: RoutingNode, problems: PlanProblem[]): Prefix[] {
  const raw = local.annotations[ANN.importReject];
  if (raw === undefined || raw.trim() === "") return [];
  const out: Prefix[] = [];
  for (const s of raw.split(",")) {
    const p = s.includes("/") ? parsePrefix(s.trim(), SLOPPY_PREFIX) : null;
    if (!p) {
      problems.push({
        object: `node/${local.name}`,
        field: `annotation ${ANN.importReject}`,
        message: `${JSON.stringify(s.trim())} is not a CIDR; skipped`,
      });
    } else out.push(p);
  }
  return out;
}

function exact(prefixes: string[]) {
  return prefixes.map((s) => ({ prefix: parsePrefix(s, SLOPPY_PREFIX)! }));
}

function maxLen(p: Prefix): number {
  return p.afi === 1 ? 32 : 128;
}

export interface Policies {
  exportToNodes?: Policy;
  exportToExternal?: Policy;
  import?: Policy;
}

/** Builds the three policies; `undefined` everywhere for a route-reflector server. */
export function buildPolicies(args: {
  rrServer: boolean;
  advertisements: Advertisement[];
  serviceVips: string[];
  externalActions: PolicyActions;
  advertisePodCidr: boolean;
  importReject: Prefix[];
}): Policies {
  if (args.rrServer) return {};
  const pod = args.advertisements.filter((a) => a.kind === "pod-cidr").map((a) => a.prefix);
  const vips = args.advertisements.filter((a) => a.kind !== "pod-cidr").map((a) => a.prefix);
  // Empty prefix lists are left out: an empty match would match everything.
  const toNodes: PolicyStatement[] = pod.length > 0
    ? [{ name: "podcidrdefinedset", match: { prefixes: exact(pod) }, actions: { result: "accept" } }]
    : [];
  const toExt: PolicyStatement[] = [];
  if (vips.length > 0) {
    toExt.push({
      name: "servicevipsdefinedset",
      match: { prefixes: exact(vips) },
      actions: args.externalActions,
    });
  }
  if (args.advertisePodCidr && pod.length > 0) {
    toExt.push({ name: "podcidrdefinedset", match: { prefixes: exact(pod) }, actions: args.externalActions });
  }
  const imp: PolicyStatement[] = [];
  if (args.serviceVips.length > 0) {
    imp.push({
      name: "servicevipsdefinedset",
      match: { prefixes: exact(args.serviceVips) },
      actions: { result: "reject" },
    });
  }
  imp.push({
    name: "defaultroutedefinedset",
    match: { prefixes: exact(["0.0.0.0/0", "::/0"]) },
    actions: { result: "reject" },
  });
  if (args.importReject.length > 0) {
    imp.push({
      name: "customimportrejectdefinedset",
      match: { prefixes: args.importReject.map((p) => ({ prefix: p, ge: p.len, le: maxLen(p) })) },
      actions: { result: "reject" },
    });
  }
  return {
    exportToNodes: { statements: toNodes, default: "reject" },
    exportToExternal: { statements: toExt, default: "reject" },
    import: { statements: imp, default: "accept" },
  };
}
