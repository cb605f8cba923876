/**
 * UPDATE (RFC 4271 §4.3) decode and encode, and the RFC 7606 decisions that need the whole
 * message: attribute-list framing (§4), duplicates (§3g), missing well-known attributes (§3d),
 * NLRI syntax (§5.3), and the "strongest handling wins" rule (§3).
 *
 * @module
 */

import { type AttributeCache, hashRanges } from "./attr_cache.ts";
import { type AttrSetResult, decodeAttrSet } from "./attr_set.ts";
import { as4PathOf, encodeAsPath, hasFourOctetAsn } from "./as_path.ts";
import { AS_TRANS, AttrCode, AttrFlag, attrRank, canonicalFlags, KNOWN_ATTR_FLAGS } from "./attributes.ts";
import { ByteWriter } from "./bytes.ts";
import { encodeCommunities, encodeLargeCommunities } from "./communities.ts";
import { type BgpError, type ErrorHandling, strongerHandling, updateError, UpdateSubcode } from "./errors.ts";
import { HEADER_LENGTH, maxMessageLength, writeHeader } from "./header.ts";
import { parseIPv4 } from "./ip.ts";
import { decodeMpReach, decodeMpUnreach, encodeMpReach, encodeMpUnreach } from "./mp.ts";
import { decodePrefixes, encodePrefixes } from "./nlri.ts";
import {
  AFI,
  type AsPathSegment,
  type AttributeLayout,
  type CodecContext,
  MessageType,
  type MpReach,
  type MpUnreach,
  type PathAttributes,
  type Prefix,
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
// Codes and flag octets in wire order (first occurrence of each), for `layout` and for `seen`.
const lay = new Int32Array(MAX_ATTRS * 2);
// Findings of the current call; copied out only when there are any.
const errorsScratch: BgpError[] = [];
const discardedScratch: number[] = [];
const NO_ERRORS: BgpError[] = Object.freeze([]) as unknown as BgpError[];

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

  const errors = errorsScratch;
  const discarded = discardedScratch;
  errors.length = 0;
  discarded.length = 0;
  let nl = 0;
  let mpReach: MpReach | undefined;
  let mpUnreach: MpUnreach | undefined;
  let n = 0;
  let canonical = true;
  let lastRank = -1;
  let p = as;
  let fatal: BgpError | null = null;
  // `seen` is shared scratch: it must be cleared whatever happens in the walk.
  try {
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
        canonical = false;
        continue;
      }
      seen[code] = 1;
      lay[nl * 2] = code;
      lay[nl * 2 + 1] = flags;
      nl++;
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
        const r = code === AttrCode.MpReachNlri
          ? decodeMpReach(b, hs, vs, ve)
          : decodeMpUnreach(b, hs, vs, ve);
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
      n++;
    }
  } finally {
    for (let i = 0; i < nl; i++) seen[lay[i * 2]] = 0;
  }
  if (fatal) return fail(fatal);

  // The non-MP attributes, through the cache when one is given.
  let set: AttrSetResult;
  if (cache && n > 0) {
    const flags = (ctx.fourOctetAs ? 1 : 0) | (ctx.ebgp ? 2 : 0);
    const h = hashRanges(b, ents, n, flags);
    const hit = cache.lookup(h, flags, b, ents, n);
    if (hit) {
      set = hit;
    } else {
      set = decodeAttrSet(b, ents, n, ctx);
      cache.store(h, flags, b, ents, n, set);
    }
  } else {
    set = decodeAttrSet(b, ents, n, ctx);
  }
  const attrs = set.attrs;
  // Indexed loops: the cached arrays are frozen, and for-of over frozen arrays is a slow path.
  for (let i = 0; i < set.errors.length; i++) errors.push(set.errors[i]);
  for (let i = 0; i < set.discarded.length; i++) discarded.push(set.discarded[i]);

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
  if (discarded.length) msg.discarded = discarded.slice();
  if (!canonical) {
    const codes = new Array<number>(nl);
    const flags = new Array<number>(nl);
    for (let i = 0; i < nl; i++) {
      codes[i] = lay[i * 2];
      flags[i] = lay[i * 2 + 1];
    }
    msg.layout = { codes, flags };
  }
  return { ok: true, msg, errors: errors.length ? errors.slice() : NO_ERRORS };
}

function hadMalformed(set: AttrSetResult, code: number): boolean {
  for (const e of set.errors) if (e.data.length > 1 && e.data[1] === code) return true;
  return false;
}

// ---------------------------------------------------------------------------------------------
// Encoding

function ipv4(s: string, what: string): number {
  const v = parseIPv4(s);
  if (v < 0) throw new TypeError(`UPDATE ${what} ${JSON.stringify(s)}: must be dotted-quad IPv4 text`);
  return v;
}

function beginAttr(w: ByteWriter, flags: number, code: number): number {
  const start = w.pos;
  w.ensure(4);
  w.buf[w.pos++] = flags;
  w.buf[w.pos++] = code;
  w.pos += flags & AttrFlag.ExtendedLength ? 2 : 1;
  return start;
}

function endAttr(w: ByteWriter, start: number): void {
  const flags = w.buf[start];
  if (flags & AttrFlag.ExtendedLength) {
    w.patch16(start + 2, w.pos - start - 4);
    return;
  }
  const vs = start + 3;
  const vlen = w.pos - vs;
  if (vlen <= 255) {
    w.buf[start + 2] = vlen;
    return;
  }
  // RFC 4271 §4.3: a value above 255 octets needs the Extended Length bit and a 2-octet length.
  w.ensure(1);
  w.buf.copyWithin(vs + 1, vs, w.pos);
  w.pos++;
  w.buf[start] = flags | AttrFlag.ExtendedLength;
  w.patch16(start + 2, vlen);
}

/** Writes the non-MP attributes of `a` in the default order with default flags. */
function writeAttrSet(w: ByteWriter, a: PathAttributes, ctx: CodecContext): void {
  const four = ctx.fourOctetAs;
  let unk = a.unknown;
  if (unk && unk.length > 1) unk = [...unk].sort((x, y) => x.code - y.code);
  let ui = 0;
  const unknownBelow = (code: number) => {
    while (unk && ui < unk.length && unk[ui].code < code) {
      const r = unk[ui++];
      if (KNOWN_ATTR_FLAGS[r.code] !== undefined) continue;
      const st = beginAttr(w, canonicalFlags(r.code, r.flags, 0), r.code);
      w.bytes(r.value);
      endAttr(w, st);
    }
  };
  let st: number;
  if (a.origin !== undefined) {
    unknownBelow(AttrCode.Origin);
    st = beginAttr(w, 0x40, AttrCode.Origin);
    w.u8(a.origin);
    endAttr(w, st);
  }
  let p4: AsPathSegment[] | null = null;
  if (a.asPath !== undefined) {
    unknownBelow(AttrCode.AsPath);
    st = beginAttr(w, 0x40, AttrCode.AsPath);
    encodeAsPath(w, a.asPath, four ? 4 : 2);
    endAttr(w, st);
    // RFC 6793 §4.2.2: towards a 2-octet speaker, a path with 4-octet ASNs also goes in AS4_PATH.
    // Confederation segments stay out of AS4_PATH, so only a 4-octet ASN outside them needs it.
    if (!four) {
      const cand = as4PathOf(a.asPath);
      if (hasFourOctetAsn(cand)) p4 = cand;
    }
  }
  if (a.nextHop !== undefined) {
    unknownBelow(AttrCode.NextHop);
    const nh = ipv4(a.nextHop, "nextHop");
    st = beginAttr(w, 0x40, AttrCode.NextHop);
    w.u32(nh);
    endAttr(w, st);
  }
  if (a.med !== undefined) {
    unknownBelow(AttrCode.Med);
    st = beginAttr(w, 0x80, AttrCode.Med);
    w.u32(a.med);
    endAttr(w, st);
  }
  if (a.localPref !== undefined) {
    unknownBelow(AttrCode.LocalPref);
    st = beginAttr(w, 0x40, AttrCode.LocalPref);
    w.u32(a.localPref);
    endAttr(w, st);
  }
  if (a.atomicAggregate) {
    unknownBelow(AttrCode.AtomicAggregate);
    st = beginAttr(w, 0x40, AttrCode.AtomicAggregate);
    endAttr(w, st);
  }
  const g = a.aggregator;
  let agg4 = false;
  if (g) {
    unknownBelow(AttrCode.Aggregator);
    const addr = ipv4(g.address, "aggregator.address");
    st = beginAttr(w, 0xc0, AttrCode.Aggregator);
    if (four) w.u32(g.asn);
    else {
      // RFC 6793 §4.2.2: a 4-octet aggregator AS goes as AS_TRANS plus AS4_AGGREGATOR.
      w.u16(g.asn > 0xffff ? AS_TRANS : g.asn);
      agg4 = g.asn > 0xffff;
    }
    w.u32(addr);
    endAttr(w, st);
  }
  if (a.communities && a.communities.length) {
    unknownBelow(AttrCode.Communities);
    st = beginAttr(w, 0xc0, AttrCode.Communities);
    encodeCommunities(w, a.communities);
    endAttr(w, st);
  }
  if (a.originatorId !== undefined) {
    unknownBelow(AttrCode.OriginatorId);
    const o = ipv4(a.originatorId, "originatorId");
    st = beginAttr(w, 0x80, AttrCode.OriginatorId);
    w.u32(o);
    endAttr(w, st);
  }
  if (a.clusterList && a.clusterList.length) {
    unknownBelow(AttrCode.ClusterList);
    const ids = a.clusterList.map((c) => ipv4(c, "clusterList entry"));
    st = beginAttr(w, 0x80, AttrCode.ClusterList);
    for (const id of ids) w.u32(id);
    endAttr(w, st);
  }
  if (p4) {
    unknownBelow(AttrCode.As4Path);
    st = beginAttr(w, 0xc0, AttrCode.As4Path);
    encodeAsPath(w, p4, 4);
    endAttr(w, st);
  }
  if (agg4 && g) {
    unknownBelow(AttrCode.As4Aggregator);
    st = beginAttr(w, 0xc0, AttrCode.As4Aggregator);
    w.u32(g.asn);
    w.u32(ipv4(g.address, "aggregator.address"));
    endAttr(w, st);
  }
  if (a.largeCommunities && a.largeCommunities.length) {
    unknownBelow(AttrCode.LargeCommunity);
    st = beginAttr(w, 0xc0, AttrCode.LargeCommunity);
    encodeLargeCommunities(w, a.largeCommunities);
    endAttr(w, st);
  }
  unknownBelow(256);
}

let scratchWriter = new ByteWriter(8192);

// Encoded non-MP attribute sets of frozen PathAttributes objects, per session flags: a RIB that
// interns (freezes) its attribute sets encodes each once, however many UPDATEs carry it.
const encodedSets = new WeakMap<PathAttributes, Array<Uint8Array | undefined>>();

function encodedAttrSet(a: PathAttributes, ctx: CodecContext): Uint8Array {
  const k = ctx.fourOctetAs ? 1 : 0;
  let slot = encodedSets.get(a);
  if (!slot) encodedSets.set(a, slot = [undefined, undefined]);
  let bytes = slot[k];
  if (!bytes) {
    const w = new ByteWriter(128);
    writeAttrSet(w, a, ctx);
    bytes = slot[k] = w.finish();
  }
  return bytes;
}

/**
 * Encodes an UPDATE. Attributes go in the default order (MP_REACH, MP_UNREACH, then by code) with
 * canonical flags, or as `msg.layout` says when it is set. When `msg.attrs` is a frozen object
 * its encoding is cached (so a frozen attribute set, arrays included, must never change).
 * Throws RangeError when the message exceeds the session's maximum length and TypeError for
 * malformed addresses.
 */
export function encodeUpdate(m: UpdateMessage, ctx: CodecContext): Uint8Array {
  // One reused writer: allocating a buffer per message costs more than encoding a small UPDATE.
  let w = scratchWriter;
  // A writer grown by an oversized request is not kept.
  if (w.buf.length > 1 << 18) w = scratchWriter = new ByteWriter(8192);
  w.pos = HEADER_LENGTH;
  const wl = w.pos;
  w.u16(0);
  encodePrefixes(w, m.withdrawn);
  w.patch16(wl, w.pos - wl - 2);
  const al = w.pos;
  w.u16(0);
  if (m.layout) {
    writeWithLayout(w, m, ctx, m.layout);
  } else {
    let st: number;
    if (m.mpReach) {
      st = beginAttr(w, 0x80, AttrCode.MpReachNlri);
      encodeMpReach(w, m.mpReach);
      endAttr(w, st);
    }
    if (m.mpUnreach) {
      st = beginAttr(w, 0x80, AttrCode.MpUnreachNlri);
      encodeMpUnreach(w, m.mpUnreach);
      endAttr(w, st);
    }
    if (Object.isFrozen(m.attrs)) w.bytes(encodedAttrSet(m.attrs, ctx));
    else writeAttrSet(w, m.attrs, ctx);
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

/** Writes attributes in the received order and with the received flags (`UpdateMessage.layout`). */
function writeWithLayout(w: ByteWriter, m: UpdateMessage, ctx: CodecContext, layout: AttributeLayout): void {
  // Encode the default form into a scratch writer, split it into attributes, then reorder.
  const tmp = new ByteWriter(256);
  if (m.mpReach) {
    const st = beginAttr(tmp, 0x80, AttrCode.MpReachNlri);
    encodeMpReach(tmp, m.mpReach);
    endAttr(tmp, st);
  }
  if (m.mpUnreach) {
    const st = beginAttr(tmp, 0x80, AttrCode.MpUnreachNlri);
    encodeMpUnreach(tmp, m.mpUnreach);
    endAttr(tmp, st);
  }
  writeAttrSet(tmp, m.attrs, ctx);
  const parts: Array<{ code: number; value: Uint8Array; flags: number }> = [];
  for (let p = 0; p < tmp.pos;) {
    const flags = tmp.buf[p];
    const ext = flags & AttrFlag.ExtendedLength;
    const vlen = ext ? (tmp.buf[p + 2] << 8) | tmp.buf[p + 3] : tmp.buf[p + 2];
    const vs = p + (ext ? 4 : 3);
    parts.push({ code: tmp.buf[p + 1], flags, value: tmp.buf.subarray(vs, vs + vlen) });
    p = vs + vlen;
  }
  const pos = new Map<number, number>();
  layout.codes.forEach((c, i) => pos.set(c, i));
  const rank = (c: number) => pos.get(c) ?? 1e6 + attrRank(c);
  parts.sort((x, y) => rank(x.code) - rank(y.code));
  for (const part of parts) {
    const i = pos.get(part.code);
    const flags = i === undefined ? part.flags : layout.flags[i];
    const st = beginAttr(w, flags, part.code);
    w.bytes(part.value);
    endAttr(w, st);
  }
}
