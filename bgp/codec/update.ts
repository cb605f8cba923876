/**
 * UPDATE (RFC 4271 §4.3) decode and encode, and the RFC 7606 decisions that need the whole
 * message: attribute-list framing (§4), duplicates (§3g), missing well-known attributes (§3d),
 * NLRI syntax (§5.3), and the "strongest handling wins" rule (§3).
 *
 * @module
 */

import { AttributeCache } from "./attr_cache.ts";
import { type AttrSetResult, decodeAttrSet } from "./attr_set.ts";
import { as4PathOf, encodeAsPath, hasFourOctetAsn } from "./as_path.ts";
import { AS_TRANS, AttrCode, AttrFlag, attrRank, canonicalFlags } from "./attributes.ts";
import { ByteWriter } from "./bytes.ts";
import { encodeCommunities, encodeLargeCommunities } from "./communities.ts";
import { type BgpError, type ErrorHandling, strongerHandling, updateError, UpdateSubcode } from "./errors.ts";
import { HEADER_LENGTH, maxMessageLength, writeHeader } from "./header.ts";
import { parseIPv4 } from "./ip.ts";
import { decodeMpReach, decodeMpUnreach, encodeMpReach, encodeMpUnreach } from "./mp.ts";
import { decodePrefixes, encodePrefixes } from "./nlri.ts";
import {
  AFI,
  type CodecContext,
  MessageType,
  type MpReach,
  type MpUnreach,
  type PathAttributes,
  type Prefix,
  type RawAttribute,
  type UpdateMessage,
} from "./types.ts";

/** Result of decoding an UPDATE: `errors` lists every non-fatal problem found, for logging. */
export type UpdateDecodeResult =
  | { ok: true; msg: UpdateMessage; errors: BgpError[] }
  | { ok: false; error: BgpError };

// Scratch space for the attribute walk: 4 int32 per attribute (at most 65535 / 3 attributes).
const MAX_ATTRS = 21846;
const ents = new Int32Array(MAX_ATTRS * 4);
const seen = new Uint8Array(256);
const layoutCodes: number[] = [];
const layoutFlags: number[] = [];

function fail(error: BgpError): UpdateDecodeResult {
  return { ok: false, error };
}

/**
 * Decodes a whole UPDATE message (`b` holds exactly the message, header included). With a
 * `cache`, identical attribute sets are decoded once and shared (frozen) between messages.
 */
export function decodeUpdate(b: Uint8Array, ctx: CodecContext, cache?: AttributeCache): UpdateDecodeResult {
  const len = b.length;
  const wlen = (b[19] << 8) | b[20];
  const ws = 21;
  const we = ws + wlen;
  // RFC 4271 §6.3: Withdrawn Routes Length or Total Attribute Length too large → Malformed Attribute List.
  if (we + 2 > len) {
    return fail(
      updateError(
        UpdateSubcode.MalformedAttributeList,
        "session-reset",
        `UPDATE: withdrawn routes length ${wlen} overruns the message`,
      ),
    );
  }
  const alen = (b[we] << 8) | b[we + 1];
  const as = we + 2;
  const ae = as + alen;
  if (ae > len) {
    return fail(
      updateError(
        UpdateSubcode.MalformedAttributeList,
        "session-reset",
        `UPDATE: total path attribute length ${alen} overruns the message`,
      ),
    );
  }
  const withdrawn: Prefix[] = [];
  let err = decodePrefixes(b, ws, we, AFI.IPv4, withdrawn);
  // RFC 7606 §5.3: a syntactically incorrect Withdrawn Routes or NLRI field cannot be treated as
  // withdraw (the prefixes are unknown), so the session is reset.
  if (err) {
    return fail(
      updateError(UpdateSubcode.InvalidNetworkField, "session-reset", `UPDATE withdrawn routes: ${err}`),
    );
  }
  const nlri: Prefix[] = [];
  err = decodePrefixes(b, ae, len, AFI.IPv4, nlri);
  if (err) {
    return fail(updateError(UpdateSubcode.InvalidNetworkField, "session-reset", `UPDATE NLRI: ${err}`));
  }

  const errors: BgpError[] = [];
  const discarded: number[] = [];
  let mpReach: MpReach | undefined;
  let mpUnreach: MpUnreach | undefined;
  let n = 0;
  let canonical = true;
  let lastRank = -1;
  let contiguous = true;
  let prevEnd = -1;
  layoutCodes.length = 0;
  layoutFlags.length = 0;
  let p = as;
  let fatal: BgpError | null = null;
  while (p < ae) {
    // RFC 7606 §4: an attribute header or value overrunning the attribute field → treat-as-withdraw.
    if (ae - p < 3) {
      errors.push(
        updateError(
          UpdateSubcode.AttributeLengthError,
          "treat-as-withdraw",
          `UPDATE: ${ae - p} stray octets at the end of the path attributes`,
        ),
      );
      break;
    }
    const flags = b[p];
    const code = b[p + 1];
    const ext = (flags & AttrFlag.ExtendedLength) !== 0;
    const hl = ext ? 4 : 3;
    if (p + hl > ae) {
      errors.push(
        updateError(
          UpdateSubcode.AttributeLengthError,
          "treat-as-withdraw",
          `UPDATE attribute ${code}: header overruns the path attributes`,
        ),
      );
      break;
    }
    const vlen = ext ? (b[p + 2] << 8) | b[p + 3] : b[p + 2];
    const hs = p;
    const vs = p + hl;
    const ve = vs + vlen;
    if (ve > ae) {
      errors.push(
        updateError(
          UpdateSubcode.AttributeLengthError,
          "treat-as-withdraw",
          `UPDATE attribute ${code}: length ${vlen} overruns the path attributes`,
        ),
      );
      break;
    }
    p = ve;
    if (seen[code]) {
      if (code === AttrCode.MpReachNlri || code === AttrCode.MpUnreachNlri) {
        // RFC 7606 §3g: MP_REACH_NLRI or MP_UNREACH_NLRI more than once → Malformed Attribute List, session reset.
        fatal = updateError(
          UpdateSubcode.MalformedAttributeList,
          "session-reset",
          `UPDATE: attribute ${code} appears more than once`,
          b.slice(hs, ve),
        );
        break;
      }
      // RFC 7606 §3g: any other attribute more than once → all but the first are discarded.
      errors.push(
        updateError(
          UpdateSubcode.MalformedAttributeList,
          "attribute-discard",
          `UPDATE: attribute ${code} appears more than once; later copies discarded`,
          b.slice(hs, ve),
        ),
      );
      discarded.push(code);
      contiguous = false;
      canonical = false;
      continue;
    }
    seen[code] = 1;
    layoutCodes.push(code);
    layoutFlags.push(flags);
    const rank = attrRank(code);
    if (rank < lastRank || flags !== canonicalFlags(code, flags, vlen)) canonical = false;
    lastRank = rank;
    if (code === AttrCode.MpReachNlri || code === AttrCode.MpUnreachNlri) {
      // RFC 7606 §3c: wrong flags on an MP attribute take its own (session reset) handling.
      if ((flags & 0xe0) !== AttrFlag.Optional) {
        fatal = updateError(
          UpdateSubcode.AttributeFlagsError,
          "session-reset",
          `UPDATE attribute ${code}: flags 0x${flags.toString(16)} are not optional non-transitive`,
          b.slice(hs, ve),
        );
        break;
      }
      const r = code === AttrCode.MpReachNlri ? decodeMpReach(b, hs, vs, ve) : decodeMpUnreach(b, hs, vs, ve);
      if (r.kind === "error") {
        fatal = r.error;
        break;
      }
      if (r.kind === "unsupported") {
        // A family we neither negotiate nor carry: drop the attribute, keep the rest (RFC 4760 §7 lets
        // a speaker ignore such routes; RFC 7606 §3 would otherwise reset for nothing).
        errors.push(
          updateError(
            UpdateSubcode.OptionalAttributeError,
            "attribute-discard",
            `UPDATE attribute ${code}: AFI ${r.afi} SAFI ${r.safi} is not supported`,
            b.slice(hs, ve),
          ),
        );
        discarded.push(code);
      } else if (code === AttrCode.MpReachNlri) {
        mpReach = r.value as MpReach;
      } else {
        mpUnreach = r.value as MpUnreach;
      }
      continue;
    }
    if (n >= MAX_ATTRS) break;
    const k = n * 4;
    ents[k] = hs;
    ents[k + 1] = vs;
    ents[k + 2] = ve;
    ents[k + 3] = (flags << 8) | code;
    if (prevEnd >= 0 && hs !== prevEnd) contiguous = false;
    prevEnd = ve;
    n++;
  }
  for (const c of layoutCodes) seen[c] = 0;
  if (fatal) return fail(fatal);

  // The non-MP attributes, through the cache when one is given.
  let set: AttrSetResult;
  if (cache && n > 0) {
    const prefix = ctx.fourOctetAs ? (ctx.ebgp ? "\u0003" : "\u0001") : (ctx.ebgp ? "\u0002" : "\u0000");
    let key: string;
    if (contiguous) {
      key = AttributeCache.key(prefix, b, ents[0], ents[(n - 1) * 4 + 2]);
    } else {
      key = prefix;
      for (let i = 0; i < n; i++) key += AttributeCache.key("\u0004", b, ents[i * 4], ents[i * 4 + 2]);
    }
    const hit = cache.get(key);
    if (hit) {
      set = hit;
    } else {
      set = decodeAttrSet(b, ents, n, ctx);
      cache.set(key, set);
    }
  } else {
    set = decodeAttrSet(b, ents, n, ctx);
  }
  const attrs = set.attrs;
  for (const e of set.errors) errors.push(e);
  for (const c of set.discarded) discarded.push(c);

  // RFC 7606 §3d: a missing well-known mandatory attribute → treat-as-withdraw. ORIGIN and AS_PATH
  // are needed with any reachable NLRI; NEXT_HOP only with the classic NLRI field (RFC 4760 §3).
  if (nlri.length > 0 || mpReach) {
    const missing = (code: number) => {
      errors.push(
        updateError(
          UpdateSubcode.MissingWellKnownAttribute,
          "treat-as-withdraw",
          `UPDATE: well-known attribute ${code} is missing`,
          new Uint8Array([code]),
        ),
      );
    };
    if (attrs.origin === undefined && !hadMalformed(set, AttrCode.Origin)) missing(AttrCode.Origin);
    if (attrs.asPath === undefined && !hadMalformed(set, AttrCode.AsPath)) missing(AttrCode.AsPath);
    if (nlri.length > 0 && attrs.nextHop === undefined && !hadMalformed(set, AttrCode.NextHop)) {
      missing(AttrCode.NextHop);
    }
  }

  let handling: ErrorHandling | null = null;
  let worst: BgpError | null = null;
  for (const e of errors) {
    if (!handling || strongerHandling(e.handling, handling) !== handling) {
      handling = e.handling;
      worst = e;
    }
  }
  // RFC 7606 §3: the strongest handling among all errors found applies.
  if (worst && handling === "session-reset") return fail(worst);

  const msg: UpdateMessage = { type: MessageType.Update, withdrawn, attrs, nlri };
  if (mpReach) msg.mpReach = mpReach;
  if (mpUnreach) msg.mpUnreach = mpUnreach;
  if (handling === "treat-as-withdraw") msg.treatAsWithdraw = true;
  if (discarded.length) msg.discarded = discarded;
  if (!canonical) msg.layout = { codes: layoutCodes.slice(), flags: layoutFlags.slice() };
  return { ok: true, msg, errors };
}

function hadMalformed(set: AttrSetResult, code: number): boolean {
  for (const e of set.errors) if (e.data.length > 1 && e.data[1] === code) return true;
  return false;
}

// ---------------------------------------------------------------------------------------------
// Encoding

/** Writes one attribute: flags, code, length (1 or 2 octets), then the value from `value`. */
function writeAttr(w: ByteWriter, code: number, flags: number, value: (w: ByteWriter) => void): void {
  const start = w.pos;
  const forceExt = (flags & AttrFlag.ExtendedLength) !== 0;
  w.ensure(4);
  w.buf[w.pos++] = flags;
  w.buf[w.pos++] = code;
  w.pos += forceExt ? 2 : 1;
  const vs = w.pos;
  value(w);
  const vlen = w.pos - vs;
  if (forceExt) {
    w.patch16(start + 2, vlen);
  } else if (vlen > 255) {
    // RFC 4271 §4.3: a value above 255 octets needs the Extended Length bit and a 2-octet length.
    w.ensure(1);
    w.buf.copyWithin(vs + 1, vs, w.pos);
    w.pos++;
    w.buf[start] = flags | AttrFlag.ExtendedLength;
    w.patch16(start + 2, vlen);
  } else {
    w.buf[start + 2] = vlen;
  }
}

function ipv4(s: string, what: string): number {
  const v = parseIPv4(s);
  if (v < 0) throw new TypeError(`UPDATE ${what} ${JSON.stringify(s)}: must be dotted-quad IPv4 text`);
  return v;
}

/** The attribute codes a message will carry, with a writer for each value. */
function attributeWriters(
  m: UpdateMessage,
  ctx: CodecContext,
): Map<number, { flags: number; write: (w: ByteWriter) => void }> {
  const a: PathAttributes = m.attrs;
  const out = new Map<number, { flags: number; write: (w: ByteWriter) => void }>();
  const add = (code: number, write: (w: ByteWriter) => void, flags = canonicalFlags(code, 0, 0)) =>
    out.set(code, { flags, write });
  const four = ctx.fourOctetAs;
  if (m.mpReach) {
    const r = m.mpReach;
    add(AttrCode.MpReachNlri, (w) => encodeMpReach(w, r));
  }
  if (m.mpUnreach) {
    const u = m.mpUnreach;
    add(AttrCode.MpUnreachNlri, (w) => encodeMpUnreach(w, u));
  }
  if (a.origin !== undefined) add(AttrCode.Origin, (w) => w.u8(a.origin!));
  if (a.asPath !== undefined) {
    const path = a.asPath;
    add(AttrCode.AsPath, (w) => encodeAsPath(w, path, four ? 4 : 2));
    // RFC 6793 §4.2.2: towards a 2-octet speaker, a path with 4-octet ASNs also goes in AS4_PATH.
    // Confederation segments stay out of AS4_PATH, so only a 4-octet ASN outside them needs it.
    const p4 = four ? [] : as4PathOf(path);
    if (!four && hasFourOctetAsn(p4)) {
      add(AttrCode.As4Path, (w) => encodeAsPath(w, p4, 4));
    }
  }
  if (a.nextHop !== undefined) {
    const nh = ipv4(a.nextHop, "nextHop");
    add(AttrCode.NextHop, (w) => w.u32(nh));
  }
  if (a.med !== undefined) add(AttrCode.Med, (w) => w.u32(a.med!));
  if (a.localPref !== undefined) add(AttrCode.LocalPref, (w) => w.u32(a.localPref!));
  if (a.atomicAggregate) add(AttrCode.AtomicAggregate, () => {});
  if (a.aggregator) {
    const g = a.aggregator;
    const addr = ipv4(g.address, "aggregator.address");
    if (four) {
      add(AttrCode.Aggregator, (w) => {
        w.u32(g.asn);
        w.u32(addr);
      });
    } else {
      // RFC 6793 §4.2.2: a 4-octet aggregator AS goes as AS_TRANS plus AS4_AGGREGATOR.
      add(AttrCode.Aggregator, (w) => {
        w.u16(g.asn > 0xffff ? AS_TRANS : g.asn);
        w.u32(addr);
      });
      if (g.asn > 0xffff) {
        add(AttrCode.As4Aggregator, (w) => {
          w.u32(g.asn);
          w.u32(addr);
        });
      }
    }
  }
  if (a.communities && a.communities.length) {
    const cs = a.communities;
    add(AttrCode.Communities, (w) => encodeCommunities(w, cs));
  }
  if (a.originatorId !== undefined) {
    const o = ipv4(a.originatorId, "originatorId");
    add(AttrCode.OriginatorId, (w) => w.u32(o));
  }
  if (a.clusterList && a.clusterList.length) {
    const ids = a.clusterList.map((c) => ipv4(c, "clusterList entry"));
    add(AttrCode.ClusterList, (w) => {
      for (const id of ids) w.u32(id);
    });
  }
  if (a.largeCommunities && a.largeCommunities.length) {
    const lc = a.largeCommunities;
    add(AttrCode.LargeCommunity, (w) => encodeLargeCommunities(w, lc));
  }
  if (a.unknown) {
    for (const raw of a.unknown) {
      if (out.has(raw.code)) continue;
      const r: RawAttribute = raw;
      add(r.code, (w) => w.bytes(r.value), canonicalFlags(r.code, r.flags, 0));
    }
  }
  return out;
}

/**
 * Encodes an UPDATE. Attributes go in the default order (MP_REACH, MP_UNREACH, then by code) with
 * canonical flags, or as `msg.layout` says when it is set. Throws RangeError when the message
 * exceeds the session's maximum length and TypeError for malformed addresses.
 */
export function encodeUpdate(m: UpdateMessage, ctx: CodecContext): Uint8Array {
  const w = new ByteWriter(256 + 4 * (m.nlri.length + m.withdrawn.length));
  w.pos = HEADER_LENGTH;
  const wl = w.pos;
  w.u16(0);
  encodePrefixes(w, m.withdrawn);
  w.patch16(wl, w.pos - wl - 2);
  const al = w.pos;
  w.u16(0);
  const writers = attributeWriters(m, ctx);
  let codes = [...writers.keys()];
  const layout = m.layout;
  if (layout) {
    const pos = new Map<number, number>();
    layout.codes.forEach((c, i) => pos.set(c, i));
    codes.sort((x, y) => (pos.get(x) ?? 1e6 + attrRank(x)) - (pos.get(y) ?? 1e6 + attrRank(y)));
    for (const c of codes) {
      const i = pos.get(c);
      const wr = writers.get(c)!;
      const flags = i === undefined ? wr.flags : layout.flags[i];
      writeAttr(w, c, flags, wr.write);
    }
  } else {
    codes = codes.sort((x, y) => attrRank(x) - attrRank(y));
    for (const c of codes) {
      const wr = writers.get(c)!;
      writeAttr(w, c, wr.flags, wr.write);
    }
  }
  const alen = w.pos - al - 2;
  if (alen > 0xffff) throw new RangeError(`UPDATE: path attributes of ${alen} octets exceed 65535`);
  w.patch16(al, alen);
  encodePrefixes(w, m.nlri);
  const max = maxMessageLength(MessageType.Update, ctx);
  if (w.pos > max) throw new RangeError(`UPDATE: ${w.pos} octets exceeds the session maximum ${max}`);
  const out = w.finish();
  writeHeader(out, out.length, MessageType.Update);
  return out;
}
