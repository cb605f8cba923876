/**
 * ROUTE-REFRESH (RFC 2918 §3) with the RFC 7313 message subtypes (0 request, 1 BoRR, 2 EoRR).
 *
 * @module
 */

import { BgpError, RouteRefreshSubcode } from "./errors.ts";
import { writeHeader } from "./header.ts";
import { type Afi, ErrorCode, MessageType, type RouteRefreshMessage, type Safi } from "./types.ts";

/** RFC 7313 §3 message subtypes. */
export const RouteRefreshSubtype = { Request: 0, BeginningOfRouteRefresh: 1, EndOfRouteRefresh: 2 } as const;

/**
 * Decodes a whole ROUTE-REFRESH message. The AFI/SAFI are passed through even when they are not
 * a family this codec knows: RFC 2918 §4 says to ignore such a request, which is the session's
 * decision.
 */
export function decodeRouteRefresh(
  b: Uint8Array,
): { ok: true; msg: RouteRefreshMessage } | { ok: false; error: BgpError } {
  if (b.length !== 23) {
    // RFC 7313 §5: a ROUTE-REFRESH whose body is not 4 octets → ROUTE-REFRESH Message Error /
    // Invalid Message Length, data = the whole message. (We negotiate no ORF, RFC 5291, so no
    // longer form is valid for subtype 0 either.)
    return {
      ok: false,
      error: new BgpError(
        ErrorCode.RouteRefresh,
        RouteRefreshSubcode.InvalidMessageLength,
        `ROUTE-REFRESH: length ${b.length} is not 23`,
        { data: b.slice() },
      ),
    };
  }
  return {
    ok: true,
    msg: {
      type: MessageType.RouteRefresh,
      afi: ((b[19] << 8) | b[20]) as Afi,
      subtype: b[21],
      safi: b[22] as Safi,
    },
  };
}

/** Encodes a ROUTE-REFRESH message. */
export function encodeRouteRefresh(m: RouteRefreshMessage): Uint8Array {
  const out = new Uint8Array(23);
  writeHeader(out, 23, MessageType.RouteRefresh);
  out[19] = m.afi >> 8;
  out[20] = m.afi & 255;
  out[21] = m.subtype;
  out[22] = m.safi;
  return out;
}
