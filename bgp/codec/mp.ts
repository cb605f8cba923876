/**
 * MP_REACH_NLRI and MP_UNREACH_NLRI (RFC 4760 §3-4) for IPv4/IPv6 unicast, with IPv6 next hops of
 * 16 octets (global) or 32 (global + link-local, RFC 2545 §3) and IPv6 next hops for IPv4
 * (RFC 8950). RFC 7606 §5.3/§7.11: a malformed MP attribute cannot be treated as withdraw (its
 * prefixes are unknown), so it resets the session (code 3, subcode 9 per RFC 4760 §7).
 *
 * @module
 */

import type { ByteWriter } from "./bytes.ts";
import { type BgpError, updateError, UpdateSubcode } from "./errors.ts";
import { formatIPv4, formatIPv6, parseIPv4, parseIPv6Into } from "./ip.ts";
import { decodePrefixes, encodePrefixes } from "./nlri.ts";
import { AFI, type Afi, type MpReach, type MpUnreach, type Prefix, SAFI } from "./types.ts";

/** Outcome of decoding an MP attribute. `unsupported` is a family this codec does not carry. */
export type MpResult<T> =
  | { kind: "ok"; value: T }
  | { kind: "error"; error: BgpError }
  | { kind: "unsupported"; afi: number; safi: number };

function reset(
  code: number,
  message: string,
  b: Uint8Array,
  hs: number,
  ve: number,
): { kind: "error"; error: BgpError } {
  return {
    kind: "error",
    error: updateError(
      UpdateSubcode.OptionalAttributeError,
      "session-reset",
      `UPDATE attribute ${code}: ${message}`,
      b.slice(hs, ve),
    ),
  };
}

function supported(afi: number, safi: number): boolean {
  return (afi === AFI.IPv4 || afi === AFI.IPv6) && safi === SAFI.Unicast;
}

const scratch = new Uint8Array(16);

/** Decodes MP_REACH_NLRI whose value is `b[vs, ve)` (attribute header at `hs`). */
export function decodeMpReach(b: Uint8Array, hs: number, vs: number, ve: number): MpResult<MpReach> {
  const len = ve - vs;
  if (len < 5) return reset(14, `MP_REACH_NLRI length ${len} is below 5`, b, hs, ve);
  const afi = (b[vs] << 8) | b[vs + 1];
  const safi = b[vs + 2];
  const nhLen = b[vs + 3];
  if (5 + nhLen > len) {
    return reset(
      14,
      `MP_REACH_NLRI next hop length ${nhLen} overruns the attribute (${len} octets)`,
      b,
      hs,
      ve,
    );
  }
  if (!supported(afi, safi)) return { kind: "unsupported", afi, safi };
  const nh = vs + 4;
  const nextHops: string[] = [];
  if (afi === AFI.IPv4 && nhLen === 4) {
    nextHops.push(formatIPv4(b, nh));
  } else if (nhLen === 16) {
    nextHops.push(formatIPv6(b, nh));
  } else if (nhLen === 32) {
    nextHops.push(formatIPv6(b, nh), formatIPv6(b, nh + 16));
  } else {
    const want = afi === AFI.IPv4 ? "4, 16 or 32" : "16 or 32";
    return reset(14, `MP_REACH_NLRI next hop length ${nhLen} for AFI ${afi} is not ${want}`, b, hs, ve);
  }
  // The reserved octet after the next hop (RFC 4760 §3) is ignored on receipt.
  const nlri: Prefix[] = [];
  const err = decodePrefixes(b, nh + nhLen + 1, ve, afi as Afi, nlri);
  if (err) return reset(14, `MP_REACH_NLRI NLRI: ${err}`, b, hs, ve);
  return { kind: "ok", value: { afi: afi as Afi, safi: SAFI.Unicast, nextHops, nlri } };
}

/** Decodes MP_UNREACH_NLRI whose value is `b[vs, ve)`. */
export function decodeMpUnreach(b: Uint8Array, hs: number, vs: number, ve: number): MpResult<MpUnreach> {
  const len = ve - vs;
  if (len < 3) return reset(15, `MP_UNREACH_NLRI length ${len} is below 3`, b, hs, ve);
  const afi = (b[vs] << 8) | b[vs + 1];
  const safi = b[vs + 2];
  if (!supported(afi, safi)) return { kind: "unsupported", afi, safi };
  const withdrawn: Prefix[] = [];
  const err = decodePrefixes(b, vs + 3, ve, afi as Afi, withdrawn);
  if (err) return reset(15, `MP_UNREACH_NLRI withdrawn routes: ${err}`, b, hs, ve);
  return { kind: "ok", value: { afi: afi as Afi, safi: SAFI.Unicast, withdrawn } };
}

/** Writes the MP_REACH_NLRI value. Throws TypeError for next hops that are not addresses. */
export function encodeMpReach(w: ByteWriter, m: MpReach): void {
  w.u16(m.afi);
  w.u8(m.safi);
  const hops = m.nextHops;
  if (hops.length < 1 || hops.length > 2) {
    throw new TypeError(`MP_REACH_NLRI nextHops ${JSON.stringify(hops)}: must hold 1 or 2 addresses`);
  }
  const v4 = hops.length === 1 ? parseIPv4(hops[0]) : -1;
  if (v4 >= 0) {
    w.u8(4);
    w.u32(v4);
  } else {
    w.u8(16 * hops.length);
    for (const h of hops) {
      if (!parseIPv6Into(h, scratch)) {
        throw new TypeError(
          `MP_REACH_NLRI next hop ${JSON.stringify(h)}: must be IPv6 text (or one IPv4 address)`,
        );
      }
      w.bytes(scratch);
    }
  }
  w.u8(0);
  encodePrefixes(w, m.nlri);
}

/** Writes the MP_UNREACH_NLRI value. */
export function encodeMpUnreach(w: ByteWriter, m: MpUnreach): void {
  w.u16(m.afi);
  w.u8(m.safi);
  encodePrefixes(w, m.withdrawn);
}
