/**
 * The fixed-size attributes: ORIGIN, NEXT_HOP, MED, LOCAL_PREF, ATOMIC_AGGREGATE, AGGREGATOR,
 * AS4_AGGREGATOR (RFC 4271 §5.1, RFC 6793), ORIGINATOR_ID and CLUSTER_LIST (RFC 4456 §8). Their
 * lengths are checked before these run (`ATTR_RULES` in `attributes.ts`); what is left here are
 * the checks of the values themselves, handled as the table says for the attribute.
 *
 * @module
 */

import { AttrCode, type AttrDecodeState, attrFail } from "./attributes.ts";
import { UpdateSubcode } from "./errors.ts";
import { formatIPv4 } from "./ip.ts";
import type { OriginCode } from "./types.ts";

function u32(b: Uint8Array, p: number): number {
  return ((b[p] << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]) >>> 0;
}

/** ORIGIN; RFC 7606 §7.1: an undefined value → treat-as-withdraw. */
export function decodeOrigin(st: AttrDecodeState, b: Uint8Array, hs: number, vs: number, ve: number): void {
  if (b[vs] > 2) {
    attrFail(st, AttrCode.Origin, {
      subcode: UpdateSubcode.InvalidOriginAttribute,
      message: `ORIGIN value ${b[vs]} is not 0, 1 or 2`,
      attr: b.subarray(hs, ve),
    });
  } else {
    st.attrs.origin = b[vs] as OriginCode;
  }
}

/**
 * NEXT_HOP; RFC 4271 §6.3 / RFC 7606 §7.3: a next hop that cannot be a unicast host (0/8, 127/8,
 * 224/4 and above) is semantically incorrect → treat-as-withdraw. (Whether it is our own address
 * needs config: the session checks.)
 */
export function decodeNextHop(st: AttrDecodeState, b: Uint8Array, hs: number, vs: number, ve: number): void {
  const a = b[vs];
  if (a === 0 || a === 127 || a >= 224) {
    attrFail(st, AttrCode.NextHop, {
      subcode: UpdateSubcode.InvalidNextHopAttribute,
      message: `NEXT_HOP ${formatIPv4(b, vs)} is not a unicast host address`,
      attr: b.subarray(hs, ve),
    });
    return;
  }
  st.attrs.nextHop = formatIPv4(b, vs);
}

/** MULTI_EXIT_DISC. */
export function decodeMed(st: AttrDecodeState, b: Uint8Array, vs: number): void {
  st.attrs.med = u32(b, vs);
}

/** LOCAL_PREF (eBGP copies are discarded by the caller first). */
export function decodeLocalPref(st: AttrDecodeState, b: Uint8Array, vs: number): void {
  st.attrs.localPref = u32(b, vs);
}

/** AGGREGATOR; RFC 7607 §2: AS 0 → attribute-discard. */
export function decodeAggregator(
  st: AttrDecodeState,
  b: Uint8Array,
  hs: number,
  vs: number,
  ve: number,
): void {
  const asn = ve - vs === 8 ? u32(b, vs) : (b[vs] << 8) | b[vs + 1];
  if (asn === 0) {
    attrFail(st, AttrCode.Aggregator, {
      subcode: UpdateSubcode.OptionalAttributeError,
      message: "AGGREGATOR AS is 0",
      attr: b.subarray(hs, ve),
    });
    return;
  }
  st.attrs.aggregator = { asn, address: formatIPv4(b, ve - 4) };
}

/** AS4_AGGREGATOR; RFC 6793 §6 / RFC 7607: AS 0 → attribute-discard. */
export function decodeAs4Aggregator(
  st: AttrDecodeState,
  b: Uint8Array,
  hs: number,
  vs: number,
  ve: number,
): void {
  const asn = u32(b, vs);
  if (asn === 0) {
    attrFail(st, AttrCode.As4Aggregator, {
      subcode: UpdateSubcode.OptionalAttributeError,
      message: "AS4_AGGREGATOR AS is 0",
      attr: b.subarray(hs, ve),
    });
    return;
  }
  st.as4Aggregator = { asn, address: formatIPv4(b, vs + 4) };
}

/** ORIGINATOR_ID. */
export function decodeOriginatorId(st: AttrDecodeState, b: Uint8Array, vs: number): void {
  st.attrs.originatorId = formatIPv4(b, vs);
}

/** CLUSTER_LIST (a non-zero multiple of 4 octets, checked before). */
export function decodeClusterList(st: AttrDecodeState, b: Uint8Array, vs: number, ve: number): void {
  const out = new Array<string>((ve - vs) / 4);
  for (let i = 0, p = vs; p < ve; i++, p += 4) out[i] = formatIPv4(b, p);
  st.attrs.clusterList = out;
}
