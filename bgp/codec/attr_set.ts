/**
 * Decodes the non-MP path attributes of one UPDATE: flag checks (RFC 7606 §3c), the per-attribute
 * rules of RFC 7606 §7, unknown attributes (RFC 4271 §5, §6.3, §9) and the AS4_PATH /
 * AS4_AGGREGATOR merge (RFC 6793 §4.2.3). The result depends only on the attribute bytes and two
 * session flags, which is what makes it cacheable (`attr_cache.ts`).
 *
 * @module
 */

import {
  decodeAggregator,
  decodeAs4Aggregator,
  decodeClusterList,
  decodeLocalPref,
  decodeMed,
  decodeNextHop,
  decodeOrigin,
  decodeOriginatorId,
} from "./attr_basic.ts";
import { as4PathOf, hasConfedSegment, mergeAs4Path, parseAsPath } from "./as_path.ts";
import {
  AS_TRANS,
  AttrCode,
  type AttrDecodeState,
  attrFail,
  AttrFlag,
  KNOWN_ATTR_FLAGS,
  lengthProblem,
} from "./attributes.ts";
import { decodeCommunities, decodeLargeCommunities } from "./communities.ts";
import { type BgpError, UpdateSubcode } from "./errors.ts";
import type { CodecContext, PathAttributes } from "./types.ts";

/** Decoded non-MP attributes plus what went wrong. Treat as immutable (it may be cached). */
export interface AttrSetResult {
  /** The attributes that decoded. */
  attrs: PathAttributes;
  /** Codes of attributes dropped (RFC 7606 attribute discard, or disregarded from eBGP). */
  discarded: number[];
  /** Every finding, with its handling. */
  errors: BgpError[];
}

/** Entries are 4 int32 each: header start, value start, value end, (flags << 8) | code. */
export function decodeAttrSet(b: Uint8Array, ents: Int32Array, n: number, ctx: CodecContext): AttrSetResult {
  const st: AttrDecodeState = { ctx, attrs: {}, discarded: [], errors: [] };
  for (let i = 0; i < n; i++) {
    const k = i * 4;
    const fc = ents[k + 3];
    decodeOne(st, b, fc & 255, fc >> 8, ents[k], ents[k + 1], ents[k + 2]);
  }
  finishAs4(st);
  return { attrs: st.attrs, discarded: st.discarded, errors: st.errors };
}

function decodeOne(
  st: AttrDecodeState,
  b: Uint8Array,
  code: number,
  flags: number,
  hs: number,
  vs: number,
  ve: number,
): void {
  const ctx = st.ctx;
  // RFC 7606 §7.5, §7.9, §7.10: LOCAL_PREF, ORIGINATOR_ID and CLUSTER_LIST from an external peer are disregarded.
  if (
    ctx.ebgp &&
    (code === AttrCode.LocalPref || code === AttrCode.OriginatorId || code === AttrCode.ClusterList)
  ) {
    st.discarded.push(code);
    return;
  }
  // RFC 6793 §3 / §4.1: between two 4-octet speakers AS4_PATH and AS4_AGGREGATOR are not used; discard them.
  if (ctx.fourOctetAs && (code === AttrCode.As4Path || code === AttrCode.As4Aggregator)) {
    st.discarded.push(code);
    return;
  }
  const known = KNOWN_ATTR_FLAGS[code];
  if (known === undefined) {
    if ((flags & AttrFlag.Optional) === 0) {
      // RFC 4271 §6.3: an unrecognised well-known attribute → Unrecognized Well-known Attribute, session reset.
      attrFail(st, code, {
        subcode: UpdateSubcode.UnrecognizedWellKnownAttribute,
        message: "unrecognized well-known attribute",
        attr: b.subarray(hs, ve),
      });
    } else if (flags & AttrFlag.Transitive) {
      // RFC 4271 §5: keep an unrecognised optional transitive attribute to pass on (Partial set on send).
      // Only the Optional/Transitive/Partial bits are kept: Extended Length is recomputed on send,
      // and the exact received octet lives in the UPDATE's layout.
      (st.attrs.unknown ??= []).push({ flags: flags & 0xe0, code, value: b.slice(vs, ve) });
    }
    // RFC 4271 §9: an unrecognised optional non-transitive attribute is quietly ignored.
    return;
  }
  // RFC 7606 §3c: Optional/Transitive bits in conflict with the attribute's definition make it
  // malformed, handled as its own malformations are. RFC 4271 §4.3: Partial must be 0 unless
  // the attribute is optional transitive.
  if ((flags & 0xc0) !== known || (known !== 0xc0 && (flags & AttrFlag.Partial))) {
    attrFail(st, code, {
      subcode: UpdateSubcode.AttributeFlagsError,
      message: `flags 0x${flags.toString(16).padStart(2, "0")} conflict with the required 0x${
        known.toString(16)
      }`,
      attr: b.subarray(hs, ve),
    });
    return;
  }
  // RFC 7606 §7: the attribute's length rule (one table, `ATTR_RULES`), before its value is read.
  const badLength = lengthProblem(code, ve - vs, ctx);
  if (badLength !== null) {
    attrFail(st, code, {
      subcode: UpdateSubcode.AttributeLengthError,
      message: badLength,
      attr: b.subarray(hs, ve),
    });
    return;
  }
  switch (code) {
    case AttrCode.Origin:
      return decodeOrigin(st, b, hs, vs, ve);
    case AttrCode.AsPath: {
      const segs = parseAsPath(b, vs, ve, ctx.fourOctetAs ? 4 : 2);
      if (typeof segs === "string") {
        // RFC 7606 §7.2: a malformed AS_PATH → treat-as-withdraw.
        attrFail(st, code, {
          subcode: UpdateSubcode.MalformedAsPath,
          message: `AS_PATH ${segs}`,
          attr: b.subarray(hs, ve),
        });
      } else if (ctx.ebgp && hasConfedSegment(segs)) {
        // RFC 7606 §7.2 / RFC 5065 §5: confederation segments from an external peer → treat-as-withdraw.
        attrFail(st, code, {
          subcode: UpdateSubcode.MalformedAsPath,
          message: "AS_PATH from an external peer holds confederation segments",
          attr: b.subarray(hs, ve),
        });
      } else {
        st.attrs.asPath = segs;
      }
      return;
    }
    case AttrCode.NextHop:
      return decodeNextHop(st, b, hs, vs, ve);
    case AttrCode.Med:
      return decodeMed(st, b, vs);
    case AttrCode.LocalPref:
      return decodeLocalPref(st, b, vs);
    case AttrCode.AtomicAggregate:
      st.attrs.atomicAggregate = true;
      return;
    case AttrCode.Aggregator:
      return decodeAggregator(st, b, hs, vs, ve);
    case AttrCode.Communities:
      return decodeCommunities(st, b, vs, ve);
    case AttrCode.OriginatorId:
      return decodeOriginatorId(st, b, vs);
    case AttrCode.ClusterList:
      return decodeClusterList(st, b, vs, ve);
    case AttrCode.As4Path: {
      const segs = parseAsPath(b, vs, ve, 4);
      if (typeof segs === "string") {
        // RFC 6793 §6: a malformed AS4_PATH is discarded.
        attrFail(st, code, {
          subcode: UpdateSubcode.MalformedAsPath,
          message: `AS4_PATH ${segs}`,
          attr: b.subarray(hs, ve),
        });
      } else {
        st.as4Path = segs;
      }
      return;
    }
    case AttrCode.As4Aggregator:
      return decodeAs4Aggregator(st, b, hs, vs, ve);
    case AttrCode.LargeCommunity:
      return decodeLargeCommunities(st, b, vs, ve);
  }
}

/** RFC 6793 §4.2.3: rebuild the 4-octet AS_PATH and AGGREGATOR when the peer is a 2-octet speaker. */
function finishAs4(st: AttrDecodeState): void {
  if (st.ctx.fourOctetAs || (!st.as4Path && !st.as4Aggregator)) return;
  const attrs = st.attrs;
  const agg = attrs.aggregator;
  if (agg && agg.asn !== AS_TRANS) {
    // "If the AGGREGATOR attribute contains an AS other than AS_TRANS, the AS4_AGGREGATOR and
    // AS4_PATH attributes are ignored."
    if (st.as4Aggregator) st.discarded.push(AttrCode.As4Aggregator);
    if (st.as4Path) st.discarded.push(AttrCode.As4Path);
    return;
  }
  if (st.as4Aggregator) {
    if (agg) attrs.aggregator = st.as4Aggregator;
    else st.discarded.push(AttrCode.As4Aggregator);
  }
  if (st.as4Path) {
    // Confederation segments in AS4_PATH are not used (RFC 6793 §6).
    const merged = attrs.asPath ? mergeAs4Path(attrs.asPath, as4PathOf(st.as4Path)) : null;
    if (merged) attrs.asPath = merged;
    else st.discarded.push(AttrCode.As4Path);
  }
}
