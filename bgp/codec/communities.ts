/**
 * COMMUNITIES (RFC 1997) and LARGE_COMMUNITY (RFC 8092).
 *
 * @module
 */

import type { AttrDecodeState } from "./attributes.ts";
import type { ByteWriter } from "./bytes.ts";
import type { LargeCommunity } from "./types.ts";

/** Decodes COMMUNITIES (a non-zero multiple of 4 octets, RFC 7606 §7.8, checked before). */
export function decodeCommunities(st: AttrDecodeState, b: Uint8Array, vs: number, ve: number): void {
  const len = ve - vs;
  const out = new Array<number>(len / 4);
  for (let i = 0, p = vs; p < ve; i++, p += 4) {
    out[i] = ((b[p] << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]) >>> 0;
  }
  st.attrs.communities = out;
}

/** Writes the COMMUNITIES value. */
export function encodeCommunities(w: ByteWriter, cs: readonly number[]): void {
  for (const c of cs) w.u32(c);
}

/** Decodes LARGE_COMMUNITY (a non-zero multiple of 12 octets, RFC 8092 §6, checked before). */
export function decodeLargeCommunities(st: AttrDecodeState, b: Uint8Array, vs: number, ve: number): void {
  const len = ve - vs;
  const out = new Array<LargeCommunity>(len / 12);
  const u32 = (p: number) => ((b[p] << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]) >>> 0;
  for (let i = 0, p = vs; p < ve; i++, p += 12) {
    out[i] = { global: u32(p), local1: u32(p + 4), local2: u32(p + 8) };
  }
  st.attrs.largeCommunities = out;
}

/** Writes the LARGE_COMMUNITY value. */
export function encodeLargeCommunities(w: ByteWriter, cs: readonly LargeCommunity[]): void {
  for (const c of cs) {
    w.u32(c.global);
    w.u32(c.local1);
    w.u32(c.local2);
  }
}
