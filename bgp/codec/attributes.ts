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

/** How RFC 7606 constrains a known attribute's value length. */
export type LengthRule =
  /** Exactly this many octets (a function when it depends on the session, e.g. AGGREGATOR). */
  | { exact: number | ((ctx: CodecContext) => number) }
  /** A non-zero multiple of this many octets. */
  | { multipleOf: number };

/** What the RFCs say of one known attribute. */
export interface AttrRule {
  /** Name used in error messages. */
  name: string;
  /** Optional/Transitive bits it must carry (RFC 4271 §5, RFC 4456, 4760, 6793, 8092). */
  flags: number;
  /** Handling of a malformed instance: flags, length or value (RFC 7606 §7, RFC 6793 §6, RFC 8092 §6). */
  malformed: ErrorHandling;
  /** Length rule checked before the value is decoded; absent when the decoder parses the value. */
  length?: LengthRule;
}

/**
 * The known attributes, one row each: the single table of RFC 7606's per-attribute rules that
 * `attr_set.ts` applies before any value decoder runs (MP_REACH/MP_UNREACH are decoded in `mp.ts`;
 * their rows give the flags and the session reset of RFC 7606 §7.11).
 */
export const ATTR_RULES: Readonly<Record<number, AttrRule>> = {
  1: { name: "ORIGIN", flags: 0x40, malformed: "treat-as-withdraw", length: { exact: 1 } }, // §7.1
  2: { name: "AS_PATH", flags: 0x40, malformed: "treat-as-withdraw" }, // §7.2
  3: { name: "NEXT_HOP", flags: 0x40, malformed: "treat-as-withdraw", length: { exact: 4 } }, // §7.3
  4: { name: "MULTI_EXIT_DISC", flags: 0x80, malformed: "treat-as-withdraw", length: { exact: 4 } }, // §7.4
  5: { name: "LOCAL_PREF", flags: 0x40, malformed: "treat-as-withdraw", length: { exact: 4 } }, // §7.5
  6: { name: "ATOMIC_AGGREGATE", flags: 0x40, malformed: "attribute-discard", length: { exact: 0 } }, // §7.6
  7: { // §7.7: 6 octets on a 2-octet-AS session, 8 on a 4-octet one
    name: "AGGREGATOR",
    flags: 0xc0,
    malformed: "attribute-discard",
    length: { exact: (ctx) => ctx.fourOctetAs ? 8 : 6 },
  },
  8: { name: "COMMUNITIES", flags: 0xc0, malformed: "treat-as-withdraw", length: { multipleOf: 4 } }, // §7.8
  9: { name: "ORIGINATOR_ID", flags: 0x80, malformed: "treat-as-withdraw", length: { exact: 4 } }, // §7.9
  10: { name: "CLUSTER_LIST", flags: 0x80, malformed: "treat-as-withdraw", length: { multipleOf: 4 } }, // §7.10
  14: { name: "MP_REACH_NLRI", flags: 0x80, malformed: "session-reset" }, // §7.11
  15: { name: "MP_UNREACH_NLRI", flags: 0x80, malformed: "session-reset" }, // §7.11
  17: { name: "AS4_PATH", flags: 0xc0, malformed: "attribute-discard" }, // RFC 6793 §6
  18: { name: "AS4_AGGREGATOR", flags: 0xc0, malformed: "attribute-discard", length: { exact: 8 } }, // RFC 6793 §6
  32: { name: "LARGE_COMMUNITY", flags: 0xc0, malformed: "treat-as-withdraw", length: { multipleOf: 12 } }, // RFC 8092 §6
};

/** Optional/Transitive bits each known attribute must carry (from `ATTR_RULES`). */
export const KNOWN_ATTR_FLAGS: Readonly<Record<number, number>> = Object.fromEntries(
  Object.entries(ATTR_RULES).map(([code, r]) => [code, r.flags]),
);

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

/** What `attrFail` records. */
export interface AttrFailure {
  /** UPDATE Message Error subcode (RFC 4271 §4.5). */
  subcode: number;
  /** One line, after "UPDATE attribute <code>: ". */
  message: string;
  /** The whole attribute, header and value: the NOTIFICATION data (RFC 4271 §6.3). Copied. */
  attr: Uint8Array;
}

/**
 * Records a malformed attribute, handled as `ATTR_RULES` says for its code (an unknown code:
 * session reset), and for attribute-discard the code in `discarded`.
 */
export function attrFail(st: AttrDecodeState, code: number, f: AttrFailure): void {
  const handling = ATTR_RULES[code]?.malformed ?? "session-reset";
  st.errors.push(updateError(f.subcode, handling, `UPDATE attribute ${code}: ${f.message}`, f.attr.slice()));
  if (handling === "attribute-discard") st.discarded.push(code);
}

/**
 * The length rule of `code` (RFC 7606 §7) applied to a value of `len` octets: null when it holds
 * (or the attribute has none), otherwise the failure's message.
 */
export function lengthProblem(code: number, len: number, ctx: CodecContext): string | null {
  const rule = ATTR_RULES[code];
  const l = rule?.length;
  if (!l) return null;
  if ("exact" in l) {
    const n = typeof l.exact === "number" ? l.exact : l.exact(ctx);
    return len === n ? null : `${rule.name} length ${len} is not ${n}`;
  }
  if (len !== 0 && len % l.multipleOf === 0) return null;
  return `${rule.name} length ${len} is not a non-zero multiple of ${l.multipleOf}`;
}
