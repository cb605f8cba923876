/**
 * The session's view of the codec (`bgp/codec/mod.ts`): frame, decode and encode whole messages
 * with the session's context, sharing one attribute cache. Kept in one place so the session does
 * not depend on the codec's option shapes.
 *
 * @module
 */

import {
  AttributeCache,
  type BgpError,
  type BgpMessage,
  checkUpdate,
  type CodecContext,
  decode,
  encode,
  frame,
  type FrameResult,
  maxMessageLength,
  MessageType,
  type UpdateMessage,
} from "./codec/mod.ts";

export type { FrameResult };

/** Check the header at the start of `b`: a whole message, more bytes needed, or a header error. */
export function frameMessage(b: Uint8Array, ctx: CodecContext): FrameResult {
  return frame(b, ctx);
}

/** Largest UPDATE the session may send. */
export function maxLength(ctx: CodecContext): number {
  return maxMessageLength(MessageType.Update, ctx);
}

// One attribute cache per process: identical attribute bytes from any peer decode to one frozen
// object, which also makes the RIB's interning cheap (see AttrTable's identity cache).
const attrCache = new AttributeCache(200_000);

/** Decode one whole framed message. Never throws on peer input (the codec's contract). */
export function decodeMessage(
  b: Uint8Array,
  ctx: CodecContext,
): { ok: true; msg: BgpMessage; errors?: BgpError[] } | { ok: false; error: BgpError } {
  return decode(b, ctx, { attrCache });
}

/**
 * RFC 7606 checks that need the session's configuration (eBGP first AS, a next hop that is our
 * own address); null when the UPDATE is acceptable.
 */
export function checkUpdateForSession(
  u: UpdateMessage,
  peerAs: number,
  ebgp: boolean,
  localAddresses: string[],
): BgpError | null {
  return checkUpdate(u, { peerAs, ebgp, localAddresses });
}

/** Encode one message. */
export function encodeMessage(m: BgpMessage, ctx: CodecContext): Uint8Array {
  return encode(m, ctx);
}
