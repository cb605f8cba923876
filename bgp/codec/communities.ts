/**
 * COMMUNITIES (RFC 1997) and LARGE_COMMUNITY (RFC 8092).
 *
 * @module
 */

import { type AttrDecodeState, attrFail } from "./attributes.ts";
import type { ByteWriter } from "./bytes.ts";
import { UpdateSubcode } from "./errors.ts";
import type { LargeCommunity } from "./types.ts";

/** Decodes COMMUNITIES; RFC 7606 §7.8: a length that is not a non-zero multiple of 4 → treat-as-withdraw. */
export function decodeCommunities(
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
      8,
      UpdateSubcode.AttributeLengthError,
      "treat-as-withdraw",
      `COMMUNITIES length ${len} is not a non-zero multiple of 4`,
      b,
      hs,
      ve,
    );
    return;
  }
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

/** Decodes LARGE_COMMUNITY; RFC 8092 §6: a length that is not a non-zero multiple of 12 → treat-as-withdraw. */
export function decodeLargeCommunities(
  st: AttrDecodeState,
  b: Uint8Array,
  hs: number,
  vs: number,
  ve: number,
): void {
  const len = ve - vs;
  if (len === 0 || len % 12 !== 0) {
    attrFail(
      st,
      32,
      UpdateSubcode.AttributeLengthError,
      "treat-as-withdraw",
      `LARGE_COMMUNITY length ${len} is not a non-zero multiple of 12`,
      b,
      hs,
      ve,
    );
    return;
  }
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
