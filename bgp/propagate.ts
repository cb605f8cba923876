/**
 * The protocol rules that decide whether and how a path crosses a session, independent of any
 * configured policy (RFC 4271 §5 and §9.1.3, RFC 4456, RFC 1997):
 *
 * - import: own-AS loop (eBGP), ORIGINATOR_ID and CLUSTER_LIST loops (RFC 4456 §8); LOCAL_PREF,
 *   ORIGINATOR_ID and CLUSTER_LIST received over eBGP are ignored (§5.1.5, RFC 4456 §8).
 * - export: never back to the source; NO_ADVERTISE to nobody, NO_EXPORT / NO_EXPORT_SUBCONFED not
 *   to eBGP (we run no confederation, so both mean "stay in the AS"); iBGP split horizon unless
 *   we reflect (client → everyone, non-client → clients only), setting ORIGINATOR_ID and
 *   prepending our CLUSTER_ID; to eBGP: prepend our AS, next hop self, no LOCAL_PREF, no MED
 *   learned from another AS (§5.1.4), no RR attributes; to iBGP: LOCAL_PREF always present,
 *   next hop unchanged unless next-hop-self (locally originated paths use our address when they
 *   carry none).
 *
 * @module
 */

import { AFI, type Afi, type PathAttributes, WellKnownCommunity } from "./codec/types.ts";
import { DEFAULT_LOCAL_PREF, type SourceFacts } from "./decide.ts";
import { prependAsns } from "./policy.ts";

/** Path attributes as the RIB keeps them: the next hop (either family) is always in `nextHop`. */
export interface RibAttrs extends PathAttributes {
  nextHop: string;
  /** IPv6 link-local next hop sent next to the global one (RFC 2545 §3). */
  nextHopLinkLocal?: string;
}

/** Our side of the speaker. */
export interface LocalFacts {
  asn: number;
  routerId: string;
  /** CLUSTER_ID when reflecting: configured, else our router ID (RFC 4456 §7). */
  clusterId: string;
}

/** The peer a path is sent to, as the export rules see it. */
export interface TargetFacts {
  address: string;
  asn: number;
  ebgp: boolean;
  rrClient: boolean;
  nextHopSelf: boolean;
  /** Next-hop-self addresses per family: the session's local address of that family or a configured one. */
  selfV4?: string;
  selfV6?: string;
  selfV6LinkLocal?: string;
}

/** Why a received path is dropped before policy, or null when it may be imported. */
export function importLoop(attrs: PathAttributes, from: SourceFacts, local: LocalFacts): string | null {
  if (from.ebgp && attrs.asPath?.some((s) => s.asns.includes(local.asn))) {
    return `AS_PATH contains our AS ${local.asn}`;
  }
  if (!from.ebgp) {
    if (attrs.originatorId === local.routerId) return `ORIGINATOR_ID is our router ID ${local.routerId}`;
    if (attrs.clusterList?.includes(local.clusterId)) {
      return `CLUSTER_LIST contains our cluster ID ${local.clusterId}`;
    }
  }
  return null;
}

/** Strip what a path must not carry in from this source (eBGP: LOCAL_PREF and RR attributes). */
export function importNormalise<T extends PathAttributes>(attrs: T, from: SourceFacts): T {
  if (!from.ebgp) return attrs;
  if (attrs.localPref === undefined && attrs.originatorId === undefined && attrs.clusterList === undefined) {
    return attrs;
  }
  const { localPref: _l, originatorId: _o, clusterList: _c, ...rest } = attrs;
  return rest as T;
}

/**
 * The attributes to send `to` for a best path from `src`, before export policy; null when the
 * protocol forbids sending it. `nextHopDirective` comes from the export policy.
 */
export function exportAttrs(
  attrs: RibAttrs,
  src: SourceFacts,
  to: TargetFacts,
  local: LocalFacts,
  afi: Afi,
  opts: { originatorIdOf?: string } = {},
): RibAttrs | null {
  if (!src.local && src.address === to.address) return null;
  const comms = attrs.communities;
  if (comms) {
    if (comms.includes(WellKnownCommunity.NoAdvertise)) return null;
    if (
      to.ebgp &&
      (comms.includes(WellKnownCommunity.NoExport) || comms.includes(WellKnownCommunity.NoExportSubconfed))
    ) return null;
  }
  const self = afi === AFI.IPv4 ? to.selfV4 : to.selfV6;
  const out: RibAttrs = { ...attrs };
  if (to.ebgp) {
    out.asPath = prependAsns(attrs.asPath, [local.asn]);
    delete out.localPref;
    if (!src.local) delete out.med; // §5.1.4: a MED learned from an AS never leaves for another AS
    delete out.originatorId;
    delete out.clusterList;
    if (!self) return null;
    out.nextHop = self;
    if (afi === AFI.IPv6 && to.selfV6LinkLocal) out.nextHopLinkLocal = to.selfV6LinkLocal;
    else delete out.nextHopLinkLocal;
    return out;
  }
  // iBGP target.
  if (!src.local && !src.ebgp) {
    // Learned over iBGP: split horizon unless we reflect (RFC 4456 §6).
    if (!src.rrClient && !to.rrClient) return null;
    out.originatorId = attrs.originatorId ?? opts.originatorIdOf ?? src.routerId;
    out.clusterList = [local.clusterId, ...(attrs.clusterList ?? [])];
  }
  out.localPref = attrs.localPref ?? DEFAULT_LOCAL_PREF;
  if (to.nextHopSelf || (src.local && (attrs.nextHop === "" || attrs.nextHop === undefined))) {
    if (!self) return null;
    out.nextHop = self;
    if (afi === AFI.IPv6 && to.selfV6LinkLocal) out.nextHopLinkLocal = to.selfV6LinkLocal;
    else delete out.nextHopLinkLocal;
  }
  if (out.nextHop === "" || out.nextHop === undefined) return null;
  return out;
}

/** Apply an export policy's next-hop directive to already-exported attributes. */
export function applyNextHopDirective(
  attrs: RibAttrs,
  directive: "self" | "unchanged" | string | undefined,
  original: RibAttrs,
  to: TargetFacts,
  afi: Afi,
): RibAttrs | null {
  if (directive === undefined) return attrs;
  if (directive === "unchanged") {
    if (!original.nextHop) return attrs;
    return { ...attrs, nextHop: original.nextHop, nextHopLinkLocal: original.nextHopLinkLocal };
  }
  if (directive === "self") {
    const self = afi === AFI.IPv4 ? to.selfV4 : to.selfV6;
    return self ? { ...attrs, nextHop: self } : null;
  }
  return { ...attrs, nextHop: directive };
}
