/**
 * AS_PATH and AS4_PATH (RFC 4271 §4.3, RFC 5065 confederation segments, RFC 6793 §4): 2- or
 * 4-octet ASNs per the session, and the AS4_PATH merge on receipt from / split on send to a
 * 2-octet speaker.
 *
 * @module
 */

import { AS_TRANS } from "./attributes.ts";
import type { ByteWriter } from "./bytes.ts";
import { type AsPathSegment, AsPathSegmentType } from "./types.ts";

/**
 * Parses AS_PATH segments from `b[s, e)` with `asnSize`-octet ASNs; returns the segments or a
 * one-line reason the path is malformed (RFC 7606 §7.2: unknown segment type, zero segment
 * length, overrun, or a single trailing octet; RFC 7607 §2: AS 0).
 */
export function parseAsPath(b: Uint8Array, s: number, e: number, asnSize: 2 | 4): AsPathSegment[] | string {
  const segs: AsPathSegment[] = [];
  let p = s;
  while (p < e) {
    if (p + 2 > e) return `truncated segment header at offset ${p - s}`;
    const type = b[p];
    const n = b[p + 1];
    if (type < 1 || type > 4) return `segment type ${type} is not 1..4`;
    if (n === 0) return `segment of type ${type} has length 0`;
    p += 2;
    if (p + n * asnSize > e) return `segment of ${n} ASNs overruns the attribute`;
    const asns = new Array<number>(n);
    if (asnSize === 4) {
      for (let i = 0; i < n; i++, p += 4) {
        asns[i] = ((b[p] << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]) >>> 0;
      }
    } else {
      for (let i = 0; i < n; i++, p += 2) asns[i] = (b[p] << 8) | b[p + 1];
    }
    for (let i = 0; i < n; i++) if (asns[i] === 0) return "contains AS 0";
    segs.push({ type: type as AsPathSegment["type"], asns });
  }
  return segs;
}

/**
 * Writes segments with `asnSize`-octet ASNs; 4-octet-only ASNs become AS_TRANS when `asnSize` is
 * 2 (RFC 6793 §4.2.2). Segments longer than 255 ASNs are split.
 */
export function encodeAsPath(w: ByteWriter, segs: readonly AsPathSegment[], asnSize: 2 | 4): void {
  for (const seg of segs) {
    const a = seg.asns;
    // An empty segment is malformed on the wire (RFC 7606 §7.2), so none is written.
    for (let i = 0; i < a.length; i += 255) {
      const n = Math.min(255, a.length - i);
      w.ensure(2 + n * asnSize);
      w.buf[w.pos++] = seg.type;
      w.buf[w.pos++] = n;
      if (asnSize === 4) {
        for (let k = 0; k < n; k++) w.u32(a[i + k]);
      } else {
        for (let k = 0; k < n; k++) {
          const v = a[i + k];
          w.u16(v > 0xffff ? AS_TRANS : v);
        }
      }
    }
  }
}

/** Whether any ASN needs 4 octets. */
export function hasFourOctetAsn(segs: readonly AsPathSegment[]): boolean {
  for (const s of segs) for (const a of s.asns) if (a > 0xffff) return true;
  return false;
}

/** The AS4_PATH to send: the path without confederation segments (RFC 6793 §4.2.2). */
export function as4PathOf(segs: readonly AsPathSegment[]): AsPathSegment[] {
  return segs.filter((s) => s.type === AsPathSegmentType.AsSequence || s.type === AsPathSegmentType.AsSet);
}

/** Whether the path has confederation segments. */
export function hasConfedSegment(segs: readonly AsPathSegment[]): boolean {
  for (const s of segs) {
    if (s.type === AsPathSegmentType.AsConfedSequence || s.type === AsPathSegmentType.AsConfedSet) {
      return true;
    }
  }
  return false;
}

/** Path length as RFC 4271 §9.1.2.2 counts it: an AS_SET counts 1, confederation segments 0. */
export function asPathLength(segs: readonly AsPathSegment[]): number {
  let n = 0;
  for (const s of segs) {
    if (s.type === AsPathSegmentType.AsSequence) n += s.asns.length;
    else if (s.type === AsPathSegmentType.AsSet) n += 1;
  }
  return n;
}

/**
 * Reconstructs the 4-octet path from AS_PATH and AS4_PATH (RFC 6793 §4.2.3): when AS_PATH is
 * shorter than AS4_PATH the AS4_PATH is ignored; otherwise the leading ASNs of AS_PATH that
 * AS4_PATH does not cover are kept and AS4_PATH appended. Returns null when AS4_PATH is ignored.
 */
export function mergeAs4Path(
  asPath: readonly AsPathSegment[],
  as4Path: readonly AsPathSegment[],
): AsPathSegment[] | null {
  const l2 = asPathLength(asPath);
  const l4 = asPathLength(as4Path);
  if (l2 < l4) return null;
  let need = l2 - l4;
  const out: AsPathSegment[] = [];
  for (const s of asPath) {
    if (s.type === AsPathSegmentType.AsConfedSequence || s.type === AsPathSegmentType.AsConfedSet) {
      out.push({ type: s.type, asns: s.asns.slice() });
    } else if (need > 0) {
      if (s.type === AsPathSegmentType.AsSet) {
        out.push({ type: s.type, asns: s.asns.slice() });
        need -= 1;
      } else {
        const take = Math.min(need, s.asns.length);
        out.push({ type: s.type, asns: s.asns.slice(0, take) });
        need -= take;
      }
    }
  }
  for (const s of as4Path) {
    const last = out[out.length - 1];
    // Join the kept AS_SEQUENCE head with AS4_PATH's first sequence, as the sender had them.
    if (
      last && last.type === AsPathSegmentType.AsSequence && s.type === AsPathSegmentType.AsSequence &&
      last.asns.length + s.asns.length <= 255 && out.length > 0 && s === as4Path[0]
    ) {
      last.asns.push(...s.asns);
    } else {
      out.push({ type: s.type, asns: s.asns.slice() });
    }
  }
  return out;
}
