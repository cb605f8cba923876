/**
 * The 19-octet message header (RFC 4271 §4.1) and its checks (§6.1), plus `frame`, which finds
 * the next message in a byte stream.
 *
 * @module
 */

import { type BgpError, headerError, HeaderSubcode } from "./errors.ts";
import { type CodecContext, MessageType } from "./types.ts";

/** Octets in the header: marker (16), length (2), type (1). */
export const HEADER_LENGTH = 19;
/** Maximum message length without extended messages (RFC 4271 §4.1). */
export const MAX_MESSAGE_LENGTH = 4096;
/** Maximum message length with extended messages (RFC 8654). */
export const MAX_EXTENDED_MESSAGE_LENGTH = 65535;

/** Minimum length of each message type (RFC 4271 §4.2-4.5, RFC 2918 §3). */
export const MIN_MESSAGE_LENGTH: Readonly<Record<number, number>> = {
  [MessageType.Open]: 29,
  [MessageType.Update]: 23,
  [MessageType.Notification]: 21,
  [MessageType.Keepalive]: 19,
  [MessageType.RouteRefresh]: 23,
};

/** Largest message length accepted for `type` under `ctx`. */
export function maxMessageLength(type: number, ctx: CodecContext): number {
  // RFC 8654 §4: OPEN and KEEPALIVE stay within 4096 octets even with extended messages.
  if (!ctx.extendedMessages || type === MessageType.Open || type === MessageType.Keepalive) {
    return MAX_MESSAGE_LENGTH;
  }
  return MAX_EXTENDED_MESSAGE_LENGTH;
}

/** What `frame` found at the start of a buffer. */
export type FrameResult =
  | { kind: "need-more"; need: number }
  | { kind: "message"; type: number; length: number }
  | { kind: "error"; error: BgpError };

/**
 * Checks the header at the start of `b` (RFC 4271 §6.1) and reports whether a whole message is
 * there. The marker is checked as soon as its bytes arrive so garbage is rejected early.
 */
export function frame(b: Uint8Array, ctx: CodecContext): FrameResult {
  const avail = b.length;
  const m = avail < 16 ? avail : 16;
  for (let i = 0; i < m; i++) {
    if (b[i] !== 0xff) {
      return {
        kind: "error",
        error: headerError(
          HeaderSubcode.ConnectionNotSynchronized,
          `message header: marker octet ${i} is 0x${b[i].toString(16).padStart(2, "0")}, expected 0xff`,
        ),
      };
    }
  }
  if (avail < HEADER_LENGTH) return { kind: "need-more", need: HEADER_LENGTH - avail };
  const length = (b[16] << 8) | b[17];
  const type = b[18];
  // Allocated only on error paths: a typed-array allocation costs more than the whole check.
  const lenData = () => b.slice(16, 18);
  // RFC 4271 §6.1: length below 19 or above the maximum is Bad Message Length, data = the length field.
  if (length < HEADER_LENGTH) {
    return {
      kind: "error",
      error: headerError(
        HeaderSubcode.BadMessageLength,
        `message header: length ${length} is below the minimum 19`,
        lenData(),
      ),
    };
  }
  const min = MIN_MESSAGE_LENGTH[type];
  if (min === undefined) {
    // RFC 4271 §6.1: unrecognised type is Bad Message Type, data = the type octet.
    return {
      kind: "error",
      error: headerError(
        HeaderSubcode.BadMessageType,
        `message header: type ${type} is not one of 1 (OPEN), 2 (UPDATE), 3 (NOTIFICATION), 4 (KEEPALIVE), 5 (ROUTE-REFRESH)`,
        b.slice(18, 19),
      ),
    };
  }
  const max = maxMessageLength(type, ctx);
  if (length > max || length < min || (type === MessageType.Keepalive && length !== HEADER_LENGTH)) {
    // RFC 4271 §6.1: a length wrong for the type (KEEPALIVE exactly 19, others a minimum) is Bad Message Length.
    const want = type === MessageType.Keepalive ? "exactly 19" : `${min}..${max}`;
    return {
      kind: "error",
      error: headerError(
        HeaderSubcode.BadMessageLength,
        `message header: length ${length} of a type ${type} message is not ${want}`,
        lenData(),
      ),
    };
  }
  if (avail < length) return { kind: "need-more", need: length - avail };
  return { kind: "message", type, length };
}

/** Writes the marker, length and type at `b[0..19)`. */
export function writeHeader(b: Uint8Array, length: number, type: number): void {
  b.fill(0xff, 0, 16);
  b[16] = length >> 8;
  b[17] = length & 255;
  b[18] = type;
}
