/**
 * Path attribute type codes, flag bits and the canonical form the encoder writes (RFC 4271 §4.3,
 * §5). The per-family decoders live in `attr_basic.ts`, `as_path.ts`, `communities.ts` and
 * `mp.ts`; `attr_set.ts` runs them over one UPDATE.
 *
 * @module
 */

import { type BgpError, type ErrorHandling, updateError } from "./errors.ts";
import type { AsPathSegment, CodecContext, PathAttributes } from "./types.ts";

/** Path attribute type codes (IANA). */
export const AttrCode = {
  Origin: 1,
  AsPath: 2,
  NextHop: 3,
  Med: 4,
  LocalPref: 5,
  AtomicAggregate: 6,
  Aggregator: 7,
  Communities: 8,
  OriginatorId: 9,
  ClusterList: 10,
  MpReachNlri: 14,
  MpUnreachNlri: 15,
  As4Path: 17,
  As4Aggregator: 18,
  LargeCommunity: 32,
} as const;

/** Attribute flag bits (RFC 4271 §4.3). */
export const AttrFlag = {
  Optional: 0x80,
  Transitive: 0x40,
  Partial: 0x20,
  ExtendedLength: 0x10,
} as const;

/** AS_TRANS (RFC 6793 §9): stands for a 4-octet ASN towards 2-octet speakers. */
export const AS_TRANS = 23456;

/** Optional/Transitive bits each known attribute must carry (RFC 4271 §5, RFC 4456, 4760, 6793, 8092). */
export const KNOWN_ATTR_FLAGS: Readonly<Record<number, number>> = {
  1: 0x40,
  2: 0x40,
  3: 0x40,
  4: 0x80,
  5: 0x40,
  6: 0x40,
  7: 0xc0,
  8: 0xc0,
  9: 0x80,
  10: 0x80,
  14: 0x80,
  15: 0x80,
  17: 0xc0,
  18: 0xc0,
  32: 0xc0,
};

/**
 * The flag octet `encode` writes by default for an attribute: a known attribute's Optional/Transitive bits,
 * or for an unknown one its own with Partial set when it is optional transitive (RFC 4271 §5:
 * an unrecognised optional transitive attribute is passed on with the Partial bit set), plus
 * Extended Length exactly when the value exceeds 255 octets.
 */
export function canonicalFlags(code: number, flags: number, valueLength: number): number {
  const ext = valueLength > 255 ? AttrFlag.ExtendedLength : 0;
  const known = KNOWN_ATTR_FLAGS[code];
  // A known attribute is written with its defined bits only; a Partial bit it arrived with is
  // kept only through `UpdateMessage.layout`.
  if (known !== undefined) return known | ext;
  const ot = (flags & 0xc0) === 0xc0 ? AttrFlag.Partial : flags & AttrFlag.Partial;
  return (flags & 0xc0) | ot | ext;
}

/** Sort key of the default attribute order: MP_REACH, MP_UNREACH (RFC 7606 §5.1), then by code. */
export function attrRank(code: number): number {
  if (code === AttrCode.MpReachNlri) return 0;
  if (code === AttrCode.MpUnreachNlri) return 1;
  return code + 2;
}

/** Working state while decoding one UPDATE's (non-MP) attributes. */
export interface AttrDecodeState {
  ctx: CodecContext;
  attrs: PathAttributes;
  discarded: number[];
  errors: BgpError[];
  /** AS4_PATH as received, merged into AS_PATH at the end (RFC 6793 §4.2.3). */
  as4Path?: AsPathSegment[];
  /** AS4_AGGREGATOR as received (RFC 6793 §4.2.3). */
  as4Aggregator?: { asn: number; address: string };
}

/**
 * Records a malformed attribute: the error (data = the whole attribute, RFC 4271 §6.3) and, for
 * attribute-discard, the code in `discarded`.
 */
export function attrFail(
  st: AttrDecodeState,
  code: number,
  subcode: number,
  handling: ErrorHandling,
  message: string,
  b: Uint8Array,
  hs: number,
  ve: number,
): void {
  st.errors.push(updateError(subcode, handling, `UPDATE attribute ${code}: ${message}`, b.slice(hs, ve)));
  if (handling === "attribute-discard") st.discarded.push(code);
}
