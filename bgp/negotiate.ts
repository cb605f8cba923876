/**
 * OPEN construction, OPEN checks against the peer's configuration, and capability negotiation
 * (RFC 4271 §6.2, RFC 5492, RFC 4760, RFC 6793, RFC 2918, RFC 4724). Pure. Capabilities are kept
 * as announced (ours), received (theirs) and negotiated (both), like OpenBGPD.
 *
 * @module
 */

import {
  AFI,
  type Afi,
  type AfiSafi,
  type Capability,
  type CodecContext,
  ErrorCode,
  MessageType,
  type OpenMessage,
  SAFI,
} from "./codec/types.ts";
import type { Notify } from "./fsm.ts";

/** AS_TRANS (RFC 6793): what a 4-octet ASN puts in the 2-octet My AS field. */
export const AS_TRANS = 23456;

/** What we announce in our OPEN. */
export interface LocalOpenParams {
  asn: number;
  routerId: string;
  holdTime: number;
  families: AfiSafi[];
  /** Graceful restart: restart time (s), R bit, F bit per family. Absent: no GR capability. */
  gracefulRestart?: { restartTime: number; restarting: boolean; forwardingPreserved: boolean };
}

/** What both sides agreed on. */
export interface Negotiated {
  peerAsn: number;
  peerRouterId: string;
  holdTime: number;
  fourOctetAs: boolean;
  families: AfiSafi[];
  /** The peer understands ROUTE-REFRESH. */
  routeRefresh: boolean;
  /** The peer announced GR (it can help us or restart itself); undefined otherwise. */
  peerGracefulRestart?: {
    restartTime: number;
    restarting: boolean;
    families: Array<AfiSafi & { forwardingPreserved: boolean }>;
  };
  /** We announced GR too, so GR procedures apply to this session (RFC 4724 §3). */
  gracefulRestart: boolean;
  ctx: CodecContext;
}

/** Build our OPEN. */
export function buildOpen(p: LocalOpenParams): OpenMessage {
  const caps: Capability[] = p.families.map((f) => ({
    code: 1,
    kind: "multiprotocol",
    afi: f.afi,
    safi: f.safi,
  }));
  caps.push({ code: 2, kind: "route-refresh" });
  caps.push({ code: 65, kind: "four-octet-as", asn: p.asn });
  if (p.gracefulRestart) {
    caps.push({
      code: 64,
      kind: "graceful-restart",
      restarting: p.gracefulRestart.restarting,
      notification: false,
      restartTime: Math.min(4095, p.gracefulRestart.restartTime),
      families: p.families.map((f) => ({
        ...f,
        forwardingPreserved: p.gracefulRestart!.forwardingPreserved,
      })),
    });
  }
  return {
    type: MessageType.Open,
    version: 4,
    myAs: p.asn > 0xffff ? AS_TRANS : p.asn,
    holdTime: p.holdTime,
    routerId: p.routerId,
    capabilities: caps,
  };
}

const OPEN_BAD_PEER_AS = 2;
const OPEN_BAD_BGP_ID = 3;

/**
 * Check a received OPEN against the configured peer AS and our identity, and negotiate.
 * Returns the NOTIFICATION to send when the OPEN is unacceptable.
 */
export function negotiate(
  open: OpenMessage,
  local: LocalOpenParams,
  expectedAsn: number,
): { ok: true; n: Negotiated } | { ok: false; notify: Notify; reason: string } {
  const four = open.capabilities.find((c) => c.kind === "four-octet-as") as { asn: number } | undefined;
  const peerAsn = four ? four.asn : open.myAs;
  if (peerAsn !== expectedAsn) {
    const data = new Uint8Array([open.myAs >> 8, open.myAs & 255]);
    return {
      ok: false,
      notify: { code: ErrorCode.OpenMessage, subcode: OPEN_BAD_PEER_AS, data },
      reason: `OPEN: peer AS ${peerAsn} is not the configured ${expectedAsn}`,
    };
  }
  if (peerAsn === local.asn && open.routerId === local.routerId) {
    // RFC 6286 §2.2: within an AS the identifiers must differ.
    return {
      ok: false,
      notify: { code: ErrorCode.OpenMessage, subcode: OPEN_BAD_BGP_ID },
      reason: `OPEN: iBGP peer uses our own router ID ${open.routerId}`,
    };
  }
  const mp = open.capabilities.filter((c) => c.kind === "multiprotocol") as Array<{ afi: Afi; safi: number }>;
  // RFC 4760 §8: a peer announcing no MP capability speaks IPv4 unicast only.
  const theirs: AfiSafi[] = mp.length ? mp.map((c) => ({ afi: c.afi, safi: c.safi as 1 })) : [
    { afi: AFI.IPv4, safi: SAFI.Unicast },
  ];
  const families = local.families.filter((f) => theirs.some((t) => t.afi === f.afi && t.safi === f.safi));
  const gr = open.capabilities.find((c) => c.kind === "graceful-restart") as
    | Extract<Capability, { kind: "graceful-restart" }>
    | undefined;
  const holdTime = Math.min(local.holdTime, open.holdTime);
  const fourOctetAs = !!four;
  return {
    ok: true,
    n: {
      peerAsn,
      peerRouterId: open.routerId,
      holdTime,
      fourOctetAs,
      families,
      routeRefresh: open.capabilities.some((c) => c.kind === "route-refresh"),
      peerGracefulRestart: gr
        ? { restartTime: gr.restartTime, restarting: gr.restarting, families: gr.families }
        : undefined,
      gracefulRestart: !!gr && !!local.gracefulRestart,
      ctx: { fourOctetAs, extendedMessages: false, families, ebgp: peerAsn !== local.asn },
    },
  };
}
