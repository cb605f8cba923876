/**
 * The fixed-size attributes: ORIGIN, NEXT_HOP, MED, LOCAL_PREF, ATOMIC_AGGREGATE, AGGREGATOR,
 * AS4_AGGREGATOR (RFC 4271 §5.1, RFC 6793), ORIGINATOR_ID and CLUSTER_LIST (RFC 4456 §8). Each
 * decoder applies the RFC 7606 §7 handling for its own malformations.
 *
 * @module
 */

import { type AttrDecodeState, attrFail } from "./attributes.ts";
import { UpdateSubcode } from "./errors.ts";
import { formatIPv4 } from "./ip.ts";
import type { OriginCode } from "./types.ts";

function u32(b: Uint8Array, p: number): number {
  return ((b[p] << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]) >>> 0;
}

/** ORIGIN; RFC 7606 §7.1: length ≠ 1 or an undefined value → treat-as-withdraw. */
export function decodeOrigin(st: AttrDecodeState, b: Uint8Array, hs: number, vs: number, ve: number): void {
  if (ve - vs !== 1) {
    attrFail(
      st,
      1,
      UpdateSubcode.AttributeLengthError,
      "treat-as-withdraw",
      `ORIGIN length ${ve - vs} is not 1`,
      b,
      hs,
      ve,
    );
  } else if (b[vs] > 2) {
    attrFail(
      st,
      1,
      UpdateSubcode.InvalidOriginAttribute,
      "treat-as-withdraw",
      `ORIGIN value ${b[vs]} is not 0, 1 or 2`,
      b,
      hs,
      ve,
    );
  } else {
    st.attrs.origin = b[vs] as OriginCode;
  }
}

/**
 * NEXT_HOP; RFC 7606 §7.3: length ≠ 4 → treat-as-withdraw; RFC 4271 §6.3 / RFC 7606 §7.3: a
 * next hop that cannot be a unicast host (0/8, 127/8, 224/4 and above) is semantically
 * incorrect → treat-as-withdraw. (Whether it is our own address needs config: the session checks.)
 */
export function decodeNextHop(st: AttrDecodeState, b: Uint8Array, hs: number, vs: number, ve: number): void {
  if (ve - vs !== 4) {
    attrFail(
      st,
      3,
      UpdateSubcode.AttributeLengthError,
      "treat-as-withdraw",
      `NEXT_HOP length ${ve - vs} is not 4`,
      b,
      hs,
      ve,
    );
    return;
  }
  const a = b[vs];
  if (a === 0 || a === 127 || a >= 224) {
    attrFail(
      st,
      3,
      UpdateSubcode.InvalidNextHopAttribute,
      "treat-as-withdraw",
      `NEXT_HOP ${formatIPv4(b, vs)} is not a unicast host address`,
      b,
      hs,
      ve,
    );
    return;
  }
  st.attrs.nextHop = formatIPv4(b, vs);
}

/** MULTI_EXIT_DISC; RFC 7606 §7.4: length ≠ 4 → treat-as-withdraw. */
export function decodeMed(st: AttrDecodeState, b: Uint8Array, hs: number, vs: number, ve: number): void {
  if (ve - vs !== 4) {
    attrFail(
      st,
      4,
      UpdateSubcode.AttributeLengthError,
      "treat-as-withdraw",
      `MULTI_EXIT_DISC length ${ve - vs} is not 4`,
      b,
      hs,
      ve,
    );
  } else {
    st.attrs.med = u32(b, vs);
  }
}

/** LOCAL_PREF; RFC 7606 §7.5: length ≠ 4 → treat-as-withdraw (eBGP copies are discarded by the caller first). */
export function decodeLocalPref(
  st: AttrDecodeState,
  b: Uint8Array,
  hs: number,
  vs: number,
  ve: number,
): void {
  if (ve - vs !== 4) {
    attrFail(
      st,
      5,
      UpdateSubcode.AttributeLengthError,
      "treat-as-withdraw",
      `LOCAL_PREF length ${ve - vs} is not 4`,
      b,
      hs,
      ve,
    );
  } else {
    st.attrs.localPref = u32(b, vs);
  }
}

/** ATOMIC_AGGREGATE; RFC 7606 §7.6: length ≠ 0 → attribute-discard. */
export function decodeAtomicAggregate(
  st: AttrDecodeState,
  b: Uint8Array,
  hs: number,
  vs: number,
  ve: number,
): void {
  if (ve !== vs) {
    attrFail(
      st,
      6,
      UpdateSubcode.AttributeLengthError,
      "attribute-discard",
      `ATOMIC_AGGREGATE length ${ve - vs} is not 0`,
      b,
      hs,
      ve,
    );
  } else {
    st.attrs.atomicAggregate = true;
  }
}

/**
 * AGGREGATOR; RFC 7606 §7.7: length ≠ 6 (2-octet session) or 8 (4-octet session) →
 * attribute-discard; RFC 7607 §2: AS 0 → attribute-discard.
 */
export function decodeAggregator(
  st: AttrDecodeState,
  b: Uint8Array,
  hs: number,
  vs: number,
  ve: number,
): void {
  const want = st.ctx.fourOctetAs ? 8 : 6;
  if (ve - vs !== want) {
    attrFail(
      st,
      7,
      UpdateSubcode.AttributeLengthError,
      "attribute-discard",
      `AGGREGATOR length ${ve - vs} is not ${want}`,
      b,
      hs,
      ve,
    );
    return;
  }
  const asn = want === 8 ? u32(b, vs) : (b[vs] << 8) | b[vs + 1];
  if (asn === 0) {
    attrFail(
      st,
      7,
      UpdateSubcode.OptionalAttributeError,
      "attribute-discard",
      "AGGREGATOR AS is 0",
      b,
      hs,
      ve,
    );
    return;
  }
  st.attrs.aggregator = { asn, address: formatIPv4(b, ve - 4) };
}

/** AS4_AGGREGATOR; RFC 6793 §6: length ≠ 8 (or AS 0, RFC 7607) → attribute-discard. */
export function decodeAs4Aggregator(
  st: AttrDecodeState,
  b: Uint8Array,
  hs: number,
  vs: number,
  ve: number,
): void {
  if (ve - vs !== 8) {
    attrFail(
      st,
      18,
      UpdateSubcode.AttributeLengthError,
      "attribute-discard",
      `AS4_AGGREGATOR length ${ve - vs} is not 8`,
      b,
      hs,
      ve,
    );
    return;
  }
  const asn = u32(b, vs);
  if (asn === 0) {
    attrFail(
      st,
      18,
      UpdateSubcode.OptionalAttributeError,
      "attribute-discard",
      "AS4_AGGREGATOR AS is 0",
      b,
      hs,
      ve,
    );
    return;
  }
  st.as4Aggregator = { asn, address: formatIPv4(b, vs + 4) };
}

/** ORIGINATOR_ID; RFC 7606 §7.9: length ≠ 4 → treat-as-withdraw. */
export function decodeOriginatorId(
  st: AttrDecodeState,
  b: Uint8Array,
  hs: number,
  vs: number,
  ve: number,
): void {
  if (ve - vs !== 4) {
    attrFail(
      st,
      9,
      UpdateSubcode.AttributeLengthError,
      "treat-as-withdraw",
      `ORIGINATOR_ID length ${ve - vs} is not 4`,
      b,
      hs,
      ve,
    );
  } else {
    st.attrs.originatorId = formatIPv4(b, vs);
  }
}

/** CLUSTER_LIST; RFC 7606 §7.10: length not a non-zero multiple of 4 → treat-as-withdraw. */
export function decodeClusterList(
  st: AttrDecodeState,
  b: Uint8Array,
  hs: number,
  vs: number,
  ve: number,
): void {
  const len = ve - vs;
  if (len === 0 || len % 4 !== 0) {
    attrFail(
      st,
      10,
      UpdateSubcode.AttributeLengthError,
      "treat-as-withdraw",
      `CLUSTER_LIST length ${len} is not a non-zero multiple of 4`,
      b,
      hs,
      ve,
    );
    return;
  }
  const out = new Array<string>(len / 4);
  for (let i = 0, p = vs; p < ve; i++, p += 4) out[i] = formatIPv4(b, p);
  st.attrs.clusterList = out;
}
