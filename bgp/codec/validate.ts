/**
 * Context-aware checks: an OPEN against what configuration expects (RFC 4271 §6.2, RFC 6286,
 * RFC 6793, RFC 7607), and the session options both OPENs negotiate (hold time, families,
 * 4-octet AS, extended messages, route refresh, graceful restart) as a `CodecContext`.
 *
 * @module
 */

import { AS_TRANS } from "./attributes.ts";
import { type BgpError, openError, OpenSubcode, updateError, UpdateSubcode } from "./errors.ts";
import { canonicalIp, parseIPv4 } from "./ip.ts";
import {
  AFI,
  type AfiSafi,
  AsPathSegmentType,
  type Capability,
  type CodecContext,
  type OpenMessage,
  SAFI,
  type UpdateMessage,
} from "./types.ts";

/** What configuration expects of a peer's OPEN. Every field is optional. */
export interface OpenExpectation {
  /** The configured peer AS (4-octet value). */
  peerAs?: number;
  /** Our AS, to tell iBGP from eBGP for the identifier check. */
  localAs?: number;
  /** Our BGP identifier (dotted quad). */
  localRouterId?: string;
  /** Smallest non-zero hold time we accept, in seconds (RFC 4271 §6.2 lets us reject more than 1 and 2). */
  minHoldTime?: number;
}

/** The AS a peer's OPEN announces: the 4-octet AS capability if present, else My AS (RFC 6793 §4.1). */
export function peerAsOf(open: OpenMessage): number {
  for (const c of open.capabilities) if (c.kind === "four-octet-as") return c.asn;
  return open.myAs;
}

/** Checks an OPEN against configuration; null when acceptable, else the error to send. */
export function validateOpen(open: OpenMessage, expect: OpenExpectation): BgpError | null {
  const asn = peerAsOf(open);
  // RFC 7607 §2: AS 0 in the 4-octet AS capability → Bad Peer AS.
  if (asn === 0) return openError(OpenSubcode.BadPeerAs, "OPEN: 4-octet AS capability carries AS 0");
  // RFC 6793 §4.1: a 4-octet ASN must be announced as AS_TRANS in My AS.
  if (asn !== open.myAs && asn <= 0xffff && open.myAs !== AS_TRANS) {
    return openError(
      OpenSubcode.BadPeerAs,
      `OPEN: My AS ${open.myAs} disagrees with the 4-octet AS capability ${asn}`,
    );
  }
  // RFC 4271 §6.2: the peer AS must be the one configured.
  if (expect.peerAs !== undefined && asn !== expect.peerAs) {
    return openError(OpenSubcode.BadPeerAs, `OPEN: peer AS ${asn} is not the configured ${expect.peerAs}`);
  }
  // RFC 6286 §2.2: an internal peer must not use our own BGP identifier.
  if (
    expect.localRouterId !== undefined && expect.localAs !== undefined && asn === expect.localAs &&
    parseIPv4(expect.localRouterId) === parseIPv4(open.routerId)
  ) {
    return openError(
      OpenSubcode.BadBgpIdentifier,
      `OPEN: internal peer uses our own BGP identifier ${open.routerId}`,
    );
  }
  if (expect.minHoldTime !== undefined && open.holdTime !== 0 && open.holdTime < expect.minHoldTime) {
    return openError(
      OpenSubcode.UnacceptableHoldTime,
      `OPEN: hold time ${open.holdTime} s is below the configured minimum ${expect.minHoldTime} s`,
    );
  }
  return null;
}

/** Session options agreed by both OPENs. */
export interface Negotiated {
  /** Codec context for every message after the OPENs. */
  ctx: CodecContext;
  /** min of both hold times (RFC 4271 §4.2); 0 means no keepalives. */
  holdTime: number;
  /** Keepalive interval: one third of the hold time (RFC 4271 §10). */
  keepaliveTime: number;
  /** The peer's AS (4-octet value). */
  peerAs: number;
  /** Our AS as our OPEN announced it. */
  localAs: number;
  /** Both announced route refresh (RFC 2918). */
  routeRefresh: boolean;
  /** The peer's graceful restart capability, if it sent one (RFC 4724). */
  peerGracefulRestart?: Extract<Capability, { kind: "graceful-restart" }>;
}

function families(open: OpenMessage): AfiSafi[] {
  const out: AfiSafi[] = [];
  for (const c of open.capabilities) if (c.kind === "multiprotocol") out.push({ afi: c.afi, safi: c.safi });
  // RFC 4760 §8: a speaker without any MP capability supports IPv4 unicast only.
  return out.length ? out : [{ afi: AFI.IPv4, safi: SAFI.Unicast }];
}

function has(open: OpenMessage, kind: Capability["kind"]): boolean {
  return open.capabilities.some((c) => c.kind === kind);
}

/** What our OPEN and the peer's OPEN agree on. */
export function negotiate(local: OpenMessage, remote: OpenMessage): Negotiated {
  const holdTime = Math.min(local.holdTime, remote.holdTime);
  const mine = families(local);
  const theirs = families(remote);
  const common = mine.filter((f) => theirs.some((g) => g.afi === f.afi && g.safi === f.safi));
  const localAs = peerAsOf(local);
  const peerAs = peerAsOf(remote);
  const gr = remote.capabilities.find((c) =>
    c.kind === "graceful-restart"
  ) as Negotiated["peerGracefulRestart"];
  const out: Negotiated = {
    ctx: {
      fourOctetAs: has(local, "four-octet-as") && has(remote, "four-octet-as"),
      extendedMessages: has(local, "extended-message") && has(remote, "extended-message"),
      families: common,
      ebgp: localAs !== peerAs,
    },
    holdTime,
    keepaliveTime: Math.floor(holdTime / 3),
    peerAs,
    localAs,
    routeRefresh: has(local, "route-refresh") && has(remote, "route-refresh"),
  };
  if (gr) out.peerGracefulRestart = gr;
  return out;
}

/** What the session knows when checking a decoded UPDATE against its configuration. */
export interface UpdateExpectation {
  /** The peer's AS; with `ebgp`, the leftmost AS of AS_PATH must be it (unless `enforceFirstAs` is false). */
  peerAs?: number;
  /** The session is external. */
  ebgp?: boolean;
  /** Check the leftmost AS on eBGP sessions (default true; a route server peer does not prepend itself). */
  enforceFirstAs?: boolean;
  /** Our own addresses on the session: a next hop equal to one of them is semantically incorrect. */
  localAddresses?: string[];
}

/**
 * Checks a decoded UPDATE against configuration; null when acceptable, else an error whose
 * handling is treat-as-withdraw (the caller marks the UPDATE `treatAsWithdraw`). Only UPDATEs that
 * carry reachable NLRI are checked.
 */
export function checkUpdate(u: UpdateMessage, expect: UpdateExpectation): BgpError | null {
  if (u.nlri.length === 0 && !(u.mpReach && u.mpReach.nlri.length)) return null;
  const a = u.attrs;
  // RFC 4271 §6.3 (MAY check) and RFC 7606 §7.2 (treat-as-withdraw): from an external peer the
  // leftmost AS of AS_PATH must be the peer's AS.
  if (expect.ebgp && expect.peerAs !== undefined && expect.enforceFirstAs !== false && a.asPath) {
    const first = a.asPath[0];
    const leftmost = first && first.type === AsPathSegmentType.AsSequence ? first.asns[0] : undefined;
    if (leftmost !== expect.peerAs) {
      return updateError(
        UpdateSubcode.MalformedAsPath,
        "treat-as-withdraw",
        `UPDATE: leftmost AS ${leftmost ?? "(none)"} of AS_PATH is not the peer AS ${expect.peerAs}`,
      );
    }
  }
  // RFC 4271 §6.3 / RFC 7606 §7.3: a NEXT_HOP that is an address of the receiving speaker is
  // semantically incorrect → treat-as-withdraw (same for the MP_REACH next hops).
  if (expect.localAddresses && expect.localAddresses.length) {
    const mine = new Set(expect.localAddresses.map((x) => canonicalIp(x) ?? x));
    const hops = [
      ...(u.nlri.length && a.nextHop ? [a.nextHop] : []),
      ...(u.mpReach?.nextHops.slice(0, 1) ?? []),
    ];
    for (const h of hops) {
      if (mine.has(h)) {
        return updateError(
          UpdateSubcode.InvalidNextHopAttribute,
          "treat-as-withdraw",
          `UPDATE: next hop ${h} is an address of this speaker`,
        );
      }
    }
  }
  return null;
}
